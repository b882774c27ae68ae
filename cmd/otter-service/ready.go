package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/otter-service/otter-service/courseconfig/git"
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
