package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Poster posts grades to a course's gradebook (edX over LTI).
type Poster interface {
	// Post posts sub's grade, a fraction in [0, 1], for sub.User and
	// sub.Assignment.
	// Returns EUNAVAILABLE for trouble worth retrying (the network, a
	// timeout, the gradebook's 5xx); any other error is a refusal that
	// retrying cannot change, and its message says why.
	Post(ctx context.Context, sub *Submission) error
}

// postLease is how long one post attempt may take before another worker may
// try the same post.
const postLease = time.Minute

// postLoop posts pending grades until ctx ends.
func (s *Service) postLoop(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	for ctx.Err() == nil {
		sub, lease, err := s.store.ClaimPost(ctx, s.now(), postLease)
		if err != nil && ctx.Err() == nil {
			s.log.Error("cannot claim a pending grade post from the store", "err", err)
		}
		if sub == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.postWake:
			case <-ticker.C:
			}
			continue
		}
		s.post(ctx, sub, lease)
	}
}

// post makes one attempt at posting sub's grade and records its outcome.
func (s *Service) post(ctx context.Context, sub *Submission, lease *Lease) {
	log := s.logger(sub).With("post_attempt", sub.Post.Attempts)
	p := s.attemptPost(ctx, sub, log)
	s.cfg.Observer.Posted(p.Status)
	if err := s.store.FinishPost(context.WithoutCancel(ctx), sub.ID, lease, p); err != nil {
		log.Error("cannot record the grade post's outcome; the post will be attempted again", "err", err)
	}
}

// attemptPost posts sub's grade unless a newer grade supersedes it, and
// returns what became of the post.
func (s *Service) attemptPost(ctx context.Context, sub *Submission, log *slog.Logger) Post {
	newer, err := s.newerGrade(ctx, sub)
	if err != nil {
		log.Warn("cannot check for a newer grade before posting; will retry", "err", err)
		return Post{Status: PostPending, LastError: "The grade could not be posted yet; it will be retried.", NextAt: s.now().Add(s.cfg.PostBackoffBase)}
	}
	if newer != "" {
		log.Info("grade not posted: a newer submission's grade supersedes it", "newer", newer)
		return Post{Status: PostSuperseded, LastError: fmt.Sprintf("A newer submission (%s) was graded; its grade is posted instead.", newer)}
	}
	pctx, cancel := context.WithTimeout(ctx, postLease/2)
	err = s.cfg.Poster.Post(pctx, sub)
	cancel()
	now := s.now()
	switch {
	case err == nil:
		log.Info("grade posted", "grade", sub.Grade)
		s.record(ctx, sub, LogInfo, fmt.Sprintf("grade %.4f posted to edX", sub.Grade), "")
		return Post{Status: PostPosted, PostedAt: now.UTC()}
	case ErrorCode(err) == EUNAVAILABLE && now.Before(sub.FinishedAt.Add(s.cfg.PostRetryPeriod)):
		next := now.Add(postBackoff(sub.Post.Attempts, s.cfg.PostBackoffBase, s.cfg.PostBackoffMax))
		log.Warn("grade post failed; will retry", "err", err, "next_attempt", next)
		return Post{Status: PostPending, LastError: ErrorMessage(err), NextAt: next.UTC()}
	case ErrorCode(err) == EUNAVAILABLE:
		p := Post{Status: PostFailed, LastError: fmt.Sprintf("edX could not be reached for %s; the grade was not posted: %s", s.cfg.PostRetryPeriod, ErrorMessage(err))}
		log.Error("grade post failed; retry period over, giving up", "err", err)
		s.record(ctx, sub, LogError, p.LastError, err.Error())
		return p
	default:
		log.Error("edX refused the grade", "err", err)
		s.record(ctx, sub, LogError, ErrorMessage(err), err.Error()) // the poster says who refused
		return Post{Status: PostFailed, LastError: ErrorMessage(err)}
	}
}

// newerGrade returns the id of a graded submission of the same user and
// assignment received after sub, or "": a regrade's grade is the one that
// counts, so an older one is never posted over it.
func (s *Service) newerGrade(ctx context.Context, sub *Submission) (string, error) {
	grades, err := s.store.Grades(ctx, GradeFilter{User: sub.User, Assignment: sub.Assignment})
	if err != nil {
		return "", err
	}
	for _, g := range grades {
		if g.SubmissionID == sub.ID {
			continue
		}
		other, err := s.store.Submission(ctx, g.SubmissionID)
		if err != nil {
			return "", err
		}
		if other.ReceivedAt.After(sub.ReceivedAt) || other.ReceivedAt.Equal(sub.ReceivedAt) && other.ID > sub.ID {
			return other.ID, nil
		}
	}
	return "", nil
}

// postBackoff is the delay before post attempt n+1: exponential from base,
// capped at max, with equal jitter so that posts failed together (edX down
// on a deadline night) do not all come back at once.
func postBackoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
