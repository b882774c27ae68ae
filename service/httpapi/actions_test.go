package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// bySubmission grades each submission with its own results in turn (the
// last one again once they run out): the first submission it sees with
// results[0], the next with results[1], and so on.
type bySubmission struct {
	mu      sync.Mutex
	results [][]*grading.Result
	seen    map[string]int
}

func (r *bySubmission) Run(_ context.Context, job grading.Job) (*grading.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	i, ok := r.seen[job.ID]
	if !ok {
		i = len(r.seen)
		r.seen[job.ID] = i
	}
	rs := r.results[i]
	res := rs[0]
	if len(rs) > 1 {
		r.results[i] = rs[1:]
	}
	if res.Grade < 0 {
		return nil, &grading.Error{Kind: grading.KindAutograder, Message: "The autograder is broken."}
	}
	return res, nil
}

func result(g float64, review ...string) *grading.Result {
	return &grading.Result{Grade: g, Tests: []grading.Test{{Name: "q1", Score: g, MaxScore: 1, Visibility: "visible"}}, Review: review}
}

// TestStaffActions: course staff regrade one submission and an
// assignment's newest submissions (the new grades reach edX), accept a
// submission held for review, post a grade again and read every action
// in the audit log; students and other courses' staff are refused each.
func TestStaffActions(t *testing.T) {
	runner := &bySubmission{results: [][]*grading.Result{
		{result(0.5)},                           // alice's first
		{result(0.6), result(0.8), result(0.9)}, // alice's second, regraded twice
		{result(0.7, "the notebook replaced the test runner"), result(1)}, // bob's
		{result(-1), result(0.4)}, // carol's
	}}
	poster := &fakePoster{open: true}
	srv := newServerWithAPI(t, runner, users, service.Config{Poster: poster}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20})
	srv.runWorkers(t)
	req := func(user, method, path, contentType, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, srv.URL+prefix+path, strings.NewReader(body))
		r.Header.Set("X-Test-User", user)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		resp, b := do(t, r)
		return resp.StatusCode, string(b)
	}
	statusOf := func(id string) status {
		t.Helper()
		_, body := req("ta", http.MethodGet, "api/submissions/"+id, "", "")
		var st status
		json.Unmarshal([]byte(body), &st)
		return st
	}
	submitAs := func(user string) string {
		t.Helper()
		code, body := req(user, http.MethodPost, "", "application/json", notebook("lab01"))
		var s submitted
		if err := json.Unmarshal([]byte(body), &s); code != http.StatusAccepted || err != nil {
			t.Fatalf("%s's submission: %d %s", user, code, body)
		}
		waitFor(t, func() bool { st := statusOf(s.ID).Status; return st != "queued" && st != "grading" })
		return s.ID
	}
	alice1, alice2, bob, carol := submitAs("alice"), submitAs("alice"), submitAs("bob"), submitAs("carol")
	if st := statusOf(bob); st.Status != string(service.StatusNeedsReview) {
		t.Fatalf("bob's = %+v; want needs_review", st)
	}
	if st := statusOf(carol); st.Status != string(service.StatusFailed) {
		t.Fatalf("carol's = %+v; want failed", st)
	}
	posted := func(id string) int {
		poster.mu.Lock()
		defer poster.mu.Unlock()
		n := 0
		for _, p := range poster.posted {
			if p == id {
				n++
			}
		}
		return n
	}
	waitFor(t, func() bool { return posted(alice2) == 1 })

	// Nobody but the course's staff may act.
	actions := []struct{ path, body string }{
		{"api/submissions/" + alice2 + "/regrade", ""},
		{"api/submissions/" + alice2 + "/repost", ""},
		{"api/submissions/" + bob + "/review", `{"decision": "accept"}`},
		{"api/regrades", `{"course": "8x", "assignment": "lab01", "which": "latest"}`},
	}
	for _, user := range []string{"alice", "bob", "gsi88"} {
		for _, a := range actions {
			code, body := req(user, http.MethodPost, a.path, "application/json", a.body)
			want := http.StatusForbidden
			if user == "gsi88" && strings.Contains(a.path, "submissions/") {
				want = http.StatusNotFound // another course's: not theirs to know of
			}
			if code != want || !strings.Contains(body, `"error"`) {
				t.Errorf("%s POST %s: %d %s; want %d", user, a.path, code, body, want)
			}
		}
		if code, _ := req(user, http.MethodGet, "api/audit?course=8x", "", ""); code != http.StatusForbidden {
			t.Errorf("%s reading the audit log: %d; want 403", user, code)
		}
	}
	if st := statusOf(alice2); st.Status != "graded" || *st.Grade != 0.6 {
		t.Fatalf("after the refused actions, alice's = %+v", st)
	}

	// Regrade one: graded again (0.8), and edX is sent the new grade.
	code, body := req("gsi", http.MethodPost, "api/submissions/"+alice2+"/regrade", "", "")
	if code != http.StatusAccepted || !strings.Contains(body, `"requeued":1`) {
		t.Fatalf("regrade: %d %s", code, body)
	}
	if code, body := req("gsi", http.MethodPost, "api/submissions/"+alice2+"/regrade", "", ""); code != http.StatusConflict && statusOf(alice2).Status == "queued" {
		t.Errorf("regrade of a queued submission: %d %s; want 409", code, body)
	}
	waitFor(t, func() bool { st := statusOf(alice2); return st.Status == "graded" && *st.Grade == 0.8 })
	waitFor(t, func() bool { return posted(alice2) == 2 })
	if gs, _ := srv.store.Grades(context.Background(), service.GradeFilter{SubmissionID: alice2}); len(gs) != 1 || gs[0].Grade != 0.8 {
		t.Errorf("after the regrade, Grade records = %+v", gs)
	}

	// Accept bob's held grade: recorded and posted.
	if code, body := req("ta", http.MethodPost, "api/submissions/"+bob+"/review", "application/json", `{"decision": "maybe"}`); code != http.StatusBadRequest {
		t.Errorf("review with a bad decision: %d %s", code, body)
	}
	if code, body := req("ta", http.MethodPost, "api/submissions/"+bob+"/review", "application/json", `{"decision": "accept"}`); code != http.StatusOK || !strings.Contains(body, `"status":"graded"`) {
		t.Fatalf("accept: %d %s", code, body)
	}
	waitFor(t, func() bool { return posted(bob) == 1 })

	// Regrade the failed ones: carol's.
	code, body = req("gsi", http.MethodPost, "api/regrades", "application/x-www-form-urlencoded", "course=8x&assignment=lab01&which=failed")
	if code != http.StatusAccepted || !strings.Contains(body, `"requeued":1`) {
		t.Fatalf("regrade of the failed: %d %s", code, body)
	}
	waitFor(t, func() bool { st := statusOf(carol); return st.Status == "graded" && *st.Grade == 0.4 })
	waitFor(t, func() bool { return posted(carol) == 1 })

	// Regrade the assignment's newest submissions: alice's second, bob's
	// and carol's, not alice's first.
	code, body = req("ta", http.MethodPost, "api/regrades", "application/json", `{"course": "8x", "assignment": "lab01", "which": "latest"}`)
	var batch struct {
		Batch       string `json:"batch"`
		Requeued    int    `json:"requeued"`
		ProgressURL string `json:"progress_url"`
	}
	if err := json.Unmarshal([]byte(body), &batch); code != http.StatusAccepted || err != nil || batch.Requeued != 3 {
		t.Fatalf("regrade of lab01: %d %s", code, body)
	}
	var progress struct {
		Total, Done int
		Submissions []struct{ ID string }
	}
	waitFor(t, func() bool {
		_, body := req("ta", http.MethodGet, "api/regrades/"+batch.Batch+"?course=8x", "", "")
		json.Unmarshal([]byte(body), &progress)
		return progress.Total == 3 && progress.Done == 3
	})
	for id, want := range map[string]float64{alice1: 0.5, alice2: 0.9, bob: 1, carol: 0.4} {
		if st := statusOf(id); st.Status != "graded" || *st.Grade != want {
			t.Errorf("after the assignment's regrade, %s = %s %v; want graded %v", id, st.Status, st.Grade, want)
		}
	}
	waitFor(t, func() bool { return posted(alice2) == 3 && posted(bob) == 2 && posted(carol) == 1 })
	if posted(alice1) != 1 {
		t.Errorf("alice's first was posted %d times; want once (when it was graded)", posted(alice1))
	}
	code, body = req("ta", http.MethodGet, "regrades/"+batch.Batch+"?course=8x", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"done":3`) {
		t.Errorf("progress as JSON: %d %s", code, body)
	}

	// Post again.
	if code, body := req("gsi", http.MethodPost, "api/submissions/"+carol+"/repost", "", ""); code != http.StatusOK {
		t.Fatalf("repost: %d %s", code, body)
	}
	waitFor(t, func() bool { return posted(carol) == 2 })

	// Every action, in the audit log, newest first, with who did it.
	code, body = req("gsi", http.MethodGet, "api/audit?course=8x", "", "")
	var audit struct {
		Entries []struct{ By, Action, Submission, Batch string }
	}
	if err := json.Unmarshal([]byte(body), &audit); code != http.StatusOK || err != nil {
		t.Fatalf("audit log: %d %s", code, body)
	}
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.By+" "+strings.Fields(e.Action)[0]+" "+e.Submission)
	}
	want := []string{"gsi asked " + carol, "ta asked ", "gsi asked ", "ta accepted " + bob, "gsi asked " + alice2}
	if strings.Join(got, "|") != strings.Join(want, "|") || audit.Entries[1].Batch != batch.Batch {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStaffActionPages: the pages' forms act and redirect to what
// changed; the submission page offers the actions to the course's staff
// only, the progress and audit pages show them.
func TestStaffActionPages(t *testing.T) {
	runner := &bySubmission{results: [][]*grading.Result{{result(0.5), result(0.75)}}}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newServerWithAPI(t, runner, users, service.Config{Now: clock}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20})
	srv.runWorkers(t)
	client := noRedirects()
	page := func(user, method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var r *http.Request
		if form != nil {
			r, _ = http.NewRequest(method, srv.URL+prefix+path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r, _ = http.NewRequest(method, srv.URL+prefix+path, nil)
		}
		r.Header.Set("X-Test-User", user)
		r.Header.Set("Accept", "text/html")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	r, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(notebook("lab01")))
	r.Header.Set("X-Test-User", "alice")
	r.Header.Set("Content-Type", "application/json")
	_, b := do(t, r)
	var s submitted
	json.Unmarshal(b, &s)
	waitFor(t, func() bool { return getStatusAs(t, srv.URL+s.StatusURL, "alice").Status == "graded" })

	if _, body := page("alice", http.MethodGet, "submissions/"+s.ID, nil); strings.Contains(body, "Grade it again") {
		t.Errorf("the student's page offers staff actions:\n%s", body)
	}
	_, body := page("ta", http.MethodGet, "submissions/"+s.ID, nil)
	if !strings.Contains(body, `action="`+prefix+`submissions/`+s.ID+`/regrade"`) || strings.Contains(body, "Send the grade to edX again") {
		t.Errorf("staff's page lacks the regrade form (or offers a repost with posting off):\n%s", body)
	}
	_, body = page("ta", http.MethodGet, "staff?course=8x&assignment=lab01", nil)
	if !strings.Contains(body, `action="`+prefix+`regrades"`) || !strings.Contains(body, `value="latest"`) {
		t.Errorf("the overview lacks the assignment's regrade form:\n%s", body)
	}

	// A day later (the clock is the service's).
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	resp, body := page("ta", http.MethodPost, "regrades", url.Values{"course": {"8x"}, "assignment": {"lab01"}, "which": {"latest"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix+"regrades/") {
		t.Fatalf("the regrade form: %d %q %s", resp.StatusCode, loc, body)
	}
	waitFor(t, func() bool {
		return getStatusAs(t, srv.URL+s.StatusURL, "alice").Status == "graded" && *getStatusAs(t, srv.URL+s.StatusURL, "alice").Grade == 0.75
	})
	_, body = page("ta", http.MethodGet, strings.TrimPrefix(loc, prefix), nil)
	if !strings.Contains(body, "1 of 1 regraded.") || !strings.Contains(body, "<progress") {
		t.Errorf("the progress page:\n%s", body)
	}
	// Time to grade is the students' wait: a regrade a day later is left out.
	r, _ = http.NewRequest(http.MethodGet, srv.URL+prefix+"api/overview?course=8x&assignment=lab01", nil)
	r.Header.Set("X-Test-User", "ta")
	_, b = do(t, r)
	var o struct {
		TimeToGrade map[string]float64 `json:"time_to_grade_seconds"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.TimeToGrade["max"] >= 3600 {
		t.Errorf("the overview's time to grade after a regrade: %s", b)
	}
	// A form's error is a page too.
	resp, body = page("alice", http.MethodPost, "submissions/"+s.ID+"/regrade", url.Values{})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<h1>Forbidden</h1>") {
		t.Errorf("a student's regrade form: %d\n%s", resp.StatusCode, body)
	}
	_, body = page("ta", http.MethodGet, "audit?course=8x", nil)
	if !strings.Contains(body, "asked for a regrade of the newest submission of each student of 8x/lab01") || !strings.Contains(body, ">progress</a>") {
		t.Errorf("the audit page:\n%s", body)
	}
}

