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

	// Submission returns the submission with the given id, without its notebook.
	// Returns ENOTFOUND if there is none.
	Submission(ctx context.Context, id string) (*Submission, error)

	// Notebook returns the notebook submitted with submission id.
	// Returns ENOTFOUND if there is none.
	Notebook(ctx context.Context, id string) ([]byte, error)

	// QueuePosition returns how many queued submissions were received before
	// id, plus one. Returns ENOTFOUND if id does not exist or is not queued.
	QueuePosition(ctx context.Context, id string) (int, error)

	// Claim gives the caller a lease until now+ttl on the oldest submission
	// that is queued, or whose grading lease expired at or before now (a
	// worker died), marks it grading and counts the attempt. It returns
	// (nil, nil) when there is nothing to claim.
	Claim(ctx context.Context, now time.Time, ttl time.Duration) (*Submission, *Lease, error)

	// ExtendLease moves the lease's expiry to now+ttl and updates l.
	// Returns ECONFLICT if l is no longer the submission's current lease.
	ExtendLease(ctx context.Context, id string, l *Lease, now time.Time, ttl time.Duration) error

	// Release returns a claimed submission to the queue, as if never claimed
	// this time (the attempt is not counted), not to be claimed again before
	// notBefore (zero: at once). Submissions waiting for their time do not
	// hold up the rest of the queue.
	// Returns ECONFLICT if l is no longer the submission's current lease.
	Release(ctx context.Context, id string, l *Lease, notBefore time.Time) error

	// Finish records the outcome of grading: for StatusGraded, the grade,
	// questions and feedback, and one Grade record (never two for one
	// submission, however often Finish is retried); for StatusFailed, the
	// failure; for StatusNeedsReview, the grade, questions and feedback and
	// the failure (what was detected), with no Grade record and no post.
	// All in one atomic step.
	// Returns ECONFLICT if l is no longer the submission's current lease.
	Finish(ctx context.Context, id string, l *Lease, out Outcome) error

	// ClaimPost gives the caller a lease until now+ttl on the graded
	// submission whose post is pending and due at or before now (the
	// earliest due first, a lease that expired counting as due) and counts
	// the attempt in Post.Attempts. It returns (nil, nil) when none is due.
	ClaimPost(ctx context.Context, now time.Time, ttl time.Duration) (*Submission, *Lease, error)

	// FinishPost records the outcome of a post attempt: p.Status PostPending
	// with p.NextAt for a retry, or PostPosted, PostFailed or PostSuperseded.
	// p.Attempts is ignored (the store counts them).
	// Returns ECONFLICT if l is no longer the submission's current post lease.
	FinishPost(ctx context.Context, id string, l *Lease, p Post) error

	// Grades returns the grade records matching f, oldest first.
	Grades(ctx context.Context, f GradeFilter) ([]Grade, error)

	// AppendLog adds e to the log.
	AppendLog(ctx context.Context, e LogEntry) error

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
	// that expired at or before now.
	DropHeld(ctx context.Context, key string, now time.Time) error

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Counts returns how many submissions are queued and grading, and how
	// many grade posts are pending.
	Counts(ctx context.Context) (Counts, error)

	// InFlight returns how many of user's submissions are queued or grading.
	InFlight(ctx context.Context, user string) (int, error)

	// Close releases the store's resources.
	Close() error
}

// HeldSubmission is a submission waiting for its sender's sign-in: the body
// as it was posted, and the notebook's file name chosen for it.
type HeldSubmission struct {
	Body         []byte
	NotebookName string
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
	Post       PostStatus // StatusGraded: PostPending (due at FinishedAt) or PostDisabled
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
