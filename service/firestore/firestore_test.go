package firestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/storetest"
)

var n int

// open returns a store on its own collections of one emulator.
func open(t *testing.T, host string) *firestore.Store {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	n++
	s, err := firestore.New(context.Background(), "otter-service-test", fmt.Sprintf("test%d-%d", time.Now().UnixNano(), n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	storetest.Run(t, func(t *testing.T) service.Store { return open(t, host) })
}

// A notebook over Firestore's 1 MiB document limit is kept whole.
func TestLargeNotebook(t *testing.T) {
	s := open(t, testenv.FirestoreEmulator(t))
	nb := make([]byte, 3<<20+12345)
	rand.Read(nb)
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}}
	if err := s.CreateSubmission(context.Background(), sub, nb); err != nil {
		t.Fatal(err)
	}
	got, err := s.Notebook(context.Background(), sub.ID)
	if err != nil || !bytes.Equal(got, nb) {
		t.Fatalf("Notebook returned %d bytes (%v); want the %d stored", len(got), err, len(nb))
	}
}

// Two stores on one database, as two replicas: a claim one of them holds is
// refused to the other, even when the other read the submission before.
func TestConflictingClaimIsRefused(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	env := fmt.Sprintf("conflict%d", time.Now().UnixNano())
	a, err := firestore.New(context.Background(), "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := firestore.New(context.Background(), "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}}
	if err := a.CreateSubmission(ctx, sub, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got, err := a.Claim(ctx, service.KindGrade, now, time.Minute)
	if err != nil || got == nil {
		t.Fatalf("replica A's claim: %v %v", got, err)
	}
	lease := got.Lease
	if other, err := b.Claim(ctx, service.KindGrade, now, time.Minute); err != nil || other != nil {
		t.Fatalf("replica B claimed %v (%v) while A held it", other, err)
	}
	if err := a.Finish(ctx, lease, service.Outcome{Status: service.StatusGraded, Grade: 1, FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// Questions are stored as maps with named fields; those of documents written
// before they had names of their own (Go's field names: Name, Score,
// MaxScore, Hidden) are still read, without a visibility (so taken as
// hidden). Feedback is stored beside them, as maps with named fields too, and
// a document from before it was kept has none.
func TestQuestionFields(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	ctx := context.Background()
	env := fmt.Sprintf("questions%d", time.Now().UnixNano())
	s, err := firestore.New(ctx, "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := gfs.NewClient(ctx, "otter-service-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}}
	if err := s.CreateSubmission(ctx, sub, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	job, err := s.Claim(ctx, service.KindGrade, time.Now(), time.Minute)
	if err != nil || job == nil {
		t.Fatalf("claim: %v", err)
	}
	lease := job.Lease
	qs := []service.Question{{Name: "q1", Score: 1, MaxScore: 2, Visibility: "hidden", Output: "q1 results:\n    q1 - 2 result: failed"}}
	fb := []service.Feedback{{Name: "Public Tests", Visibility: "visible", Output: "q1 results:\n    q1 - 1 result: passed"}}
	if err := s.Finish(ctx, lease, service.Outcome{Status: service.StatusGraded, Grade: 0.5, Questions: qs, Feedback: fb, FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	doc := client.Collection(env + "-submissions").Doc(sub.ID)
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := snap.DataAt("questions")
	want := []any{map[string]any{"name": "q1", "score": 1.0, "max_score": 2.0, "visibility": "hidden", "output": qs[0].Output}}
	if fmt.Sprint(normalize(stored)) != fmt.Sprint(want) {
		t.Errorf("stored questions %v; want %v", stored, want)
	}
	stored, _ = snap.DataAt("feedback")
	want = []any{map[string]any{"name": "Public Tests", "visibility": "visible", "output": fb[0].Output}}
	if fmt.Sprint(stored) != fmt.Sprint(want) {
		t.Errorf("stored feedback %v; want %v", stored, want)
	}
	if got, err := s.Submission(ctx, sub.ID); err != nil || len(got.Feedback) != 1 || got.Feedback[0] != fb[0] {
		t.Errorf("feedback read as %+v (%v); want %+v", got.Feedback, err, fb)
	}

	old := []map[string]any{{"Name": "q1", "Score": 1.0, "MaxScore": 2.0, "Hidden": false}, {"Name": "q2", "Score": 0.0, "MaxScore": 1.0, "Hidden": true}}
	// The document as written before feedback was kept: no "feedback"
	// field. (A new document: the emulator's Set keeps fields it omits.)
	oldDoc := snap.Data()
	delete(oldDoc, "feedback")
	oldDoc["questions"] = old
	oldID := service.NewID()
	if _, err := client.Collection(env+"-submissions").Doc(oldID).Create(ctx, oldDoc); err != nil {
		t.Fatal(err)
	}
	got, err := s.Submission(ctx, oldID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Questions) != 2 || got.Questions[0] != (service.Question{Name: "q1", Score: 1, MaxScore: 2}) ||
		got.Questions[1] != (service.Question{Name: "q2", Score: 0, MaxScore: 1}) {
		t.Errorf("old questions read as %+v", got.Questions)
	}
	if got.Feedback != nil {
		t.Errorf("a document without feedback read with %+v", got.Feedback)
	}
}

// normalize turns the numbers of a value read from Firestore into float64s
// (an emulator may hold integers as doubles, or doubles as integers).
func normalize(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case int64:
		return float64(v)
	}
	return v
}
