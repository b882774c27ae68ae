package firestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"github.com/otter-service/otter-service/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The submissions, their notebooks, grades and logs.

// defaultWriteTimeout bounds the writes of an accepted submission: the
// client retries an unreachable database until its context ends, and a
// student waiting on a submission should get a clear 503 instead.
const defaultWriteTimeout = 20 * time.Second

// CreateSubmission implements service.Store.
func (s *Store) CreateSubmission(ctx context.Context, sub *service.Submission, notebook []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
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
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
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
	sub := d.submission(id)
	if err := service.ViewPosts(ctx, []*service.Submission{sub}, s.PostTask); err != nil {
		return nil, err
	}
	return sub, nil
}

// Notebook implements service.Store.
func (s *Store) Notebook(ctx context.Context, id string) ([]byte, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.NotebookChunks == 0 {
		return notebookBytes(d.Notebook)
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
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	d, err := s.get(ctx, id)
	if err != nil {
		return 0, err
	}
	if d.Status != string(service.StatusQueued) {
		return 0, service.Errorf(service.ENOTFOUND, "Submission %q is not queued.", id)
	}
	// In the claim order (queue.go): those due earlier, then those due at
	// the same time received earlier.
	queued := s.submissions.Where("status", "==", string(service.StatusQueued))
	earlier, err := count(ctx, queued.Where("not_before_us", "<", d.NotBefore))
	if err != nil {
		return 0, err
	}
	before, err := count(ctx, queued.Where("not_before_us", "==", d.NotBefore).Where("received_us", "<", d.Received))
	if err != nil {
		return 0, err
	}
	return earlier + before + 1, nil
}

// Grades implements service.Store.
func (s *Store) Grades(ctx context.Context, f service.GradeFilter) ([]service.Grade, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	_, _, err := s.logs.Add(ctx, map[string]any{
		"submission_id": e.SubmissionID, "user": e.User, "course": e.Course, "section": e.Section,
		"assignment": e.Assignment.Assignment, "message": e.Message, "trace": e.Trace, "type": e.Type,
		"timestamp": e.Timestamp.UTC(), "timestamp_us": e.Timestamp.UnixMicro(), "actor": e.Actor,
	})
	return mapError(err)
}

// Logs implements service.Store.
func (s *Store) Logs(ctx context.Context, submissionID string) ([]service.LogEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	snaps, err := s.logs.Where("submission_id", "==", submissionID).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	out, err := logEntries(snaps)
	if err != nil {
		return nil, err
	}
	sortBy(out, func(a, b service.LogEntry) bool { return a.Timestamp.Before(b.Timestamp) })
	return out, nil
}

// Refusals implements service.Store, over the index on submission_id,
// type, user and timestamp_us.
func (s *Store) Refusals(ctx context.Context, user string, since time.Time, limit int) ([]service.LogEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	snaps, err := s.logs.Where("submission_id", "==", "").Where("type", "==", service.LogError).Where("user", "==", user).
		Where("timestamp_us", ">=", since.UnixMicro()).OrderBy("timestamp_us", firestore.Desc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	return logEntries(snaps)
}

func logEntries(snaps []*firestore.DocumentSnapshot) ([]service.LogEntry, error) {
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
			Actor        string    `firestore:"actor"` // absent in entries from before it was kept
		}
		if err := snap.DataTo(&e); err != nil {
			return nil, fmt.Errorf("firestore: log %s: %w", snap.Ref.ID, err)
		}
		out = append(out, service.LogEntry{SubmissionID: e.SubmissionID, User: e.User, Message: e.Message, Trace: e.Trace, Type: e.Type, Actor: e.Actor,
			Timestamp: time.UnixMicro(e.TimestampNS).UTC(), Assignment: service.Assignment{Course: e.Course, Section: e.Section, Assignment: e.Assignment}})
	}
	return out, nil
}

// defaultReadTimeout bounds every read a request waits for (the accept
// path, status pages, the health checks):
// the client retries an unreachable database until its context ends, and a
// student (or a probe) should get a clear 503 instead.
const defaultReadTimeout = 10 * time.Second

// Ping implements service.Store: a read of a document that need not exist.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	_, err := s.submissions.Doc("otter-service-ping").Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return mapError(err)
}

// Counts implements service.Store, with count aggregations.
func (s *Store) Counts(ctx context.Context) (service.Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	var c service.Counts
	for _, q := range []struct {
		n     *int
		field string
		value string
	}{
		{&c.Queued, "status", string(service.StatusQueued)},
		{&c.Grading, "status", string(service.StatusGrading)},
	} {
		n, err := count(ctx, s.submissions.Where(q.field, "==", q.value))
		if err != nil {
			return c, err
		}
		*q.n = n
	}
	n, err := count(ctx, s.posts.Where("status", "in", []string{string(service.TaskQueued), string(service.TaskPosting)}))
	if err != nil {
		return c, err
	}
	offered, err := count(ctx, s.offers.Where("handled", "==", false)) // grades not yet folded into their posts
	c.PostsPending = n + offered
	return c, err
}

// InFlight implements service.Store.
func (s *Store) InFlight(ctx context.Context, user string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	// Read, not counted: documents from before batch was kept lack the
	// field, which a filter on it would leave out. A student has few in
	// flight.
	snaps, err := s.submissions.Where("user", "==", user).Where("status", "in", []string{string(service.StatusQueued), string(service.StatusGrading)}).
		Select("batch").Documents(ctx).GetAll()
	if err != nil {
		return 0, mapError(err)
	}
	n := 0
	for _, snap := range snaps {
		if b, _ := snap.Data()["batch"].(string); b == "" {
			n++
		}
	}
	return n, nil
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

// notebookBytes is the notebook a submission document holds: this
// service's JSON text, or the map the old service stored (its json.loads of
// the notebook), written back as JSON: the same notebook, but for the order
// of keys, and a float with no fraction (2.0) written as 2.
func notebookBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case nil:
		return nil, nil
	case map[string]any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("firestore: the stored notebook map: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("firestore: the stored notebook is a %T, neither text nor a map", v)
}
