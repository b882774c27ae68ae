package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/otter-service/otter-service/grading"
)

// Run grades queued submissions with cfg.Workers workers until ctx ends.
// Then it stops claiming work, gives running gradings cfg.ShutdownGrace to
// finish, returns the unfinished ones to the queue, and returns.
func (s *Service) Run(ctx context.Context) error {
	// Gradings run on a context that outlives ctx by the grace period.
	jobs, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	go func() {
		<-ctx.Done()
		select {
		case <-time.After(s.cfg.ShutdownGrace):
			stopJobs()
		case <-jobs.Done():
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepHeld(ctx)
	}()
	if s.cfg.Poster != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.postLoop(ctx)
		}()
	}
	for i := 0; i < s.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, jobs)
		}()
	}
	wg.Wait()
	return nil
}

// work is one worker's loop.
func (s *Service) work(ctx, jobs context.Context) {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	failures := 0 // in a row: claims that failed, and gradings returned to the queue by our trouble
	for ctx.Err() == nil {
		if failures > 0 && !s.pause(ctx, Backoff(failures, s.cfg.PollInterval, time.Minute)) {
			return
		}
		job, err := s.store.Claim(ctx, KindGrade, s.now(), s.cfg.Lease)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("cannot claim work from the store", "err", err)
			}
			failures++
			continue
		}
		if job == nil {
			failures = 0
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-ticker.C:
			}
			continue
		}
		if s.grade(jobs, job.Submission, job.Lease) {
			failures = 0
		} else {
			failures++
		}
	}
}

// grade grades one claimed submission and records the outcome. It returns
// false when the submission went back to the queue because of trouble on our
// side, so the worker backs off.
func (s *Service) grade(ctx context.Context, sub *Submission, lease *Lease) bool {
	log := s.logger(sub)
	if sub.Attempts > s.cfg.MaxAttempts {
		log.Error("grading was interrupted too often; giving up", "attempts", sub.Attempts)
		s.finish(ctx, sub, lease, Outcome{Status: StatusFailed, Failure: &Failure{
			Code:    FailureInterrupted,
			Message: fmt.Sprintf("Grading was interrupted %d times (the grader may crash on this notebook), so we stopped trying. Run the notebook from the top to check it and submit again; if this keeps happening, tell your course staff.", sub.Attempts-1),
		}})
		s.cfg.Observer.Graded(FailureInterrupted, 0, s.now().Sub(sub.ReceivedAt))
		return true
	}
	log.Info("grading started", "attempt", sub.Attempts)
	s.record(ctx, sub, LogInfo, fmt.Sprintf("grading started (attempt %d)", sub.Attempts), "")

	// Keep the lease while grading; losing it means another worker owns the
	// submission now, so stop.
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.keepLease(jobCtx, cancel, sub, lease)

	started := s.now()
	res, err := s.run(jobCtx, sub)
	var out Outcome
	var ferr *failedError
	switch gerr, isGradingErr := grading.AsError(err); {
	case err == nil && len(res.Review) > 0:
		evidence := strings.Join(res.Review, "; ")
		out = Outcome{Status: StatusNeedsReview, Grade: res.Grade, Questions: questions(res), Feedback: feedback(res),
			Failure: &Failure{Code: FailureReview, Message: "The grader detected interference with grading: " + evidence}}
		log.Warn("grading interfered with; held for review by course staff", "grade", res.Grade, "evidence", evidence)
		s.record(ctx, sub, LogError, "held for review: the grader detected interference with grading", evidence)
	case err == nil:
		out = Outcome{Status: StatusGraded, Grade: res.Grade, Questions: questions(res), Feedback: feedback(res), Post: PostDisabled}
		if s.cfg.Poster != nil {
			out.Post, out.Policy = PostPending, s.cfg.PostPolicy
		}
		log.Info("graded", "grade", res.Grade, "seconds", s.now().Sub(started).Seconds())
		s.record(ctx, sub, LogInfo, fmt.Sprintf("graded: %.4f", res.Grade), "")
	case isGradingErr:
		out = Outcome{Status: StatusFailed, Failure: &Failure{Code: gerr.Kind, Message: gerr.Message}}
		log.Warn("grading failed", "kind", gerr.Kind, "reason", gerr.Message)
		s.record(ctx, sub, LogError, gerr.Message, gerr.Log)
	case errors.As(err, &ferr):
		out = Outcome{Status: StatusFailed, Failure: &ferr.failure}
		log.Error("submission cannot be graded", "reason", ferr.failure.Message, "err", ferr.cause)
		s.record(ctx, sub, LogError, ferr.failure.Message, ferr.cause.Error())
	case ErrorCode(err) == EUNPROCESSABLE:
		out = Outcome{Status: StatusFailed, Failure: &Failure{Code: FailureConfig, Message: ErrorMessage(err)}}
		log.Warn("assignment cannot be graded", "reason", ErrorMessage(err))
		s.record(ctx, sub, LogError, ErrorMessage(err), "")
	default:
		// Our trouble, not the submission's: put it back for later.
		if cause := context.Cause(jobCtx); errors.Is(cause, errLeaseLost) {
			log.Warn("lease lost while grading; another worker has the submission")
			return true
		}
		var notBefore time.Time
		if ErrorCode(err) == EUNAVAILABLE {
			// A dependency is down (the course's repository has never been
			// read, the store): the submission waits in the queue, without
			// losing an attempt, until it is back; not logged in its record
			// at every retry. It steps aside for UnavailableRetry, so the
			// rest of the queue (other courses) goes on meanwhile.
			notBefore = s.now().Add(s.cfg.UnavailableRetry)
			log.Warn("cannot grade now; returning the submission to the queue", "reason", ErrorMessage(err), "retry_at", notBefore)
		} else {
			log.Error("grading interrupted; returning the submission to the queue", "err", err)
			if ctx.Err() == nil {
				s.record(ctx, sub, LogError, "grading interrupted: "+ErrorMessage(err), err.Error())
			}
		}
		s.cfg.Observer.Graded("requeued", s.now().Sub(started), 0)
		rctx, cancel := storeContext(ctx)
		rerr := s.store.Release(rctx, lease, notBefore)
		cancel()
		if rerr != nil {
			log.Error("cannot return the submission to the queue; it will be retried when its lease expires", "err", rerr)
			return false
		}
		return !notBefore.IsZero() // stepped aside: no reason for this worker to wait
	}
	cancel(nil)
	out.FinishedAt = s.now().UTC()
	s.finish(ctx, sub, lease, out)
	outcome := string(out.Status)
	if out.Failure != nil {
		outcome = out.Failure.Code
	}
	s.cfg.Observer.Graded(outcome, out.FinishedAt.Sub(started), out.FinishedAt.Sub(sub.ReceivedAt))
	s.times.add(out.FinishedAt.Sub(started))
	return true
}

