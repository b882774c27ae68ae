package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
)

// TestEndToEndFirestore runs the service on the Firestore emulator: the
// grades land in {ENVIRONMENT}-grades, one per graded submission.
func TestEndToEndFirestore(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	root, expected := examples(t)
	env := baseEnv(t, root)
	env["GCP_PROJECT_ID"] = "otter-service-test"
	env["FIRESTORE_EMULATOR_HOST"] = host
	env["ENVIRONMENT"] = fmt.Sprintf("e2e%d", time.Now().UnixNano())
	env["OTTER_WORKERS"] = "2"
	p := start(t, env)
	ids, urls := map[string]string{}, map[string]string{}
	i := 0
	for name := range expected {
		ids[name], urls[name] = submit(t, p, filepath.Join(root, "examples", "submissions", name), i)
		i++
	}
	for name, want := range expected {
		checkOutcome(t, name, waitDone(t, p, urls[name], 5*time.Minute), want)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	store, err := firestore.New(context.Background(), "otter-service-test", env["ENVIRONMENT"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for name, want := range expected {
		grades, err := store.Grades(context.Background(), service.GradeFilter{SubmissionID: ids[name]})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want.Status == "graded" && (len(grades) != 1 || math.Abs(grades[0].Grade-*want.Grade) > 1e-9 || grades[0].User != "student"):
			t.Errorf("%s: grade documents %+v; want one with %v for student", name, grades, *want.Grade)
		case want.Status == "failed" && len(grades) != 0:
			t.Errorf("%s: a failed grading has grade documents %+v", name, grades)
		}
	}
}

// TestFirestoreUnreachable: with the database down, a submission gets a 503
// that says so, and nothing is accepted half-way.
func TestFirestoreUnreachable(t *testing.T) {
	root, _ := examples(t)
	env := baseEnv(t, root)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there now
	env["GCP_PROJECT_ID"] = "otter-service-test"
	env["FIRESTORE_EMULATOR_HOST"] = down
	p := start(t, env)
	nb, err := os.ReadFile(filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.url(prefix), "application/json", bytes.NewReader(nb))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), `"unavailable"`) || !strings.Contains(string(body), "try again") {
		t.Fatalf("submission with the database down: %d %s; want 503 saying to try again", resp.StatusCode, body)
	}
}

// proxy forwards TCP connections to target until cut, which drops them and
// refuses new ones: the database going away under a running service.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestShutdownFitsWithTheDatabaseGone: SIGTERM while a grading runs and the
// database has gone away: the service exits within OTTER_SHUTDOWN_TIMEOUT
// (the grading goes back to the queue when its lease expires), instead of
// waiting for the database to answer.
func TestShutdownFitsWithTheDatabaseGone(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	root, _ := examples(t)
	env := baseEnv(t, root)
	db := newProxy(t, host)
	env["GCP_PROJECT_ID"] = "otter-service-test"
	env["FIRESTORE_EMULATOR_HOST"] = db.addr()
	env["ENVIRONMENT"] = fmt.Sprintf("gone%d", time.Now().UnixNano())
	env["OTTER_WORKERS"] = "1"
	env["OTTER_DRAIN_DELAY"] = "1s"
	env["OTTER_SHUTDOWN_GRACE"] = "2s"
	env["OTTER_SHUTDOWN_TIMEOUT"] = "20s"
	p := start(t, env)
	// A notebook whose grading runs until it is stopped.
	nb, err := os.ReadFile(filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(nb, &doc); err != nil {
		t.Fatal(err)
	}
	doc["cells"] = append([]any{map[string]any{"cell_type": "code", "execution_count": nil, "metadata": map[string]any{}, "outputs": []any{},
		"source": "import time\ntime.sleep(600)"}}, doc["cells"].([]any)...)
	slow := filepath.Join(t.TempDir(), "lab01.ipynb")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(slow, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, url := submit(t, p, slow, 1)
	deadline := time.Now().Add(2 * time.Minute)
	for getStatus(t, p, url).Status != "grading" {
		if time.Now().After(deadline) {
			t.Fatal("grading never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	db.cut()
	start := time.Now()
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("the shutdown took %v with the database gone; OTTER_SHUTDOWN_TIMEOUT is 20s", took.Round(time.Second))
	}
}
