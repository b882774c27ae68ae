package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// A database from a version that posted per submission keeps its pending
// posts: each student's newest pending grade becomes the post's selected
// grade, due at once, and grades that version posted read as posted.
func TestMigratesPendingPosts(t *testing.T) {
	path := oldDatabase(t, ", notebook_name TEXT, feedback TEXT",
		`INSERT INTO submissions (id, user, course, section, assignment, status, received_at, finished_at, attempts, grade, questions, post_status, post_next_at, posted_at)
			VALUES ('older', 'alice', '8x', '1', 'lab01', 'graded', 1, 2, 1, 0.5, '[]', 'pending', 2, NULL),
			       ('newer', 'alice', '8x', '1', 'lab01', 'graded', 3, 4, 1, 1.0, '[]', 'pending', 4, NULL),
			       ('done',  'bob',   '8x', '1', 'lab01', 'graded', 5, 6, 1, 0.25, '[]', 'posted', NULL, 7);`)
	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	job, err := s.Claim(ctx, service.KindPost, time.Unix(0, 10), time.Minute)
	if err != nil || job == nil {
		t.Fatalf("Claim(post) after the migration = %+v, %v; want alice's post", job, err)
	}
	if job.Post.User != "alice" || job.Post.InFlight.SubmissionID != "newer" || job.Post.InFlight.Grade != 1 {
		t.Errorf("migrated post = %+v; want alice's newer grade, 1.0", job.Post)
	}
	if again, err := s.Claim(ctx, service.KindPost, time.Unix(0, 10), time.Minute); err != nil || again != nil {
		t.Errorf("a second Claim(post) = %+v, %v; want nothing (bob's grade was posted)", again, err)
	}
	if sub, err := s.Submission(ctx, "older"); err != nil || sub.Post.Status != service.PostSuperseded || sub.Post.By != "newer" {
		t.Errorf("the older pending grade: %+v, %v; want superseded by the newer", sub, err)
	}
	if sub, err := s.Submission(ctx, "done"); err != nil || sub.Post.Status != service.PostPosted || !sub.Post.Confirmed {
		t.Errorf("the grade posted before the migration: %+v, %v; want posted", sub, err)
	}
	s.Close()
	// Opening it again migrates nothing twice.
	s = open(t, path)
	defer s.Close()
	if job, err := s.Claim(ctx, service.KindPost, time.Unix(0, 10).Add(2*time.Minute), time.Minute); err != nil || job == nil || job.Post.Attempts != 2 {
		t.Errorf("after reopening, Claim(post) = %+v, %v; want the same post, its lease expired, on attempt 2", job, err)
	}
}
