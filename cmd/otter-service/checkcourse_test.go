package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/courseconfig/git/gittest"
	"github.com/otter-service/otter-service/internal/testenv"
)

func runCheck(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := checkCourse(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestCheckCourse(t *testing.T) {
	root := testenv.RepoRoot(t)
	example := filepath.Join(root, "examples", "course")
	out, err := runCheck(t, nil, example)
	if err != nil || !strings.Contains(out, "ok    8x/1/lab01") || !strings.Contains(out, "ok    8x/1/lab02") || !strings.Contains(out, "All 2 assignments") {
		t.Errorf("check-course on the example course: %v\n%s", err, out)
	}

	// The same course from a git server that requires a token.
	const token = "ghp_checkCourseSecret0123456789"
	srv := gittest.NewServer(t, token)
	files := gittest.CopyDir(t, example)
	dir := srv.NewRepo("course.git", files)
	url := srv.URL() + "/course.git"
	out, err = runCheck(t, map[string]string{"OTTER_GIT_TOKEN": token}, url)
	if err != nil || !strings.Contains(out, "at commit "+gittest.Head(t, dir)) || !strings.Contains(out, "All 2 assignments") {
		t.Errorf("check-course on a URL: %v\n%s", err, out)
	}
	if _, err := runCheck(t, nil, url); err == nil || !strings.Contains(err.Error(), "authentication") || strings.Contains(err.Error(), token) {
		t.Errorf("check-course without the token: %v", err)
	}

	// Broken: one zip without tests, one missing.
	gittest.Commit(t, dir, map[string][]byte{
		"materials/x22/lab/1/lab01-autograder.zip": gittest.Zip(t, map[string]string{"otter_config.json": "{}"}),
		"materials/x22/lab/1/lab02-autograder.zip": nil,
	}, "broken zips")
	out, err = runCheck(t, nil, dir)
	if err == nil || !strings.Contains(out, "FAIL  8x/1/lab01") || !strings.Contains(out, "no tests") ||
		!strings.Contains(out, "FAIL  8x/1/lab02") || !strings.Contains(out, "does not exist") {
		t.Errorf("check-course on broken zips: %v\n%s", err, out)
	}
	// Broken: course-config.json.
	gittest.Commit(t, dir, map[string][]byte{"course-config.json": []byte(`{"8x": {"1": {"course_id": "x", "subpath_to_zips": "../up", "assignments": {}}}}`)}, "broken config")
	out, err = runCheck(t, map[string]string{"OTTER_GIT_TOKEN": token}, url)
	if err == nil || !strings.Contains(out, "FAIL  course-config.json") || !strings.Contains(out, "subpath_to_zips") || !strings.Contains(out, "no assignments") {
		t.Errorf("check-course on a broken course-config.json: %v\n%s", err, out)
	}
}

func TestCourseCredentialsConfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600)
	load := func(extra map[string]string) (*config, error) {
		return loadWith(map[string]string{"OTTER_COMMAND": "/bin/true"}, extra)
	}
	cfg, err := load(map[string]string{
		"OTTER_COURSE_REPOS":      "8x=https://git.example.org/m8.git#main,data-100=https://git.example.org/d.git,local=" + dir,
		"OTTER_GIT_TOKEN":         "tok-default",
		"OTTER_GIT_TOKEN_8X_FILE": tokenFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := cfg.Courses["8x"].Auth.(git.Token); !ok || a.Token != "tok-from-file" || cfg.Courses["8x"].Branch != "main" {
		t.Errorf("8x: %+v; want its own token from the file", cfg.Courses["8x"])
	}
	if a, ok := cfg.Courses["data-100"].Auth.(git.Token); !ok || a.Token != "tok-default" {
		t.Errorf("data-100: %+v; want the default token", cfg.Courses["data-100"])
	}
	if cfg.Courses["local"].Auth != nil {
		t.Errorf("a local repository got credentials")
	}

	for name, tt := range map[string]struct {
		env  map[string]string
		want string
	}{
		"password in URL":     {map[string]string{"OTTER_COURSE_REPOS": "8x=https://u:hunter2secret@git.example.org/m.git"}, "holds a password"},
		"token over http":     {map[string]string{"OTTER_COURSE_REPOS": "8x=http://git.example.org/m.git", "OTTER_GIT_TOKEN": "hunter2secret"}, "in the clear"},
		"ssh without key":     {map[string]string{"OTTER_COURSE_REPOS": "8x=git@git.example.org:org/m.git"}, "OTTER_GIT_SSH_KEY_FILE"},
		"bad ssh key":         {map[string]string{"OTTER_COURSE_REPOS": "8x=ssh://git@git.example.org/m.git", "OTTER_GIT_SSH_KEY": "hunter2secret"}, "OTTER_GIT_SSH_KEY"},
		"app without key":     {map[string]string{"OTTER_COURSE_REPOS": "8x=https://github.com/o/m.git", "OTTER_GITHUB_APP_ID": "1", "OTTER_GITHUB_APP_INSTALLATION_ID": "2"}, "OTTER_GITHUB_APP_PRIVATE_KEY"},
		"app and token":       {map[string]string{"OTTER_COURSE_REPOS": "8x=https://github.com/o/m.git", "OTTER_GITHUB_APP_ID": "1", "OTTER_GIT_TOKEN": "hunter2secret"}, "one kind of credentials"},
		"bad app key":         {map[string]string{"OTTER_COURSE_REPOS": "8x=https://github.com/o/m.git", "OTTER_GITHUB_APP_ID": "1", "OTTER_GITHUB_APP_INSTALLATION_ID": "2", "OTTER_GITHUB_APP_PRIVATE_KEY": "hunter2secret"}, "OTTER_GITHUB_APP_PRIVATE_KEY"},
		"refresh too often":   {map[string]string{"OTTER_COURSE_REPOS": "8x=" + dir, "OTTER_REPO_REFRESH": "1ms"}, "OTTER_REPO_REFRESH"},
		"both value and file": {map[string]string{"OTTER_COURSE_REPOS": "8x=https://g.example.org/m.git", "OTTER_GIT_TOKEN": "hunter2secret", "OTTER_GIT_TOKEN_FILE": tokenFile}, "both set"},
	} {
		_, err := load(tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v; want an error saying %q without the secret", name, err, tt.want)
		}
	}
}
