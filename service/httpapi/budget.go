package httpapi

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// byteBudget bounds the request-body bytes the process holds at once, so
// that memory stays bounded whatever arrives: a request reserves its body's
// size (the largest allowed when it does not say) before reading a byte, and
// one that does not fit is refused at once (503 with Retry-After) rather than
// buffered. Requests from clients not signed in may use only a share of it,
// so they can never crowd out students who are, and one such client (one
// address) only part of that share.
type byteBudget struct {
	mu              sync.Mutex
	limit, anyLimit int64 // all requests; those not signed in
	clientLimit     int64 // those not signed in from one client
	used, anyUsed   int64
	clients         map[string]int64 // bytes of those not signed in, by client
	peak            int64            // the most used since memory was last returned
	returned        time.Time        // when it was
}

// newByteBudget returns the budget of limit bytes for bodies of at most
// maxBody: requests not signed in may hold a quarter of it, one client
// half of that, and each at least two notebooks' worth of unknown length.
func newByteBudget(limit, maxBody int64) *byteBudget {
	b := &byteBudget{limit: limit, clients: map[string]int64{}}
	b.anyLimit = min(max(limit/4, 2*maxBody), limit)
	b.clientLimit = min(max(b.anyLimit/2, 2*maxBody), b.anyLimit)
	return b
}

// returnAfter is how much must have been held, at most how often, for the
// memory of a burst to be handed back to the system once it is over: the
// runtime would keep it (and the recycled buffers) for a long while.
const (
	returnAfter = 64 << 20
	returnEvery = 10 * time.Second
)

// reserve takes n bytes of the budget (from the anonymous share and
// client's part of it too when anonymous), and returns the function that
// gives them back; ok is false when they do not fit.
func (b *byteBudget) reserve(n int64, anonymous bool, client string) (release func(), ok bool) {
	if b == nil || b.limit <= 0 {
		return func() {}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit || anonymous && (b.anyUsed+n > b.anyLimit || b.clients[client]+n > b.clientLimit) {
		return nil, false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	if anonymous {
		b.anyUsed += n
		b.clients[client] += n
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			if anonymous {
				b.anyUsed -= n
				if b.clients[client] -= n; b.clients[client] <= 0 {
					delete(b.clients, client)
				}
			}
			burstOver := b.used == 0 && b.peak >= returnAfter && time.Since(b.returned) >= returnEvery
			if burstOver {
				b.peak, b.returned = 0, time.Now()
			}
			b.mu.Unlock()
			if burstOver {
				go returnMemory()
			}
		})
	}, true
}

// DefaultBodyBytesInFlight is the default bound on request-body bytes held
// at once: a quarter of the memory the process is given (its cgroup's
// memory.max, as in a container), else 512 MiB; at least 64 MiB.
func DefaultBodyBytesInFlight() int64 {
	if limit, ok := memoryLimit(); ok {
		return max(limit/4, 64<<20)
	}
	return 512 << 20
}

// memoryLimit reads the cgroup (v2, then v1) memory limit of the process.
func memoryLimit() (int64, bool) {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 { // "max", or v1's "no limit"
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// returnMemory hands the memory of a burst of uploads back to the system:
// two collections (the recycled buffers survive one), then the runtime's
// free pages.
func returnMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
