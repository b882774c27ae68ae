package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/sqlite"
)

// notebookCalling is notebook("lab01") whose code cells open it as
// otter.Notebook(name) (source in nbformat's list-of-lines form).
func notebookCalling(name string) string {
	src, _ := json.Marshal([]string{"# Initialize Otter\n", "import otter\n", "grader = otter.Notebook(" + pyQuote(name) + ")"})
	return `{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "code", "source": ` + string(src) + `, "metadata": {}, "outputs": [], "execution_count": null}],
		"metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "lab01"}}}`
}

func pyQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// syncBuffer is a log destination tests read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNotebookNameOfEachRequestForm: the notebook is graded, and shown,
// under the name the request gives (the Submit button's
// X-Otter-Notebook-Path, else an upload's file name), else the one its
// otter.Notebook call names, else the assignment's; an unusable name is
// skipped for the next.
func TestNotebookNameOfEachRequestForm(t *testing.T) {
	runner := &fakeRunner{}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	plain := notebook("lab01")               // no otter.Notebook call
	calls := notebookCalling("inside.ipynb") // calls otter.Notebook("inside.ipynb")
	button := func(nb string) string { return `{"nb": ` + nb + `}` }
	type form struct {
		contentType string
		body        io.Reader
	}
	jsonBody := func(s string) func() form {
		return func() form { return form{"application/json", strings.NewReader(s)} }
	}
	upload := func(filename, nb string) func() form {
		return func() form {
			ct, body := multipartBody("file", filename, nb)
			return form{ct, body}
		}
	}
	tests := []struct {
		name   string
		header string // X-Otter-Notebook-Path; "" for none
		form   func() form
		want   string // the name graded under and shown
		stored string // the name kept with the submission
	}{
		{"button with a path", "work/lab01/passesAll.ipynb", jsonBody(button(calls)), "passesAll.ipynb", "passesAll.ipynb"},
		{"button with a URL-encoded path", "work/lab%2001/lab01%20(1).ipynb", jsonBody(button(calls)), "lab01 (1).ipynb", "lab01 (1).ipynb"},
		{"button with a raw path with spaces", "work/lab 01/lab01 (1).ipynb", jsonBody(button(plain)), "lab01 (1).ipynb", "lab01 (1).ipynb"},
		{"button with a copy's name", "Lab01-Copy1.ipynb", jsonBody(button(plain)), "Lab01-Copy1.ipynb", "Lab01-Copy1.ipynb"},
		{"button with a unicode path", "work/%C3%9Cbung%203%20%E2%80%93%20caf%C3%A9.ipynb", jsonBody(button(plain)), "Übung 3 – café.ipynb", "Übung 3 – café.ipynb"},
		{"button with a raw UTF-8 path", "work/实验一.ipynb", jsonBody(button(plain)), "实验一.ipynb", "实验一.ipynb"},
		{"button with a hostile path", "../../etc/passwd", jsonBody(button(calls)), "inside.ipynb", "inside.ipynb"},
		{"button with an encoded hostile path", "..%2F..%2F.ipynb", jsonBody(button(calls)), "inside.ipynb", "inside.ipynb"},
		{"button with .ipynb alone", "a/b/.ipynb", jsonBody(button(calls)), "inside.ipynb", "inside.ipynb"},
		{"button with a newline", "lab%0A01.ipynb", jsonBody(button(calls)), "inside.ipynb", "inside.ipynb"},
		{"button with CR LF", "lab01.ipynb%0D%0AX-Evil: 1", jsonBody(button(plain)), "lab01.ipynb", ""},
		{"button with a non-notebook", "work/lab01.py", jsonBody(button(plain)), "lab01.ipynb", ""},
		{"button without a path", "", jsonBody(button(calls)), "inside.ipynb", "inside.ipynb"},
		{"button without a path or call", "", jsonBody(button(plain)), "lab01.ipynb", ""},
		{"upload", "", upload("Lab01-Copy1.ipynb", plain), "Lab01-Copy1.ipynb", "Lab01-Copy1.ipynb"},
		{"upload with spaces", "", upload("lab01 (1).ipynb", calls), "lab01 (1).ipynb", "lab01 (1).ipynb"},
		{"upload with a Windows path", "", upload(`C:\Users\me\Downloads\lab01 (2).ipynb`, plain), "lab01 (2).ipynb", "lab01 (2).ipynb"},
		{"upload and a path", "work/passesAll.ipynb", upload("Lab01-Copy1.ipynb", plain), "passesAll.ipynb", "passesAll.ipynb"},
		{"upload with a hostile name", "", upload("../../etc/passwd", calls), "inside.ipynb", "inside.ipynb"},
		{"upload not a notebook", "", upload("lab01.json", plain), "lab01.ipynb", ""},
		{"bare notebook calling otter.Notebook", "", jsonBody(notebookCalling("other.ipynb")), "other.ipynb", "other.ipynb"},
		{"bare notebook", "", jsonBody(plain), "lab01.ipynb", ""},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		f := tt.form()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, f.body)
		req.Header.Set("Content-Type", f.contentType)
		if tt.header != "" {
			req.Header.Set(httpapi.NotebookPathHeader, tt.header)
		}
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
		var s submitted
		json.Unmarshal(body, &s)
		ids[i] = s.ID
		if got := statusNotebook(t, srv.URL+s.StatusURL); got != tt.want {
			t.Errorf("%s: status shows notebook %q, want %q", tt.name, got, tt.want)
		}
		sub, err := srv.store.Submission(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sub.NotebookName != tt.stored {
			t.Errorf("%s: stored name %q, want %q", tt.name, sub.NotebookName, tt.stored)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.svc.Run(ctx) }()
	waitFor(t, func() bool {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		return len(runner.jobs) == len(tests)
	})
	cancel()
	<-done
	graded := map[string]string{}
	for _, j := range runner.jobs {
		graded[j.ID] = j.NotebookName
	}
	for i, tt := range tests {
		if got := graded[ids[i]]; got != tt.want {
			t.Errorf("%s: graded as %q, want %q", tt.name, got, tt.want)
		}
		if got := statusNotebook(t, srv.URL+prefix+"submissions/"+ids[i]); got != tt.want {
			t.Errorf("%s: after grading, status shows notebook %q, want %q", tt.name, got, tt.want)
		}
	}
}

func statusNotebook(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, b := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %s", resp.StatusCode, b)
	}
	var st struct {
		Notebook *string `json:"notebook"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Notebook == nil {
		t.Fatalf("status without a notebook field: %s", b)
	}
	return *st.Notebook
}

// An unusable X-Otter-Notebook-Path is logged at debug level (and is not an
// error: the submission is accepted).
func TestUnusableNotebookPathIsLogged(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := service.New(store, newFakeCourses(t), &fakeRunner{}, service.Config{}, log)
	srv := httptest.NewServer(httpapi.Handler(svc, httpapi.DevIdentity{User: "alice"}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
	defer srv.Close()
	for _, h := range []string{"../../etc/passwd", "work/lab01.ipynb"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(`{"nb": `+notebook("lab01")+`}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(httpapi.NotebookPathHeader, h)
		if resp, body := do(t, req); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%q: %d %s", h, resp.StatusCode, body)
		}
	}
	var found int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "X-Otter-Notebook-Path") {
			found++
			if !strings.Contains(line, `"level":"DEBUG"`) || !strings.Contains(line, `"value":"../../etc/passwd"`) {
				t.Errorf("log line %s", line)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d log lines about the notebook path, want 1 (for the unusable one):\n%s", found, logs.String())
	}
}

