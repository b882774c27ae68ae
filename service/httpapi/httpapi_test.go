package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/sqlite"
)

const prefix = "/services/otter_grade/"

// fakeCourses serves one in-memory course-config.json.
type fakeCourses struct{ cfg courseconfig.Config }

func newFakeCourses(t testing.TB) *fakeCourses {
	cfg, err := courseconfig.Parse([]byte(`{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022",
		"subpath_to_zips": "materials", "assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8", "lab02": "7393ab3b1bebe7c87c678281328bc2fa"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCourses{cfg: cfg}
}

func (f *fakeCourses) Resolve(_ context.Context, a service.Assignment) (courseconfig.Assignment, error) {
	res, err := f.cfg.Lookup(a.Course, a.Section, a.Assignment)
	if err != nil {
		return res, service.Errorf(service.EUNPROCESSABLE, "This notebook is for an %v.", err)
	}
	return res, nil
}

func (f *fakeCourses) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	_, err := f.Resolve(ctx, a)
	return []byte("zip"), err
}

// fakeRunner grades every notebook with a fixed result, or an error, after
// waiting for release (if set).
type fakeRunner struct {
	release chan struct{}
	err     error
	mu      sync.Mutex
	jobs    []grading.Job
}

func (r *fakeRunner) Run(ctx context.Context, job grading.Job) (*grading.Result, error) {
	r.mu.Lock()
	r.jobs = append(r.jobs, job)
	r.mu.Unlock()
	if r.release != nil {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return &grading.Result{Grade: 0.5, Tests: []grading.Test{{Name: "q1", Score: 1, MaxScore: 1, Visibility: "visible"}, {Name: "q2", Score: 0, MaxScore: 1, Visibility: "hidden"}}}, nil
}

type server struct {
	*httptest.Server
	svc    *service.Service
	store  *sqlite.Store
	dbPath string
}

func newServer(t testing.TB, runner grading.Runner, auth httpapi.Authenticator) *server {
	t.Helper()
	return newServerWith(t, runner, auth, service.Config{})
}

// newServerWith is newServer with the service's configuration (workers,
// poll interval and logger are set here).
func newServerWith(t testing.TB, runner grading.Runner, auth httpapi.Authenticator, cfg service.Config) *server {
	t.Helper()
	return newServerWithAPI(t, runner, auth, cfg, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20})
}

// newServerWithAPI is newServerWith with the API's configuration.
func newServerWithAPI(t testing.TB, runner grading.Runner, auth httpapi.Authenticator, cfg service.Config, api httpapi.Config) *server {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "otter.db")
	store, err := sqlite.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Workers, cfg.PollInterval = 1, 20*time.Millisecond
	svc := service.New(store, newFakeCourses(t), runner, cfg, log)
	srv := httptest.NewServer(httpapi.Handler(svc, auth, api, log))
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &server{Server: srv, svc: svc, store: store, dbPath: dbPath}
}

func notebook(assignment string) string {
	return `{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": null}],
		"metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "` + assignment + `"}}}`
}

type errorBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func post(t testing.TB, url, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func multipartBody(field, filename, content string) (string, io.Reader) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("comment", "from curl")
	var part io.Writer
	if filename != "" {
		part, _ = w.CreateFormFile(field, filename)
	} else {
		part, _ = w.CreateFormField(field)
	}
	io.WriteString(part, content)
	w.Close()
	return w.FormDataContentType(), &b
}

func TestSubmitErrors(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	nb := notebook("lab01")
	mpType, mpEmpty := multipartBody("comment2", "", "no file here")
	tests := []struct {
		name        string
		contentType string
		body        io.Reader
		status      int
		code        string
		contains    string
	}{
		{"syntax", "application/json", strings.NewReader(`{"nb": {`), 400, "invalid", "not valid JSON"},
		{"too large", "application/json", strings.NewReader(`{"nb": "` + strings.Repeat("x", 2<<20) + `"}`), 413, "too_large", "larger than 1 MiB"},
		{"too large without length", "application/json", io.MultiReader(strings.NewReader(`{"nb": "`), strings.NewReader(strings.Repeat("x", 2<<20))), 413, "too_large", "Clear large outputs"},
		{"content type", "text/plain", strings.NewReader(nb), 415, "unsupported", "application/json"},
		{"no content type", "", strings.NewReader(nb), 415, "unsupported", "multipart"},
		{"form encoded", "application/x-www-form-urlencoded", strings.NewReader("nb=" + nb), 415, "unsupported", ""},
		{"not nbformat 4", "application/json", strings.NewReader(strings.Replace(nb, `"nbformat": 4`, `"nbformat": 3`, 1)), 422, "unprocessable", "format 4"},
		{"no otter metadata", "application/json", strings.NewReader(`{"nb": {"nbformat": 4, "cells": [], "metadata": {}}}`), 422, "unprocessable", "otter_service"},
		{"unknown assignment", "application/json", strings.NewReader(notebook("lab99")), 422, "unprocessable", `"lab99"`},
		{"multipart without a file", mpType, mpEmpty, 422, "unprocessable", "curl -F file=@"},
		{"broken multipart", "multipart/form-data; boundary=xyz", strings.NewReader("garbage"), 400, "invalid", "multipart"},
		// Bodies Python (which grades them) would read differently, or not at all.
		{"two metadata objects", "application/json", strings.NewReader(strings.Replace(nb, `"metadata": {"otter_service"`, `"metadata": {}, "metadata": {"otter_service"`, 1)), 422, "unprocessable", `the key "metadata" appears twice`},
		{"not UTF-8", "application/json", strings.NewReader(strings.Replace(nb, `x = 1`, "x = '\xff\xfe'", 1)), 422, "unprocessable", "not UTF-8"},
		{"nested too deep", "application/json", strings.NewReader(strings.Replace(nb, `"cells": [`, `"deep": `+strings.Repeat("[", 300)+strings.Repeat("]", 300)+`, "cells": [`, 1)), 422, "unprocessable", "nesting deeper than 200 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv.URL+prefix, tt.contentType, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.contains) {
				t.Errorf("body %s; want code %q and a message containing %q", body, tt.code, tt.contains)
			}
		})
	}
	if grades, _ := srv.store.Grades(context.Background(), service.GradeFilter{}); len(grades) != 0 {
		t.Errorf("refused submissions left grades: %v", grades)
	}
	// Refusals of notebooks the service could read are logged for staff.
	logs, err := srv.store.Logs(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var unknown bool
	for _, e := range logs {
		if e.Type != service.LogError || e.User != "alice" || !strings.HasPrefix(e.Message, "submission refused: ") {
			t.Errorf("log entry %+v", e)
		}
		unknown = unknown || (e.Assignment.Assignment == "lab99" && strings.Contains(e.Message, "lab99"))
	}
	if len(logs) != 7 || !unknown { // syntax, nbformat 3, no metadata, lab99, and the three Python would read differently
		t.Errorf("%d refusal log entries (unknown assignment logged: %v); want one per refused notebook", len(logs), unknown)
	}
}

func TestUnauthenticated(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.NoIdentity{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(notebook("lab01")))
	req.Header.Set("Content-Type", "application/json")
	// A forged Referer names a user; it must give nothing.
	req.Header.Set("Referer", srv.URL+"/user/alice/notebooks/lab01.ipynb")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthenticated"`) {
		t.Fatalf("status %d body %s; want 401 unauthenticated", resp.StatusCode, body)
	}
}

func TestRoutes(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nowhere", 404},
		{"GET", prefix + "submissions/doesnotexist", 404},
		{"DELETE", prefix, 405},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, body := do(t, req)
		var e errorBody
		if resp.StatusCode != tt.status || json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
			t.Errorf("%s %s: %d %s; want %d with a JSON error", tt.method, tt.path, resp.StatusCode, body, tt.status)
		}
	}
	// The probes answer HEAD as GET, without a body.
	for _, path := range []string{"/healthz", "/readyz"} {
		get, _ := do(t, mustRequest(t, "GET", srv.URL+path))
		head, body := do(t, mustRequest(t, "HEAD", srv.URL+path))
		if head.StatusCode != get.StatusCode || len(body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d, %q, %d bytes; want GET's %d and type %q, no body", path, head.StatusCode, head.Header.Get("Content-Type"), len(body), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

type submitted struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
	Message   string `json:"message"`
}

type status struct {
	ID            string                 `json:"id"`
	Status        string                 `json:"status"`
	Assignment    string                 `json:"assignment"`
	Attempts      int                    `json:"attempts"`
	QueuePosition int                    `json:"queue_position"`
	ReceivedAt    *time.Time             `json:"received_at"`
	StartedAt     *time.Time             `json:"started_at"`
	FinishedAt    *time.Time             `json:"finished_at"`
	Grade         *float64               `json:"grade"`
	Questions     []service.QuestionView `json:"questions"`
	Feedback      []service.FeedbackView `json:"feedback"`
	Error         *service.Failure       `json:"error"`
	Message       string                 `json:"message"`
}

func submit(t testing.TB, url, contentType string, body io.Reader) submitted {
	t.Helper()
	resp, b := post(t, url+prefix, contentType, body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	var s submitted
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func getStatus(t testing.TB, url string) status {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, b := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %s", resp.StatusCode, b)
	}
	var s status
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSubmitFormsAndLifecycle(t *testing.T) {
	runner := &fakeRunner{release: make(chan struct{})}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	nb := notebook("lab01")
	mpType, mpBody := multipartBody("file", "lab01.ipynb", nb)
	subs := []submitted{
		submit(t, srv.URL, "application/json", strings.NewReader(`{"nb": `+nb+`}`)),  // the Submit button
		submit(t, srv.URL, "application/json; charset=utf-8", strings.NewReader(nb)), // a bare .ipynb
		submit(t, srv.URL, mpType, mpBody),                                           // curl -F file=@lab01.ipynb
	}
	for i, s := range subs {
		if s.Status != "queued" || s.StatusURL != prefix+"submissions/"+s.ID || !strings.Contains(s.Message, "lab01") {
			t.Errorf("response %d = %+v", i, s)
		}
		st := getStatus(t, srv.URL+s.StatusURL)
		if st.Status != "queued" || st.QueuePosition != i+1 || st.ReceivedAt == nil || st.StartedAt != nil || st.Grade != nil {
			t.Errorf("status of %d before grading = %+v; want queued at position %d", i, st, i+1)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.svc.Run(ctx) }()
	waitFor(t, func() bool { return getStatus(t, srv.URL+subs[0].StatusURL).Status == "grading" })
	if st := getStatus(t, srv.URL+subs[1].StatusURL); st.QueuePosition != 1 {
		t.Errorf("second submission's queue position while the first grades = %d, want 1", st.QueuePosition)
	}
	close(runner.release)
	for _, s := range subs {
		waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "graded" })
		st := getStatus(t, srv.URL+s.StatusURL)
		if st.Grade == nil || *st.Grade != 0.5 || len(st.Questions) != 2 || st.Questions[0].Score == nil || st.Questions[1].Score != nil || st.StartedAt == nil || st.FinishedAt == nil || st.Error != nil {
			t.Errorf("graded status = %+v", st)
		}
	}
	cancel()
	<-done
	if len(runner.jobs) != 3 || !bytes.Equal(runner.jobs[0].Notebook, []byte(nb)) || runner.jobs[0].NotebookName != "lab01.ipynb" {
		t.Errorf("the runner got %d jobs; the first notebook should be the one submitted, without the wrapper", len(runner.jobs))
	}
	grades, _ := srv.store.Grades(context.Background(), service.GradeFilter{User: "alice"})
	if len(grades) != 3 {
		t.Errorf("grade records = %d, want 3", len(grades))
	}
}

func TestFailedGradingIsReported(t *testing.T) {
	runner := &fakeRunner{err: &grading.Error{Kind: grading.KindTimeout, Message: "Grading took longer than 10m0s."}}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	s := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "failed" })
	st := getStatus(t, srv.URL+s.StatusURL)
	if st.Error == nil || st.Error.Code != "timeout" || st.Grade != nil || !strings.Contains(st.Message, "longer than") {
		t.Errorf("failed status = %+v", st)
	}
	logs, _ := srv.store.Logs(context.Background(), s.ID)
	if len(logs) == 0 || logs[len(logs)-1].Type != service.LogError {
		t.Errorf("no error logged for the failed grading: %+v", logs)
	}
}

