package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