// A submission stored before names were kept (none stored) is graded and
// shown under the assignment's name.
func TestSubmissionWithoutNameIsGradedUnderTheAssignments(t *testing.T) {
	runner := &fakeRunner{}
	srv := newServer(t, runner, httpapi.DevIdentity{User: "alice"})
	sub := &service.Submission{ID: service.NewID(), User: "alice", Status: service.StatusQueued, ReceivedAt: time.Now(),
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab02"}}
	if err := srv.store.CreateSubmission(context.Background(), sub, []byte(notebook("lab02"))); err != nil {
		t.Fatal(err)
	}
	if got := statusNotebook(t, srv.URL+prefix+"submissions/"+sub.ID); got != "lab02.ipynb" {
		t.Errorf("status shows notebook %q, want lab02.ipynb", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	waitFor(t, func() bool {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		return len(runner.jobs) == 1
	})
	if got := runner.jobs[0].NotebookName; got != "lab02.ipynb" {
		t.Errorf("graded as %q, want lab02.ipynb", got)
	}
}

// The Submit button of a student not signed in yet: the notebook's path
// survives the sign-in round trip with the held body.
func TestHeldSubmissionKeepsItsName(t *testing.T) {
	runner := &fakeRunner{}
	srv := newServer(t, runner, stubLogin{})
	client := noRedirects()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(`{"nb": `+notebookCalling("inside.ipynb")+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://hub.example")
	req.Header.Set(httpapi.NotebookPathHeader, "work/lab%2001/lab01%20(1).ipynb")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("anonymous Submit: %d; want 303 to sign-in", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	held := loc.Query().Get("held")
	if h, err := srv.store.Held(context.Background(), held, time.Now()); err != nil || h.NotebookName != "lab01 (1).ipynb" {
		t.Fatalf("held: name %q, %v", h.NotebookName, err)
	}
	resp, body := get(t, client, srv.URL+prefix+"oauth_callback?"+url.Values{"user": {"alice"}, "held": {held}, "next": {prefix}}.Encode())
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	var s submitted
	json.Unmarshal(body, &s)
	sub, err := srv.store.Submission(context.Background(), s.ID)
	if err != nil || sub.NotebookName != "lab01 (1).ipynb" {
		t.Fatalf("the queued submission: %+v, %v", sub, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.svc.Run(ctx)
	waitFor(t, func() bool {
		runner.mu.Lock()
		defer runner.mu.Unlock()
		return len(runner.jobs) == 1
	})
	if got := runner.jobs[0].NotebookName; got != "lab01 (1).ipynb" {
		t.Errorf("graded as %q, want lab01 (1).ipynb", got)
	}
}

// A body held by a version that kept no name gets the notebook's own when
// it is queued.
func TestHeldBodyWithoutNameUsesTheNotebooks(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, stubLogin{})
	key := service.NewID()
	body := []byte(`{"nb": ` + notebookCalling("inside.ipynb") + `}`)
	if err := srv.store.Hold(context.Background(), key, service.HeldSubmission{Body: body}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sub, err := srv.svc.SubmitHeld(context.Background(), service.Identity{Name: "alice"}, key)
	if err != nil || sub.NotebookName != "inside.ipynb" {
		t.Fatalf("SubmitHeld: %+v, %v", sub, err)
	}
}
