// Package git serves course configurations and autograder zips from the
// courses' git repositories through go-git. Each repository is cloned once
// (shallow, one branch) and read from its commit tree, never from a work
// tree, so a lookup does no network or disk I/O once the clone is there. The
// clone is refreshed, at most once per MinRefresh, when a submission names an
// assignment the cached copy does not know.
package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	gogit "github.com/go-git/go-git/v5"
	gogitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/service"
)

// Repo says where a course's materials live.
type Repo struct {
	URL    string // a local path or a file:// URL
	Branch string // "" for the remote's default branch
}

// MaxZipSize bounds the autograder zips the source will read.
const MaxZipSize = 100 << 20

// Source resolves assignments against the courses' repositories.
type Source struct {
	courses    map[string]Repo
	minRefresh time.Duration
	now        func() time.Time

	mu    sync.Mutex
	repos map[Repo]*repoState
}

var _ service.Courses = (*Source)(nil)

// New returns a Source for the given course → repository mapping. A
// repository is refreshed on demand at most once per minRefresh.
func New(courses map[string]Repo, minRefresh time.Duration) *Source {
	return &Source{courses: courses, minRefresh: minRefresh, now: time.Now, repos: map[Repo]*repoState{}}
}

type repoState struct {
	repo Repo

	mu        sync.Mutex // held while cloning or fetching; guards the fields below
	r         *gogit.Repository
	branch    plumbing.ReferenceName // the branch on the remote
	ref       plumbing.ReferenceName // its remote-tracking ref, which we read from
	commit    *object.Commit
	config    courseconfig.Config
	lastFetch time.Time
}

// Resolve implements service.Courses.
func (s *Source) Resolve(ctx context.Context, a service.Assignment) (courseconfig.Assignment, error) {
	st, err := s.state(a.Course)
	if err != nil {
		return courseconfig.Assignment{}, err
	}
	cfg, _, err := st.current(ctx, s.now(), 0)
	if err != nil {
		return courseconfig.Assignment{}, err
	}
	res, err := cfg.Lookup(a.Course, a.Section, a.Assignment)
	var unknown *courseconfig.UnknownError
	if errors.As(err, &unknown) {
		// The staff may have pushed the assignment since we last looked.
		if cfg, _, ferr := st.current(ctx, s.now(), s.minRefresh); ferr == nil {
			res, err = cfg.Lookup(a.Course, a.Section, a.Assignment)
		}
	}
	if errors.As(err, &unknown) {
		return res, service.Errorf(service.EUNPROCESSABLE, "This notebook is for %s, which is not set up for grading. Check that you submitted the right notebook, or tell your course staff.", describe(unknown))
	}
	return res, err
}

// Autograder implements service.Courses.
func (s *Source) Autograder(ctx context.Context, a service.Assignment) ([]byte, error) {
	res, err := s.Resolve(ctx, a)
	if err != nil {
		return nil, err
	}
	st, _ := s.state(a.Course)
	_, commit, err := st.current(ctx, s.now(), 0)
	if err != nil {
		return nil, err
	}
	data, err := readFile(commit, res.ZipPath, MaxZipSize)
	if err != nil {
		return nil, service.Errorf(service.EUNPROCESSABLE, "The autograder for %s/%s/%s cannot be read from the course repository: %v.", a.Course, a.Section, a.Assignment, err)
	}
	return data, nil
}

func describe(u *courseconfig.UnknownError) string {
	if u.In == "" {
		return fmt.Sprintf("course %q", u.Name)
	}
	return fmt.Sprintf("%s %q of %s", u.What, u.Name, u.In)
}

