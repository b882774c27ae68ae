package service_test

import (
	"bytes"
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
	hold := func() error { _, err := h.svcs[0].Hold(ctx, notebook(1), "lab01.ipynb", ""); return err }
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
		u, err := h.store.HeldUsage(ctx, before, "") // what is still stored, expired or not
		return err == nil && u.Count == 0
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
	if _, err := h.svcs[0].Hold(ctx, big, "lab01.ipynb", ""); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("a body beyond MaxHeldBytes: %v; want EUNAVAILABLE", err)
	}
}

// TestHeldBodiesAreBoundedPerClient: one client may have only so many
// bodies, and bytes, held for sign-in; others still may.
func TestHeldBodiesAreBoundedPerClient(t *testing.T) {
	nb := notebook(1)
	h := newHarnessWith(t, harnessOptions{cfg: service.Config{MaxHeld: 10, MaxHeldPerClient: 2,
		MaxHeldBytesPerClient: int64(3*len(nb) + len(nb)/2)}})
	ctx := context.Background()
	hold := func(client string, body []byte) error {
		_, err := h.svcs[0].Hold(ctx, body, "lab01.ipynb", client)
		return err
	}
	for i := 0; i < 2; i++ {
		if err := hold("mallory", nb); err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
	}
	if err := hold("mallory", nb); service.ErrorCode(err) != service.ELIMIT {
		t.Errorf("a third body of one client beyond MaxHeldPerClient 2: %v; want ELIMIT", err)
	}
	if err := hold("alice", nb); err != nil {
		t.Errorf("another client's body: %v", err)
	}
	// Bytes: alice's second body, twice the size, passes 3.5 notebooks.
	big := append(append([]byte{}, nb...), bytes.Repeat([]byte(" "), len(nb))...) // JSON allows the trailing spaces
	if err := hold("alice", big); err != nil {
		t.Fatalf("alice's second body, within her bytes: %v", err)
	}
	h2 := newHarnessWith(t, harnessOptions{cfg: service.Config{MaxHeldPerClient: 10, MaxHeldBytesPerClient: int64(2*len(nb) + 1)}})
	hold = func(client string, body []byte) error {
		_, err := h2.svcs[0].Hold(ctx, body, "lab01.ipynb", client)
		return err
	}
	if err := hold("bob", big); err != nil {
		t.Fatal(err)
	}
	if err := hold("bob", nb); service.ErrorCode(err) != service.ELIMIT {
		t.Errorf("a body beyond the client's bytes: %v; want ELIMIT", err)
	}
}
