// Package git serves course configurations and autograder zips from the
// courses' git repositories through go-git.
//
// Each repository has a shallow, single-branch, bare clone in its own
// directory under the cache directory, which survives restarts. A Source
// starts from the cached copy at once and fetches in the background, every
// Interval, and on demand (at most once per MinRefresh, all waiting
// submissions sharing one fetch) when a submission names an assignment the
// copy does not know. A lookup of a known assignment does no network I/O.
//
// Every fetched commit is validated (courseconfig.Load) before it replaces
// the one in use; a bad commit is logged with its id and the previous one
// stays. When the remote cannot be reached, grading goes on from the last
// good copy; Status reports the trouble. Credentials (Auth) never appear in
// errors or logs.
package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	gogitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/service"
)

// Repo says where a course's materials live and how to fetch them.
type Repo struct {
	URL    string // https://, http://, ssh://, user@host:path, file:// or a local path
	Branch string // "" for the remote's default branch
	Auth   Auth   // nil for none
}

// MaxZipSize bounds the autograder zips the source will read.
const MaxZipSize = courseconfig.MaxZipSize

// Defaults of Options.
const (
	DefaultInterval     = time.Minute
	DefaultMinRefresh   = 10 * time.Second
	DefaultFetchTimeout = 2 * time.Minute
)

// goodRef records, in each cached clone, the last commit that passed
// validation, so a restart starts from it.
const goodRef = plumbing.ReferenceName("refs/otter-service/good")

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
	data, err := snap.read(res.ZipPath, MaxZipSize)
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

// snapshot is one validated commit: its configuration, and a go-git
// repository handle of its own to read the zips from. go-git's storage is not
// safe for concurrent use, so reads are serialised per snapshot, and fetches
// write through a different handle.
type snapshot struct {
	commit plumbing.Hash
	config courseconfig.Config

	mu   sync.Mutex // serialises reads through tree
	tree *object.Tree
}

func (sn *snapshot) read(p string, max int64) ([]byte, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return treeFiles{sn.tree}.ReadFile(p, max)
}

// repoState is one repository's cached clone.
type repoState struct {
	src     *Source
	repo    Repo
	dir     string
	courses []string

	openOnce sync.Once

	fetchMu sync.Mutex        // held by the one fetch at a time; guards the fields below
	writer  *gogit.Repository // the handle fetches write through; nil until cloned
	branch  plumbing.ReferenceName
	lastBad plumbing.Hash // the newest commit rejected, so it is reported once
	badErr  string

	mu          sync.Mutex // guards the fields below
	snap        *snapshot  // the commit graded from; nil until one is good
	inflight    *fetchCall
	branchName  string
	lastAttempt time.Time
	lastSuccess time.Time
	lastErr     string
	refreshes   int
	failures    int
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func (st *repoState) attrs() []any {
	return []any{"courses", strings.Join(st.courses, ","), "repo", redact(st.repo.URL)}
}

func (st *repoState) snapshot() *snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.snap
}

func (st *repoState) lastError() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastErr
}

func (st *repoState) secrets() []string {
	var s []string
	if st.repo.Auth != nil {
		s = st.repo.Auth.secrets()
	}
	if u, err := url.Parse(st.repo.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			s = append(s, p)
		}
	}
	return s
}

// open adopts the cached clone's last good commit, if there is one. It does
// no network I/O.
func (st *repoState) open() {
	st.openOnce.Do(func() {
		st.fetchMu.Lock()
		defer st.fetchMu.Unlock()
		if st.src.opts.CacheDir == "" {
			return
		}
		r, err := openRepo(st.dir)
		if err != nil {
			return // nothing cached: the first fetch clones
		}
		st.writer = r
		st.branch = st.branchOf(r)
		ref, err := r.Storer.Reference(goodRef)
		if err != nil {
			return
		}
		snap, err := st.load(ref.Hash())
		if err != nil {
			st.src.log.Warn("the cached copy of a course repository is unusable; it will be fetched again", append(st.attrs(), "commit", ref.Hash().String(), "err", err)...)
			return
		}
		st.adopt(snap, "cache")
	})
}

