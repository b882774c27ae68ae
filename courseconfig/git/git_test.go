package git_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/courseconfig/git/gittest"
	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
)

const config = `{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022", "subpath_to_zips": "materials/lab",
	"assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8"}}}}`

func autograder(t *testing.T, marker string) []byte {
	return gittest.Zip(t, map[string]string{"otter_config.json": "{}", "tests/q1.py": "test = " + marker})
}

// newRepo makes a real git repository with the given files and commits it.
func newRepo(t *testing.T, files map[string][]byte) string {
	t.Helper()
	testenv.Git(t)
	dir := t.TempDir()
	gittest.Run(t, dir, "git", "init", "-q", "-b", "main")
	gittest.Commit(t, dir, files, "initial")
	return dir
}

func course(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"course-config.json":                 []byte(config),
		"materials/lab/lab01-autograder.zip": autograder(t, "1"),
	}
}

// withLab02 is course-config.json with a second assignment.
var withLab02 = strings.Replace(config, `"lab01": "6333e19d6b4d46f88df671ba50f616d8"`, `"lab01": "6333e19d6b4d46f88df671ba50f616d8", "lab02": "7393ab3b1bebe7c87c678281328bc2fa"`, 1)

func lab(name string) service.Assignment {
	return service.Assignment{Course: "8x", Section: "1", Assignment: name}
}

func newSource(t *testing.T, repo git.Repo, opts git.Options) *git.Source {
	t.Helper()
	opts.Courses = map[string]git.Repo{"8x": repo}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	if opts.MinRefresh == 0 {
		opts.MinRefresh = time.Hour
	}
	return git.New(opts)
}

func TestResolveAndAutograder(t *testing.T) {
	files := course(t)
	dir := newRepo(t, files)
	ctx := context.Background()
	for _, url := range []string{dir, "file://" + dir} {
		src := newSource(t, git.Repo{URL: url}, git.Options{})
		res, err := src.Resolve(ctx, lab("lab01"))
		if err != nil {
			t.Fatalf("%s: Resolve: %v", url, err)
		}
		if res.AssignmentID != "6333e19d6b4d46f88df671ba50f616d8" || res.ZipPath != "materials/lab/lab01-autograder.zip" {
			t.Errorf("Resolve = %+v", res)
		}
		data, err := src.Autograder(ctx, lab("lab01"))
		if err != nil || !bytes.Equal(data, files["materials/lab/lab01-autograder.zip"]) {
			t.Fatalf("Autograder = %d bytes, %v; want the committed zip", len(data), err)
		}
		st := src.Status()
		if len(st) != 1 || !st[0].Available || st[0].Commit != gittest.Head(t, dir) || st[0].Branch != "main" || st[0].LastError != "" {
			t.Errorf("Status = %+v", st)
		}
	}
}

// A configuration naming a zip that is a symbolic link, or missing, is not
// adopted.
func TestBadZipsRejectTheCommit(t *testing.T) {
	for name, zip := range map[string]string{"symlink": "symbolic link", "missing": "does not exist"} {
		dir := newRepo(t, map[string][]byte{"course-config.json": []byte(config), "materials/lab/other.zip": autograder(t, "x")})
		if name == "symlink" {
			os.MkdirAll(filepath.Join(dir, "materials/lab"), 0o755)
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "materials/lab/lab01-autograder.zip")); err != nil {
				t.Fatal(err)
			}
			gittest.Commit(t, dir, nil, "link")
		}
		src := newSource(t, git.Repo{URL: dir}, git.Options{})
		_, err := src.Resolve(context.Background(), lab("lab01"))
		if service.ErrorCode(err) != service.EUNAVAILABLE || !strings.Contains(err.Error(), zip) {
			t.Errorf("%s zip: Resolve = %v; want EUNAVAILABLE saying %q", name, err, zip)
		}
	}
}