func TestOthersSubmissionsAreHidden(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"})
	s := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bob := httptest.NewServer(httpapi.Handler(srv.svc, httpapi.DevIdentity{User: "bob"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer bob.Close()
	req, _ := http.NewRequest(http.MethodGet, bob.URL+s.StatusURL, nil)
	if resp, body := do(t, req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob reading alice's submission: %d %s; want 404", resp.StatusCode, body)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUnreadableNotebookFailsInsteadOfLooping(t *testing.T) {
	runner := &fakeRunner{}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	s := submit(t, srv.URL, "application/json", strings.NewReader(notebook("lab01")))
	segs, _ := filepath.Glob(filepath.Join(srv.dbPath+".notebooks", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	if err := os.WriteFile(segs[0], bytes.Repeat([]byte("x"), 300), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	waitFor(t, func() bool { return getStatus(t, srv.URL+s.StatusURL).Status == "failed" })
	st := getStatus(t, srv.URL+s.StatusURL)
	if st.Error == nil || st.Error.Code != service.FailureStorage || !strings.Contains(st.Error.Message, "submit it again") {
		t.Errorf("status = %+v; want failed with a storage error", st)
	}
	if len(runner.jobs) != 0 {
		t.Errorf("the runner was given a notebook that could not be read")
	}
}