// run fetches what grading needs and runs the grader.
func (s *Service) run(ctx context.Context, sub *Submission) (*grading.Result, error) {
	nb, err := s.store.Notebook(ctx, sub.ID)
	if err != nil && ErrorCode(err) != EUNAVAILABLE && ctx.Err() == nil {
		// Not a passing outage: retrying cannot bring it back.
		return nil, &failedError{cause: err, failure: Failure{Code: FailureStorage,
			Message: "Your notebook could not be read back from storage, so it cannot be graded. Please submit it again."}}
	}
	if err != nil {
		return nil, err
	}
	zip, err := s.courses.Autograder(ctx, sub.Assignment)
	if err != nil {
		return nil, err
	}
	return s.runner.Run(ctx, grading.Job{
		ID:           sub.ID,
		NotebookName: sub.GradingName(),
		Notebook:     nb,
		Autograder:   zip,
	})
}

var errLeaseLost = errors.New("lease lost")

// failedError is a grading that cannot succeed for a reason outside the
// notebook's code.
type failedError struct {
	failure Failure
	cause   error
}

func (e *failedError) Error() string { return e.failure.Message + ": " + e.cause.Error() }

func (s *Service) keepLease(ctx context.Context, cancel context.CancelCauseFunc, sub *Submission, lease *Lease) {
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.store.Extend(ctx, lease, s.now(), s.cfg.Lease)
		switch {
		case err == nil:
		case ErrorCode(err) == ECONFLICT:
			cancel(errLeaseLost)
			return
		case ctx.Err() == nil:
			s.logger(sub).Warn("cannot extend the grading lease", "err", err)
		}
	}
}

// finish records an outcome, retrying while the store is unavailable, the
// lease may still be ours and ctx (the gradings' context, which ends after
// the shutdown grace) has not ended; what is not recorded is graded again.
func (s *Service) finish(ctx context.Context, sub *Submission, lease *Lease, out Outcome) {
	if out.FinishedAt.IsZero() {
		out.FinishedAt = s.now().UTC()
	}
	deadline := lease.Expires
	for n := 1; ; n++ {
		fctx, cancel := storeContext(ctx)
		err := s.store.Finish(fctx, lease, out)
		cancel()
		if err == nil {
			if out.Post == PostPending {
				s.wakePosts()
			}
			return
		}
		delay := Backoff(n, 100*time.Millisecond, 5*time.Second)
		if ErrorCode(err) == ECONFLICT || s.now().Add(delay).After(deadline) || !s.pause(ctx, delay) {
			s.logger(sub).Error("cannot record the grading outcome; the submission will be graded again", "err", err)
			return
		}
	}
}

// storeWriteTimeout bounds one write that must be made even when the
// caller's context has ended (recording an outcome, returning a submission
// to the queue): a store that does not answer must not hold up a shutdown,
// and what is not recorded is taken up again when its lease expires.
const storeWriteTimeout = 10 * time.Second

func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
}

func questions(res *grading.Result) []Question {
	qs := make([]Question, len(res.Tests))
	for i, t := range res.Tests {
		qs[i] = Question{Name: t.Name, Score: t.Score, MaxScore: t.MaxScore, Visibility: t.Visibility, Output: t.Output}
	}
	return qs
}

func feedback(res *grading.Result) []Feedback {
	if len(res.Feedback) == 0 {
		return nil
	}
	fs := make([]Feedback, len(res.Feedback))
	for i, f := range res.Feedback {
		fs[i] = Feedback{Name: f.Name, Visibility: f.Visibility, Output: f.Output}
	}
	return fs
}
