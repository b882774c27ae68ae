package service_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
)

// The workers, against the embedded store, on the test's clock.

func (h *harness) submission(id string) *service.Submission {
	h.t.Helper()
	sub, err := h.store.Submission(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return sub
}

func (h *harness) submitFor(assignment string, grade float64) *service.Submission {
	h.t.Helper()
	sub, err := h.svcs[0].Submit(context.Background(), service.Identity{Name: "alice"}, notebookFor(assignment, grade), assignment+".ipynb")
	if err != nil {
		h.t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	return sub
}

// lab02Down serves the course, except that lab02's materials cannot be read
// while down is set (its repository was never fetched, say).
type lab02Down struct {
	service.Courses
	down atomic.Bool
}

func (c *lab02Down) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	if a.Assignment == "lab02" && c.down.Load() {
		return nil, service.Errorf(service.EUNAVAILABLE, "The materials of lab02 cannot be read right now.")
	}
	return c.Courses.Autograder(ctx, a)
}

// TestUnavailableMaterialsStepAside: submissions whose materials cannot be
// read step aside for UnavailableRetry without losing attempts, so those
// behind them are graded meanwhile; they are graded once the materials are
// back and their time comes.
func TestUnavailableMaterialsStepAside(t *testing.T) {
	courses := &lab02Down{Courses: defaultCourses(t)}
	courses.down.Store(true)
	h := newHarnessWith(t, harnessOptions{cfg: service.Config{UnavailableRetry: time.Minute}, courses: courses})
	var blocked []*service.Submission
	for i := 0; i < 3; i++ {
		blocked = append(blocked, h.submitFor("lab02", 1))
	}
	behind := h.submitFor("lab01", 1)
	h.run()
	waitFor(t, "the lab01 submission graded", func() bool { return h.submission(behind.ID).Status == service.StatusGraded })
	waitFor(t, "every lab02 submission tried", func() bool {
		for _, b := range blocked {
			if h.submission(b.ID).StartedAt.IsZero() {
				return false
			}
		}
		return true
	})
	for _, b := range blocked {
		if sub := h.submission(b.ID); sub.Status != service.StatusQueued || sub.Attempts != 0 {
			t.Errorf("a submission waiting for its materials: %+v; want queued with no attempt counted", sub)
		}
	}
	courses.down.Store(false)
	h.clock.Advance(time.Minute)
	for _, b := range blocked {
		waitFor(t, "a lab02 submission graded", func() bool { return h.submission(b.ID).Status == service.StatusGraded })
	}
}

// failingRunner fails every grading with err, counting them.
type failingRunner struct {
	err  error
	mu   sync.Mutex
	runs int
}

func (r *failingRunner) Run(context.Context, grading.Job) (*grading.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs++
	return nil, r.err
}

func (r *failingRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs
}

// TestFailedGradingIsRecorded: a failure of the notebook's (a timeout) is
// recorded, with its reason and an error in the log.
func TestFailedGradingIsRecorded(t *testing.T) {
	runner := &failingRunner{err: &grading.Error{Kind: grading.KindTimeout, Message: "Grading took longer than 10m0s.", Log: "cell 3\x1b[2J\x00 printed"}}
	h := newHarnessWith(t, harnessOptions{runner: runner})
	sub := h.submit(1)
	h.run()
	waitFor(t, "the grading failed", func() bool { return h.submission(sub.ID).Status == service.StatusFailed })
	got := h.submission(sub.ID)
	if got.Failure == nil || got.Failure.Code != service.FailureTimeout || !strings.Contains(got.Failure.Message, "longer than") || got.Post.Status != service.PostNone {
		t.Errorf("failed submission = %+v", got)
	}
	logs, _ := h.store.Logs(context.Background(), sub.ID)
	if len(logs) == 0 || logs[len(logs)-1].Type != service.LogError {
		t.Fatalf("no error logged for the failed grading: %+v", logs)
	}
	if trace := logs[len(logs)-1].Trace; trace != `cell 3\x1b[2J\x00 printed` {
		t.Errorf("the log's trace is %q; want the notebook's control bytes escaped", trace)
	}
}

// TestInfrastructureErrorRequeues: a failure of the runner's own is ours,
// not the notebook's: the submission goes back to the queue, without its
// attempt counted, and the worker backs off.
func TestInfrastructureErrorRequeues(t *testing.T) {
	runner := &failingRunner{err: errors.New("docker engine is down")}
	h := newHarnessWith(t, harnessOptions{runner: runner})
	sub := h.submit(1)
	h.run()
	waitFor(t, "two gradings tried", func() bool { return runner.count() >= 2 })
	if got := h.submission(sub.ID); got.Status != service.StatusQueued && got.Status != service.StatusGrading || got.Failure != nil || got.Attempts > 1 {
		t.Errorf("after the runner's own failures, submission = %+v; want back in the queue, not failed, no attempt spent", got)
	}
}

// TestRepeatedlyInterruptedSubmissionFails: a submission whose gradings
// were cut short MaxAttempts times (the worker died each time) fails,
// saying so, instead of killing workers for ever.
func TestRepeatedlyInterruptedSubmissionFails(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{})
	sub := h.submit(1)
	for i := 0; i < 3; i++ { // three workers claimed it and died: their leases lapse
		job, err := h.store.Claim(context.Background(), service.KindGrade, h.clock.Now(), time.Minute)
		if err != nil || job == nil || job.Submission.ID != sub.ID {
			t.Fatalf("claim %d: %+v, %v", i, job, err)
		}
		h.clock.Advance(2 * time.Minute)
	}
	h.run()
	waitFor(t, "the submission failed", func() bool { return h.submission(sub.ID).Status == service.StatusFailed })
	if got := h.submission(sub.ID); got.Failure == nil || got.Failure.Code != service.FailureInterrupted || !strings.Contains(got.Failure.Message, "interrupted 3 times") {
		t.Errorf("submission = %+v; want failed as interrupted", got)
	}
}
