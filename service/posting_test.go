package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/sqlite"
)

// The posting loop, against the embedded store, with a clock the test
// moves: retries and follow-ups come when the test says their time has
// come, never after a real wait.

// clock is a service.Config.Now the test advances.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type courses struct{ cfg courseconfig.Config }

func (c *courses) Resolve(_ context.Context, a service.Assignment) (courseconfig.Assignment, error) {
	res, err := c.cfg.Lookup(a.Course, a.Section, a.Assignment)
	if err != nil {
		return res, service.Errorf(service.EUNPROCESSABLE, "This notebook is for an %v.", err)
	}
	return res, nil
}

func (c *courses) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	_, err := c.Resolve(ctx, a)
	return []byte("zip"), err
}

// gradeRunner grades a notebook with the grade in its metadata.test_grade.
type gradeRunner struct{}

func (gradeRunner) Run(_ context.Context, job grading.Job) (*grading.Result, error) {
	var nb struct {
		Metadata struct {
			Grade float64 `json:"test_grade"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(job.Notebook, &nb); err != nil {
		return nil, err
	}
	return &grading.Result{Grade: nb.Metadata.Grade, Tests: []grading.Test{{Name: "q1", Score: nb.Metadata.Grade, MaxScore: 1, Visibility: "visible"}}}, nil
}

func notebook(grade float64) []byte { return notebookFor("lab01", grade) }

func notebookFor(assignment string, grade float64) []byte {
	return []byte(fmt.Sprintf(`{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": null}],
		"metadata": {"test_grade": %v, "otter_service": {"course": "8x", "section": "1", "assignment": %q}}}`, grade, assignment))
}

// edx is the gradebook: it holds one score per student and assignment,
// applied in the order its requests are applied, and tells how many
// requests were in flight at once.
type edx struct {
	mu       sync.Mutex
	cond     *sync.Cond
	held     map[string]float64 // by user
	calls    []service.PostRequest
	applied  []service.PostRequest // in the order edX applied them
	answered int
	inFlight int
	most     int // the most requests in flight at once
	// behave answers request n (from 0); nil: applied at once.
	behave func(n int, p service.PostRequest) error
	// gate, if set, holds every request until the test sends on it.
	gate chan struct{}
	// late is an unanswered request, applied when the next one arrives
	// (edX was slow, and finished it then).
	late *service.PostRequest
}

func newEdX() *edx {
	e := &edx{held: map[string]float64{}}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *edx) Post(ctx context.Context, p service.PostRequest) error {
	e.mu.Lock()
	n := len(e.calls)
	e.calls = append(e.calls, p)
	e.inFlight++
	e.most = max(e.most, e.inFlight)
	if e.late != nil {
		e.held[e.late.User] = e.late.Grade
		e.applied, e.late = append(e.applied, *e.late), nil
	}
	behave, gate := e.behave, e.gate
	e.cond.Broadcast()
	e.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	var err error
	if behave != nil {
		err = behave(n, p)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inFlight--
	e.answered++
	switch {
	case err == nil:
		e.held[p.User] = p.Grade
		e.applied = append(e.applied, p)
	case strings.Contains(err.Error(), service.ErrNoAnswer.Error()):
		e.late = &p
	}
	e.cond.Broadcast()
	return err
}

func (e *edx) state() (calls int, held float64, most int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls), e.held["alice"], e.most
}

type harness struct {
	t     *testing.T
	store service.Store
	clock *clock
	svcs  []*service.Service
	ctx   context.Context // the services run until the test ends
	wg    sync.WaitGroup
}

// stores are the stores the tests run on: the embedded one, and Firestore
// (on an emulator).
var stores = map[string]func(t *testing.T) service.Store{
	"sqlite": func(t *testing.T) service.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "otter.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
	"firestore": func(t *testing.T) service.Store {
		t.Setenv("FIRESTORE_EMULATOR_HOST", testenv.FirestoreEmulator(t))
		s, err := firestore.New(context.Background(), "otter-service-test", fmt.Sprintf("posting%d", time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
}

// onStores runs test on each store.
func onStores(t *testing.T, test func(t *testing.T, open func(*testing.T) service.Store)) {
	for _, name := range []string{"sqlite", "firestore"} {
		t.Run(name, func(t *testing.T) { test(t, stores[name]) })
	}
}

// newHarness starts replicas services sharing one store (sqlite's unless
// open is given) and clock.
func newHarness(t *testing.T, replicas int, poster service.Poster, cfg service.Config, open ...func(*testing.T) service.Store) *harness {
	t.Helper()
	opts := harnessOptions{replicas: replicas, poster: poster, cfg: cfg}
	if len(open) > 0 {
		opts.open = open[0]
	}
	h := newHarnessWith(t, opts)
	h.run()
	return h
}

// defaultCourses is the course 8x, with lab01 and lab02.
func defaultCourses(t *testing.T) service.Courses {
	t.Helper()
	cc, err := courseconfig.Parse([]byte(`{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022",
		"subpath_to_zips": "materials", "assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8", "lab02": "7393ab3b1bebe7c87c678281328bc2fa"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return &courses{cfg: cc}
}

// harnessOptions are the parts of a harness a test may replace.
type harnessOptions struct {
	replicas int
	poster   service.Poster
	cfg      service.Config
	open     func(*testing.T) service.Store // nil: sqlite
	runner   grading.Runner                 // nil: gradeRunner
	courses  service.Courses                // nil: the course 8x with lab01 and lab02
}

// newHarnessWith makes the services of opts; run starts them.
func newHarnessWith(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	if opts.open == nil {
		opts.open = stores["sqlite"]
	}
	if opts.runner == nil {
		opts.runner = gradeRunner{}
	}
	if opts.courses == nil {
		opts.courses = defaultCourses(t)
	}
	store := opts.open(t)
	h := &harness{t: t, store: store, clock: &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}}
	cfg := opts.cfg
	cfg.Poster, cfg.Now, cfg.PollInterval = opts.poster, h.clock.Now, 5*time.Millisecond
	for i := 0; i < max(opts.replicas, 1); i++ {
		h.svcs = append(h.svcs, service.New(store, opts.courses, opts.runner, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))))
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	t.Cleanup(func() {
		cancel()
		h.wg.Wait()
		store.Close()
	})
	return h
}

// run starts the services' workers and posting loops.
func (h *harness) run() {
	for _, svc := range h.svcs {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			svc.Run(h.ctx)
		}()
	}
}

