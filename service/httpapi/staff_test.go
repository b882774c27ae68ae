package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/service/httpapi"
)

// TestCourseOverview: course staff get the overview of an assignment
// (counts by status, the histogram of the grades edX is sent, time to
// grade), as JSON and as a page with an SVG histogram readable without
// JavaScript; students are refused.
func TestCourseOverview(t *testing.T) {
	srv := newServer(t, &gradesInTurn{grades: []float64{0.9, 0.4, 0.75}}, httpapi.DevIdentity{User: "alice"})
	srv.runWorkers(t)
	bob := httptest.NewServer(httpapi.Handler(srv.svc, httpapi.DevIdentity{User: "bob"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, quietLog()))
	defer bob.Close()
	for _, base := range []string{srv.URL, srv.URL, bob.URL} {
		s := submit(t, base, "application/json", strings.NewReader(notebook("lab01")))
		waitFor(t, func() bool { return getStatus(t, base+s.StatusURL).Status == "graded" })
	}
	site := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, quietLog()))
	defer site.Close()
	get := func(user, path, accept string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site.URL+prefix+path, nil)
		req.Header.Set("X-Test-User", user)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, body := do(t, req)
		return resp.StatusCode, string(body)
	}

	code, body := get("ta", "api/overview?course=8x&assignment=lab01", "")
	var o struct {
		Submissions int            `json:"submissions"`
		ByStatus    map[string]int `json:"by_status"`
		Students    int            `json:"students"`
		Histogram   []int          `json:"histogram"`
		TimeToGrade map[string]float64
	}
	if err := json.Unmarshal([]byte(body), &o); code != http.StatusOK || err != nil {
		t.Fatalf("the overview: %d %s (%v)", code, body, err)
	}
	// alice's latest is 0.4 (the policy's), bob's 0.75.
	if o.Submissions != 3 || o.ByStatus["graded"] != 3 || o.Students != 2 || o.Histogram[4] != 1 || o.Histogram[7] != 1 || o.Histogram[9] != 0 {
		t.Errorf("the overview: %s", body)
	}
	code, body = get("ta", "staff?course=8x&assignment=lab01", "text/html")
	if code != http.StatusOK {
		t.Fatalf("the overview page: %d %s", code, body)
	}
	for _, want := range []string{"Course overview · 8x · lab01", "<svg", "40–50%: 1", "70–80%: 1", "api/export/grades.csv?assignment=lab01&amp;course=8x", "Course overview</a>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview page lacks %q:\n%s", want, body)
		}
	}
	if code, body = get("alice", "staff", "text/html"); code != http.StatusForbidden || !strings.Contains(body, "Only course staff") {
		t.Errorf("a student opening the overview: %d %s; want 403", code, body)
	}
	if code, _ = get("alice", "api/overview", ""); code != http.StatusForbidden {
		t.Errorf("a student reading the overview: %d; want 403", code)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestNotebookDownload: course staff download a submitted notebook as it
// was submitted; its student and others may not.
func TestNotebookDownload(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	nb := notebook("lab01")
	s := submit(t, srv.URL, "application/json", strings.NewReader(nb))
	site := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, quietLog()))
	defer site.Close()
	get := func(user string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, site.URL+prefix+"api/submissions/"+s.ID+"/notebook", nil)
		req.Header.Set("X-Test-User", user)
		resp, body := do(t, req)
		return resp, string(body)
	}
	resp, body := get("ta")
	if resp.StatusCode != http.StatusOK || body != nb || !strings.Contains(resp.Header.Get("Content-Disposition"), "alice-lab01-") {
		t.Errorf("staff's download: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	for _, user := range []string{"alice", "bob"} {
		if resp, _ := get(user); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s's download: %d; want 403", user, resp.StatusCode)
		}
	}
}

// TestCourseStaff: the staff of one course (its staff group) see that
// course's submissions, overview and exports, and nothing of another's.
func TestCourseStaff(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	srv.runWorkers(t)
	s := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01"))) // course 8x
	waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "graded" })
	site := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, quietLog()))
	defer site.Close()
	get := func(user, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site.URL+prefix+path, nil)
		req.Header.Set("X-Test-User", user)
		resp, body := do(t, req)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct {
		user, path string
		code       int
		has        string
	}{
		{"gsi", "submissions/" + s.ID, http.StatusOK, `"score":0`}, // the hidden q2's score: staff see it
		{"gsi88", "submissions/" + s.ID, http.StatusNotFound, ""},
		{"gsi", "api/submissions?course=8x", http.StatusOK, s.ID},
		{"gsi", "api/submissions?course=8x&user=alice", http.StatusOK, s.ID},
		{"gsi", "api/submissions", http.StatusOK, `"submissions":[]`}, // without the course: their own
		{"gsi", "api/submissions?user=alice", http.StatusForbidden, ""},
		{"gsi88", "api/submissions?course=8x", http.StatusOK, `"submissions":[]`}, // their own in 8x: none
		{"gsi", "api/overview", http.StatusOK, `"submissions":1`},                 // their one course
		{"gsi", "api/overview?course=8x", http.StatusOK, `"submissions":1`},
		{"gsi88", "api/overview?course=8x", http.StatusForbidden, ""},
		{"gsi", "api/export/grades.csv?course=8x", http.StatusOK, "alice"},
		{"gsi88", "api/export/grades.csv?course=8x", http.StatusForbidden, ""},
		{"gsi", "api/submissions/" + s.ID + "/notebook", http.StatusOK, "otter_service"},
		{"gsi88", "api/submissions/" + s.ID + "/notebook", http.StatusNotFound, ""},
		{"alice", "api/overview?course=8x", http.StatusForbidden, ""},
	} {
		code, body := get(c.user, c.path)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s GET %s: %d %.300s; want %d with %q", c.user, c.path, code, body, c.code, c.has)
		}
	}
}
