package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service/httpapi"
)

// TestPages: a browser (Accept: text/html) gets pages where API clients
// get JSON: the list of one's submissions, with refusals, and a
// submission's page with the scores and feedback otter marks visible,
// nothing of a hidden test; errors as pages; every text escaped.
func TestPages(t *testing.T) {
	runner := resultRunner{&grading.Result{Grade: 2.0 / 3, Tests: []grading.Test{
		{Name: "q1", Score: 1, MaxScore: 1, Visibility: "visible", Output: "q1 passed: all visible cases"},
		{Name: "q2", Score: 1, MaxScore: 2, Visibility: "hidden", Output: "SECRET hidden case failed"},
	}, Feedback: []grading.Feedback{{Name: "Public Tests", Visibility: "visible", Output: "q1 - 1 result: Test case passed!"}}}}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	srv.runWorkers(t)
	log := quietLog()
	site := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20, HubURL: "/hub/home"}, log))
	defer site.Close()

	s := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "graded" })
	if resp, _ := post(t, srv.URL+prefix, "application/json", strings.NewReader(notebook(`lab<script>alert(1)</script>`))); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a notebook for an unknown assignment: %d; want 422", resp.StatusCode)
	}

	browse := func(user, path string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site.URL+path, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		resp, body := do(t, req)
		return resp.StatusCode, resp.Header, string(body)
	}
	mustHave := func(t *testing.T, what, body string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(body, p) {
				t.Errorf("%s lacks %q:\n%s", what, p, body)
			}
		}
	}

	code, h, body := browse("alice", prefix)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("the list page: %d %v", code, h)
	}
	mustHave(t, "the list page", body, "<h1>My submissions</h1>", `href="`+prefix+`submissions/`+s.ID+`"`, "Graded", "66.7%",
		"Not accepted", "lab&lt;script&gt;", `href="/hub/home"`, `lang="en"`, "<caption")
	if strings.Contains(body, "<script>alert") {
		t.Errorf("the list page does not escape what the notebook said: %s", body)
	}
	if strings.Contains(body, "data-live") {
		t.Errorf("a list with nothing left to grade still looks again")
	}

	code, _, body = browse("alice", s.StatusURL)
	if code != http.StatusOK {
		t.Fatalf("the submission's page: %d %s", code, body)
	}
	mustHave(t, "the submission's page", body, "lab01", "66.7%", "q1", "q2", "withheld", "q1 passed: all visible cases",
		"Public Tests", "Test case passed!", s.ID)
	if strings.Contains(body, "SECRET") {
		t.Errorf("the student's page shows a hidden test's output:\n%s", body)
	}
	if code, _, body = browse("ta", s.StatusURL); code != http.StatusOK || !strings.Contains(body, "SECRET hidden case failed") || !strings.Contains(body, "alice") {
		t.Errorf("course staff's page of alice's submission: %d; want every output, and whose it is:\n%s", code, body)
	}
	code, _, body = browse("carol", s.StatusURL)
	if code != http.StatusNotFound || !strings.Contains(body, "There is no submission") || !strings.Contains(body, "<html") {
		t.Errorf("another student's submission page: %d %s; want a 404 page", code, body)
	}

	// JSON stays JSON; the assets are served; nothing else is.
	req, _ := http.NewRequest(http.MethodGet, site.URL+prefix, nil)
	req.Header.Set("X-Test-User", "alice")
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"user":"alice"`) {
		t.Errorf("GET %s without Accept: %d %s; want who the service takes alice for", prefix, resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, site.URL+prefix+"api/submissions", nil)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("Accept", "text/html")
	if resp, body := do(t, req); !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("the API under api/ answered a browser with %s: %s", resp.Header.Get("Content-Type"), body)
	}
	for file, ct := range map[string]string{"style.css": "text/css", "live.js": "text/javascript"} {
		resp, body := do(t, mustRequest(t, http.MethodGet, site.URL+prefix+"static/"+file))
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || len(body) < 100 {
			t.Errorf("static/%s: %d %s", file, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, p := range []string{"static/list.html", "static/..%2fpages.go", "static/nothing.css"} {
		if resp, _ := do(t, mustRequest(t, http.MethodGet, site.URL+prefix+p)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d; want 404", p, resp.StatusCode)
		}
	}
}