func (s *Source) state(course string) (*repoState, error) {
	repo, ok := s.courses[course]
	if !ok {
		return nil, service.Errorf(service.EUNPROCESSABLE, "This notebook is for course %q, which this grading service does not serve. Check that you submitted the right notebook.", course)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repos[repo]
	if !ok {
		st = &repoState{repo: repo}
		s.repos[repo] = st
	}
	return st, nil
}

// current returns the configuration and commit to read from. It clones the
// repository if there is no copy yet, and fetches if refreshAfter > 0 and
// the last fetch is at least that old. A failed fetch keeps the last good
// copy; only a repository never read successfully is unavailable.
func (st *repoState) current(ctx context.Context, now time.Time, refreshAfter time.Duration) (courseconfig.Config, *object.Commit, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.r == nil {
		if err := st.clone(ctx, now); err != nil {
			return nil, nil, service.Errorf(service.EUNAVAILABLE, "The course materials cannot be read right now; try again in a few minutes. (%v)", err)
		}
		return st.config, st.commit, nil
	}
	if refreshAfter > 0 && now.Sub(st.lastFetch) >= refreshAfter {
		st.lastFetch = now
		_ = st.fetch(ctx) // a bad or unreachable remote keeps the last good copy
	}
	return st.config, st.commit, nil
}

func (st *repoState) clone(ctx context.Context, now time.Time) error {
	opts := &gogit.CloneOptions{URL: st.repo.URL, Depth: 1, SingleBranch: true, Tags: gogit.NoTags}
	if st.repo.Branch != "" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(st.repo.Branch)
	}
	st.lastFetch = now
	r, err := gogit.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil {
		return fmt.Errorf("cloning %s: %w", redact(st.repo.URL), err)
	}
	head, err := r.Head()
	if err != nil {
		return fmt.Errorf("reading HEAD of %s: %w", redact(st.repo.URL), err)
	}
	st.branch = head.Name()
	st.ref = plumbing.NewRemoteReferenceName(gogit.DefaultRemoteName, head.Name().Short())
	if err := st.load(r, head.Hash()); err != nil {
		return err
	}
	st.r = r
	return nil
}

func (st *repoState) fetch(ctx context.Context) error {
	spec := gogitconfig.RefSpec("+" + st.branch + ":" + st.ref)
	err := st.r.FetchContext(ctx, &gogit.FetchOptions{Depth: 1, Force: true, Tags: gogit.NoTags, RefSpecs: []gogitconfig.RefSpec{spec}})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return err
	}
	ref, err := st.r.Reference(st.ref, true)
	if err != nil {
		return err
	}
	if ref.Hash() == st.commit.Hash {
		return nil
	}
	return st.load(st.r, ref.Hash())
}

// load reads and validates course-config.json at commit h, and adopts it only
// if it is valid: a bad push does not replace the last good configuration.
func (st *repoState) load(r *gogit.Repository, h plumbing.Hash) error {
	commit, err := r.CommitObject(h)
	if err != nil {
		return fmt.Errorf("reading commit %s: %w", h, err)
	}
	data, err := readFile(commit, courseconfig.FileName, 10<<20)
	if err != nil {
		return fmt.Errorf("commit %s: %w", h, err)
	}
	cfg, err := courseconfig.Parse(data)
	if err != nil {
		return fmt.Errorf("commit %s: %w", h, err)
	}
	st.commit, st.config = commit, cfg
	return nil
}

// readFile reads the regular file at p in the commit's tree, refusing
// symlinks and submodules anywhere along the path, and files over max bytes.
func readFile(commit *object.Commit, p string, max int64) ([]byte, error) {
	if err := courseconfig.CheckPath(p); err != nil || p == "" {
		return nil, fmt.Errorf("%q is not a path inside the repository", p)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, err
	}
	parts := strings.Split(p, "/")
	for i, part := range parts {
		entry, err := tree.FindEntry(part)
		if err != nil {
			return nil, fmt.Errorf("%s does not exist", p)
		}
		last := i == len(parts)-1
		switch {
		case entry.Mode == filemode.Symlink:
			return nil, fmt.Errorf("%s is a symbolic link, which is not allowed", strings.Join(parts[:i+1], "/"))
		case entry.Mode == filemode.Submodule:
			return nil, fmt.Errorf("%s is a submodule, which is not allowed", strings.Join(parts[:i+1], "/"))
		case !last && entry.Mode == filemode.Dir:
			if tree, err = tree.Tree(part); err != nil {
				return nil, err
			}
		case last && entry.Mode.IsFile():
			f, err := tree.TreeEntryFile(entry)
			if err != nil {
				return nil, err
			}
			if f.Size > max {
				return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
			}
			rd, err := f.Reader()
			if err != nil {
				return nil, err
			}
			defer rd.Close()
			return io.ReadAll(io.LimitReader(rd, max))
		default:
			return nil, fmt.Errorf("%s is not a regular file", p)
		}
	}
	return nil, fmt.Errorf("%s does not exist", p)
}

// redact removes credentials from a URL for messages.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 {
			return u[:i+3] + "…@" + u[i+3+j+1:]
		}
	}
	return u
}