func TestUnknownNamesAreNamed(t *testing.T) {
	dir := newRepo(t, course(t))
	src := newSource(t, git.Repo{URL: dir}, git.Options{})
	ctx := context.Background()
	for _, tt := range []struct {
		a    service.Assignment
		want string
	}{
		{service.Assignment{Course: "9x", Section: "1", Assignment: "lab01"}, `course "9x"`},
		{service.Assignment{Course: "8x", Section: "7", Assignment: "lab01"}, `section "7"`},
		{lab("lab99"), `assignment "lab99"`},
	} {
		_, err := src.Resolve(ctx, tt.a)
		if service.ErrorCode(err) != service.EUNPROCESSABLE || !strings.Contains(service.ErrorMessage(err), tt.want) {
			t.Errorf("Resolve(%+v) = %v; want EUNPROCESSABLE naming %s", tt.a, err, tt.want)
		}
	}
}

func TestRefreshOnUnknownAssignment(t *testing.T) {
	dir := newRepo(t, course(t))
	src := newSource(t, git.Repo{URL: "file://" + dir}, git.Options{MinRefresh: time.Nanosecond})
	ctx := context.Background()
	if _, err := src.Resolve(ctx, lab("lab02")); service.ErrorCode(err) != service.EUNPROCESSABLE {
		t.Fatalf("lab02 before it exists: %v", err)
	}
	gittest.Commit(t, dir, map[string][]byte{"course-config.json": []byte(withLab02), "materials/lab/lab02-autograder.zip": autograder(t, "2")}, "lab02")
	if _, err := src.Resolve(ctx, lab("lab02")); err != nil {
		t.Fatalf("lab02 after staff pushed it: %v", err)
	}
	// A broken push, or one naming a zip that is not there, does not replace
	// the last good configuration.
	good := gittest.Head(t, dir)
	for _, bad := range []map[string][]byte{
		{"course-config.json": []byte(`{"8x": `)},
		{"course-config.json": []byte(strings.Replace(withLab02, `"lab02"`, `"lab03"`, 1))},
	} {
		gittest.Commit(t, dir, bad, "broken")
		if _, err := src.Resolve(ctx, lab("lab03")); service.ErrorCode(err) != service.EUNPROCESSABLE {
			t.Fatalf("lab03: %v", err)
		}
		if _, err := src.Autograder(ctx, lab("lab02")); err != nil {
			t.Fatalf("after a broken push, lab02 = %v; want the last good configuration", err)
		}
		st := src.Status()[0]
		if st.Commit != good || !strings.Contains(st.LastError, gittest.Head(t, dir)) {
			t.Errorf("Status after a broken push = %+v; want commit %s and an error naming the bad commit", st, good)
		}
	}
}

func TestUnreadableRepository(t *testing.T) {
	src := newSource(t, git.Repo{URL: filepath.Join(t.TempDir(), "missing")}, git.Options{})
	_, err := src.Resolve(context.Background(), lab("lab01"))
	if service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Fatalf("Resolve on a missing repository = %v; want EUNAVAILABLE", err)
	}
	bad := newRepo(t, map[string][]byte{"course-config.json": []byte(`not json`)})
	src = newSource(t, git.Repo{URL: bad}, git.Options{})
	_, err = src.Resolve(context.Background(), lab("lab01"))
	if service.ErrorCode(err) != service.EUNAVAILABLE || !strings.Contains(err.Error(), "course-config.json") {
		t.Fatalf("Resolve with a broken config = %v; want EUNAVAILABLE naming the file", err)
	}
}

const token = "ghs_s3cretT0kenThatMustNeverBeLogged"

// The git server requires the token; the right one clones, a wrong or
// missing one fails with a clear error that does not contain any token.
func TestHTTPTokenAuthentication(t *testing.T) {
	srv := gittest.NewServer(t, token)
	srv.NewRepo("course.git", course(t))
	url := srv.URL() + "/course.git"
	ctx := context.Background()

	src := newSource(t, git.Repo{URL: url, Auth: git.Token{Token: token}}, git.Options{})
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		t.Fatalf("with the right token: %v", err)
	}
	wrong := "ghs_wrongTokenAlsoSecret0123456789"
	for name, auth := range map[string]git.Auth{"wrong token": git.Token{Token: wrong}, "no token": nil} {
		src := newSource(t, git.Repo{URL: url, Auth: auth}, git.Options{})
		err := src.Refresh(ctx)
		if err == nil {
			t.Fatalf("%s: the clone succeeded", name)
		}
		_, rerr := src.Resolve(ctx, lab("lab01"))
		st := src.Status()[0]
		for _, msg := range []string{err.Error(), rerr.Error(), service.ErrorMessage(rerr), st.LastError} {
			if strings.Contains(msg, token) || strings.Contains(msg, wrong) {
				t.Errorf("%s: a message contains the token: %s", name, msg)
			}
			if !strings.Contains(msg, "authentication") {
				t.Errorf("%s: %q does not say authentication failed", name, msg)
			}
		}
		if service.ErrorCode(rerr) != service.EUNAVAILABLE || st.Available {
			t.Errorf("%s: Resolve = %v, Status = %+v; want unavailable", name, rerr, st)
		}
	}
}

