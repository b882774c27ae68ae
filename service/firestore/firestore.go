// Package firestore is the production Store, on Cloud Firestore, keeping the
// collections and fields the old service wrote so dashboards keep working:
//
//	{ENVIRONMENT}-submissions  user, course, section, assignment, notebook, timestamp (+ notebook_name, status and queue fields)
//	{ENVIRONMENT}-grades       user, grade, course, section, assignment, timestamp (+ submission_id); one per submission
//	{ENVIRONMENT}-logs         user, course, section, assignment, message, trace, type, timestamp (+ submission_id)
//
// and beside them {ENVIRONMENT}-leases (claims) and {ENVIRONMENT}-held
// (submission bodies waiting for their sender's sign-in; expires is the field
// for a TTL policy).
//
// Claims are made by creating a lease document ({ENVIRONMENT}-leases/{id}-{n})
// for the submission's next claim number: Firestore lets exactly one create
// succeed, so two replicas can never hold the same claim, even where an
// emulator does not isolate transactions. Notebooks over the document size
// limit are stored in chunk documents under their submission.
package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	firestorepb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
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
	holds                             *firestore.CollectionRef
}

var _ service.Store = (*Store)(nil)

// New returns a store using the collections prefixed with environment.
// The client connects to FIRESTORE_EMULATOR_HOST when that is set.
func New(ctx context.Context, projectID, environment string) (*Store, error) {
	client, err := firestore.NewClient(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("firestore: %w", err)
	}
	return &Store{
		client:      client,
		submissions: client.Collection(environment + "-submissions"),
		grades:      client.Collection(environment + "-grades"),
		logs:        client.Collection(environment + "-logs"),
		leases:      client.Collection(environment + "-leases"),
		holds:       client.Collection(environment + "-held"),
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
	Notebook       string             `firestore:"notebook"`        // empty when in chunks
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
	PostToken      string             `firestore:"post_token"`
	NotebookName   string             `firestore:"notebook_name"` // the file name to grade it under; absent (so "") in documents from before it was kept
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
		ID: id, User: d.User, Status: service.Status(d.Status), Attempts: d.Attempts, NotebookName: d.NotebookName,
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
	sub.Post = service.Post{Status: service.PostStatus(d.PostStatus), Attempts: d.PostAttempts, LastError: d.PostError}
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

// writeTimeout bounds the writes of an accepted submission: the client
// retries an unreachable database until its context ends, and a student
// waiting on a submission should get a clear 503 instead.
const writeTimeout = 20 * time.Second

// CreateSubmission implements service.Store.
func (s *Store) CreateSubmission(ctx context.Context, sub *service.Submission, notebook []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	doc := s.submissions.Doc(sub.ID)
	d := submissionDoc{
		User: sub.User, Course: sub.Course, Section: sub.Section, Assignment: sub.Assignment.Assignment,
		Timestamp: sub.ReceivedAt.UTC(), Received: sub.ReceivedAt.UnixMicro(), Status: string(service.StatusQueued),
		NotebookName: sub.NotebookName,
	}
	if len(notebook) <= chunkSize {
		d.Notebook = string(notebook)
	} else {
		// The chunks first: once the submission document exists, its
		// notebook is whole.
		n, err := putChunks(ctx, doc, notebook)
		if err != nil {
			return err
		}
		d.NotebookChunks = n
	}
	if _, err := doc.Create(ctx, d); err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return service.Errorf(service.ECONFLICT, "A submission with this id already exists.")
		}
		return mapError(err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, id string) (*submissionDoc, error) {
	snap, err := s.submissions.Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
	}
	if err != nil {
		return nil, mapError(err)
	}
	var d submissionDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("firestore: submission %s: %w", id, err)
	}
	return &d, nil
}

// Submission implements service.Store.
func (s *Store) Submission(ctx context.Context, id string) (*service.Submission, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.submission(id), nil
}

