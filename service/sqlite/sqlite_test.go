package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/sqlite"
	"github.com/otter-service/otter-service/service/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store {
		s := open(t, filepath.Join(t.TempDir(), "otter.db"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otter.db")
	s := open(t, path)
	ctx := context.Background()
	sub := &service.Submission{ID: service.NewID(), User: "alice", Status: service.StatusQueued,
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}, ReceivedAt: time.Now()}
	if err := s.CreateSubmission(ctx, sub, []byte(`{"nbformat":4}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	got, err := s.Submission(ctx, sub.ID)
	if err != nil || got.Status != service.StatusQueued {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	err = s.CreateSubmission(ctx, sub, nil)
	if service.ErrorCode(err) != service.ECONFLICT {
		t.Fatalf("duplicate after reopening: %v", err)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "otter.db"))
	s.Close()
	sub := &service.Submission{ID: service.NewID(), User: "alice", ReceivedAt: time.Now()}
	if code := service.ErrorCode(s.CreateSubmission(context.Background(), sub, nil)); code != service.EUNAVAILABLE {
		t.Fatalf("CreateSubmission on a closed store: code %q, want %q", code, service.EUNAVAILABLE)
	}
}