func getStatusAs(t *testing.T, u, user string) status {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, u, nil)
	r.Header.Set("X-Test-User", user)
	_, b := do(t, r)
	var st status
	json.Unmarshal(b, &st)
	return st
}

// TestRegradesLeaveRoomForStudents: with a bound on the queue, a regrade
// that would take more than half of it is refused, naming why, and
// nothing is requeued.
func TestRegradesLeaveRoomForStudents(t *testing.T) {
	runner := &bySubmission{results: [][]*grading.Result{{result(0.5)}, {result(0.5)}, {result(0.5)}}}
	srv := newServerWith(t, runner, users, service.Config{MaxQueue: 4})
	srv.runWorkers(t)
	var ids []string
	for _, user := range []string{"alice", "bob", "carol"} {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(notebook("lab01")))
		r.Header.Set("X-Test-User", user)
		r.Header.Set("Content-Type", "application/json")
		_, b := do(t, r)
		var s submitted
		json.Unmarshal(b, &s)
		waitFor(t, func() bool { return getStatusAs(t, srv.URL+s.StatusURL, user).Status == "graded" })
		ids = append(ids, s.ID)
	}
	r, _ := http.NewRequest(http.MethodPost, srv.URL+prefix+"api/regrades", strings.NewReader(`{"course": "8x", "assignment": "lab01", "which": "latest"}`))
	r.Header.Set("X-Test-User", "ta")
	r.Header.Set("Content-Type", "application/json")
	resp, body := do(t, r)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "more than half of the queue") {
		t.Fatalf("a regrade of 3 with a queue of 4: %d %s; want 503", resp.StatusCode, body)
	}
	for _, id := range ids {
		if sub, err := srv.store.Submission(context.Background(), id); err != nil || sub.Status != service.StatusGraded {
			t.Errorf("after the refused regrade, %s = %+v, %v", id, sub, err)
		}
	}
}
