package service

import (
	"slices"
	"sync"
	"time"
)

// gradingTimes keeps how long the last gradings of this instance took, for
// the estimate of a queued submission's wait.
type gradingTimes struct {
	mu   sync.Mutex
	last [64]time.Duration
	n    int // how many were recorded, ever
}

func (g *gradingTimes) add(d time.Duration) {
	if d <= 0 {
		return
	}
	g.mu.Lock()
	g.last[g.n%len(g.last)] = d
	g.n++
	g.mu.Unlock()
}

// median returns the median of the recorded times, and whether there are
// enough (5) to say.
func (g *gradingTimes) median() (time.Duration, bool) {
	g.mu.Lock()
	k := min(g.n, len(g.last))
	ds := slices.Clone(g.last[:k])
	g.mu.Unlock()
	if k < 5 {
		return 0, false
	}
	slices.Sort(ds)
	return ds[k/2], true
}

// estimateWait is how long a submission at position in line (1: next)
// may wait before its grading ends: the median of recent gradings for each
// round of this instance's workers ahead of it and its own, so an upper
// estimate where other replicas grade too. 0 when too few gradings were
// seen to say.
func (s *Service) estimateWait(position int) time.Duration {
	m, ok := s.times.median()
	if !ok || position <= 0 {
		return 0
	}
	rounds := (position + s.cfg.Workers - 1) / s.cfg.Workers
	return time.Duration(rounds) * m
}
