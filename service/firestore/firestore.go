// Package firestore is the production Store, on Cloud Firestore, keeping the
// collections and fields the old service wrote so dashboards keep working:
//
//	{ENVIRONMENT}-submissions  user, course, section, assignment, notebook, timestamp (+ notebook_name, batch, status and queue fields)
//	{ENVIRONMENT}-grades       user, grade, course, section, assignment, timestamp (+ submission_id); one per submission
//	{ENVIRONMENT}-logs         user, course, section, assignment, message, trace, type, timestamp (+ submission_id, actor)
//
// and beside them {ENVIRONMENT}-posts (one per student and assignment: the
// grade to post to edX and what was sent), {ENVIRONMENT}-offers (graded
// submissions' grades for their posts: see posts.go), {ENVIRONMENT}-leases (claims of
// work: see queue.go) and {ENVIRONMENT}-held (submission bodies waiting for
// their sender's sign-in; expires is the field for a TTL policy).
//
// Notebooks over the document size limit are stored in chunk documents
// under their submission.
package firestore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/api/option"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otter-service/otter-service/service"
)

// chunkSize is how much of a notebook one document holds, well under
// Firestore's 1 MiB document limit.
const chunkSize = 900 << 10

// Store implements service.Store on Firestore.
type Store struct {
	client                            *firestore.Client
	submissions, grades, logs, leases *firestore.CollectionRef
	posts, offers, holds              *firestore.CollectionRef

	readTimeout, writeTimeout time.Duration // bounds of what a request waits for

	faults        atomic.Pointer[func(op string, applied bool) error] // set by the tests only
	postsMigrated atomic.Bool                                         // see migratePosts
}

// write makes the write (or transaction) fn does, named op for the fault
// hook of the conformance suite's fault-injection cases.
func (s *Store) write(op string, fn func() error) error {
	f := s.faults.Load()
	if f != nil {
		if err := (*f)(op, false); err != nil {
			return err
		}
	}
	if err := fn(); err != nil || f == nil {
		return err
	}
	return (*f)(op, true)
}

var _ service.Store = (*Store)(nil)

// New returns a store using the collections prefixed with environment.
// The client connects to FIRESTORE_EMULATOR_HOST when that is set; opts
// are the client's further options.
func New(ctx context.Context, projectID, environment string, opts ...option.ClientOption) (*Store, error) {
	client, err := firestore.NewClient(ctx, projectID, opts...)
	if err != nil {
		return nil, fmt.Errorf("firestore: %w", err)
	}
	return &Store{
		client:      client,
		submissions: client.Collection(environment + "-submissions"),
		grades:      client.Collection(environment + "-grades"),
		logs:        client.Collection(environment + "-logs"),
		leases:      client.Collection(environment + "-leases"),
		posts:       client.Collection(environment + "-posts"),
		offers:      client.Collection(environment + "-offers"),
		holds:       client.Collection(environment + "-held"),
		readTimeout: defaultReadTimeout, writeTimeout: defaultWriteTimeout,
	}, nil
}

// Close implements service.Store.
func (s *Store) Close() error { return s.client.Close() }

// submissionDoc is a submission as stored.
type submissionDoc struct {
	User           string             `firestore:"user"`
	Course         string             `firestore:"course"`
	Section        string             `firestore:"section"`
	Assignment     string             `firestore:"assignment"`
	Notebook       any                `firestore:"notebook"`        // the notebook's JSON text (empty when in chunks); a map in documents the old service wrote (see notebookBytes)
	NotebookChunks int                `firestore:"notebook_chunks"` // how many chunk documents hold it
	Timestamp      time.Time          `firestore:"timestamp"`       // received
	Received       int64              `firestore:"received_us"`     // for ordering, in microseconds (emulators hold integers as doubles)
	Status         string             `firestore:"status"`
	Attempts       int                `firestore:"attempts"`
	Claims         int                `firestore:"claims"` // claim documents made so far
	LeaseToken     string             `firestore:"lease_token"`
	LeaseExpires   int64              `firestore:"lease_expires_us"`
	NotBefore      int64              `firestore:"not_before_us"` // a released submission waits until then; 0 for none
	StartedAt      *time.Time         `firestore:"started_at"`
	FinishedAt     *time.Time         `firestore:"finished_at"`
	Grade          *float64           `firestore:"grade"`
	Questions      []questionDocument `firestore:"questions"`
	Feedback       []feedbackDocument `firestore:"feedback"` // absent in documents from before it was kept
	FailureCode    string             `firestore:"failure_code"`
	FailureMessage string             `firestore:"failure_message"`
	PostStatus     string             `firestore:"post_status"`
	PostAttempts   int                `firestore:"post_attempts"` // also the post claims made so far
	PostError      string             `firestore:"post_error"`
	PostNext       int64              `firestore:"post_next_us"`
	PostedAt       *time.Time         `firestore:"posted_at"`
	PostConfirmed  bool               `firestore:"post_confirmed"` // edX answered that it applied the grade posted at posted_at
	PostToken      string             `firestore:"post_token"`
	NotebookName   string             `firestore:"notebook_name"` // the file name to grade it under; absent (so "") in documents from before it was kept
	Batch          string             `firestore:"batch"`         // the staff request that last requeued it (Requeue); absent (so "") if none did
}

