package httpapi_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// gradesInTurn grades the notebooks it is given with its grades in turn.
type gradesInTurn struct {
	mu     sync.Mutex
	grades []float64
}

func (r *gradesInTurn) Run(context.Context, grading.Job) (*grading.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.grades[0]
	r.grades = r.grades[1:]
	return &grading.Result{Grade: g, Tests: []grading.Test{{Name: "q1", Score: g, MaxScore: 1, Visibility: "visible"}}}, nil
}

// TestExportCSV: course staff download one row per student (the grade the
// posting policy selects, the best and the latest) and one per submission,
// matching the store; values a spreadsheet would run are neutralised;
// students are refused.
func TestExportCSV(t *testing.T) {
	srv := newServer(t, &gradesInTurn{grades: []float64{0.9, 0.4, 0.75}}, httpapi.DevIdentity{User: "alice"})
	srv.runWorkers(t)
	log := quietLog()
	evil := httptest.NewServer(httpapi.Handler(srv.svc, httpapi.DevIdentity{User: "=HYPERLINK(1)"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer evil.Close()
	for _, base := range []string{srv.URL, srv.URL, evil.URL} { // one at a time: the grades go in order
		s := submit(t, base, "application/json", strings.NewReader(notebook("lab01")))
		waitFor(t, func() bool { return getStatus(t, base+s.StatusURL).Status == "graded" })
	}
	site := httptest.NewServer(httpapi.Handler(srv.svc, users, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer site.Close()
	get := func(user, path string) (int, http.Header, [][]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site.URL+prefix+path, nil)
		req.Header.Set("X-Test-User", user)
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, resp.Header, nil
		}
		rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, resp.Header, rows
	}

	code, h, rows := get("ta", "api/export/grades.csv?course=8x&assignment=lab01")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "otter-grades-8x-lab01.csv") {
		t.Fatalf("grades.csv: %d %v", code, h)
	}
	want := [][]string{
		{"Student", "Course", "Section", "Assignment", "Grade (latest)", "Best grade", "Latest grade", "Submissions", "Graded submission", "Graded submission received (UTC)"},
		{"'=HYPERLINK(1)", "8x", "1", "lab01", "0.75", "0.75", "0.75", "1"},
		{"alice", "8x", "1", "lab01", "0.4", "0.9", "0.4", "2"},
	}
	if len(rows) != len(want) {
		t.Fatalf("grades.csv has %d rows: %v", len(rows), rows)
	}
	for i := range want {
		if got := rows[i][:len(want[i])]; strings.Join(got, "|") != strings.Join(want[i], "|") {
			t.Errorf("grades.csv row %d = %v; want %v", i, got, want[i])
		}
	}
	// The selected submission is alice's newest, as the store has it.
	list, _, err := srv.store.ListSubmissions(context.Background(), serviceFilter("alice"))
	if err != nil || len(list) != 2 || rows[2][8] != list[0].ID {
		t.Errorf("alice's graded submission in grades.csv is %q; the store's newest %v (%v)", rows[2][8], list, err)
	}

	code, _, rows = get("ta", "api/export/submissions.csv?course=8x")
	if code != http.StatusOK || len(rows) != 4 || rows[0][0] != "Submission" || rows[1][1] != "'=HYPERLINK(1)" || rows[1][7] != "0.75" || rows[1][6] != "graded" {
		t.Errorf("submissions.csv: %d %v", code, rows)
	}
	for path, wantCode := range map[string]int{
		"api/export/grades.csv?course=8x": http.StatusForbidden, // alice is a student
	} {
		if code, _, _ := get("alice", path); code != wantCode {
			t.Errorf("alice GET %s: %d; want %d", path, code, wantCode)
		}
	}
	for path, wantCode := range map[string]int{
		"api/export/other.csv":            http.StatusNotFound,
		"api/export/grades.csv?limit=5":   http.StatusBadRequest,
		"api/export/grades.csv?status=no": http.StatusBadRequest,
	} {
		if code, _, _ := get("ta", path); code != wantCode {
			t.Errorf("ta GET %s: %d; want %d", path, code, wantCode)
		}
	}
}

func serviceFilter(user string) service.SubmissionFilter { return service.SubmissionFilter{User: user} }
