package httpapi_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// fakePoster stands in for edX (the pytest suite posts to an LTI consumer
// that checks signatures): down until opened, or refusing everything.
type fakePoster struct {
	mu     sync.Mutex
	open   bool
	refuse bool
	calls  map[string]int
	posted []string
}

func (p *fakePoster) Post(_ context.Context, sub service.PostRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == nil {
		p.calls = map[string]int{}
	}
	p.calls[sub.SubmissionID]++
	switch {
	case p.refuse:
		return service.Errorf(service.EUNPROCESSABLE, "edX refused the grade: User not found.")
	case !p.open:
		return service.Errorf(service.EUNAVAILABLE, "edX could not be reached: HTTP 503")
	}
	p.posted = append(p.posted, sub.SubmissionID)
	return nil
}

func (p *fakePoster) set(f func(*fakePoster)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func postStatus(t *testing.T, srv *server, id string) service.Post {
	t.Helper()
	sub, err := srv.store.Submission(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sub.Post
}

// TestRegradeSupersedes: with edX down while a student submits twice, the
// newer grade is posted when edX is back, and the older one never is.
func TestRegradeSupersedes(t *testing.T) {
	poster := &fakePoster{}
	srv := newServerWith(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"},
		service.Config{Poster: poster, PostBackoffBase: 20 * time.Millisecond, PostBackoffMax: 50 * time.Millisecond})
	older := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	newer := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	// Both graded, and the post (of the newer grade, selected over the
	// older) tried while edX is down.
	waitFor(t, func() bool {
		return postStatus(t, srv, older.ID).Status == service.PostSuperseded && postStatus(t, srv, newer.ID).Attempts > 0
	})
	poster.set(func(p *fakePoster) { p.open = true })
	waitFor(t, func() bool {
		return postStatus(t, srv, older.ID).Status == service.PostSuperseded && postStatus(t, srv, newer.ID).Status == service.PostPosted
	})
	poster.set(func(p *fakePoster) {
		if len(p.posted) != 1 || p.posted[0] != newer.ID {
			t.Errorf("posted %v; want only the newer submission %s", p.posted, newer.ID)
		}
	})
	if st := getStatus(t, srv.URL+older.StatusURL); !strings.Contains(st.Message, "another submission ("+newer.ID+") is the one posted") {
		t.Errorf("the older submission's status says %q", st.Message)
	}
}

// TestPostGivesUpAfterRetryPeriod: edX unreachable for longer than the retry
// period fails the post for good, saying so; a refusal fails it at once.
func TestPostGivesUpAfterRetryPeriod(t *testing.T) {
	poster := &fakePoster{}
	srv := newServerWith(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"},
		service.Config{Poster: poster, PostRetryPeriod: 300 * time.Millisecond, PostBackoffBase: 20 * time.Millisecond, PostBackoffMax: 40 * time.Millisecond})
	down := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	waitFor(t, func() bool { return postStatus(t, srv, down.ID).Status == service.PostFailed })
	p := postStatus(t, srv, down.ID)
	if p.Attempts < 3 || !strings.Contains(p.LastError, "could not be reached") {
		t.Errorf("post after the retry period: %+v; want several attempts and the reason", p)
	}

	poster.set(func(p *fakePoster) { p.refuse = true })
	refused := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	waitFor(t, func() bool { return postStatus(t, srv, refused.ID).Status == service.PostFailed })
	time.Sleep(100 * time.Millisecond) // several backoffs: no retry comes
	poster.set(func(p *fakePoster) {
		if p.calls[refused.ID] != 1 {
			t.Errorf("a refused post was attempted %d times; want once", p.calls[refused.ID])
		}
	})
	if p := postStatus(t, srv, refused.ID); !strings.Contains(p.LastError, "User not found") {
		t.Errorf("refused post: %+v", p)
	}
}