// questionDocument is one element of a submission's questions.
type questionDocument struct {
	Name       string  `firestore:"name"`
	Score      float64 `firestore:"score"`
	MaxScore   float64 `firestore:"max_score"`
	Visibility string  `firestore:"visibility"`
	Output     string  `firestore:"output"`
	// Documents written before the fields were named have Go's names:
	// "Name" and "Score" match the fields above (names match regardless of
	// case), "MaxScore" this one. Their "Hidden" is not read: a question
	// without a visibility is taken as hidden.
	OldMaxScore *float64 `firestore:"MaxScore,omitempty"`
}

// feedbackDocument is one element of a submission's feedback.
type feedbackDocument struct {
	Name       string `firestore:"name"`
	Visibility string `firestore:"visibility"`
	Output     string `firestore:"output"`
}

func feedbackDocuments(fs []service.Feedback) []feedbackDocument {
	if len(fs) == 0 {
		return nil
	}
	out := make([]feedbackDocument, len(fs))
	for i, f := range fs {
		out[i] = feedbackDocument{Name: f.Name, Visibility: f.Visibility, Output: f.Output}
	}
	return out
}

func fromFeedbackDocuments(ds []feedbackDocument) []service.Feedback {
	if len(ds) == 0 {
		return nil
	}
	out := make([]service.Feedback, len(ds))
	for i, d := range ds {
		out[i] = service.Feedback{Name: d.Name, Visibility: d.Visibility, Output: d.Output}
	}
	return out
}

func questionDocuments(qs []service.Question) []questionDocument {
	if qs == nil {
		return nil
	}
	out := make([]questionDocument, len(qs))
	for i, q := range qs {
		out[i] = questionDocument{Name: q.Name, Score: q.Score, MaxScore: q.MaxScore, Visibility: q.Visibility, Output: q.Output}
	}
	return out
}

func fromQuestionDocuments(ds []questionDocument) []service.Question {
	if ds == nil {
		return nil
	}
	out := make([]service.Question, len(ds))
	for i, d := range ds {
		if d.OldMaxScore != nil {
			d.MaxScore = *d.OldMaxScore
		}
		out[i] = service.Question{Name: d.Name, Score: d.Score, MaxScore: d.MaxScore, Visibility: d.Visibility, Output: d.Output}
	}
	return out
}

func (d *submissionDoc) submission(id string) *service.Submission {
	sub := &service.Submission{
		ID: id, User: d.User, Status: service.Status(d.Status), Attempts: d.Attempts, NotebookName: d.NotebookName, Batch: d.Batch,
		Assignment: service.Assignment{Course: d.Course, Section: d.Section, Assignment: d.Assignment},
		ReceivedAt: time.UnixMicro(d.Received).UTC(), Questions: fromQuestionDocuments(d.Questions),
		Feedback: fromFeedbackDocuments(d.Feedback),
	}
	if d.StartedAt != nil {
		sub.StartedAt = d.StartedAt.UTC()
	}
	if d.FinishedAt != nil {
		sub.FinishedAt = d.FinishedAt.UTC()
	}
	if d.Grade != nil {
		sub.Grade = *d.Grade
	}
	sub.Post = service.Post{Status: service.PostStatus(d.PostStatus), Attempts: d.PostAttempts, LastError: d.PostError, Confirmed: d.PostConfirmed}
	if d.PostNext != 0 {
		sub.Post.NextAt = time.UnixMicro(d.PostNext).UTC()
	}
	if d.PostedAt != nil {
		sub.Post.PostedAt = d.PostedAt.UTC()
	}
	if d.FailureCode != "" {
		sub.Failure = &service.Failure{Code: d.FailureCode, Message: d.FailureMessage}
	}
	return sub
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// mapError turns Firestore's errors into the service's.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var se *service.Error
	if errors.As(err, &se) {
		return err
	}
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w (%v)", service.Errorf(service.ENOTFOUND, "Not found."), err)
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return fmt.Errorf("%w (%v)", service.Errorf(service.ECONFLICT, "The record changed meanwhile; try again."), err)
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return fmt.Errorf("%w (%v)", service.Errorf(service.EUNAVAILABLE, "The grading service cannot reach its database right now; please try again in a few minutes."), err)
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Canceled {
		return fmt.Errorf("%w (%v)", service.Errorf(service.EUNAVAILABLE, "The grading service cannot reach its database right now; please try again in a few minutes."), err)
	}
	return fmt.Errorf("firestore: %w", err)
}