// Notebook implements service.Store.
func (s *Store) Notebook(ctx context.Context, id string) ([]byte, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.NotebookChunks == 0 {
		return []byte(d.Notebook), nil
	}
	return getChunks(ctx, s.submissions.Doc(id), nil, d.NotebookChunks)
}

// putChunks stores data in chunk documents under doc, each well under the
// document size limit, and returns how many it wrote.
func putChunks(ctx context.Context, doc *firestore.DocumentRef, data []byte) (int, error) {
	n := 0
	for ; n*chunkSize < len(data); n++ {
		part := data[n*chunkSize : min((n+1)*chunkSize, len(data))]
		if _, err := doc.Collection("chunks").Doc(fmt.Sprint(n)).Set(ctx, map[string]any{"data": part}); err != nil {
			return 0, mapError(err)
		}
	}
	return n, nil
}

// getChunks appends the n chunk documents under doc to data.
func getChunks(ctx context.Context, doc *firestore.DocumentRef, data []byte, n int) ([]byte, error) {
	for i := 0; i < n; i++ {
		snap, err := doc.Collection("chunks").Doc(fmt.Sprint(i)).Get(ctx)
		if err != nil {
			return nil, mapError(err)
		}
		part, ok := snap.Data()["data"].([]byte)
		if !ok {
			return nil, fmt.Errorf("firestore: %s: chunk %d has no data", doc.Path, i)
		}
		data = append(data, part...)
	}
	return data, nil
}

// QueuePosition implements service.Store.
func (s *Store) QueuePosition(ctx context.Context, id string) (int, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return 0, err
	}
	if d.Status != string(service.StatusQueued) {
		return 0, service.Errorf(service.ENOTFOUND, "Submission %q is not queued.", id)
	}
	iter := s.submissions.Where("status", "==", string(service.StatusQueued)).Where("received_us", "<", d.Received).
		Select().Documents(ctx)
	defer iter.Stop()
	n := 1
	for {
		_, err := iter.Next()
		if err == iterator.Done {
			return n, nil
		}
		if err != nil {
			return 0, mapError(err)
		}
		n++
	}
}

// Claim implements service.Store.
func (s *Store) Claim(ctx context.Context, now time.Time, ttl time.Duration) (*service.Submission, *service.Lease, error) {
	// Another replica may take every candidate we saw; look again then.
	for round := 0; round < 20; round++ {
		sub, lease, lost, err := s.claimOne(ctx, now, ttl)
		if err != nil || sub != nil || !lost {
			return sub, lease, err
		}
	}
	return nil, nil, nil
}

// claimOne tries the current candidates in order. lost reports that there
// were candidates but other replicas claimed them all first.
func (s *Store) claimOne(ctx context.Context, now time.Time, ttl time.Duration) (_ *service.Submission, _ *service.Lease, lost bool, _ error) {
	candidates, err := s.candidates(ctx, now)
	if err != nil {
		return nil, nil, false, err
	}
	for _, c := range candidates {
		lease := &service.Lease{Token: service.NewID(), Expires: now.Add(ttl).UTC()}
		claim := c.doc.Claims + 1
		// Exactly one replica creates this claim's lease document.
		_, err := s.leases.Doc(fmt.Sprintf("%s-%d", c.id, claim)).Create(ctx, map[string]any{
			"submission_id": c.id, "claim": claim, "token": lease.Token, "created": now,
		})
		if status.Code(err) == codes.AlreadyExists {
			lost = true
			continue // another replica took it
		}
		if err != nil {
			return nil, nil, false, mapError(err)
		}
		started := now.UTC()
		_, err = s.submissions.Doc(c.id).Update(ctx, []firestore.Update{
			{Path: "status", Value: string(service.StatusGrading)},
			{Path: "claims", Value: claim},
			{Path: "attempts", Value: firestore.Increment(1)},
			{Path: "lease_token", Value: lease.Token},
			{Path: "lease_expires_us", Value: lease.Expires.UnixMicro()},
			{Path: "started_at", Value: started},
		})
		if err != nil {
			return nil, nil, false, mapError(err)
		}
		sub := c.doc.submission(c.id)
		sub.Status, sub.Attempts, sub.StartedAt = service.StatusGrading, c.doc.Attempts+1, started
		return sub, lease, false, nil
	}
	return nil, nil, lost, nil
}

