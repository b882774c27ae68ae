package git

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	gogitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/otter-service/otter-service/courseconfig"
)

// goodRef records, in each cached clone, the last commit that passed
// validation, so a restart starts from it.
const goodRef = plumbing.ReferenceName("refs/otter-service/good")

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
