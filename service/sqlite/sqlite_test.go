package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/sqlite"
	"github.com/otter-service/otter-service/service/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store {
		s := open(t, filepath.Join(t.TempDir(), "otter.db"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otter.db")
	s := open(t, path)
	ctx := context.Background()
	sub := &service.Submission{ID: service.NewID(), User: "alice", Status: service.StatusQueued,
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}, ReceivedAt: time.Now()}
	if err := s.CreateSubmission(ctx, sub, []byte(`{"nbformat":4}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	got, err := s.Submission(ctx, sub.ID)
	if err != nil || got.Status != service.StatusQueued {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	err = s.CreateSubmission(ctx, sub, nil)
	if service.ErrorCode(err) != service.ECONFLICT {
		t.Fatalf("duplicate after reopening: %v", err)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "otter.db"))
	s.Close()
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now()}
	if code := service.ErrorCode(s.CreateSubmission(context.Background(), sub, nil)); code != service.EUNAVAILABLE {
		t.Fatalf("CreateSubmission on a closed store: code %q, want %q", code, service.EUNAVAILABLE)
	}
}

func newSubmission() *service.Submission {
	return &service.Submission{ID: service.NewID(), User: "alice", Status: service.StatusQueued,
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}, ReceivedAt: time.Now()}
}

func segments(t *testing.T, dbPath string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dbPath+".notebooks", "*.seg"))
	if len(names) == 0 {
		t.Fatal("no notebook segment files")
	}
	return names
}

// A crash while a notebook was being appended (before it was acknowledged)
// leaves stray bytes at a segment's end: they are ignored, and nothing
// acknowledged is lost.
func TestStrayBytesAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otter.db")
	s := open(t, path)
	ctx := context.Background()
	var subs []*service.Submission
	for i := 0; i < 3; i++ {
		sub := newSubmission()
		if err := s.CreateSubmission(ctx, sub, []byte(strings.Repeat(string(rune('a'+i)), 1000+i))); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	s.Close()
	seg := segments(t, path)[0]
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half a notebook that was never acknowledged"))
	f.Close()

	s = open(t, path)
	defer s.Close()
	later := newSubmission()
	if err := s.CreateSubmission(ctx, later, []byte("after the crash")); err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		nb, err := s.Notebook(ctx, sub.ID)
		if err != nil || string(nb) != strings.Repeat(string(rune('a'+i)), 1000+i) {
			t.Errorf("notebook %d after the crash: %q…, %v", i, truncate(nb), err)
		}
	}
	if nb, err := s.Notebook(ctx, later.ID); err != nil || string(nb) != "after the crash" {
		t.Errorf("notebook written after the crash: %q, %v", nb, err)
	}
}

func TestCorruptNotebookIsNotReturned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otter.db")
	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	sub := newSubmission()
	if err := s.CreateSubmission(ctx, sub, []byte(`{"nbformat": 4}`)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segments(t, path)[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("5"), 13)
	f.Close()
	if nb, err := s.Notebook(ctx, sub.ID); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Notebook of a corrupted segment = %q, %v; want an error saying so", nb, err)
	}
}

func truncate(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}

// A database made before notebook names were kept opens, its submissions and
// held bodies read with no name (graded under the assignment's), and new
// ones keep theirs.
func TestMigratesToNotebookNames(t *testing.T) {
	path := oldDatabase(t, "", `CREATE TABLE held (key TEXT PRIMARY KEY, body BLOB NOT NULL, expires INTEGER NOT NULL);
		INSERT INTO submissions (id, user, course, section, assignment, status, received_at)
			VALUES ('old', 'alice', '8x', '1', 'lab01', 'queued', 1);
		INSERT INTO held (key, body, expires) VALUES ('k', '{}', 9000000000000000000);`)

	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	old, err := s.Submission(ctx, "old")
	if err != nil || old.NotebookName != "" || old.GradingName() != "lab01.ipynb" {
		t.Fatalf("the old submission: %+v, %v; want no name, graded as lab01.ipynb", old, err)
	}
	if h, err := s.Held(ctx, "k", time.Now()); err != nil || string(h.Body) != "{}" || h.NotebookName != "" {
		t.Fatalf("the old held body: %+v, %v", h, err)
	}
	sub := &service.Submission{ID: service.NewID(), User: "alice", Status: service.StatusQueued, NotebookName: "lab01 (1).ipynb",
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}, ReceivedAt: time.Now()}
	if err := s.CreateSubmission(ctx, sub, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Submission(ctx, sub.ID); err != nil || got.NotebookName != "lab01 (1).ipynb" {
		t.Fatalf("a new submission after the migration: %+v, %v", got, err)
	}
	if err := s.Hold(ctx, "k2", service.HeldSubmission{Body: []byte("{}"), NotebookName: "x.ipynb"}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Held(ctx, "k2", time.Now()); err != nil || h.NotebookName != "x.ipynb" {
		t.Fatalf("a new held body after the migration: %+v, %v", h, err)
	}
}

// A database from before feedback was kept gains its column: a graded
// submission recorded then reads with its questions and no feedback, and one
// graded after keeps its feedback.
func TestMigratesToFeedback(t *testing.T) {
	path := oldDatabase(t, ", notebook_name TEXT", `INSERT INTO submissions (id, user, course, section, assignment, status, received_at, finished_at, attempts, grade, questions, post_status)
			VALUES ('old', 'alice', '8x', '1', 'lab01', 'graded', 1, 2, 1, 0.5,
				'[{"name":"q1","score":1,"max_score":2,"visibility":"hidden","output":"q1 results"}]', 'disabled');`)

	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	old, err := s.Submission(ctx, "old")
	if err != nil || old.Status != service.StatusGraded || old.Grade != 0.5 || len(old.Questions) != 1 ||
		old.Questions[0] != (service.Question{Name: "q1", Score: 1, MaxScore: 2, Visibility: "hidden", Output: "q1 results"}) || old.Feedback != nil {
		t.Fatalf("the old submission: %+v, %v; want its questions and no feedback", old, err)
	}
	sub := newSubmission()
	if err := s.CreateSubmission(ctx, sub, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	job, err := s.Claim(ctx, service.KindGrade, time.Now(), time.Minute)
	if err != nil || job == nil {
		t.Fatalf("claim: %v", err)
	}
	lease := job.Lease
	fb := []service.Feedback{{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!"}}
	if err := s.Finish(ctx, lease, service.Outcome{Status: service.StatusGraded, Grade: 1, Feedback: fb, FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Submission(ctx, sub.ID); err != nil || len(got.Feedback) != 1 || got.Feedback[0] != fb[0] {
		t.Fatalf("a submission graded after the migration: %+v, %v; want its feedback", got, err)
	}
}

// oldDatabase makes a database as an earlier version left it: the
// submissions table of that time (the columns before notebook names, plus
// extra), then more statements. It returns its path.
func oldDatabase(t *testing.T, extra, more string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otter.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE submissions (
		seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, user TEXT NOT NULL, course TEXT NOT NULL,
		section TEXT NOT NULL, assignment TEXT NOT NULL, status TEXT NOT NULL, received_at INTEGER NOT NULL,
		started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT,
		lease_expires INTEGER, grade REAL, questions TEXT, failure_code TEXT, failure_msg TEXT,
		post_status TEXT, post_attempts INTEGER NOT NULL DEFAULT 0, post_error TEXT, post_next_at INTEGER,
		posted_at INTEGER, post_token TEXT, not_before INTEGER` + extra + `);
		` + more); err != nil {
		t.Fatal(err)
	}
	return path
}
