package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/service/httpapi"
)

// users are the pages' and lists' users: "ta" is course staff.
// "gsi" is staff of course 8x only, "gsi88" of another course.
var users = headerIdentity{"alice": {Name: "alice"}, "bob": {Name: "bob"}, "carol": {Name: "carol"}, "ta": {Name: "ta", Admin: true},
	"gsi": {Name: "gsi", Courses: []string{"8x"}}, "gsi88": {Name: "gsi88", Courses: []string{"88e"}}}

// runWorkers runs the service's workers until t ends.
func (s *server) runWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

type listed struct {
	Submissions []struct {
		ID, User, Assignment, Status string
		StatusURL                    string   `json:"status_url"`
		Grade                        *float64 `json:"grade"`
	} `json:"submissions"`
	Refused []struct {
		Assignment, Message string
	} `json:"refused"`
	Next    string `json:"next"`
	NextURL string `json:"next_url"`
}

// TestListSubmissions: GET {prefix}api/submissions lists a student's own
// submissions, newest first, a page at a time, and anyone's for course
// staff, filtered; bad queries get 400 naming the problem, another's list
// 403, nobody 401.
func TestListSubmissions(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	log := quietLog()
	api := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer api.Close()
	srv.runWorkers(t)
	var mine []string // newest first
	for _, a := range []string{"lab01", "lab02", "lab01"} {
		s := submit(t, srv.URL, "application/json", strings.NewReader(notebook(a)))
		mine = append([]string{s.ID}, mine...)
		waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "graded" })
	}
	// A refused notebook: the Submit button never shows why, the list does.
	if resp, body := post(t, srv.URL+prefix, "application/json", strings.NewReader(notebook("lab99"))); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a notebook for lab99: %d %s; want 422", resp.StatusCode, body)
	}
	bobSrv := httptest.NewServer(httpapi.Handler(srv.svc, httpapi.DevIdentity{User: "bob"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer bobSrv.Close()
	bobs := submit(t, bobSrv.URL, "application/json", strings.NewReader(notebook("lab01")))

	get := func(user string, _ bool, path string) (int, listed, string) { // staff: as users says
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api.URL+path, nil)
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		resp, body := do(t, req)
		var l listed
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, body)
			}
		}
		return resp.StatusCode, l, string(body)
	}
	ids := func(l listed) []string {
		var ids []string
		for _, s := range l.Submissions {
			ids = append(ids, s.ID)
		}
		return ids
	}

	code, l, body := get("alice", false, prefix+"api/submissions")
	if code != http.StatusOK || strings.Join(ids(l), ",") != strings.Join(mine, ",") || l.Next != "" {
		t.Fatalf("alice's list: %d %s; want her 3, newest first", code, body)
	}
	if len(l.Refused) != 1 || l.Refused[0].Assignment != "lab99" || !strings.Contains(l.Refused[0].Message, "lab99") ||
		strings.HasPrefix(l.Refused[0].Message, "submission refused") {
		t.Errorf("alice's refused notebook in her list: %+v; want lab99's with the sentence she was answered", l.Refused)
	}
	for _, s := range l.Submissions {
		if s.User != "alice" || s.Status != "graded" || s.Grade == nil || s.StatusURL != prefix+"submissions/"+s.ID {
			t.Errorf("alice's list has %+v", s)
		}
	}
	// Pages: 2, then 1.
	code, l, body = get("alice", false, prefix+"api/submissions?limit=2")
	if code != http.StatusOK || len(l.Submissions) != 2 || l.NextURL == "" {
		t.Fatalf("a page of 2: %d %s", code, body)
	}
	code, l2, body := get("alice", false, l.NextURL)
	if len(l2.Refused) != 0 {
		t.Errorf("the refusals again on the next page: %s", body)
	}
	if code != http.StatusOK || strings.Join(append(ids(l), ids(l2)...), ",") != strings.Join(mine, ",") || l2.NextURL != "" {
		t.Fatalf("the next page: %d %s", code, body)
	}
	// Staff: anyone's, filtered.
	if code, l, body = get("ta", true, prefix+"api/submissions?course=8x&assignment=lab01"); code != http.StatusOK ||
		strings.Join(ids(l), ",") != strings.Join([]string{bobs.ID, mine[0], mine[2]}, ",") {
		t.Errorf("staff's list of lab01: %d %s", code, body)
	}
	if code, l, body = get("ta", true, prefix+"api/submissions?user=bob"); code != http.StatusOK || len(l.Submissions) != 1 || l.Submissions[0].ID != bobs.ID {
		t.Errorf("staff's list of bob's: %d %s", code, body)
	}
	if code, l, body = get("ta", true, prefix+"api/submissions?user=alice"); code != http.StatusOK || len(l.Submissions) != 3 || len(l.Refused) != 1 {
		t.Errorf("staff's list of alice's: %d %s; want her 3 and her refusal", code, body)
	}
	if code, l, body = get("ta", true, prefix+"api/submissions"); code != http.StatusOK || len(l.Submissions) != 4 || len(l.Refused) != 0 {
		t.Errorf("staff's list of all: %d %s; want 4 and no refusals", code, body)
	}
	if code, l, body = get("alice", false, prefix+"api/submissions?assignment=lab01"); code != http.StatusOK || len(l.Refused) != 0 {
		t.Errorf("alice's list of lab01: %d %s; want no refusal of lab99", code, body)
	}
	if code, l, body = get("carol", false, prefix+"api/submissions"); code != http.StatusOK || len(l.Submissions) != 0 {
		t.Errorf("a student with none: %d %s; want an empty list", code, body)
	}
	// Refusals.
	for path, want := range map[string]int{
		"?user=bob":                      http.StatusForbidden,
		"?status=done":                   http.StatusBadRequest,
		"?limit=0":                       http.StatusBadRequest,
		"?limit=501":                     http.StatusBadRequest,
		"?since=yesterday":               http.StatusBadRequest,
		"?colour=red":                    http.StatusBadRequest,
		"?after=not-a-cursor":            http.StatusBadRequest,
		"?since=2026-12-01T09:00:00Z":    http.StatusOK,
		"?status=graded&assignment=lab2": http.StatusOK,
	} {
		if code, _, body := get("alice", false, prefix+"api/submissions"+path); code != want {
			t.Errorf("alice GET %s: %d %s; want %d", path, code, body, want)
		} else if code >= 400 && !strings.Contains(body, `"message"`) {
			t.Errorf("alice GET %s: %s; want a JSON error with a message", path, body)
		}
	}
	if code, _, body := get("", false, prefix+"api/submissions"); code != http.StatusUnauthorized {
		t.Errorf("nobody's list: %d %s; want 401", code, body)
	}
}
