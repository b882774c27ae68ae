package git

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/otter-service/otter-service/courseconfig"
)

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
