package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/service"
)

// Defaults of Options.
const (
	DefaultInterval     = time.Minute
	DefaultMinRefresh   = 10 * time.Second
	DefaultFetchTimeout = 2 * time.Minute
)

// Options configure a Source.
type Options struct {
	Courses      map[string]Repo // course → repository
	CacheDir     string          // the clones live in CacheDir/<hash of URL and branch>
	Interval     time.Duration   // background fetch period after Start; < 0 for none, 0 for DefaultInterval
	MinRefresh   time.Duration   // least time between on-demand fetches of one repository
	FetchTimeout time.Duration   // 0 for DefaultFetchTimeout
	Log          *slog.Logger    // nil to discard
	Now          func() time.Time
}

// Source resolves assignments against the courses' repositories.
type Source struct {
	opts    Options
	log     *slog.Logger
	courses map[string]*repoState
	repos   []*repoState // distinct repositories, in course order

	mu   sync.Mutex
	base context.Context // fetches run on it; set by Start
	wg   sync.WaitGroup
}

var _ service.Courses = (*Source)(nil)

// New returns a Source. It does no I/O: Start, or the first lookup, opens
// the cached copies.
func New(opts Options) *Source {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Source{opts: opts, log: log, courses: map[string]*repoState{}, base: context.Background()}
	byKey := map[string]*repoState{}
	names := make([]string, 0, len(opts.Courses))
	for c := range opts.Courses {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, course := range names {
		repo := opts.Courses[course]
		key := repo.URL + "\x00" + repo.Branch
		st, ok := byKey[key]
		if !ok {
			sum := sha256.Sum256([]byte(key))
			st = &repoState{src: s, repo: repo, dir: filepath.Join(opts.CacheDir, hex.EncodeToString(sum[:12]))}
			byKey[key] = st
			s.repos = append(s.repos, st)
		}
		st.courses = append(st.courses, course)
		s.courses[course] = st
	}
	return s
}

// Start opens every cached copy (no network I/O, so lookups can be answered
// at once from what is on disk) and starts fetching in the background: at
// once, then every Interval, until ctx ends. Wait waits for that to stop.
func (s *Source) Start(ctx context.Context) {
	s.mu.Lock()
	s.base = ctx
	s.mu.Unlock()
	for _, st := range s.repos {
		st.open()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			st.refresh(ctx, 0)
			if s.opts.Interval < 0 {
				return
			}
			t := time.NewTicker(s.opts.Interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					st.refresh(ctx, 0)
				}
			}
		}()
	}
}

// Wait returns when the background fetching started by Start has stopped.
func (s *Source) Wait() { s.wg.Wait() }