type candidate struct {
	id  string
	doc *submissionDoc
}

// candidates returns, oldest first, a few queued submissions and
// submissions whose lease expired.
func (s *Store) candidates(ctx context.Context, now time.Time) ([]candidate, error) {
	var out []candidate
	for _, q := range []firestore.Query{
		// Due first (not_before_us 0 for all but released ones), then oldest.
		s.submissions.Where("status", "==", string(service.StatusQueued)).Where("not_before_us", "<=", now.UnixMicro()).
			OrderBy("not_before_us", firestore.Asc).OrderBy("received_us", firestore.Asc).Limit(8),
		s.submissions.Where("status", "==", string(service.StatusGrading)).Where("lease_expires_us", "<=", now.UnixMicro()).Limit(8),
	} {
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return nil, mapError(err)
		}
		for _, snap := range snaps {
			var d submissionDoc
			if err := snap.DataTo(&d); err != nil {
				return nil, fmt.Errorf("firestore: submission %s: %w", snap.Ref.ID, err)
			}
			out = append(out, candidate{id: snap.Ref.ID, doc: &d})
		}
	}
	// Oldest first across both lists.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].doc.Received < out[j-1].doc.Received; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// held runs fn in a transaction on the submission if l is its current lease
// and its status is one of statuses.
func (s *Store) held(ctx context.Context, id string, l *service.Lease, statuses []string, fn func(*firestore.Transaction, *submissionDoc) error) error {
	ref := s.submissions.Doc(id)
	return mapError(s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return err
		}
		ok := false
		for _, st := range statuses {
			ok = ok || d.Status == st
		}
		if d.LeaseToken != l.Token || !ok {
			return service.Errorf(service.ECONFLICT, "Submission %q is no longer held by this worker.", id)
		}
		return fn(tx, &d)
	}))
}

// ExtendLease implements service.Store.
func (s *Store) ExtendLease(ctx context.Context, id string, l *service.Lease, now time.Time, ttl time.Duration) error {
	expires := now.Add(ttl).UTC()
	err := s.held(ctx, id, l, []string{string(service.StatusGrading)}, func(tx *firestore.Transaction, _ *submissionDoc) error {
		return tx.Update(s.submissions.Doc(id), []firestore.Update{{Path: "lease_expires_us", Value: expires.UnixMicro()}})
	})
	if err == nil {
		l.Expires = expires
	}
	return err
}

// Release implements service.Store.
func (s *Store) Release(ctx context.Context, id string, l *service.Lease, notBefore time.Time) error {
	var nb int64
	if !notBefore.IsZero() {
		nb = notBefore.UnixMicro()
	}
	return s.held(ctx, id, l, []string{string(service.StatusGrading)}, func(tx *firestore.Transaction, d *submissionDoc) error {
		return tx.Update(s.submissions.Doc(id), []firestore.Update{
			{Path: "status", Value: string(service.StatusQueued)},
			{Path: "attempts", Value: max(d.Attempts-1, 0)},
			{Path: "lease_token", Value: ""},
			{Path: "lease_expires_us", Value: 0},
			{Path: "not_before_us", Value: nb},
		})
	})
}

