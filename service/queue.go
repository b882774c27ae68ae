package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// The work queue holds two kinds of work under one lease protocol, which
// every Store implements once for both:
//
//	Claim(kind)  the oldest due item of the kind, leased to the caller until
//	             now+ttl; its attempt is counted
//	Extend       moves the lease's expiry; only the lease's holder may
//	Release      puts the item back as if never claimed this time (the
//	             attempt is not counted), not due before notBefore
//	Finish…      completes the item (Finish for grading, FinishPost for
//	             posting), in one atomic step with everything it records
//
// A lease that expires (its worker died, or lost the store) makes the item
// claimable again; from then on the old holder's Extend, Release and Finish…
// fail with ECONFLICT, so exactly one worker completes each claim.
//
// # Grading (KindGrade: one per submission, keyed by its id)
//
//	queued ──Claim──▶ grading ──Finish──▶ graded | failed | needs_review
//	   ▲                 │
//	   └──Release────────┘  (our trouble: a dependency down, a shutdown)
//	   └──lease expired──┘  (a worker died; counted: after MaxAttempts, failed)
//
// Finish of a graded submission also writes its Grade record and, when
// posting is on, offers its grade to its student's post (below): the policy
// decides whether it becomes the grade to post. All of it is one step, so a
// grade is never recorded without its post, nor posted without its record.
//
// # Posting (KindPost: one per course, section, assignment and student,
// keyed by PostKey)
//
//	queued ──Claim──▶ posting ──FinishPost──▶ posted | failed
//	   ▲                 │                      │
//	   └─────────────────┘                      │
//	   retry (edX down), no answer (maybe       │
//	   applied: follow up), or the selected     │
//	   grade changed meanwhile                  │
//	   ▲                                        │
//	   └──── a newly selected grade ────────────┘
//
// One student's post for one assignment is one item, so at most one post of
// it is in flight at any time, across replicas, and edX ends with the grade
// the policy selects: a claim posts the grade selected at that moment
// (InFlight); a grade selected while it is in flight is posted after it
// completes. A post that got no answer may have been applied, possibly
// after a later one, so it is followed, after a delay, by a post of the
// grade selected then. A post whose worker died is claimed again once its
// lease expires and posts the grade selected then: the same grade again
// when nothing changed (edX's replaceResult is idempotent), so a crash costs
// at most one extra post, of the same grade.

// Kind is a kind of work in the queue.
type Kind string

const (
	KindGrade Kind = "grade" // grading one submission
	KindPost  Kind = "post"  // posting one student's grade for one assignment
)

// Lease is a worker's claim on one item of work. Only the holder of the
// current token may extend, release or finish it.
type Lease struct {
	Kind    Kind
	ID      string // the submission's id (KindGrade), or the post's key (KindPost)
	Token   string
	Expires time.Time
}

// Job is a claimed item of work: its lease, and what the work is about.
type Job struct {
	Lease      *Lease
	Submission *Submission // KindGrade
	Post       *PostTask   // KindPost
}

// PostPolicy chooses which of a student's graded submissions of an
// assignment is the grade edX keeps.
type PostPolicy string

const (
	// PostLatest posts the grade of the newest graded submission (by the
	// time it was received): what the service this one replaces left in
	// edX, since it posted every grade in turn.
	PostLatest PostPolicy = "latest"
	// PostBest posts the highest grade; among equal ones, the first.
	PostBest PostPolicy = "best"
)

// Prefers reports whether the policy selects candidate c over the current
// selection cur (zero: nothing selected yet). A regrade of the selected
// submission is always preferred: its new grade replaces the old.
func (p PostPolicy) Prefers(c, cur PostedGrade) bool {
	switch {
	case cur.SubmissionID == "" || c.SubmissionID == cur.SubmissionID:
		return true
	case p == PostBest:
		return c.Grade > cur.Grade
	default:
		return c.ReceivedAt.After(cur.ReceivedAt) || c.ReceivedAt.Equal(cur.ReceivedAt) && c.SubmissionID > cur.SubmissionID
	}
}

// PostedGrade is one submission's grade, as offered to a post.
type PostedGrade struct {
	SubmissionID string
	Grade        float64
	ReceivedAt   time.Time
}