// Refresh fetches every repository now (joining fetches already under way)
// and returns the errors, for tests and tools.
func (s *Source) Refresh(ctx context.Context) error {
	var errs []error
	for _, st := range s.repos {
		st.open()
		if err := st.refresh(ctx, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RefreshCourse implements service.CourseRefresher: it fetches course's
// repository now and returns the commit grading uses from then on. A fetch
// already under way may have begun before the caller's last push, so a
// second one follows it.
func (s *Source) RefreshCourse(ctx context.Context, course string) (string, error) {
	st, ok := s.courses[course]
	if !ok {
		return "", service.Errorf(service.EUNPROCESSABLE, "This grading service does not serve course %q.", course)
	}
	st.open()
	err := st.refresh(ctx, 0)
	if err == nil {
		err = st.refresh(ctx, 0)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		keeping := ""
		if snap := st.snapshot(); snap != nil {
			keeping = " (grading would use commit " + snap.commit.String() + ")"
		}
		return "", service.Errorf(service.EUNAVAILABLE, "The repository of course %q cannot be read as it is now%s: %v.", course, keeping, err)
	}
	snap := st.snapshot()
	if snap == nil {
		return "", service.Errorf(service.EUNAVAILABLE, "The repository of course %q has not been read yet.", course)
	}
	return snap.commit.String(), nil
}

func (s *Source) baseContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// CourseStatus is the state of one course's materials, for readiness checks
// and metrics. It holds no secret.
type CourseStatus struct {
	Course      string
	URL         string    // the repository, without credentials
	Branch      string    // "" until known, if the remote's default is used
	Commit      string    // the commit graded from; "" if none yet
	Available   bool      // false until a good commit has been read
	LastSuccess time.Time // the last fetch that succeeded (or the cache load at start)
	LastAttempt time.Time
	LastError   string // the last fetch's or validation's error; "" if it succeeded
	Refreshes   int    // fetches that succeeded since start
	Failures    int    // fetches or validations that failed since start
}

// Status returns the state of every course, in course order.
func (s *Source) Status() []CourseStatus {
	var out []CourseStatus
	for _, st := range s.repos {
		st.mu.Lock()
		cs := CourseStatus{
			URL:         redact(st.repo.URL),
			Branch:      st.repo.Branch,
			LastSuccess: st.lastSuccess,
			LastAttempt: st.lastAttempt,
			LastError:   st.lastErr,
			Refreshes:   st.refreshes,
			Failures:    st.failures,
		}
		if st.branchName != "" {
			cs.Branch = st.branchName
		}
		if st.snap != nil {
			cs.Commit, cs.Available = st.snap.commit.String(), true
		}
		st.mu.Unlock()
		for _, c := range st.courses {
			cs.Course = c
			out = append(out, cs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Course < out[j].Course })
	return out
}

// Resolve implements service.Courses.
func (s *Source) Resolve(ctx context.Context, a service.Assignment) (courseconfig.Assignment, error) {
	_, res, err := s.resolve(ctx, a)
	return res, err
}

func (s *Source) resolve(ctx context.Context, a service.Assignment) (*snapshot, courseconfig.Assignment, error) {
	st, ok := s.courses[a.Course]
	if !ok {
		return nil, courseconfig.Assignment{}, service.Errorf(service.EUNPROCESSABLE, "This notebook is for course %q, which this grading service does not serve. Check that you submitted the right notebook.", a.Course)
	}
	st.open()
	snap := st.snapshot()
	if snap == nil {
		// Never read successfully: try now, within the rate limit.
		st.refresh(ctx, s.opts.MinRefresh)
		if snap = st.snapshot(); snap == nil {
			reason := st.lastError()
			if reason == "" {
				reason = "it has not been fetched yet"
			}
			return nil, courseconfig.Assignment{}, service.Errorf(service.EUNAVAILABLE, "The materials of course %q cannot be read right now; try again in a few minutes. (%s)", a.Course, reason)
		}
	}
	res, err := snap.config.Lookup(a.Course, a.Section, a.Assignment)
	var unknown *courseconfig.UnknownError
	if errors.As(err, &unknown) {
		// The staff may have pushed the assignment since we last looked.
		st.refresh(ctx, s.opts.MinRefresh)
		snap = st.snapshot()
		res, err = snap.config.Lookup(a.Course, a.Section, a.Assignment)
	}
	if errors.As(err, &unknown) {
		return nil, res, service.Errorf(service.EUNPROCESSABLE, "This notebook is for %s, which is not set up for grading. Check that you submitted the right notebook, or tell your course staff.", describe(unknown))
	}
	return snap, res, err
}

// Autograder implements service.Courses. The zip is read from the same
// commit the assignment was resolved in, with courseconfig.CheckZip's limits.
func (s *Source) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	snap, res, err := s.resolve(ctx, a)
	if err != nil {
		return nil, err
	}
	data, err := snap.read(res.ZipPath, courseconfig.MaxZipSize)
	var cerr *contentError
	switch {
	case errors.As(err, &cerr):
		return nil, service.Errorf(service.EUNPROCESSABLE, "The autograder for %s/%s/%s cannot be read from the course repository: %v.", a.Course, a.Section, a.Assignment, err)
	case err != nil:
		s.log.Error("cannot read an autograder from the cached clone", "course", a.Course, "commit", snap.commit.String(), "path", res.ZipPath, "err", err)
		return nil, service.Errorf(service.EUNAVAILABLE, "The autograder for %s/%s/%s cannot be read right now; try again in a few minutes.", a.Course, a.Section, a.Assignment)
	}
	if _, err := courseconfig.CheckZip(data); err != nil {
		return nil, service.Errorf(service.EUNPROCESSABLE, "The autograder for %s/%s/%s in the course repository is unusable: %v.", a.Course, a.Section, a.Assignment, err)
	}
	return data, nil
}

func describe(u *courseconfig.UnknownError) string {
	if u.In == "" {
		return fmt.Sprintf("course %q", u.Name)
	}
	return fmt.Sprintf("%s %q of %s", u.What, u.Name, u.In)
}
