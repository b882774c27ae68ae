package httpapi_test

import (
	"context"
	"sync"
	"testing"

	"github.com/otter-service/otter-service/service"
)

// fakePoster stands in for edX (the pytest suite posts to an LTI consumer
// that checks signatures): down until opened, or refusing everything. The
// posting loop's own tests are in service/posting_test.go.
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