// refresh brings the clone up to date. It joins a fetch already under way,
// or starts one unless the last began less than minAge ago, and waits for it
// (or for ctx). The fetch itself runs on the Source's context, so a caller
// that gives up does not cancel it for the others.
func (st *repoState) refresh(ctx context.Context, minAge time.Duration) error {
	base := st.src.baseContext()
	st.mu.Lock()
	c := st.inflight
	if c == nil {
		now := st.src.opts.Now()
		if base.Err() != nil || (minAge > 0 && !st.lastAttempt.IsZero() && now.Sub(st.lastAttempt) < minAge) {
			st.mu.Unlock()
			return nil
		}
		c = &fetchCall{done: make(chan struct{})}
		st.inflight = c
		st.lastAttempt = now
		st.src.wg.Add(1)
		go func() {
			defer st.src.wg.Done()
			fctx, cancel := context.WithTimeout(base, st.src.opts.FetchTimeout)
			err := st.update(fctx)
			cancel()
			st.mu.Lock()
			st.inflight = nil
			c.err = err
			st.mu.Unlock()
			close(c.done)
		}()
	}
	st.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// update fetches (or clones) and adopts the newest commit if it is valid.
func (st *repoState) update(ctx context.Context) error {
	st.fetchMu.Lock()
	defer st.fetchMu.Unlock()
	head, err := st.fetch(ctx)
	if err != nil {
		err = scrub(err, st.secrets())
		st.failed(err)
		return err
	}
	if cur := st.snapshot(); cur != nil && cur.commit == head {
		st.succeeded()
		return nil
	}
	if head == st.lastBad {
		st.failed(errors.New(st.badErr))
		return errors.New(st.badErr)
	}
	snap, err := st.load(head)
	if err != nil {
		err = scrub(err, st.secrets())
		st.lastBad, st.badErr = head, err.Error()
		keeping := "no earlier commit was good, so the course is unavailable"
		if cur := st.snapshot(); cur != nil {
			keeping = "grading continues with commit " + cur.commit.String()
		}
		st.src.log.Error("rejected a commit of a course repository: "+keeping, append(st.attrs(), "commit", head.String(), "err", err)...)
		st.failed(err)
		return err
	}
	if err := st.writer.Storer.SetReference(plumbing.NewHashReference(goodRef, head)); err != nil {
		st.src.log.Warn("cannot record the good commit in the cache; a restart will fetch again", append(st.attrs(), "err", err)...)
	}
	st.adopt(snap, "fetch")
	st.succeeded()
	return nil
}

// fetch brings the branch's newest commit into the clone, cloning first if
// there is none, and returns its hash.
func (st *repoState) fetch(ctx context.Context) (plumbing.Hash, error) {
	var auth transport.AuthMethod
	if st.repo.Auth != nil {
		m, err := st.repo.Auth.method(ctx)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		auth = m
	}
	if st.writer == nil {
		return st.clone(ctx, auth)
	}
	remote := plumbing.NewRemoteReferenceName(gogit.DefaultRemoteName, st.branch.Short())
	spec := gogitconfig.RefSpec("+" + st.branch + ":" + remote)
	err := st.writer.FetchContext(ctx, &gogit.FetchOptions{
		RemoteURL: st.repo.URL, Auth: auth, Depth: 1, Force: true, Tags: gogit.NoTags,
		RefSpecs: []gogitconfig.RefSpec{spec},
	})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetching %s from %s: %w", st.branch.Short(), redact(st.repo.URL), err)
	}
	ref, err := st.writer.Reference(remote, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading %s in the cached clone: %w", remote, err)
	}
	return ref.Hash(), nil
}

// clone makes the cached clone: in a scratch directory first, moved into
// place once complete, so a crash never leaves half a clone behind.
func (st *repoState) clone(ctx context.Context, auth transport.AuthMethod) (plumbing.Hash, error) {
	if err := os.MkdirAll(filepath.Dir(st.dir), 0o700); err != nil {
		return plumbing.ZeroHash, err
	}
	tmp := st.dir + ".clone"
	os.RemoveAll(tmp)
	opts := &gogit.CloneOptions{URL: st.repo.URL, Auth: auth, Depth: 1, SingleBranch: true, Tags: gogit.NoTags}
	if st.repo.Branch != "" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(st.repo.Branch)
	}
	r, err := gogit.CloneContext(ctx, newStorage(tmp), nil, opts)
	if err != nil {
		os.RemoveAll(tmp)
		return plumbing.ZeroHash, fmt.Errorf("cloning %s: %w", redact(st.repo.URL), err)
	}
	head, err := r.Head()
	if err != nil {
		os.RemoveAll(tmp)
		return plumbing.ZeroHash, fmt.Errorf("reading HEAD of %s: %w", redact(st.repo.URL), err)
	}
	if err := os.RemoveAll(st.dir); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := os.Rename(tmp, st.dir); err != nil {
		return plumbing.ZeroHash, err
	}
	if st.writer, err = openRepo(st.dir); err != nil {
		return plumbing.ZeroHash, err
	}
	st.branch = head.Name()
	return head.Hash(), nil
}

func (st *repoState) branchOf(r *gogit.Repository) plumbing.ReferenceName {
	if st.repo.Branch != "" {
		return plumbing.NewBranchReferenceName(st.repo.Branch)
	}
	if ref, err := r.Storer.Reference(plumbing.HEAD); err == nil && ref.Type() == plumbing.SymbolicReference {
		return ref.Target()
	}
	return plumbing.Master
}

// load reads commit h through a new handle on the clone and validates its
// course-config.json (courseconfig.Load).
func (st *repoState) load(h plumbing.Hash) (*snapshot, error) {
	r, err := openRepo(st.dir)
	if err != nil {
		return nil, err
	}
	commit, err := r.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	cfg, err := courseconfig.Load(treeFiles{tree})
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	return &snapshot{commit: h, config: cfg, tree: tree}, nil
}

