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

// TestTwoReplicas runs two instances of the service on one Firestore
// database: 40 submissions, sent to either, are each graded exactly once
// (one claim, one attempt, one grade document).
func TestTwoReplicas(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	root, _ := examples(t)
	repo := courseRepo(t, root)
	environment := fmt.Sprintf("replicas%d", time.Now().UnixNano())
	replica := func() *proc {
		env := baseEnv(t, root)
		env["OTTER_COURSE_REPOS"] = "8x=" + repo
		env["GCP_PROJECT_ID"] = "otter-service-test"
		env["FIRESTORE_EMULATOR_HOST"] = host
		env["ENVIRONMENT"] = environment
		env["OTTER_WORKERS"] = "2"
		env["VERBOSE_LOGGING"] = "false"
		return start(t, env)
	}
	a, b := replica(), replica()
	names := []string{"lab01-perfect.ipynb", "lab01-partial.ipynb", "lab01-zero.ipynb", "lab02-perfect.ipynb"}
	want := map[string]float64{"lab01-perfect.ipynb": 1, "lab01-partial.ipynb": 2.0 / 3, "lab01-zero.ipynb": 0, "lab02-perfect.ipynb": 1}
	type sent struct{ name, id, url string }
	var all []sent
	for i := 0; i < 40; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		name := names[i%len(names)]
		id, url := submit(t, p, filepath.Join(root, "examples", "submissions", name), i)
		all = append(all, sent{name, id, url})
	}
	for _, s := range all {
		st := waitDone(t, a, s.url, 10*time.Minute)
		if st.Status != "graded" || st.Grade == nil || math.Abs(*st.Grade-want[s.name]) > 1e-9 {
			t.Errorf("%s (%s): %+v; want graded %v", s.id, s.name, st, want[s.name])
		}
		if st.Attempts != 1 {
			t.Errorf("%s was claimed %d times; want once", s.id, st.Attempts)
		}
	}
	a.stop(syscall.SIGTERM)
	b.stop(syscall.SIGTERM)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	store, err := firestore.New(context.Background(), "otter-service-test", environment)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	count, total := gradesPerSubmission(t, store)
	for _, s := range all {
		if count[s.id] != 1 {
			t.Errorf("%s has %d grade documents, want 1", s.id, count[s.id])
		}
	}
	if total != len(all) {
		t.Errorf("%d grade documents for %d submissions", total, len(all))
	}
	if !strings.Contains(a.log(), `"msg":"graded"`) || !strings.Contains(b.log(), `"msg":"graded"`) {
		t.Errorf("one replica graded nothing; the test shows less than it should")
	}
}
