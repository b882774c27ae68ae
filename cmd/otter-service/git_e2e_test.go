package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig/git/gittest"
)

// TestGradingThroughGitOutages runs the service on the example course served
// by a git server that requires a token: submissions grade while the server
// is up, while it is down (from the cached clone), and after a restart with
// it still down (the cache survives). A service with no cached copy answers
// 503 while the server is down, keeps an already queued submission queued
// (not failed), and grades it once the server is back.
func TestGradingThroughGitOutages(t *testing.T) {
	root, expected := examples(t)
	const token = "ghp_e2eSecretTokenNeverLogged0123"
	srv := gittest.NewServer(t, token)
	srv.NewRepo("course.git", gittest.CopyDir(t, filepath.Join(root, "examples", "course")))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(t, root)
	env["OTTER_COURSE_REPOS"] = "8x=" + srv.URL() + "/course.git"
	env["OTTER_GIT_TOKEN_FILE"] = tokenFile
	env["OTTER_REPO_REFRESH"] = "1s"
	env["OTTER_REPO_MIN_REFRESH"] = "1s"
	env["OTTER_WORKERS"] = "1"
	env["OTTER_LEASE"] = "3s"
	env["OTTER_DATABASE"] = filepath.Join(t.TempDir(), "otter.db")
	nb := func(name string) string { return filepath.Join(root, "examples", "submissions", name) }
	grade := func(p *proc, name string) {
		t.Helper()
		_, u := submit(t, p, nb(name), 0)
		checkOutcome(t, name, waitDone(t, p, u, 5*time.Minute), expected[name])
	}

	p := start(t, env)
	grade(p, "lab01-perfect.ipynb")
	srv.Stop()
	grade(p, "lab01-partial.ipynb")
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if strings.Contains(p.log(), token) {
		t.Error("the service's log contains the token")
	}

	// Restarted with the server still down: the cached clone serves at once.
	p = start(t, env)
	grade(p, "lab02-perfect.ipynb")
	// A submission accepted, then the service killed before it is graded.
	_, queued := submit(t, p, nb("lab01-zero.ipynb"), 0)
	p.stop(syscall.SIGKILL)

	// A new data directory (no cache) and the same database, with the server
	// down: new submissions get 503, the queued one waits.
	env["OTTER_DATA_DIR"] = t.TempDir()
	p = start(t, env)
	body, _ := os.ReadFile(nb("lab01-perfect.ipynb"))
	resp, err := http.Post(p.url(prefix), "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a submission for a course never fetched, with the server down: %d; want 503", resp.StatusCode)
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if s := getStatus(t, p, queued); s.Status == "failed" || s.Status == "graded" || s.Attempts > 2 {
			t.Fatalf("with the course unavailable, the queued submission became %+v; want it waiting", s)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.Contains(p.log(), "cannot grade now; returning the submission to the queue") {
		t.Error("no worker tried the queued submission while its course was unavailable")
	}
	srv.Start()
	s := waitDone(t, p, queued, 5*time.Minute)
	checkOutcome(t, "lab01-zero.ipynb", s, expected["lab01-zero.ipynb"])
	if s.Attempts > 2 {
		t.Errorf("the submission shows %d attempts; waiting for the course must not count", s.Attempts)
	}
	if strings.Contains(p.log(), token) {
		t.Error("the service's log contains the token")
	}
}
