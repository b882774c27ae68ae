package service

import (
	"context"
	"sync"
	"time"
)

// Observer is told what the service does, for its metrics. Methods are
// called on the hot path and must not block.
type Observer interface {
	// Graded is called when a grading ends: outcome is "graded", a
	// failure code, or "requeued" (our trouble; it will be graded again).
	// grading is how long it ran; sinceReceived, for a recorded outcome,
	// how long the student waited.
	Graded(outcome string, grading, sinceReceived time.Duration)
	// Posted is called after each attempt to post a grade, with its
	// PostOutcome, and with "interrupted" for a post found in flight after
	// its worker stopped (it is posted again).
	Posted(outcome PostOutcome)
}

type nopObserver struct{}

func (nopObserver) Graded(string, time.Duration, time.Duration) {}
func (nopObserver) Posted(PostOutcome)                          {}

// ELIMIT is the code of a submission refused because its student already
// has too many in flight.
const ELIMIT = "too_many"

// queueCache remembers the store's counts for a moment, so that the accept
// path does not count the queue for every submission.
type queueCache struct {
	mu     sync.Mutex
	counts Counts
	held   int   // bodies held for sign-in
	err    error // the last read's, kept as long as a good answer would be
	at     time.Time
}

// queueCacheTTL is how stale the queue length used for load shedding may be.
const queueCacheTTL = time.Second

func (s *Service) queued(ctx context.Context) (int, error) {
	s.qc.mu.Lock()
	defer s.qc.mu.Unlock()
	// A failed read is remembered too: with the store down, submissions
	// are refused at once instead of each waiting out its own read.
	if now := s.now(); now.Sub(s.qc.at) >= queueCacheTTL || now.Before(s.qc.at) {
		// Not on the request's context: one client hanging up must not
		// become the answer for the others.
		cctx, cancel := storeContext(ctx)
		s.qc.counts, s.qc.err = s.store.Counts(cctx)
		if s.qc.err == nil {
			var u HeldUsage
			u, s.qc.err = s.store.HeldUsage(cctx, s.now(), "")
			s.qc.held = u.Count
		}
		cancel()
		s.qc.at = s.now()
	}
	// Bodies held for sign-in are submissions to come: they count too.
	return s.qc.counts.Queued + s.qc.held, s.qc.err
}

// queuedOne counts a submission this instance just queued into the cached
// queue length, until the next refresh reads the store again.
func (s *Service) queuedOne() {
	s.qc.mu.Lock()
	s.qc.counts.Queued++
	s.qc.mu.Unlock()
}

// errQueueFull refuses a submission to a full queue.
var errQueueFull = Errorf(EUNAVAILABLE, "So many notebooks are waiting to be graded that yours cannot be taken right now. Please submit again in a few minutes; anything you submitted before is still queued.")

// admit applies the limits on what the service takes: a bounded queue, so a
// flood cannot grow it without end (what is queued is untouched), and a
// bound on each student's submissions in flight, so one student cannot
// crowd out a class.
//
// Returns EUNAVAILABLE when the queue is full and ELIMIT when who has too
// many submissions in flight.
func (s *Service) admit(ctx context.Context, who Identity) error {
	if s.cfg.MaxQueue > 0 {
		n, err := s.queued(ctx)
		if err != nil {
			return err
		}
		if n >= s.cfg.MaxQueue {
			return errQueueFull
		}
	}
	if s.cfg.MaxPerUser > 0 && who.Name != "" {
		n, err := s.store.InFlight(ctx, who.Name)
		if err != nil {
			return err
		}
		if n >= s.cfg.MaxPerUser {
			return Errorf(ELIMIT, "You already have %d submissions waiting to be graded. Please wait for them to finish before submitting again.", n)
		}
	}
	return nil
}
