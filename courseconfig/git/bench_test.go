package git_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/courseconfig/git/gittest"
	"github.com/otter-service/otter-service/internal/testenv"
)

// The example course served over HTTP by git http-backend on loopback.
func benchServer(b *testing.B) (*gittest.Server, string) {
	srv := gittest.NewServer(b, token)
	dir := srv.NewRepo("course.git", gittest.CopyDir(b, filepath.Join(testenv.RepoRoot(b), "examples", "course")))
	return srv, dir
}

// BenchmarkResolveWarm: an autograder from the warm cache (no network I/O).
func BenchmarkResolveWarm(b *testing.B) {
	srv, _ := benchServer(b)
	src := git.New(git.Options{Courses: map[string]git.Repo{"8x": {URL: srv.URL() + "/course.git", Auth: git.Token{Token: token}}}, CacheDir: b.TempDir()})
	ctx := context.Background()
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdClone: a first clone into an empty cache, then the autograder.
func BenchmarkColdClone(b *testing.B) {
	srv, _ := benchServer(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		src := git.New(git.Options{Courses: map[string]git.Repo{"8x": {URL: srv.URL() + "/course.git", Auth: git.Token{Token: token}}}, CacheDir: b.TempDir()})
		if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIncrementalFetch: a fetch bringing one new commit (a changed
// course-config.json), validated and adopted.
func BenchmarkIncrementalFetch(b *testing.B) {
	srv, dir := benchServer(b)
	src := git.New(git.Options{Courses: map[string]git.Repo{"8x": {URL: srv.URL() + "/course.git", Auth: git.Token{Token: token}}}, CacheDir: b.TempDir()})
	ctx := context.Background()
	if err := src.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := gittest.CopyDir(b, filepath.Join(testenv.RepoRoot(b), "examples", "course"))["course-config.json"]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		gittest.Commit(b, dir, map[string][]byte{"course-config.json": append(append([]byte{}, cfg...), bytes.Repeat([]byte(" "), i+1)...)}, "change")
		b.StartTimer()
		if err := src.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if st := src.Status()[0]; st.Commit != gittest.Head(b, dir) {
		b.Fatalf("the last commit was not adopted: %+v", st)
	}
}

// BenchmarkArchivePerSubmission: the old approach, downloading the whole
// repository as a tarball for every submission and taking the autograder
// from it. The tarball is made per request by git archive on loopback.
func BenchmarkArchivePerSubmission(b *testing.B) {
	_, dir := benchServer(b)
	// Made per request, as the git host does.
	tarball := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, _ := r.BasicAuth(); pass != token {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		archive, err := exec.Command("git", "-C", dir, "archive", "--format=tar.gz", "HEAD").Output()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(archive)
	}))
	defer tarball.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodGet, tarball.URL, nil)
		req.SetBasicAuth("x-access-token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		tr := tar.NewReader(zr)
		found := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			if h.Name == "materials/x22/lab/1/lab01-autograder.zip" && len(data) > 0 {
				found = true
			}
		}
		resp.Body.Close()
		if !found {
			b.Fatal("the autograder is not in the archive")
		}
	}
}
