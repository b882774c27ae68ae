package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/sqlite"
)

// lab02Down serves the fake course, except that lab02's materials cannot be
// read while down is set (its repository was never fetched, say).
type lab02Down struct {
	*fakeCourses
	down atomic.Bool
}

func (c *lab02Down) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	if a.Assignment == "lab02" && c.down.Load() {
		return nil, service.Errorf(service.EUNAVAILABLE, "The materials of lab02 cannot be read right now.")
	}
	return c.fakeCourses.Autograder(ctx, a)
}

// TestUnavailableMaterialsStepAside: submissions whose materials cannot be
// read step aside without losing attempts, so those behind them are graded
// meanwhile; they are graded once the materials are back.
func TestUnavailableMaterialsStepAside(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	courses := &lab02Down{fakeCourses: newFakeCourses(t)}
	courses.down.Store(true)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(store, courses, &fakeRunner{}, service.Config{Workers: 1, PollInterval: 20 * time.Millisecond, UnavailableRetry: 300 * time.Millisecond}, log)
	srv := httptest.NewServer(httpapi.Handler(svc, httpapi.DevIdentity{User: "alice"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer srv.Close()

	var blocked []submitted
	for i := 0; i < 3; i++ {
		blocked = append(blocked, submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab02"))))
	}
	behind := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Run(ctx)
	waitFor(t, func() bool { return getStatus(t, srv.URL+behind.StatusURL).Status == "graded" })
	for _, b := range blocked {
		if st := getStatus(t, srv.URL+b.StatusURL); st.Status != "queued" || st.Attempts != 0 {
			t.Errorf("a submission waiting for its materials: %+v; want queued with no attempt counted", st)
		}
	}
	courses.down.Store(false)
	for _, b := range blocked {
		waitFor(t, func() bool { return getStatus(t, srv.URL+b.StatusURL).Status == "graded" })
	}
}
