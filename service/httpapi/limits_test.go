package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// userHeader authenticates each request as the user its X-Test-User names.
type userHeader struct{}

func (userHeader) Authenticate(r *http.Request) (service.Identity, error) {
	return service.Identity{Name: r.Header.Get("X-Test-User")}, nil
}

func postAs(t *testing.T, url, user string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"nb": `+notebook("lab01")+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-User", user)
	return do(t, req)
}

// TestQueueBound: a full queue refuses new submissions with 503 and
// Retry-After and a sentence for the student, and what is queued is all
// graded.
func TestQueueBound(t *testing.T) {
	srv := newServerWith(t, &fakeRunner{}, userHeader{}, service.Config{MaxQueue: 3})
	var ids []string
	for _, u := range []string{"ann", "ben", "cat"} {
		resp, body := postAs(t, srv.URL+prefix, u)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("submission %d: %d %s", len(ids)+1, resp.StatusCode, body)
		}
		ids = append(ids, submittedID(t, body))
	}
	resp, body := postAs(t, srv.URL+prefix, "dan")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "submit again in a few minutes") {
		t.Fatalf("submission to a full queue: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	for _, id := range ids {
		waitFor(t, func() bool {
			sub, err := srv.store.Submission(context.Background(), id)
			return err == nil && sub.Status == service.StatusGraded
		})
	}
}

// TestPerStudentLimit: one student's submissions in flight are bounded
// (429 with a clear message); other students are not affected.
func TestPerStudentLimit(t *testing.T) {
	srv := newServerWith(t, &fakeRunner{}, userHeader{}, service.Config{MaxPerUser: 2})
	for i := 0; i < 2; i++ {
		if resp, body := postAs(t, srv.URL+prefix, "ann"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("ann's submission %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := postAs(t, srv.URL+prefix, "ann")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"too_many"`) ||
		!strings.Contains(string(body), "You already have 2 submissions waiting") {
		t.Fatalf("ann's third submission in flight: %d %s", resp.StatusCode, body)
	}
	if resp, body := postAs(t, srv.URL+prefix, "ben"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ben's submission while ann is at her limit: %d %s", resp.StatusCode, body)
	}
}

var _ httpapi.Authenticator = userHeader{}

func submittedID(t *testing.T, body []byte) string {
	t.Helper()
	i := strings.Index(string(body), `"id":"`)
	if i < 0 {
		t.Fatalf("no id in %s", body)
	}
	rest := string(body)[i+6:]
	return rest[:strings.Index(rest, `"`)]
}
