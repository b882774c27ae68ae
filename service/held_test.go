package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// TestHeldBodiesAreBounded: bodies held for sign-in are bounded in number
// and bytes, count in the queue's bound, and are deleted as they expire.
func TestHeldBodiesAreBounded(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{cfg: service.Config{MaxHeld: 2, MaxHeldBytes: 1 << 20, MaxQueue: 4, HeldSweep: 5 * time.Millisecond}})
	ctx := context.Background()
	hold := func() error { _, err := h.svcs[0].Hold(ctx, notebook(1), "lab01.ipynb"); return err }
	for i := 0; i < 2; i++ {
		if err := hold(); err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
	}
	if err := hold(); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("a third body beyond MaxHeld 2: %v; want EUNAVAILABLE", err)
	}
	// Held bodies count in the queue's bound: 2 held, 2 queued fill it.
	h.submit(1)
	h.submit(1)
	if _, err := h.svcs[0].Submit(ctx, service.Identity{Name: "bob"}, notebook(1), "lab01.ipynb"); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("a submission with 2 queued and 2 held, MaxQueue 4: %v; want EUNAVAILABLE", err)
	}
	// They expire, and are deleted by the sweep, with no sign-in needed.
	before := h.clock.Now()
	h.clock.Advance(service.HoldTTL + time.Second)
	h.run()
	waitFor(t, "the expired bodies deleted", func() bool {
		n, _, err := h.store.HeldUsage(ctx, before) // what is still stored, expired or not
		return err == nil && n == 0
	})
	if err := hold(); err != nil {
		t.Errorf("after the sweep, holding again: %v", err)
	}
	// A body larger than the bytes left is refused.
	big := make([]byte, 1<<20)
	copy(big, notebook(1))
	for i := len(notebook(1)); i < len(big); i++ {
		big[i] = ' '
	}
	if _, err := h.svcs[0].Hold(ctx, big, "lab01.ipynb"); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("a body beyond MaxHeldBytes: %v; want EUNAVAILABLE", err)
	}
}
