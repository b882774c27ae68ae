package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/service"
)

// readiness runs the readiness checks at once and returns what is not ready,
// by name: the service shutting down, the store, the grading runner, and
// each course repository without a good copy to grade from.
func readiness(ctx context.Context, draining *atomic.Bool, store service.Store, runner interface{ Check(context.Context) error }, repos []git.CourseStatus) map[string]string {
	problems := map[string]string{}
	if draining.Load() {
		problems["shutdown"] = "shutting down"
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	check := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				mu.Lock()
				problems[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	check("store", store.Ping)
	if runner != nil {
		check("grading", runner.Check)
	}
	wg.Wait()
	for _, r := range repos {
		if !r.Available {
			msg := "no good copy of the course materials yet"
			if r.LastError != "" {
				msg += ": " + r.LastError
			}
			problems["course "+r.Course] = fmt.Sprintf("%s (%s)", msg, r.URL)
		}
	}
	return problems
}

// buildsPath is where the per-assignment image builds that failed are
// listed, beside /readyz and /metrics: outside the JupyterHub prefix, so
// the Hub's proxy never sends a browser there.
const buildsPath = "/diagnostics/builds"

// The Docker runner lists its failed builds; serve looks for this method.
var _ interface{ BuildFailures() []docker.BuildFailure } = (*docker.Runner)(nil)

// withDiagnostics serves GET and HEAD of buildsPath from failures (nil: a
// runner that builds no images) and everything else from api.
func withDiagnostics(api http.Handler, failures func() []docker.BuildFailure) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != buildsPath || r.Method != http.MethodGet && r.Method != http.MethodHead {
			api.ServeHTTP(w, r)
			return
		}
		list := []docker.BuildFailure{}
		if failures != nil {
			for _, f := range failures() {
				if f.Packages == nil {
					f.Packages = []string{}
				}
				list = append(list, f)
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(struct {
			FailedBuilds []docker.BuildFailure `json:"failed_builds"`
		}{list})
	})
}