// Same reports whether g and o are the same submission's same grade.
func (g PostedGrade) Same(o PostedGrade) bool {
	return g.SubmissionID == o.SubmissionID && g.Grade == o.Grade
}

// PostKey is the key of the post of user's grade for assignment a.
func PostKey(a Assignment, user string) string {
	h := sha256.New()
	for _, s := range []string{a.Course, a.Section, a.Assignment, user} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PostTaskStatus is where one student's post for one assignment is.
type PostTaskStatus string

const (
	TaskQueued  PostTaskStatus = "queued"  // a post is due at NextAt
	TaskPosting PostTaskStatus = "posting" // a worker holds a lease on it
	TaskPosted  PostTaskStatus = "posted"  // edX answered that it holds Want
	TaskFailed  PostTaskStatus = "failed"  // edX refused Want, or the retry period ended
)

// PostTask is one student's post for one assignment.
type PostTask struct {
	Key  string
	User string
	Assignment
	Status PostTaskStatus

	Want      PostedGrade // the grade the policy selects
	WantSince time.Time   // when it was selected: retries end PostRetryPeriod later
	Attempts  int         // claims made to post Want
	LastError string
	NextAt    time.Time // queued: when the next attempt is due

	// InFlight is the grade being posted by the current claim (Want when
	// it was claimed); Interrupted, one that was in flight when its worker
	// died (its post may have been applied).
	InFlight    PostedGrade
	Interrupted PostedGrade

	// Sent is the last grade posted that edX may hold; Confirmed, whether
	// edX answered that it does.
	Sent      PostedGrade
	Confirmed bool
}

// PostOutcome is what became of one post attempt.
type PostOutcome string

const (
	PostApplied    PostOutcome = "applied"    // edX answered success
	PostUnanswered PostOutcome = "unanswered" // sent, but no answer came: it may have been applied
	PostRetry      PostOutcome = "retry"      // not applied (edX down, a 5xx): try again at NextAt
	PostRefused    PostOutcome = "refused"    // edX refused it, or the retry period ended: give up on it

	// PostInterrupted is not an attempt's outcome: the Observer is told it
	// for a claim that found the previous attempt in flight (its worker died).
	PostInterrupted PostOutcome = "interrupted"
)

// PostResult is the outcome of the post attempt a worker holds a lease on.
type PostResult struct {
	Outcome PostOutcome
	Error   string    // for students and staff; "" when applied
	At      time.Time // when the attempt ended
	NextAt  time.Time // PostUnanswered, PostRetry: when the next attempt is due
}

// SentMark records that a post sent a submission's grade, and whether edX
// confirmed it.
type SentMark struct {
	SubmissionID string
	Confirmed    bool
}

// ApplyPostResult is the change FinishPost makes to task t, the same in
// every store: it returns the task as it is afterwards, and the submissions
// whose grade was sent by this claim (and may be in edX now), in order.
func ApplyPostResult(t PostTask, r PostResult) (after PostTask, sent []SentMark) {
	after = t
	if t.Interrupted.SubmissionID != "" {
		sent = append(sent, SentMark{SubmissionID: t.Interrupted.SubmissionID})
		after.Sent, after.Confirmed = t.Interrupted, false
	}
	changed := !t.Want.Same(t.InFlight) // a grade selected while this one was in flight
	switch r.Outcome {
	case PostApplied:
		after.Sent, after.Confirmed = t.InFlight, true
		sent = append(sent, SentMark{SubmissionID: t.InFlight.SubmissionID, Confirmed: true})
		after.LastError = ""
		after.Status, after.NextAt = TaskPosted, time.Time{}
	case PostUnanswered:
		after.Sent, after.Confirmed = t.InFlight, false
		sent = append(sent, SentMark{SubmissionID: t.InFlight.SubmissionID})
		after.LastError = r.Error
		after.Status, after.NextAt = TaskQueued, r.NextAt
	case PostRetry:
		after.LastError = r.Error
		after.Status, after.NextAt = TaskQueued, r.NextAt
	default: // PostRefused
		after.LastError = r.Error
		after.Status, after.NextAt = TaskFailed, time.Time{}
	}
	if changed {
		after.Attempts = 0
		if after.Status != TaskQueued { // posted or refused: the new grade is due now
			after.Status, after.NextAt, after.LastError = TaskQueued, r.At, ""
		}
	}
	after.InFlight, after.Interrupted = PostedGrade{}, PostedGrade{}
	return after, sent
}

// OfferGrade is the change Finish makes to a student's post when grading
// g: it returns the task as it is afterwards, and whether it changed. t is
// nil when the student has no post for the assignment yet.
func OfferGrade(t *PostTask, key, user string, a Assignment, g PostedGrade, at time.Time, policy PostPolicy) (PostTask, bool) {
	if t == nil {
		return PostTask{Key: key, User: user, Assignment: a, Status: TaskQueued, Want: g, WantSince: at, NextAt: at}, true
	}
	if !policy.Prefers(g, t.Want) || t.Want.Same(g) {
		return *t, false
	}
	after := *t
	after.Want, after.WantSince, after.Attempts, after.LastError = g, at, 0, ""
	switch after.Status {
	case TaskPosting: // the post in flight is followed by this one when it completes
	case TaskQueued: // due now, unless a wait is still running (edX down, or a post without an answer may still be applied)
		after.NextAt = maxTime(after.NextAt, at)
	default:
		after.Status, after.NextAt = TaskQueued, at
	}
	return after, true
}

// RepostTask is the change Repost makes to task t, the same in every
// store, when course staff ask for its grade to be posted again: due at
// now, its attempts and its retry period started afresh. A post in flight
// is left alone (ECONFLICT): it completes, or is retried, on its own.
func RepostTask(t PostTask, now time.Time) (PostTask, error) {
	if t.Status == TaskPosting {
		return t, Errorf(ECONFLICT, "This grade is being posted to edX right now; look again in a minute.")
	}
	t.Status, t.NextAt, t.WantSince, t.Attempts, t.LastError = TaskQueued, now, now, 0, ""
	return t, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ViewPosts sets the Post of each of subs as ViewPost shows it, reading
// the post task of each student's assignment (with task, once for all of
// its pending submissions); a store's Submission and ListSubmissions call
// it.
func ViewPosts(ctx context.Context, subs []*Submission, task func(ctx context.Context, a Assignment, user string) (*PostTask, error)) error {
	tasks := map[string]*PostTask{}
	for _, sub := range subs {
		if sub.Post.Status != PostPending {
			continue
		}
		key := PostKey(sub.Assignment, sub.User)
		t, seen := tasks[key]
		if !seen {
			var err error
			t, err = task(ctx, sub.Assignment, sub.User)
			if err != nil && ErrorCode(err) != ENOTFOUND {
				return err
			}
			tasks[key] = t
		}
		sub.Post = ViewPost(sub, t)
	}
	return nil
}

// ViewPost says what became of sub's grade, from sub's own record (whether
// its grade was ever sent, and when) and its student's post task t (nil:
// none), for the submission's status.
func ViewPost(sub *Submission, t *PostTask) Post {
	p := sub.Post // Status, PostedAt and Confirmed as recorded on the submission
	if p.Status != PostPending || t == nil {
		return p
	}
	// Its grade was sent, or is on its way (in flight, or interrupted in
	// flight): edX may hold it.
	sent := !p.PostedAt.IsZero() || t.InFlight.SubmissionID == sub.ID || t.Interrupted.SubmissionID == sub.ID
	switch {
	case t.Want.SubmissionID != sub.ID && sent:
		return Post{Status: PostReplaced, PostedAt: p.PostedAt, Confirmed: p.Confirmed, By: t.Want.SubmissionID}
	case t.Want.SubmissionID != sub.ID:
		return Post{Status: PostSuperseded, By: t.Want.SubmissionID}
	}
	p.Attempts, p.LastError = t.Attempts, t.LastError
	switch t.Status {
	case TaskPosted:
		p.Status = PostPosted
	case TaskFailed:
		p.Status = PostFailed
	default:
		p.Status = PostPending
		if t.Status == TaskQueued {
			p.NextAt = t.NextAt
		}
	}
	return p
}