func (h *harness) submit(grade float64) *service.Submission {
	h.t.Helper()
	return h.submitAs("alice", grade)
}

func (h *harness) submitAs(user string, grade float64) *service.Submission {
	h.t.Helper()
	sub, err := h.svcs[0].Submit(context.Background(), service.Identity{Name: user}, notebook(grade), "lab01.ipynb")
	if err != nil {
		h.t.Fatal(err)
	}
	h.clock.Advance(time.Second) // each received after the one before
	return sub
}

func (h *harness) post(sub *service.Submission) service.Post {
	h.t.Helper()
	got, err := h.store.Submission(context.Background(), sub.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return got.Post
}

// waitFor waits, up to a deadline, for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached in 20s: %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

// TestNewestGradeAfterUnansweredPost: the zero's post gets no answer (edX
// applies it late); the perfect grade graded meanwhile is not posted while
// the zero may be in flight, and is posted after the follow-up delay, so
// edX ends with the perfect grade.
func TestNewestGradeAfterUnansweredPost(t *testing.T) {
	onStores(t, testNewestGradeAfterUnansweredPost)
}

func testNewestGradeAfterUnansweredPost(t *testing.T, open func(*testing.T) service.Store) {
	e := newEdX()
	e.behave = func(n int, _ service.PostRequest) error {
		if n == 0 {
			return fmt.Errorf("%w: %w", service.Errorf(service.EUNAVAILABLE, "edX did not answer"), service.ErrNoAnswer)
		}
		return nil
	}
	h := newHarness(t, 1, e, service.Config{PostTimeout: 30 * time.Second, PostBackoffBase: 30 * time.Second, PostBackoffMax: time.Minute}, open)
	zero := h.submit(0)
	waitFor(t, "the zero's post attempted", func() bool {
		return h.post(zero).Status == service.PostPending && h.post(zero).Attempts == 1 && h.post(zero).LastError != ""
	})
	perfect := h.submit(1)
	waitFor(t, "the perfect grade graded", func() bool { return h.post(perfect).Status == service.PostPending })
	if p := h.post(zero); p.Status != service.PostReplaced || p.By != perfect.ID || p.Confirmed {
		t.Errorf("the zero's post = %+v; want sent (unconfirmed), since replaced by %s", p, perfect.ID)
	}
	if calls, _, _ := e.state(); calls != 1 {
		t.Fatalf("edX got %d requests before the follow-up was due; want 1", calls)
	}
	h.clock.Advance(30*time.Second + time.Minute) // the timeout, and the longest backoff
	waitFor(t, "the perfect grade posted", func() bool { return h.post(perfect).Status == service.PostPosted })
	calls, held, most := e.state()
	if held != 1 || calls != 2 || most != 1 {
		t.Errorf("edX holds %v after %d requests, at most %d at once; want 1 after 2, one at a time", held, calls, most)
	}
}

// TestOnePostInFlightAcrossReplicas: two replicas, one student's three
// grades: edX never has two of the student's requests at once, and ends
// with the newest grade.
func TestOnePostInFlightAcrossReplicas(t *testing.T) {
	onStores(t, testOnePostInFlightAcrossReplicas)
}

func testOnePostInFlightAcrossReplicas(t *testing.T, open func(*testing.T) service.Store) {
	e := newEdX()
	e.gate = make(chan struct{})
	h := newHarness(t, 2, e, service.Config{Workers: 2}, open)
	subs := []*service.Submission{h.submit(0.25), h.submit(0.5), h.submit(1)}
	newest := subs[2]
	for h.post(newest).Status != service.PostPosted {
		// Let one request through at a time, as soon as one is in flight.
		e.mu.Lock()
		deadline := time.AfterFunc(20*time.Second, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
		for e.inFlight == 0 && h.post(newest).Status != service.PostPosted {
			e.cond.Wait()
		}
		deadline.Stop()
		flying, answered := e.inFlight, e.answered
		e.mu.Unlock()
		if flying == 0 {
			break
		}
		e.gate <- struct{}{}
		waitFor(t, "the request answered", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return e.answered > answered })
	}
	_, held, most := e.state()
	if held != 1 || most != 1 {
		t.Errorf("edX holds %v, with at most %d requests at once; want 1, one at a time", held, most)
	}
	for _, sub := range subs[:2] {
		if p := h.post(sub); p.Status != service.PostSuperseded && p.Status != service.PostReplaced || p.By != newest.ID {
			t.Errorf("an older grade's post = %+v; want superseded or replaced by %s", p, newest.ID)
		}
	}
}

// TestPostGivesUpAfterRetryPeriod: edX unreachable for longer than the
// retry period fails the post for good, saying so; a refusal fails it at
// once, and is not retried.
func TestPostGivesUpAfterRetryPeriod(t *testing.T) {
	e := newEdX()
	var mu sync.Mutex
	mode := "down"
	e.behave = func(int, service.PostRequest) error {
		mu.Lock()
		defer mu.Unlock()
		switch mode {
		case "refuse":
			return service.Errorf(service.EUNPROCESSABLE, "edX refused the grade: User not found.")
		case "down":
			return service.Errorf(service.EUNAVAILABLE, "edX could not be reached: HTTP 503")
		}
		return nil
	}
	h := newHarness(t, 1, e, service.Config{PostRetryPeriod: time.Hour, PostBackoffBase: time.Minute, PostBackoffMax: 10 * time.Minute})
	down := h.submit(0.5)
	// An attempt counts once it is finished: its retry is due from when
	// it ended, on the clock.
	attempted := func(n int) func() bool {
		return func() bool {
			pt, err := h.store.PostTask(context.Background(), down.Assignment, "alice")
			return err == nil && pt.Status != service.TaskPosting && (pt.Attempts >= n || pt.Status == service.TaskFailed)
		}
	}
	waitFor(t, "the first attempt", attempted(1))
	// Each step of the clock passes the longest backoff: one more attempt.
	for seen := 1; h.post(down).Status != service.PostFailed; seen++ {
		if seen > 20 {
			t.Fatalf("post still %+v after %d attempts", h.post(down), seen)
		}
		h.clock.Advance(10 * time.Minute)
		waitFor(t, "the next attempt", attempted(seen+1))
	}
	if p := h.post(down); p.Attempts < 3 || !strings.Contains(p.LastError, "could not be reached for 1h0m0s") {
		t.Errorf("post after the retry period: %+v; want several attempts and the reason", p)
	}

	mu.Lock()
	mode = "refuse"
	mu.Unlock()
	refused := h.submit(0.75)
	waitFor(t, "the refusal", func() bool { return h.post(refused).Status == service.PostFailed })
	if p := h.post(refused); !strings.Contains(p.LastError, "User not found") || p.Attempts != 1 {
		t.Errorf("refused post: %+v", p)
	}
	// A day later, another student's post goes through the loop; the
	// refused one is not tried again.
	mu.Lock()
	mode = "up"
	mu.Unlock()
	h.clock.Advance(24 * time.Hour)
	bob := h.submitAs("bob", 1)
	waitFor(t, "bob's post", func() bool { return h.post(bob).Status == service.PostPosted })
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c.SubmissionID == refused.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("a refused post was sent %d times; want once", n)
	}
}