// Finish implements service.Store.
func (s *Store) Finish(ctx context.Context, id string, l *service.Lease, out service.Outcome) error {
	return s.held(ctx, id, l, []string{string(service.StatusGrading), string(out.Status)}, func(tx *firestore.Transaction, d *submissionDoc) error {
		finished := out.FinishedAt.UTC()
		if d.FinishedAt != nil {
			finished = d.FinishedAt.UTC() // a retried Finish changes nothing
		}
		updates := []firestore.Update{
			{Path: "status", Value: string(out.Status)},
			{Path: "finished_at", Value: finished},
			{Path: "lease_expires_us", Value: 0},
		}
		if out.Status == service.StatusGraded || out.Status == service.StatusNeedsReview {
			updates = append(updates,
				firestore.Update{Path: "grade", Value: out.Grade},
				firestore.Update{Path: "questions", Value: questionDocuments(out.Questions)},
				firestore.Update{Path: "feedback", Value: feedbackDocuments(out.Feedback)})
		}
		if out.Status == service.StatusGraded {
			if d.PostStatus == "" { // a retried Finish leaves the post as it is
				updates = append(updates, firestore.Update{Path: "post_status", Value: string(out.Post)})
				if out.Post == service.PostPending {
					updates = append(updates, firestore.Update{Path: "post_next_us", Value: finished.UnixMicro()})
				}
			}
		}
		if out.Failure != nil {
			updates = append(updates, firestore.Update{Path: "failure_code", Value: out.Failure.Code}, firestore.Update{Path: "failure_message", Value: out.Failure.Message})
		}
		if err := tx.Update(s.submissions.Doc(id), updates); err != nil {
			return err
		}
		if out.Status != service.StatusGraded {
			return nil
		}
		// Keyed by the submission: a retry overwrites, never adds.
		return tx.Set(s.grades.Doc(id), map[string]any{
			"submission_id": id, "user": d.User, "grade": out.Grade, "course": d.Course,
			"section": d.Section, "assignment": d.Assignment, "timestamp": finished,
		})
	})
}

// ClaimPost implements service.Store. Like Claim, it takes a post by
// creating the lease document of its next attempt ({id}-post-{n}), which
// exactly one replica can do.
func (s *Store) ClaimPost(ctx context.Context, now time.Time, ttl time.Duration) (*service.Submission, *service.Lease, error) {
	snaps, err := s.submissions.Where("post_status", "==", string(service.PostPending)).
		Where("post_next_us", "<=", now.UnixMicro()).OrderBy("post_next_us", firestore.Asc).Limit(8).Documents(ctx).GetAll()
	if err != nil {
		return nil, nil, mapError(err)
	}
	for _, snap := range snaps {
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, nil, fmt.Errorf("firestore: submission %s: %w", snap.Ref.ID, err)
		}
		lease := &service.Lease{Token: service.NewID(), Expires: now.Add(ttl).UTC()}
		n := d.PostAttempts + 1
		_, err := s.leases.Doc(fmt.Sprintf("%s-post-%d", snap.Ref.ID, n)).Create(ctx, map[string]any{
			"submission_id": snap.Ref.ID, "post_attempt": n, "token": lease.Token, "created": now,
		})
		if status.Code(err) == codes.AlreadyExists {
			continue // another replica took it
		}
		if err != nil {
			return nil, nil, mapError(err)
		}
		// The lease's expiry is also when the post is due again, should
		// this attempt never finish.
		_, err = snap.Ref.Update(ctx, []firestore.Update{
			{Path: "post_attempts", Value: n},
			{Path: "post_token", Value: lease.Token},
			{Path: "post_next_us", Value: lease.Expires.UnixMicro()},
		})
		if err != nil {
			return nil, nil, mapError(err)
		}
		d.PostAttempts, d.PostToken, d.PostNext = n, lease.Token, lease.Expires.UnixMicro()
		return d.submission(snap.Ref.ID), lease, nil
	}
	return nil, nil, nil
}

// FinishPost implements service.Store.
func (s *Store) FinishPost(ctx context.Context, id string, l *service.Lease, p service.Post) error {
	ref := s.submissions.Doc(id)
	return mapError(s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return err
		}
		if d.PostToken != l.Token || d.PostStatus != string(service.PostPending) {
			return service.Errorf(service.ECONFLICT, "The post of submission %q is no longer held by this worker.", id)
		}
		updates := []firestore.Update{
			{Path: "post_status", Value: string(p.Status)},
			{Path: "post_error", Value: p.LastError},
			{Path: "post_next_us", Value: 0},
		}
		if p.Status == service.PostPending {
			updates[2].Value = p.NextAt.UnixMicro()
		}
		if p.Status == service.PostPosted {
			updates = append(updates, firestore.Update{Path: "posted_at", Value: p.PostedAt.UTC()})
		}
		return tx.Update(ref, updates)
	}))
}

