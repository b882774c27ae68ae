package firestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
)

// Submissions whose post a version that posted per submission left pending
// are moved to the posts before the first post is claimed: each student's
// newest such grade is the one posted.
func TestMigratesPendingPosts(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	env := fmt.Sprintf("oldposts%d", time.Now().UnixNano())
	ctx := context.Background()
	client, err := gfs.NewClient(ctx, "otter-service-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	t0 := time.Now().UTC().Add(-time.Hour)
	for i, id := range []string{"older", "newer"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := client.Collection(env+"-submissions").Doc(id).Set(ctx, map[string]any{
			"user": "alice", "course": "8x", "section": "1", "assignment": "lab01", "notebook": "{}",
			"timestamp": at, "received_us": at.UnixMicro(), "status": "graded", "attempts": 1, "claims": 1,
			"grade": float64(i) + 0.5, "finished_at": at.Add(time.Second), "post_status": "pending",
			"post_next_us": at.Add(time.Second).UnixMicro(), "post_attempts": 2,
		}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := firestore.New(ctx, "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	job, err := s.Claim(ctx, service.KindPost, time.Now(), time.Minute)
	if err != nil || job == nil || job.Post.InFlight.SubmissionID != "newer" || job.Post.InFlight.Grade != 1.5 {
		t.Fatalf("Claim(post) = %+v, %v; want alice's newer grade", job, err)
	}
	if again, err := s.Claim(ctx, service.KindPost, time.Now(), time.Minute); err != nil || again != nil {
		t.Errorf("a second Claim(post) = %+v, %v; want nothing more", again, err)
	}
	if sub, err := s.Submission(ctx, "older"); err != nil || sub.Post.Status != service.PostSuperseded || sub.Post.By != "newer" {
		t.Errorf("the older pending grade: %+v, %v; want superseded by the newer", sub, err)
	}
}

// The old service stored a submission's notebook as a map (its json.loads
// of the notebook); this one stores the JSON text. Both read back as the
// notebook.
func TestNotebookStoredAsAMap(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	env := fmt.Sprintf("oldmap%d", time.Now().UnixNano())
	ctx := context.Background()
	client, err := gfs.NewClient(ctx, "otter-service-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const nb = `{"cells": [{"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [], "source": ["x = 1.5\n"]}],
		"metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "lab01"}}, "nbformat": 4, "nbformat_minor": 5}`
	var asMap map[string]any
	if err := json.Unmarshal([]byte(nb), &asMap); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := client.Collection(env+"-submissions").Doc("old").Set(ctx, map[string]any{
		"user": "alice", "course": "8x", "section": "1", "assignment": "lab01", "notebook": asMap, "timestamp": now,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := firestore.New(ctx, "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Notebook(ctx, "old")
	if err != nil {
		t.Fatalf("Notebook of a document with a map: %v", err)
	}
	var back, want any
	json.Unmarshal(got, &back)
	json.Unmarshal([]byte(nb), &want)
	if !reflect.DeepEqual(back, want) {
		t.Errorf("the notebook read back is %s; want %s", got, nb)
	}
	if sub, err := s.Submission(ctx, "old"); err != nil || sub.User != "alice" {
		t.Errorf("Submission of the old document: %+v, %v", sub, err)
	}
}
