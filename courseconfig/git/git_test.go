package git_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
)

const config = `{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022", "subpath_to_zips": "materials/lab",
	"assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8", "evil": "aaaa", "linked": "bbbb"}}}}`

// newRepo makes a real git repository with the given files and commits it.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	testenv.Git(t)
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q", "-b", "main")
	commit(t, dir, files)
	return dir
}

func commit(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "-c", "user.name=Staff", "-c", "user.email=staff@example.org", "commit", "-q", "-m", "update")
}

func run(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func zipBytes(t *testing.T) string {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("otter_config.json")
	f.Write([]byte("{}"))
	w.Close()
	return b.String()
}

func lab(name string) service.Assignment {
	return service.Assignment{Course: "8x", Section: "1", Assignment: name}
}

func TestResolveAndAutograder(t *testing.T) {
	z := zipBytes(t)
	dir := newRepo(t, map[string]string{
		"course-config.json":                  config,
		"materials/lab/lab01-autograder.zip":  z,
		"materials/lab/evil-autograder.zip":   "symlink:/etc/passwd",
		"materials/lab/linked-autograder.zip": "symlink:lab01-autograder.zip",
	})
	ctx := context.Background()
	for _, url := range []string{dir, "file://" + dir} {
		src := git.New(map[string]git.Repo{"8x": {URL: url}}, time.Hour)
		res, err := src.Resolve(ctx, lab("lab01"))
		if err != nil {
			t.Fatalf("%s: Resolve: %v", url, err)
		}
		if res.AssignmentID != "6333e19d6b4d46f88df671ba50f616d8" || res.ZipPath != "materials/lab/lab01-autograder.zip" {
			t.Errorf("Resolve = %+v", res)
		}
		data, err := src.Autograder(ctx, lab("lab01"))
		if err != nil || string(data) != z {
			t.Fatalf("Autograder = %d bytes, %v; want the committed zip", len(data), err)
		}
		for _, name := range []string{"evil", "linked"} {
			_, err := src.Autograder(ctx, lab(name))
			if service.ErrorCode(err) != service.EUNPROCESSABLE || !strings.Contains(service.ErrorMessage(err), "symbolic link") {
				t.Errorf("Autograder(%s) through a symlink = %v; want a refusal naming the symlink", name, err)
			}
		}
	}
}

func TestUnknownNamesAreNamed(t *testing.T) {
	dir := newRepo(t, map[string]string{"course-config.json": config})
	src := git.New(map[string]git.Repo{"8x": {URL: dir}}, time.Hour)
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
	dir := newRepo(t, map[string]string{"course-config.json": config})
	src := git.New(map[string]git.Repo{"8x": {URL: "file://" + dir}}, time.Nanosecond)
	ctx := context.Background()
	if _, err := src.Resolve(ctx, lab("lab02")); service.ErrorCode(err) != service.EUNPROCESSABLE {
		t.Fatalf("lab02 before it exists: %v", err)
	}
	commit(t, dir, map[string]string{"course-config.json": strings.Replace(config, `"evil"`, `"lab02"`, 1)})
	if _, err := src.Resolve(ctx, lab("lab02")); err != nil {
		t.Fatalf("lab02 after staff pushed it: %v", err)
	}
	// A broken push does not replace the last good configuration.
	commit(t, dir, map[string]string{"course-config.json": `{"8x": `})
	if _, err := src.Resolve(ctx, lab("lab03")); service.ErrorCode(err) != service.EUNPROCESSABLE {
		t.Fatalf("lab03: %v", err)
	}
	if _, err := src.Resolve(ctx, lab("lab02")); err != nil {
		t.Fatalf("after a broken push, lab02 = %v; want the last good configuration", err)
	}
}

func TestUnreadableRepository(t *testing.T) {
	src := git.New(map[string]git.Repo{"8x": {URL: filepath.Join(t.TempDir(), "missing")}}, time.Hour)
	_, err := src.Resolve(context.Background(), lab("lab01"))
	if service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Fatalf("Resolve on a missing repository = %v; want EUNAVAILABLE", err)
	}
	bad := newRepo(t, map[string]string{"course-config.json": `not json`})
	src = git.New(map[string]git.Repo{"8x": {URL: bad}}, time.Hour)
	_, err = src.Resolve(context.Background(), lab("lab01"))
	if service.ErrorCode(err) != service.EUNAVAILABLE || !strings.Contains(err.Error(), "course-config.json") {
		t.Fatalf("Resolve with a broken config = %v; want EUNAVAILABLE naming the file", err)
	}
}
