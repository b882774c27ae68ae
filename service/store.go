package service

import (
	"context"
	"time"
)

// Store keeps submissions, grades and logs durably. Every implementation runs
// the conformance suite in service/storetest, so they cannot drift apart.
//
// Errors are *Error values: EUNAVAILABLE when the backing database cannot be
// reached (the caller may retry), ENOTFOUND and ECONFLICT as documented per
// method; anything else is EINTERNAL.
type Store interface {
	// CreateSubmission durably records s, with its notebook, as queued. s.ID,
	// s.User, s.Assignment and s.ReceivedAt must be set. When it returns nil
	// the submission survives a crash of the process.
	// Returns ECONFLICT if a submission with s.ID already exists.
	CreateSubmission(ctx context.Context, s *Submission, notebook []byte) error

	// Submission returns the submission with the given id, without its
	// notebook, its Post as ViewPost shows it.
	// Returns ENOTFOUND if there is none.
	Submission(ctx context.Context, id string) (*Submission, error)

	// ListSubmissions returns the submissions f selects, newest first (by
	// ReceivedAt; ties in an order of the store's own), at most f.Limit of
	// them, each as Submission returns it but without Questions and
	// Feedback; and the cursor of the next page (f.After), "" when there
	// is none. A cursor is the store's own, valid with the same filter.
	// Returns EINVALID for a cursor the store did not make.
	ListSubmissions(ctx context.Context, f SubmissionFilter) ([]*Submission, string, error)

	// Notebook returns the notebook submitted with submission id.
	// Returns ENOTFOUND if there is none.
	Notebook(ctx context.Context, id string) ([]byte, error)

	// QueuePosition returns how many queued submissions were received before
	// id, plus one. Returns ENOTFOUND if id does not exist or is not queued.
	QueuePosition(ctx context.Context, id string) (int, error)

	// Claim gives the caller a lease until now+ttl on the oldest due item
	// of kind (see the lifecycle in queue.go): for KindGrade, the oldest
	// queued submission not released until later, or one whose grading
	// lease expired at or before now (a worker died), marked grading, its
	// attempt counted in Submission.Attempts; for KindPost, the post due
	// earliest (a lease that expired counting as due), marked posting, its
	// attempt counted in PostTask.Attempts, with InFlight set to the grade
	// selected now and Interrupted to the grade of a claim whose lease
	// expired in flight. It returns (nil, nil) when nothing is due.
	//
	// However a claim's writes fail (before or after being applied, with
	// the answer lost), the item is claimable again once the lease the
	// failed claim would have had expires.
	Claim(ctx context.Context, kind Kind, now time.Time, ttl time.Duration) (*Job, error)

	// Extend moves the lease's expiry to now+ttl and updates l.
	// Returns ECONFLICT if l is no longer the item's current lease.
	Extend(ctx context.Context, l *Lease, now time.Time, ttl time.Duration) error

	// Release returns a claimed item to the queue, as if never claimed this
	// time (the attempt is not counted), not to be claimed again before
	// notBefore (zero: at once). Items waiting for their time do not hold
	// up the rest of the queue.
	// Returns ECONFLICT if l is no longer the item's current lease.
	Release(ctx context.Context, l *Lease, notBefore time.Time) error

	// Finish completes a grading: for StatusGraded, the grade, questions
	// and feedback, one Grade record (never two for one submission, however
	// often Finish is retried) and, with out.Post PostPending, the grade
	// offered to the student's post (OfferGrade, with out.Policy); for
	// StatusFailed, the failure; for StatusNeedsReview, the grade,
	// questions and feedback and the failure (what was detected), with no
	// Grade record and no post. All in one atomic step.
	// Returns ECONFLICT if l is no longer the submission's current lease.
	Finish(ctx context.Context, l *Lease, out Outcome) error

	// FinishPost completes a post attempt: the task changes as
	// ApplyPostResult says, and the submissions it sent record when
	// (Post.PostedAt) and whether edX confirmed it, in one atomic step.
	// Returns ECONFLICT if l is no longer the post's current lease.
	FinishPost(ctx context.Context, l *Lease, r PostResult) error

	// Requeue puts a finished submission (graded, failed or needs_review)
	// back in the queue to be graded again, as course staff asked (r): its
	// grade, questions, feedback and failure are cleared and its attempts
	// start again; its Grade record and its post keep the old grade until
	// Finish replaces them. It waits behind every submission queued before
	// r.At, and its Batch becomes r.Batch.
	// Returns ENOTFOUND if there is none, ECONFLICT if it is queued or
	// being graded.
	Requeue(ctx context.Context, id string, r Requeue) error

	// Review completes a needs_review submission as course staff decided:
	// out.Status StatusGraded accepts the grade recorded (out's own grade,
	// questions and feedback are not used; its Failure is cleared), with a
	// Grade record and, with out.Post PostPending, the offer to the post at
	// out.FinishedAt, as Finish makes them; StatusFailed rejects it with
	// out.Failure. All in one atomic step.
	// Returns ENOTFOUND if there is none, ECONFLICT if it is not
	// needs_review.
	Review(ctx context.Context, id string, out Outcome) error

	// Repost makes the post of user's grade for a due at now, as RepostTask
	// changes it, and returns it as it is afterwards.
	// Returns ENOTFOUND if there is none, ECONFLICT if it is in flight.
	Repost(ctx context.Context, a Assignment, user string, now time.Time) (*PostTask, error)

	// PostTask returns the post of user's grade for assignment a.
	// Returns ENOTFOUND if there is none.
	PostTask(ctx context.Context, a Assignment, user string) (*PostTask, error)

	// Grades returns the grade records matching f, oldest first.
	Grades(ctx context.Context, f GradeFilter) ([]Grade, error)

	// AppendLog adds e to the log.
	AppendLog(ctx context.Context, e LogEntry) error

	// Refusals returns the refused submissions of user (the error entries
	// tied to no submission) logged at or after since, newest first, at
	// most limit of them.
	Refusals(ctx context.Context, user string, since time.Time, limit int) ([]LogEntry, error)

	// AuditLog returns what course staff did in course (the LogAudit
	// entries of its submissions and assignments) logged at or after
	// since, newest first, at most limit of them.
	AuditLog(ctx context.Context, course string, since time.Time, limit int) ([]LogEntry, error)

	// Logs returns the log entries for a submission, oldest first; for ""
	// the entries tied to no submission (refused ones).
	Logs(ctx context.Context, submissionID string) ([]LogEntry, error)

	// Hold keeps a submission that arrived before its sender was signed
	// in, under key, until expires. Nothing in it is trusted, queued or
	// graded: it is only kept until the sign-in finishes, possibly on
	// another replica, and the service takes it back with Held. Holding
	// under a key that is already held replaces what was held.
	Hold(ctx context.Context, key string, h HeldSubmission, expires time.Time) error

	// Held returns what is held under key (a NotebookName of "" for a body
	// held by a version that did not keep it).
	// Returns ENOTFOUND if there is none, or it expired at or before now.
	Held(ctx context.Context, key string, now time.Time) (HeldSubmission, error)

	// DropHeld forgets the body held under key, if any, and every held body
	// that expired at or before now (key "": only those).
	DropHeld(ctx context.Context, key string, now time.Time) error

	// HeldUsage returns how many bodies are held and not expired at now,
	// and their bytes, in all and (for a client other than "") of those
	// held for that HeldSubmission.Client.
	HeldUsage(ctx context.Context, now time.Time, client string) (HeldUsage, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Counts returns how many submissions are queued and grading, and how
	// many posts are queued or posting.
	Counts(ctx context.Context) (Counts, error)

	// InFlight returns how many of user's submissions are queued or
	// grading, not counting those course staff put back in the queue (a
	// Batch): the bound on what one student has in flight is the student's.
	InFlight(ctx context.Context, user string) (int, error)

	// Close releases the store's resources.
	Close() error
}

// SubmissionFilter selects submissions for ListSubmissions: each field
// that is set must match.
type SubmissionFilter struct {
	User       string
	Course     string
	Section    string
	Assignment string // the assignment's name, within Course when set
	Status     Status
	Batch      string    // requeued by this staff request (Submission.Batch)
	Since      time.Time // received at or after; zero: no bound
	Until      time.Time // received before; zero: no bound
	Limit      int       // at most this many (1 to MaxListLimit); 0: DefaultListLimit
	After      string    // a cursor ListSubmissions returned: the page after it
}

// The sizes of a page of ListSubmissions.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// PageLimit returns the page size f asks for, within the bounds.
func (f SubmissionFilter) PageLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultListLimit
	case f.Limit > MaxListLimit:
		return MaxListLimit
	}
	return f.Limit
}