// Grades implements service.Store.
func (s *Store) Grades(ctx context.Context, f service.GradeFilter) ([]service.Grade, error) {
	q := s.grades.Query
	for field, v := range map[string]string{"submission_id": f.SubmissionID, "user": f.User, "course": f.Course, "section": f.Section, "assignment": f.Assignment.Assignment} {
		if v != "" {
			q = q.Where(field, "==", v)
		}
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	var out []service.Grade
	for _, snap := range snaps {
		var g struct {
			SubmissionID string    `firestore:"submission_id"`
			User         string    `firestore:"user"`
			Grade        float64   `firestore:"grade"`
			Course       string    `firestore:"course"`
			Section      string    `firestore:"section"`
			Assignment   string    `firestore:"assignment"`
			Timestamp    time.Time `firestore:"timestamp"`
		}
		if err := snap.DataTo(&g); err != nil {
			return nil, fmt.Errorf("firestore: grade %s: %w", snap.Ref.ID, err)
		}
		out = append(out, service.Grade{SubmissionID: g.SubmissionID, User: g.User, Grade: g.Grade, Timestamp: g.Timestamp.UTC(),
			Assignment: service.Assignment{Course: g.Course, Section: g.Section, Assignment: g.Assignment}})
	}
	sortBy(out, func(a, b service.Grade) bool {
		return a.Timestamp.Before(b.Timestamp) || a.Timestamp.Equal(b.Timestamp) && a.SubmissionID < b.SubmissionID
	})
	return out, nil
}

// AppendLog implements service.Store.
func (s *Store) AppendLog(ctx context.Context, e service.LogEntry) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_, _, err := s.logs.Add(ctx, map[string]any{
		"submission_id": e.SubmissionID, "user": e.User, "course": e.Course, "section": e.Section,
		"assignment": e.Assignment.Assignment, "message": e.Message, "trace": e.Trace, "type": e.Type,
		"timestamp": e.Timestamp.UTC(), "timestamp_us": e.Timestamp.UnixMicro(),
	})
	return mapError(err)
}

// Logs implements service.Store.
func (s *Store) Logs(ctx context.Context, submissionID string) ([]service.LogEntry, error) {
	snaps, err := s.logs.Where("submission_id", "==", submissionID).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	var out []service.LogEntry
	for _, snap := range snaps {
		var e struct {
			SubmissionID string    `firestore:"submission_id"`
			User         string    `firestore:"user"`
			Course       string    `firestore:"course"`
			Section      string    `firestore:"section"`
			Assignment   string    `firestore:"assignment"`
			Message      string    `firestore:"message"`
			Trace        string    `firestore:"trace"`
			Type         string    `firestore:"type"`
			Timestamp    time.Time `firestore:"timestamp"`
			TimestampNS  int64     `firestore:"timestamp_us"`
		}
		if err := snap.DataTo(&e); err != nil {
			return nil, fmt.Errorf("firestore: log %s: %w", snap.Ref.ID, err)
		}
		out = append(out, service.LogEntry{SubmissionID: e.SubmissionID, User: e.User, Message: e.Message, Trace: e.Trace, Type: e.Type,
			Timestamp: time.UnixMicro(e.TimestampNS).UTC(), Assignment: service.Assignment{Course: e.Course, Section: e.Section, Assignment: e.Assignment}})
	}
	sortBy(out, func(a, b service.LogEntry) bool { return a.Timestamp.Before(b.Timestamp) })
	return out, nil
}

// readTimeout bounds the reads on the accept path and the health checks:
// the client retries an unreachable database until its context ends, and a
// student (or a probe) should get a clear 503 instead.
const readTimeout = 10 * time.Second

