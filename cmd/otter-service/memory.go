package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory the process keeps from the system beyond its live heap is handed
// back when it exceeds idleMemoryLimit, checked every idleMemoryEvery. The
// runtime keeps what a burst (uploads, gradings of large notebooks) made it
// take for minutes otherwise: an idle service collects no garbage until its
// two-minute forced collection, and returns free pages slowly after.
const (
	idleMemoryLimit = 48 << 20
	idleMemoryEvery = 10 * time.Second
)

// returnIdleMemory checks every period, until ctx ends, how much memory
// beyond the live heap the process holds (stats), and hands it back
// (free: a collection, then the free pages) when over limit.
func returnIdleMemory(ctx context.Context, every time.Duration, limit uint64, stats func() (held, live uint64), free func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if held, live := stats(); held > live+limit {
			free()
		}
	}
}

// staleLive is how old the last collection may be for its live heap to
// count: one made during a burst saw the burst's data live, and an idle
// process makes no other for two minutes, so beyond that the live heap is
// taken as nothing and what the process holds over the limit is handed
// back (the collection that does it finds the live heap afresh).
const staleLive = 30 * time.Second

// gcSeen is the collection count memoryStats saw last, and when it changed.
var gcSeen struct {
	cycles uint64
	at     time.Time
}

// memoryStats returns the memory the runtime holds from the system, and
// the heap that the last collection found live (0 if it is older than
// staleLive).
func memoryStats() (held, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	held, live = s[0].Value.Uint64()-s[1].Value.Uint64(), s[2].Value.Uint64()
	if n := s[3].Value.Uint64(); n != gcSeen.cycles || gcSeen.at.IsZero() {
		gcSeen.cycles, gcSeen.at = n, time.Now()
	} else if time.Since(gcSeen.at) > staleLive {
		live = 0
	}
	return held, live
}

func freeMemory() { debug.FreeOSMemory() }