func (st *repoState) adopt(snap *snapshot, from string) {
	st.mu.Lock()
	prev := st.snap
	st.snap = snap
	st.branchName = st.branch.Short()
	if from == "cache" || st.lastSuccess.IsZero() {
		st.lastSuccess = st.src.opts.Now()
	}
	st.mu.Unlock()
	if prev == nil {
		st.src.log.Info("course materials ready", append(st.attrs(), "commit", snap.commit.String(), "from", from)...)
	} else {
		st.src.log.Info("course materials updated", append(st.attrs(), "commit", snap.commit.String(), "previous", prev.commit.String())...)
	}
}

func (st *repoState) succeeded() {
	st.mu.Lock()
	was := st.lastErr
	st.lastSuccess, st.lastErr = st.src.opts.Now(), ""
	st.refreshes++
	st.mu.Unlock()
	if was != "" {
		st.src.log.Info("course repository reachable again", st.attrs()...)
	}
}

func (st *repoState) failed(err error) {
	st.mu.Lock()
	was := st.lastErr
	st.lastErr = err.Error()
	st.failures++
	serving := "no copy to grade from: its submissions wait"
	if st.snap != nil {
		serving = "grading from the last good commit " + st.snap.commit.String()
	}
	st.mu.Unlock()
	if was != err.Error() {
		st.src.log.Warn("cannot update course materials; "+serving, append(st.attrs(), "err", err)...)
	}
}

func newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
}

func openRepo(dir string) (*gogit.Repository, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	return gogit.Open(newStorage(dir), nil)
}

// contentError is a problem with what the repository holds (as opposed to
// trouble reading it).
type contentError struct{ msg string }

func (e *contentError) Error() string { return e.msg }

func contentErrorf(format string, args ...any) error {
	return &contentError{fmt.Sprintf(format, args...)}
}

// treeFiles reads a commit's tree as courseconfig.Files, refusing symbolic
// links and submodules anywhere along a path.
type treeFiles struct{ tree *object.Tree }

func (t treeFiles) file(p string) (*object.File, error) {
	if err := courseconfig.CheckPath(p); err != nil || p == "" {
		return nil, contentErrorf("%q is not a path inside the repository", p)
	}
	tree := t.tree
	parts := strings.Split(p, "/")
	for i, part := range parts {
		entry, err := tree.FindEntry(part)
		if err != nil {
			return nil, contentErrorf("%s does not exist", p)
		}
		last := i == len(parts)-1
		switch {
		case entry.Mode == filemode.Symlink:
			return nil, contentErrorf("%s is a symbolic link, which is not allowed", strings.Join(parts[:i+1], "/"))
		case entry.Mode == filemode.Submodule:
			return nil, contentErrorf("%s is a submodule, which is not allowed", strings.Join(parts[:i+1], "/"))
		case !last && entry.Mode == filemode.Dir:
			if tree, err = tree.Tree(part); err != nil {
				return nil, err
			}
		case last && entry.Mode.IsFile():
			return tree.TreeEntryFile(entry)
		default:
			return nil, contentErrorf("%s is not a regular file", p)
		}
	}
	return nil, contentErrorf("%s does not exist", p)
}

func (t treeFiles) Size(p string) (int64, error) {
	f, err := t.file(p)
	if err != nil {
		return 0, err
	}
	return f.Size, nil
}

func (t treeFiles) ReadFile(p string, max int64) ([]byte, error) {
	f, err := t.file(p)
	if err != nil {
		return nil, err
	}
	if f.Size > max {
		return nil, contentErrorf("%s is larger than %d bytes", p, max)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, max))
}

// redact removes credentials from a URL for messages.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if j := strings.LastIndex(rest[:end], "@"); j >= 0 {
			return u[:i+3] + "…@" + rest[j+1:]
		}
	}
	return u
}

// Snapshot clones the newest commit of repo's branch into memory (shallow)
// and returns its files and commit id, for one-off checks such as
// otter-service check-course. Its errors hold no secret.
func Snapshot(ctx context.Context, repo Repo) (courseconfig.Files, string, error) {
	var auth transport.AuthMethod
	var secrets []string
	if repo.Auth != nil {
		m, err := repo.Auth.method(ctx)
		if err != nil {
			return nil, "", err
		}
		auth, secrets = m, repo.Auth.secrets()
	}
	opts := &gogit.CloneOptions{URL: repo.URL, Auth: auth, Depth: 1, SingleBranch: true, Tags: gogit.NoTags}
	if repo.Branch != "" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(repo.Branch)
	}
	r, err := gogit.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil {
		return nil, "", scrub(fmt.Errorf("cloning %s: %w", redact(repo.URL), err), secrets)
	}
	head, err := r.Head()
	if err != nil {
		return nil, "", err
	}
	commit, err := r.CommitObject(head.Hash())
	if err != nil {
		return nil, "", err
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, "", err
	}
	return treeFiles{tree}, head.Hash().String(), nil
}
