package service

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry n (from 1): exponential from base,
// capped at max, with equal jitter (between half and all of it), so that
// work that failed together (edX down on a deadline night, the store
// unreachable from every worker) does not all come back at once.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
