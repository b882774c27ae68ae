package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading/docker"
)

func TestDiagnosticsBuilds(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
	})
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	failed := docker.BuildFailure{Image: "otter-service-assignment:0123456789abcdef", Packages: []string{"no-such-package==1"},
		Message: "The packages this assignment's autograder requires could not be installed", Log: "ERROR: No matching distribution found for no-such-package==1",
		At: at, Until: at.Add(15 * time.Minute)}
	get := func(h http.Handler, method, path string) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String(), rec.Header()
	}

	h := withDiagnostics(api, func() []docker.BuildFailure { return []docker.BuildFailure{failed} })
	code, body, hdr := get(h, "GET", "/diagnostics/builds")
	var got struct {
		FailedBuilds []map[string]any `json:"failed_builds"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /diagnostics/builds: %d %q (%v)", code, body, err)
	}
	if len(got.FailedBuilds) != 1 {
		t.Fatalf("failed_builds = %v; want the one failure", got.FailedBuilds)
	}
	f := got.FailedBuilds[0]
	for _, k := range []string{"image", "packages", "setup_sh", "message", "log", "at", "until"} {
		if _, ok := f[k]; !ok {
			t.Errorf("a failed build has no %q: %v", k, f)
		}
	}
	if f["image"] != failed.Image || f["log"] != failed.Log || f["at"] != "2025-03-01T12:00:00Z" || f["until"] != "2025-03-01T12:15:00Z" {
		t.Errorf("failed build = %v; want %+v", f, failed)
	}

	// A build with only a setup.sh lists no packages as [], not null.
	h = withDiagnostics(api, func() []docker.BuildFailure { return []docker.BuildFailure{{Image: "x", Setup: true}} })
	if _, body, _ := get(h, "GET", "/diagnostics/builds"); !strings.Contains(body, `"packages":[]`) || !strings.Contains(body, `"setup_sh":true`) {
		t.Errorf("a setup.sh-only failure: %s", body)
	}

	// None, or a runner that builds no images: an empty list.
	for name, failures := range map[string]func() []docker.BuildFailure{
		"none":      func() []docker.BuildFailure { return nil },
		"no lister": nil,
	} {
		if code, body, _ := get(withDiagnostics(api, failures), "GET", "/diagnostics/builds"); code != 200 || strings.TrimSpace(body) != `{"failed_builds":[]}` {
			t.Errorf("%s: %d %s; want an empty list", name, code, body)
		}
	}

	// Everything else is the API's.
	for _, req := range [][2]string{{"POST", "/diagnostics/builds"}, {"GET", "/diagnostics/builds/x"}, {"GET", "/readyz"}, {"GET", prefix}} {
		if code, body, _ := get(h, req[0], req[1]); code != http.StatusTeapot || body != "api "+req[0]+" "+req[1] {
			t.Errorf("%s %s: %d %q; want it passed to the API", req[0], req[1], code, body)
		}
	}
}

// TestDiagnosticsServed checks the wiring: the service answers
// /diagnostics/builds on its port (the local runner builds nothing) and
// still serves the rest.
func TestDiagnosticsServed(t *testing.T) {
	root, _ := examples(t)
	env := baseEnv(t, root)
	env["OTTER_COMMAND"] = "/bin/true"
	p := start(t, env)
	for path, want := range map[string]string{"/diagnostics/builds": `{"failed_builds":[]}`, "/healthz": `alive`} {
		resp, err := http.Get(p.url(path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %s; want 200 with %s", path, resp.StatusCode, body, want)
		}
	}
}