// Background refresh picks up a push (a new assignment, a changed zip); a
// broken push after it is rejected and the previous configuration stays.
func TestBackgroundRefresh(t *testing.T) {
	srv := gittest.NewServer(t, token)
	dir := srv.NewRepo("course.git", course(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newSource(t, git.Repo{URL: srv.URL() + "/course.git", Auth: git.Token{Token: token}}, git.Options{Interval: 100 * time.Millisecond})
	src.Start(ctx)
	defer src.Wait()
	defer cancel()
	if _, err := src.Resolve(ctx, lab("lab01")); err != nil {
		t.Fatal(err)
	}
	newZip := autograder(t, "changed")
	gittest.Commit(t, dir, map[string][]byte{
		"course-config.json":                 []byte(withLab02),
		"materials/lab/lab01-autograder.zip": newZip,
		"materials/lab/lab02-autograder.zip": autograder(t, "2"),
	}, "lab02, and lab01 changed")
	good := gittest.Head(t, dir)
	waitFor(t, "the new commit", func() bool { return src.Status()[0].Commit == good })
	if data, err := src.Autograder(ctx, lab("lab01")); err != nil || !bytes.Equal(data, newZip) {
		t.Errorf("lab01 after the push: %d bytes, %v; want the new zip", len(data), err)
	}
	if _, err := src.Autograder(ctx, lab("lab02")); err != nil {
		t.Errorf("lab02 after the push: %v", err)
	}

	gittest.Commit(t, dir, map[string][]byte{"course-config.json": []byte(`{"8x": {"1": {"course_id": 7}}}`)}, "broken")
	bad := gittest.Head(t, dir)
	waitFor(t, "the broken commit to be reported", func() bool { return strings.Contains(src.Status()[0].LastError, bad) })
	if st := src.Status()[0]; st.Commit != good || !st.Available {
		t.Errorf("after a broken push: %+v; want still %s", st, good)
	}
	if _, err := src.Autograder(ctx, lab("lab02")); err != nil {
		t.Errorf("lab02 after a broken push: %v", err)
	}
}

// With the server down, cached courses resolve and their zips are read; a
// restart starts from the cache at once; the service recovers by itself.
func TestOutageAndRestart(t *testing.T) {
	srv := gittest.NewServer(t, token)
	srv.NewRepo("course.git", course(t))
	repo := git.Repo{URL: srv.URL() + "/course.git", Auth: git.Token{Token: token}}
	cache := t.TempDir()
	ctx := context.Background()
	src := newSource(t, repo, git.Options{CacheDir: cache})
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		t.Fatal(err)
	}
	// A known assignment is resolved without asking the server.
	before := srv.Requests.Load()
	for i := 0; i < 20; i++ {
		if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests.Load() - before; n != 0 {
		t.Errorf("looking up a known assignment made %d requests to the git server", n)
	}

	srv.Stop()
	if err := src.Refresh(ctx); err == nil {
		t.Fatal("a fetch from a stopped server succeeded")
	}
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		t.Errorf("with the server down, a cached course: %v", err)
	}
	if st := src.Status()[0]; !st.Available || st.LastError == "" || strings.Contains(st.LastError, token) {
		t.Errorf("Status during the outage = %+v; want available, with the error", st)
	}

	// A restart with the server still down serves from the cache at once.
	ctx2, cancel := context.WithCancel(ctx)
	restarted := newSource(t, repo, git.Options{CacheDir: cache, Interval: 50 * time.Millisecond})
	restarted.Start(ctx2)
	defer restarted.Wait()
	defer cancel()
	if _, err := restarted.Autograder(ctx, lab("lab01")); err != nil {
		t.Fatalf("after a restart with the server down: %v", err)
	}
	waitFor(t, "the outage to be reported", func() bool { return restarted.Status()[0].LastError != "" })
	srv.Start()
	waitFor(t, "recovery", func() bool {
		st := restarted.Status()[0]
		return st.LastError == "" && time.Since(st.LastSuccess) < time.Second
	})
}

// Concurrent submissions naming an unknown assignment share one fetch, and
// the rate limit holds further ones back.
func TestOnDemandRefreshIsShared(t *testing.T) {
	srv := gittest.NewServer(t, "")
	dir := srv.NewRepo("course.git", course(t))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := newSource(t, git.Repo{URL: srv.URL() + "/course.git"}, git.Options{MinRefresh: time.Hour, Now: clock})
	ctx := context.Background()
	if _, err := src.Resolve(ctx, lab("lab01")); err != nil {
		t.Fatal(err)
	}
	gittest.Commit(t, dir, map[string][]byte{"course-config.json": []byte(withLab02), "materials/lab/lab02-autograder.zip": autograder(t, "2")}, "lab02")
	// Within MinRefresh of the clone, an unknown assignment does not fetch.
	before := srv.Requests.Load()
	if _, err := src.Resolve(ctx, lab("lab02")); service.ErrorCode(err) != service.EUNPROCESSABLE {
		t.Fatalf("lab02 within the rate limit: %v", err)
	}
	if n := srv.Requests.Load() - before; n != 0 {
		t.Errorf("an unknown assignment within MinRefresh made %d requests", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	lookups := func(name string, wantErr bool) int64 {
		before := srv.Requests.Load()
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := src.Resolve(ctx, lab(name)); (err != nil) != wantErr {
					t.Errorf("Resolve(%s) = %v", name, err)
				}
			}()
		}
		wg.Wait()
		return srv.Requests.Load() - before
	}
	if n := lookups("lab02", false); n == 0 || n > 3 {
		t.Errorf("20 concurrent lookups of a new assignment made %d requests; want one fetch (2 or 3)", n)
	}
	if n := lookups("lab99", true); n != 0 {
		t.Errorf("20 lookups of an unknown assignment right after a fetch made %d requests; want none", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRefreshCourse: a regrade after a fix reads the repository now,
// whatever the background and on-demand fetches' rates, and gets the
// fixed autograder; a broken push is refused, naming the problem and the
// commit grading would use.
func TestRefreshCourse(t *testing.T) {
	dir := newRepo(t, course(t))
	src := newSource(t, git.Repo{URL: "file://" + dir}, git.Options{Interval: -1}) // MinRefresh: an hour
	ctx := context.Background()
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		t.Fatal(err)
	}
	fixed := autograder(t, "2")
	gittest.Commit(t, dir, map[string][]byte{"materials/lab/lab01-autograder.zip": fixed}, "fix lab01's tests")
	if data, _ := src.Autograder(ctx, lab("lab01")); bytes.Equal(data, fixed) {
		t.Fatal("the fix was read before the refresh: the test proves nothing")
	}
	commit, err := src.RefreshCourse(ctx, "8x")
	if err != nil || commit != gittest.Head(t, dir) {
		t.Fatalf("RefreshCourse = %q, %v; want %s", commit, err, gittest.Head(t, dir))
	}
	if data, err := src.Autograder(ctx, lab("lab01")); err != nil || !bytes.Equal(data, fixed) {
		t.Fatalf("after RefreshCourse, Autograder = %d bytes, %v; want the fixed zip", len(data), err)
	}
	gittest.Commit(t, dir, map[string][]byte{"course-config.json": []byte(`{"8x": `)}, "broken")
	_, err = src.RefreshCourse(ctx, "8x")
	if service.ErrorCode(err) != service.EUNAVAILABLE || !strings.Contains(err.Error(), commit) {
		t.Errorf("RefreshCourse after a broken push = %v; want EUNAVAILABLE naming commit %s", err, commit)
	}
	if _, err := src.RefreshCourse(ctx, "9x"); service.ErrorCode(err) != service.EUNPROCESSABLE {
		t.Errorf("RefreshCourse of an unknown course = %v", err)
	}
}
