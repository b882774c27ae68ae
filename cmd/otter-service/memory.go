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

// memoryStats returns the memory the runtime holds from the system, and
// the heap that the last collection found live.
func memoryStats() (held, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64(), s[2].Value.Uint64()
}

func freeMemory() { debug.FreeOSMemory() }