// Ping implements service.Store: a read of a document that need not exist.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_, err := s.submissions.Doc("otter-service-ping").Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return mapError(err)
}

// Counts implements service.Store, with count aggregations.
func (s *Store) Counts(ctx context.Context) (service.Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var c service.Counts
	for _, q := range []struct {
		n     *int
		field string
		value string
	}{
		{&c.Queued, "status", string(service.StatusQueued)},
		{&c.Grading, "status", string(service.StatusGrading)},
		{&c.PostsPending, "post_status", string(service.PostPending)},
	} {
		n, err := count(ctx, s.submissions.Where(q.field, "==", q.value))
		if err != nil {
			return c, err
		}
		*q.n = n
	}
	return c, nil
}

// InFlight implements service.Store.
func (s *Store) InFlight(ctx context.Context, user string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return count(ctx, s.submissions.Where("user", "==", user).Where("status", "in", []string{string(service.StatusQueued), string(service.StatusGrading)}))
}

func count(ctx context.Context, q firestore.Query) (int, error) {
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, mapError(err)
	}
	switch v := res["n"].(type) {
	case int64:
		return int(v), nil
	case *firestorepb.Value:
		return int(v.GetIntegerValue()), nil
	}
	return 0, fmt.Errorf("firestore: count answered %T", res["n"])
}

// Hold implements service.Store. Bodies larger than a document can hold are
// kept in chunk documents beside it, written first.
func (s *Store) Hold(ctx context.Context, key string, h service.HeldSubmission, expires time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	doc := s.holds.Doc(key)
	d := map[string]any{"expires": expires.UTC(), "expires_us": expires.UnixMicro(), "notebook_name": h.NotebookName}
	if len(h.Body) <= chunkSize {
		d["body"] = h.Body
	} else {
		n, err := putChunks(ctx, doc, h.Body)
		if err != nil {
			return err
		}
		d["chunks"] = n
	}
	_, err := doc.Set(ctx, d)
	return mapError(err)
}

// Held implements service.Store.
func (s *Store) Held(ctx context.Context, key string, now time.Time) (service.HeldSubmission, error) {
	snap, err := s.holds.Doc(key).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return service.HeldSubmission{}, service.Errorf(service.ENOTFOUND, "Nothing is held under this key.")
	}
	if err != nil {
		return service.HeldSubmission{}, mapError(err)
	}
	var d struct {
		Body         []byte `firestore:"body"`
		Chunks       int    `firestore:"chunks"`
		Expires      int64  `firestore:"expires_us"`
		NotebookName string `firestore:"notebook_name"`
	}
	if err := snap.DataTo(&d); err != nil {
		return service.HeldSubmission{}, fmt.Errorf("firestore: held %s: %w", key, err)
	}
	if d.Expires <= now.UnixMicro() {
		return service.HeldSubmission{}, service.Errorf(service.ENOTFOUND, "Nothing is held under this key.")
	}
	body, err := getChunks(ctx, s.holds.Doc(key), d.Body, d.Chunks)
	if err != nil {
		return service.HeldSubmission{}, err
	}
	return service.HeldSubmission{Body: body, NotebookName: d.NotebookName}, nil
}

// DropHeld implements service.Store.
func (s *Store) DropHeld(ctx context.Context, key string, now time.Time) error {
	refs := []*firestore.DocumentRef{s.holds.Doc(key)}
	expired, err := s.holds.Where("expires_us", "<=", now.UnixMicro()).Select().Limit(100).Documents(ctx).GetAll()
	if err != nil {
		return mapError(err)
	}
	for _, snap := range expired {
		refs = append(refs, snap.Ref)
	}
	for _, ref := range refs {
		chunks, err := ref.Collection("chunks").Select().Documents(ctx).GetAll()
		if err != nil {
			return mapError(err)
		}
		for _, c := range chunks {
			if _, err := c.Ref.Delete(ctx); err != nil {
				return mapError(err)
			}
		}
		if _, err := ref.Delete(ctx); err != nil {
			return mapError(err)
		}
	}
	return nil
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
