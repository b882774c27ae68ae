package firestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
)

// Documents written before notebook names were kept (no notebook_name
// field) read with no name: the submission is graded under the
// assignment's.
func TestDocumentsWithoutNotebookName(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	env := fmt.Sprintf("oldnames%d", time.Now().UnixNano())
	ctx := context.Background()
	client, err := gfs.NewClient(ctx, "otter-service-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	now := time.Now().UTC()
	if _, err := client.Collection(env+"-submissions").Doc("old").Set(ctx, map[string]any{
		"user": "alice", "course": "8x", "section": "1", "assignment": "lab01", "notebook": "{}",
		"timestamp": now, "received_us": now.UnixMicro(), "status": "queued", "attempts": 0, "not_before_us": 0,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Collection(env+"-held").Doc("k").Set(ctx, map[string]any{
		"body": []byte("{}"), "expires": now.Add(time.Hour), "expires_us": now.Add(time.Hour).UnixMicro(),
	}); err != nil {
		t.Fatal(err)
	}
	s, err := firestore.New(ctx, "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub, err := s.Submission(ctx, "old")
	if err != nil || sub.NotebookName != "" || sub.GradingName() != "lab01.ipynb" {
		t.Fatalf("old submission: %+v, %v; want no name, graded as lab01.ipynb", sub, err)
	}
	job, err := s.Claim(ctx, service.KindGrade, now.Add(time.Second), time.Minute)
	if err != nil || job == nil || job.Submission.ID != "old" || job.Submission.NotebookName != "" {
		t.Fatalf("claim of the old submission: %+v, %v", job, err)
	}
	h, err := s.Held(ctx, "k", now)
	if err != nil || string(h.Body) != "{}" || h.NotebookName != "" {
		t.Fatalf("old held body: %+v, %v", h, err)
	}
}
