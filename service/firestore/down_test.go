package firestore_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
)

// With the database unreachable, every read a request waits for answers
// EUNAVAILABLE within the store's read timeout, instead of waiting for the
// database to come back (the client retries until its context ends).
func TestReadsAnswerWhileTheDatabaseIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: the database is down
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	s, err := firestore.New(context.Background(), "otter-service-test", "down")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetTimeouts(time.Second, time.Second)
	a := service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}
	for name, read := range map[string]func(ctx context.Context) error{
		"Submission":    func(ctx context.Context) error { _, err := s.Submission(ctx, "x"); return err },
		"QueuePosition": func(ctx context.Context) error { _, err := s.QueuePosition(ctx, "x"); return err },
		"PostTask":      func(ctx context.Context) error { _, err := s.PostTask(ctx, a, "alice"); return err },
		"Logs":          func(ctx context.Context) error { _, err := s.Logs(ctx, "x"); return err },
		"Grades": func(ctx context.Context) error {
			_, err := s.Grades(ctx, service.GradeFilter{User: "alice"})
			return err
		},
		"Held":   func(ctx context.Context) error { _, err := s.Held(ctx, "k", time.Now()); return err },
		"Counts": func(ctx context.Context) error { _, err := s.Counts(ctx); return err },
		"Ping":   func(ctx context.Context) error { return s.Ping(ctx) },
	} {
		done := make(chan error, 1)
		go func() { done <- read(context.Background()) }()
		select {
		case err := <-done:
			if service.ErrorCode(err) != service.EUNAVAILABLE {
				t.Errorf("%s with the database down: %v; want EUNAVAILABLE", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s with the database down: no answer after 10s; want EUNAVAILABLE within the 1s read timeout", name)
		}
	}
}
