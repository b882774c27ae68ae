package main

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestReturnIdleMemory: memory beyond the live heap is handed back when
// over the limit, and only then.
func TestReturnIdleMemory(t *testing.T) {
	var held, frees atomic.Int64
	held.Store(10 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	checked := make(chan struct{}, 100)
	go returnIdleMemory(ctx, time.Millisecond, 48<<20,
		func() (uint64, uint64) { checked <- struct{}{}; return uint64(held.Load()), 8 << 20 },
		func() { frees.Add(1); held.Store(8 << 20) })
	wait := func(n int) {
		for range n {
			select {
			case <-checked:
			case <-time.After(10 * time.Second):
				t.Fatal("the memory was not checked")
			}
		}
	}
	wait(3)
	if frees.Load() != 0 {
		t.Fatalf("freed with 2 MiB beyond the live heap")
	}
	held.Store(200 << 20)
	wait(3)
	if frees.Load() != 1 {
		t.Errorf("%d frees with 192 MiB beyond the live heap, then 0; want 1", frees.Load())
	}
	runtime.GC()
	if h, l := memoryStats(); h == 0 || l == 0 || h < l {
		t.Errorf("memoryStats() = %d, %d", h, l)
	}
}