// Requeue is course staff's request to grade a submission again.
type Requeue struct {
	At    time.Time // when it was asked: the submission waits behind everything queued before
	Batch string    // the request's id, shared by the submissions of one request
}

// HeldSubmission is a submission waiting for its sender's sign-in: the body
// as it was posted, and the notebook's file name chosen for it.
type HeldSubmission struct {
	Body         []byte
	NotebookName string
	// Client is an opaque key of the sender (a hash of its address, never
	// the address), for the bounds on what one client may have held.
	Client string
}

// HeldUsage is what is held for sign-in: in all, and for one client.
type HeldUsage struct {
	Count       int
	Bytes       int64
	ClientCount int
	ClientBytes int64
}

// Counts are the store's gauges.
type Counts struct {
	Queued       int
	Grading      int
	PostsPending int
}

// Outcome is what grading produced.
type Outcome struct {
	Status     Status     // StatusGraded, StatusFailed or StatusNeedsReview
	Post       PostStatus // StatusGraded: PostPending (offered to the student's post at FinishedAt) or PostDisabled
	Policy     PostPolicy // with PostPending: which grade the post keeps; "" is PostLatest
	Grade      float64
	Questions  []Question
	Feedback   []Feedback
	Failure    *Failure
	FinishedAt time.Time
}

// GradeFilter selects grade records; empty fields match anything.
type GradeFilter struct {
	SubmissionID string
	User         string
	Assignment
}
