package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Poster posts grades to a course's gradebook (edX over LTI).
type Poster interface {
	// Post posts grade, a fraction in [0, 1], for user and assignment.
	// Returns EUNAVAILABLE for trouble worth retrying (the network, a
	// timeout, the gradebook's 5xx), wrapping ErrNoAnswer when the request
	// was sent but no answer came (the gradebook may have applied it); any
	// other error is a refusal that retrying cannot change, and its message
	// says why.
	Post(ctx context.Context, p PostRequest) error
}

// PostRequest is one grade to post.
type PostRequest struct {
	SubmissionID string // the submission whose grade it is, for the log
	User         string
	Assignment
	Grade float64
}

// ErrNoAnswer is wrapped by a Poster's error for a request that was sent
// whole but got no answer: the gradebook may have applied it.
var ErrNoAnswer = errors.New("the request was sent but no answer came")

// postLease is how long one post attempt may take before another worker
// may claim the same post: well over the time one request may take.
func (s *Service) postLease() time.Duration {
	return max(time.Minute, 2*s.cfg.PostTimeout+10*time.Second)
}

// postLoop posts due grades until ctx ends.
func (s *Service) postLoop(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	failures := 0
	for ctx.Err() == nil {
		job, err := s.store.Claim(ctx, KindPost, s.now(), s.postLease())
		if err != nil && ctx.Err() == nil {
			s.log.Error("cannot claim a post from the store", "err", err)
			failures++
			if !s.pause(ctx, Backoff(failures, s.cfg.PollInterval, time.Minute)) {
				return
			}
			continue
		}
		failures = 0
		if job == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.postWake:
			case <-ticker.C:
			}
			continue
		}
		s.post(ctx, job.Post, job.Lease)
	}
}

// pause waits d, or until ctx ends (then it returns false).
func (s *Service) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// post makes one attempt at posting the grade t.InFlight and records its
// outcome.
func (s *Service) post(ctx context.Context, t *PostTask, lease *Lease) {
	sub := &Submission{ID: t.InFlight.SubmissionID, User: t.User, Assignment: t.Assignment}
	log := s.logger(sub).With("post_attempt", t.Attempts, "grade", t.InFlight.Grade)
	if t.Interrupted.SubmissionID != "" {
		log.Warn("a post was in flight when its worker stopped; edX may hold its grade, so the selected grade is posted now",
			"interrupted_submission", t.Interrupted.SubmissionID, "interrupted_grade", t.Interrupted.Grade)
		s.cfg.Observer.Posted(PostInterrupted)
	}
	r := s.attemptPost(ctx, t, sub, log)
	s.cfg.Observer.Posted(r.Outcome)
	fctx, cancel := storeContext(ctx)
	defer cancel()
	if err := s.store.FinishPost(fctx, lease, r); err != nil {
		log.Error("cannot record the post's outcome; the post will be made again when its lease expires", "err", err)
	}
}

// attemptPost posts t.InFlight and says what became of it.
func (s *Service) attemptPost(ctx context.Context, t *PostTask, sub *Submission, log *slog.Logger) PostResult {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PostTimeout)
	err := s.cfg.Poster.Post(pctx, PostRequest{SubmissionID: t.InFlight.SubmissionID, User: t.User, Assignment: t.Assignment, Grade: t.InFlight.Grade})
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	now := s.now().UTC()
	if err != nil && timedOut && !errors.Is(err, ErrNoAnswer) {
		err = fmt.Errorf("%w: %w", err, ErrNoAnswer) // the time ran out waiting
	}
	retrying := now.Before(t.WantSince.Add(s.cfg.PostRetryPeriod))
	switch {
	case err == nil:
		log.Info("grade posted")
		s.record(ctx, sub, LogInfo, fmt.Sprintf("grade %.4f posted to edX", t.InFlight.Grade), "")
		return PostResult{Outcome: PostApplied, At: now}
	case ErrorCode(err) == EUNAVAILABLE && errors.Is(err, ErrNoAnswer) && retrying:
		// edX may apply it late, even after a later post: wait out the time
		// it may take before posting the selected grade again.
		next := now.Add(s.cfg.PostTimeout + Backoff(t.Attempts, s.cfg.PostBackoffBase, s.cfg.PostBackoffMax))
		log.Warn("edX did not answer the grade post; it may have applied it; posting the selected grade again", "err", err, "next_attempt", next)
		return PostResult{Outcome: PostUnanswered, At: now, NextAt: next,
			Error: "edX did not answer in time (it may have recorded the grade); the grade will be posted again."}
	case ErrorCode(err) == EUNAVAILABLE && retrying:
		next := now.Add(Backoff(t.Attempts, s.cfg.PostBackoffBase, s.cfg.PostBackoffMax))
		log.Warn("grade post failed; will retry", "err", err, "next_attempt", next)
		return PostResult{Outcome: PostRetry, At: now, NextAt: next, Error: ErrorMessage(err)}
	case ErrorCode(err) == EUNAVAILABLE:
		msg := fmt.Sprintf("edX could not be reached for %s; the grade was not posted: %s", s.cfg.PostRetryPeriod, ErrorMessage(err))
		log.Error("grade post failed; retry period over, giving up", "err", err)
		s.record(ctx, sub, LogError, msg, err.Error())
		return PostResult{Outcome: PostRefused, At: now, Error: msg}
	default:
		log.Error("edX refused the grade", "err", err)
		s.record(ctx, sub, LogError, ErrorMessage(err), err.Error()) // the poster says who refused
		return PostResult{Outcome: PostRefused, At: now, Error: ErrorMessage(err)}
	}
}