// TestOlderGradeNeverPostedOverNewer: with edX down while a student
// submits twice, only the newer grade is posted when edX is back.
func TestOlderGradeNeverPostedOverNewer(t *testing.T) {
	e := newEdX()
	var mu sync.Mutex
	up := false
	e.behave = func(int, service.PostRequest) error {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			return service.Errorf(service.EUNAVAILABLE, "edX could not be reached: HTTP 503")
		}
		return nil
	}
	h := newHarness(t, 1, e, service.Config{PostBackoffBase: time.Minute, PostBackoffMax: time.Minute})
	older, newer := h.submit(0.5), h.submit(1)
	waitFor(t, "both graded, a post tried and finished", func() bool {
		pt, err := h.store.PostTask(context.Background(), newer.Assignment, "alice")
		calls, _, _ := e.state()
		return err == nil && pt.Status == service.TaskQueued && pt.Want.SubmissionID == newer.ID && calls > 0 &&
			h.post(older).Status == service.PostSuperseded
	})
	mu.Lock()
	up = true
	mu.Unlock()
	h.clock.Advance(time.Minute)
	waitFor(t, "the newer grade posted", func() bool { return h.post(newer).Status == service.PostPosted })
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.applied {
		if c.SubmissionID == older.ID {
			t.Errorf("the older grade was applied: %v", e.applied)
		}
	}
	if p := h.post(older); p.Status != service.PostSuperseded || p.By != newer.ID {
		t.Errorf("the older grade's post = %+v; want superseded by %s", p, newer.ID)
	}
}
