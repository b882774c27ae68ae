package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
)

// headerIdentity authenticates a request as the user its X-Test-User header
// names.
type headerIdentity map[string]service.Identity

func (h headerIdentity) Authenticate(r *http.Request) (service.Identity, error) {
	if who, ok := h[r.Header.Get("X-Test-User")]; ok {
		return who, nil
	}
	return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "Who are you?")
}

// resultRunner grades every notebook with res.
type resultRunner struct{ res *grading.Result }

func (r resultRunner) Run(context.Context, grading.Job) (*grading.Result, error) { return r.res, nil }

// What a student sees of the questions follows otter's visibility: the
// score and output of visible tests only; staff see everything.
func TestStatusFollowsVisibility(t *testing.T) {
	res := &grading.Result{Grade: 0.375, Tests: []grading.Test{
		{Name: "q1", Score: 1, MaxScore: 1, Visibility: grading.VisibilityVisible, Output: "q1 results: All test cases passed!"},
		{Name: "q2", Score: 0.5, MaxScore: 2, Visibility: grading.VisibilityHidden, Output: "q2 - 2 result: SECRET-HIDDEN-CASE"},
		{Name: "q3", Score: 0, MaxScore: 1, Visibility: grading.VisibilityAfterPublished, Output: "q3 - 1 result: SECRET-AFTER-PUBLISHED"},
		{Name: "q4", Score: 0, MaxScore: 4, Visibility: grading.VisibilityAfterDueDate, Output: "q4 - 1 result: SECRET-AFTER-DUE-DATE"},
	}}
	ids := headerIdentity{
		"alice": {Name: "alice"},
		"bob":   {Name: "bob"},
		"prof":  {Name: "prof", Admin: true},
		"ta":    {Name: "ta", Admin: true}, // as OTTER_STAFF_GROUP members are
	}
	srv := newServer(t, resultRunner{res}, ids)
	s := submitAs(t, srv, "alice")

	get := func(user string) (int, []byte, status) { return statusAs(t, srv, s.StatusURL, user) }
	waitFor(t, func() bool { _, _, st := get("alice"); return st.Status == "graded" })

	t.Run("owner", func(t *testing.T) {
		_, body, st := get("alice")
		if st.Grade == nil || *st.Grade != res.Grade || len(st.Questions) != 4 {
			t.Fatalf("status %s; want the grade and four questions", body)
		}
		q1 := st.Questions[0]
		if q1.Name != "q1" || q1.MaxScore != 1 || q1.Visibility != "visible" || q1.Score == nil || *q1.Score != 1 || q1.Output != res.Tests[0].Output {
			t.Errorf("visible question = %+v; want its score and output", q1)
		}
		for i, q := range st.Questions[1:] {
			want := res.Tests[i+1]
			if q.Name != want.Name || q.MaxScore != want.MaxScore || q.Visibility != want.Visibility || q.Score != nil || q.Output != "" {
				t.Errorf("question %s = %+v; want its name, max score and visibility only", want.Name, q)
			}
		}
		var raw struct {
			Questions []map[string]any `json:"questions"`
		}
		json.Unmarshal(body, &raw)
		for _, q := range raw.Questions[1:] {
			if _, ok := q["score"]; ok {
				t.Errorf("withheld question %v has a score", q)
			}
		}
		if strings.Contains(string(body), "SECRET") {
			t.Errorf("the owner's status shows hidden output: %s", body)
		}
	})
	for _, staff := range []string{"prof", "ta"} {
		t.Run(staff, func(t *testing.T) {
			_, body, st := get(staff)
			if st.Grade == nil || len(st.Questions) != 4 {
				t.Fatalf("status %s", body)
			}
			for i, q := range st.Questions {
				want := res.Tests[i]
				if q.Name != want.Name || q.MaxScore != want.MaxScore || q.Visibility != want.Visibility ||
					q.Score == nil || *q.Score != want.Score || q.Output != want.Output {
					t.Errorf("staff see question %+v; want all of %+v", q, want)
				}
			}
		})
	}
	t.Run("another student", func(t *testing.T) {
		if code, body, _ := get("bob"); code != http.StatusNotFound {
			t.Errorf("bob: %d %s; want 404", code, body)
		}
	})
	t.Run("the store keeps the full record", func(t *testing.T) {
		sub, err := srv.store.Submission(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(sub.Questions) != 4 {
			t.Fatalf("stored questions %+v", sub.Questions)
		}
		for i, q := range sub.Questions {
			want := res.Tests[i]
			if q != (service.Question{Name: want.Name, Score: want.Score, MaxScore: want.MaxScore, Visibility: want.Visibility, Output: want.Output}) {
				t.Errorf("stored %+v; want all of %+v", q, want)
			}
		}
	})
}

// With otter's defaults (what otter 7 wrote: grading/testdata/gen.sh) every
// scored question is hidden, and its output shows the hidden test cases;
// the owner gets otter's visible "Public Tests" summary as feedback, and
// staff everything.
func TestStatusShowsPublicTests(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "grading", "testdata", "default.results.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := grading.ParseResults(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	// q2's hidden case, assert f(-1) == 0, fails: its (hidden) output says
	// so, the Public Tests summary does not.
	const hiddenCase = "f(-1)"
	if len(res.Feedback) != 1 || res.Feedback[0].Name != "Public Tests" || !strings.Contains(res.Tests[1].Output, hiddenCase) {
		t.Fatalf("default.results.json parsed as %+v; want Public Tests and q2 showing its hidden case", res)
	}
	res.Feedback = append(res.Feedback, grading.Feedback{Name: "staff only", Visibility: grading.VisibilityHidden, Output: "SECRET-FEEDBACK"})
	ids := headerIdentity{"alice": {Name: "alice"}, "prof": {Name: "prof", Admin: true}}
	srv := newServer(t, resultRunner{res}, ids)
	s := submitAs(t, srv, "alice")
	get := func(user string) ([]byte, status) {
		_, body, st := statusAs(t, srv, s.StatusURL, user)
		return body, st
	}
	waitFor(t, func() bool { _, st := get("alice"); return st.Status == "graded" })

	t.Run("owner", func(t *testing.T) {
		body, st := get("alice")
		if st.Grade == nil || *st.Grade != 0.5 || len(st.Questions) != 3 {
			t.Fatalf("status %s; want grade 0.5 and three questions", body)
		}
		for _, q := range st.Questions {
			if q.Visibility != "hidden" || q.Score != nil || q.Output != "" {
				t.Errorf("question %+v; want it hidden, without score or output", q)
			}
		}
		want := []service.FeedbackView{{Name: "Public Tests", Visibility: "visible", Output: res.Feedback[0].Output}}
		if !slices.Equal(st.Feedback, want) {
			t.Errorf("feedback %+v; want otter's Public Tests summary", st.Feedback)
		}
		if !strings.Contains(st.Feedback[0].Output, "q3 results:") {
			t.Errorf("Public Tests output %q; want q3's failing public case", st.Feedback[0].Output)
		}
		if strings.Contains(string(body), hiddenCase) || strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "staff only") {
			t.Errorf("the owner's status shows hidden output: %s", body)
		}
	})
	t.Run("staff", func(t *testing.T) {
		_, st := get("prof")
		if len(st.Questions) != 3 || st.Questions[1].Output != res.Tests[1].Output || len(st.Feedback) != 2 ||
			st.Feedback[0].Output != res.Feedback[0].Output || st.Feedback[1] != (service.FeedbackView{Name: "staff only", Visibility: "hidden", Output: "SECRET-FEEDBACK"}) {
			t.Errorf("staff see questions %+v and feedback %+v; want everything", st.Questions, st.Feedback)
		}
	})
	t.Run("the store keeps the full record", func(t *testing.T) {
		sub, err := srv.store.Submission(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []service.Feedback{
			{Name: "Public Tests", Visibility: "visible", Output: res.Feedback[0].Output},
			{Name: "staff only", Visibility: "hidden", Output: "SECRET-FEEDBACK"},
		}
		if !slices.Equal(sub.Feedback, want) {
			t.Errorf("stored feedback %+v; want %+v", sub.Feedback, want)
		}
	})
}

// submitAs submits a lab01 notebook as user (a headerIdentity name) and
// runs the service's workers until the test ends.
func submitAs(t *testing.T, srv *server, user string) submitted {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(notebook("lab01")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-User", user)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var s submitted
	json.Unmarshal(body, &s)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.svc.Run(ctx)
	return s
}

// statusAs gets a submission's status as user.
func statusAs(t *testing.T, srv *server, statusURL, user string) (int, []byte, status) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+statusURL, nil)
	req.Header.Set("X-Test-User", user)
	resp, body := do(t, req)
	var st status
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, body, st
}
