package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// Faulty is a store whose writes the suite can break. SetFaults(f) makes
// each of the store's commits call f with the name of its step (op),
// before the commit is made (applied false: an error from f stops it) and
// after it was applied (applied true: an error from f is returned instead
// of its answer, as if the answer was lost). Names of a claim's steps start
// with "claim:" and the kind. SetFaults(nil) turns it off.
type Faulty interface {
	SetFaults(f func(op string, applied bool) error)
}

// testClaimFaults: for each step of a claim of kind, a failure before it
// and a lost answer after it leave the item claimable again within one
// lease, and by one worker at a time.
func testClaimFaults(kind service.Kind) func(*testing.T, service.Store) {
	return func(t *testing.T, s service.Store) {
		f, ok := s.(Faulty)
		if !ok {
			t.Fatalf("%T does not implement storetest.Faulty, which the fault-injection cases need", s)
		}
		const ttl = time.Minute
		ctx := context.Background()
		n := 0
		// item makes a new item of kind due at now, and returns its key.
		item := func(now time.Time) string {
			n++
			user := fmt.Sprintf("user%02d", n)
			if kind == service.KindGrade {
				sub := newSub(n, user)
				sub.ReceivedAt = now.Add(-time.Hour)
				create(t, s, sub, []byte("{}"))
				return sub.ID
			}
			sub := gradedAs(t, s, user, now.Add(-time.Hour), 1, service.PostPending, "", now)
			return service.PostKey(sub.Assignment, user)
		}
		// done completes the item leased by l.
		done := func(l *service.Lease, now time.Time) {
			var err error
			if kind == service.KindGrade {
				err = s.Finish(ctx, l, service.Outcome{Status: service.StatusFailed, FinishedAt: now,
					Failure: &service.Failure{Code: service.FailureTimeout, Message: "test"}})
			} else {
				err = s.FinishPost(ctx, l, service.PostResult{Outcome: service.PostApplied, At: now})
			}
			if err != nil {
				t.Fatalf("completing %s: %v", l.ID, err)
			}
		}

		// The steps of a claim, from one that works.
		now := t0.Add(24 * time.Hour)
		var mu sync.Mutex
		var steps []string
		f.SetFaults(func(op string, applied bool) error {
			mu.Lock()
			defer mu.Unlock()
			if applied && strings.HasPrefix(op, "claim:"+string(kind)) && !containsString(steps, op) {
				steps = append(steps, op)
			}
			return nil
		})
		key := item(now)
		job, err := s.Claim(ctx, kind, now, ttl)
		f.SetFaults(nil)
		if err != nil || job == nil || job.Lease.ID != key {
			t.Fatalf("Claim = %+v, %v; want %s", job, err, key)
		}
		done(job.Lease, now)
		if len(steps) == 0 {
			t.Fatalf("a claim of %s made no write named claim:%s…", kind, kind)
		}

		for _, step := range steps {
			for _, applied := range []bool{false, true} {
				name := step + map[bool]string{false: " fails", true: " is applied, its answer lost"}[applied]
				now = now.Add(time.Hour)
				key := item(now)
				var once sync.Once
				f.SetFaults(func(op string, a bool) error {
					var err error
					if op == step && a == applied {
						once.Do(func() { err = service.Errorf(service.EUNAVAILABLE, "injected: %s", name) })
					}
					return err
				})
				job, _ := s.Claim(ctx, kind, now, ttl) // fails, or recovers at once
				f.SetFaults(nil)
				if job != nil && job.Lease.ID != key {
					t.Fatalf("%s: Claim = %+v; want %s or nothing", name, job, key)
				}
				when := now
				if job == nil {
					// Nothing may hold it for longer than one lease.
					if job, err = s.Claim(ctx, kind, now, ttl); err != nil {
						t.Fatalf("%s: Claim again: %v", name, err)
					}
					if job == nil {
						when = now.Add(ttl + time.Second)
						if job, err = s.Claim(ctx, kind, when, ttl); err != nil {
							t.Fatalf("%s: Claim after one lease: %v", name, err)
						}
					}
				}
				if job == nil || job.Lease.ID != key {
					t.Fatalf("%s: within one lease, Claim = %+v; want %s claimed again", name, job, key)
				}
				// The claim is exclusive, and its lease the item's current one.
				if other, err := s.Claim(ctx, kind, when, ttl); err != nil || other != nil {
					t.Fatalf("%s: a second Claim = %+v, %v; want nothing while the item is held", name, other, err)
				}
				if err := s.Extend(ctx, job.Lease, when, ttl); err != nil {
					t.Fatalf("%s: Extend of the new claim: %v", name, err)
				}
				done(job.Lease, when)
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
