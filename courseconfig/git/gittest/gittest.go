// Package gittest runs a git server with authentication on loopback for
// tests: Git's own `git http-backend` (smart HTTP) through net/http/cgi,
// behind a handler that requires a token as the password of HTTP Basic
// authentication, as GitHub accepts tokens.
package gittest

import (
	"archive/zip"
	"bytes"
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/otter-service/otter-service/internal/testenv"
)

// Server serves the repositories under Root over smart HTTP at
// URL()+"/<name>" to clients presenting its token.
type Server struct {
	Root string // directory whose subdirectories are the repositories

	token atomic.Pointer[string] // "" for no authentication

	t        testing.TB
	handler  http.Handler
	Requests atomic.Int64 // requests that reached git

	mu   sync.Mutex
	addr string
	srv  *http.Server
}

// NewServer starts a server for t on a free loopback port, stopped when t
// ends. It skips t (or fails it, where components are required) if git or
// git http-backend is missing.
func NewServer(t testing.TB, token string) *Server {
	t.Helper()
	git := testenv.Git(t)
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		testenv.Missing(t, "git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		testenv.Missing(t, "git http-backend is not installed (%v)", err)
	}
	s := &Server{Root: t.TempDir(), t: t}
	s.SetToken(token)
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.Root,
		},
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := *s.token.Load(); token != "" {
			_, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		s.Requests.Add(1)
		cgiHandler.ServeHTTP(w, r)
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// SetToken changes the token the server requires ("" for none).
func (s *Server) SetToken(token string) { s.token.Store(&token) }

// URL returns the base URL of the server; repository name is URL()+"/"+name.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Start (re)starts serving, on the same address as before if there was one.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatalf("git server: %v", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler}
	go s.srv.Serve(ln)
}

// Stop stops serving: clients get connection refused until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// NewRepo makes a repository named name under Root holding files (path →
// contents), committed on branch main, and returns its work tree.
func (s *Server) NewRepo(name string, files map[string][]byte) string {
	s.t.Helper()
	dir := filepath.Join(s.Root, name)
	Run(s.t, "", "git", "init", "-q", "-b", "main", dir)
	Commit(s.t, dir, files, "initial")
	return dir
}

// CopyDir returns the regular files under dir as a map for NewRepo and Commit.
func CopyDir(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Commit writes files into the work tree dir (nil contents removes a file)
// and commits them, as course staff pushing would.
func Commit(t testing.TB, dir string, files map[string][]byte, msg string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if content == nil {
			os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Run(t, dir, "git", "add", "-A")
	Run(t, dir, "git", "-c", "user.name=Staff", "-c", "user.email=staff@example.org", "commit", "-q", "--allow-empty", "-m", msg)
}

// Head returns the commit id at the work tree's HEAD.
func Head(t testing.TB, dir string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// Run runs a command in dir and fails t if it fails.
func Run(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// Zip returns a zip archive of files (name → contents).
func Zip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
