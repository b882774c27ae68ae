package firestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/storetest"
)

var n int

// open returns a store on its own collections of one emulator.
func open(t *testing.T, host string) *firestore.Store {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	n++
	s, err := firestore.New(context.Background(), "otter-service-test", fmt.Sprintf("test%d-%d", time.Now().UnixNano(), n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	storetest.Run(t, func(t *testing.T) service.Store { return open(t, host) })
}

// A notebook over Firestore's 1 MiB document limit is kept whole.
func TestLargeNotebook(t *testing.T) {
	s := open(t, testenv.FirestoreEmulator(t))
	nb := make([]byte, 3<<20+12345)
	rand.Read(nb)
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}}
	if err := s.CreateSubmission(context.Background(), sub, nb); err != nil {
		t.Fatal(err)
	}
	got, err := s.Notebook(context.Background(), sub.ID)
	if err != nil || !bytes.Equal(got, nb) {
		t.Fatalf("Notebook returned %d bytes (%v); want the %d stored", len(got), err, len(nb))
	}
}

// Two stores on one database, as two replicas: a claim one of them holds is
// refused to the other, even when the other read the submission before.
func TestConflictingClaimIsRefused(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	env := fmt.Sprintf("conflict%d", time.Now().UnixNano())
	a, err := firestore.New(context.Background(), "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := firestore.New(context.Background(), "otter-service-test", env)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}}
	if err := a.CreateSubmission(ctx, sub, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got, lease, err := a.Claim(ctx, now, time.Minute)
	if err != nil || got == nil {
		t.Fatalf("replica A's claim: %v %v", got, err)
	}
	if other, _, err := b.Claim(ctx, now, time.Minute); err != nil || other != nil {
		t.Fatalf("replica B claimed %v (%v) while A held it", other, err)
	}
	if err := a.Finish(ctx, sub.ID, lease, service.Outcome{Status: service.StatusGraded, Grade: 1, FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
}
