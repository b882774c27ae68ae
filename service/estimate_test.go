package service

import (
	"testing"
	"time"
)

// TestEstimateWait: a queued submission's estimate is the median of recent
// gradings per round of workers ahead of it and its own; none until five
// gradings were seen.
func TestEstimateWait(t *testing.T) {
	s := &Service{cfg: Config{Workers: 2}}
	for i, d := range []time.Duration{3, 1, 2, 100} { // seconds; one outlier
		s.times.add(d * time.Second)
		if got := s.estimateWait(1); got != 0 {
			t.Fatalf("after %d gradings, estimate %v; want none yet", i+1, got)
		}
	}
	s.times.add(2 * time.Second)
	for pos, want := range map[int]time.Duration{1: 2 * time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: 8 * time.Second, 0: 0} {
		if got := s.estimateWait(pos); got != want {
			t.Errorf("estimateWait(%d) = %v; want %v", pos, got, want)
		}
	}
	for i := 0; i < 64; i++ { // the oldest make way
		s.times.add(10 * time.Second)
	}
	if got := s.estimateWait(1); got != 10*time.Second {
		t.Errorf("after 64 gradings of 10 s, estimate %v", got)
	}
}
