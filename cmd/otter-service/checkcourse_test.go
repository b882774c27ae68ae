package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	if a, ok := cfg.Git.Courses["8x"].Auth.(git.Token); !ok || a.Token != "tok-from-file" || cfg.Git.Courses["8x"].Branch != "main" {
		t.Errorf("8x: %+v; want its own token from the file", cfg.Git.Courses["8x"])
	}
	if a, ok := cfg.Git.Courses["data-100"].Auth.(git.Token); !ok || a.Token != "tok-default" {
		t.Errorf("data-100: %+v; want the default token", cfg.Git.Courses["data-100"])
	}
	if cfg.Git.Courses["local"].Auth != nil {
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

// autograderCourse writes a course directory: course-config.json with one
// section holding the assignments, each with an autograder zip made in
// memory of its files plus a test.
func autograderCourse(t *testing.T, assignments map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	names := map[string]string{}
	for name, files := range assignments {
		names[name] = "block-" + name
		zipFiles := map[string]string{"tests/q1.py": "test = {'name': 'q1', 'points': 1, 'suites': []}\n"}
		for k, v := range files {
			zipFiles[k] = v
		}
		if _, ok := zipFiles["otter_config.json"]; !ok {
			zipFiles["otter_config.json"] = `{"lang": "python"}`
		}
		path := filepath.Join(dir, "zips", name+"-autograder.zip")
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, gittest.Zip(t, zipFiles), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := json.Marshal(map[string]any{"8x": map[string]any{"1": map[string]any{
		"course_id": "BerkeleyX+Data8.1x+3T2022", "subpath_to_zips": "zips", "assignments": names}}})
	if err := os.WriteFile(filepath.Join(dir, "course-config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakePip writes a pip that says it is pip 23.2.1 for the grading image's
// Python, logs every install's requirements to the returned log file, and
// answers an install by the requirements' content: "unreachable" prints
// what pip prints when its index refuses connections, "slow" hangs,
// anything else resolves.
func fakePip(t *testing.T) (pip, log string) {
	t.Helper()
	dir := t.TempDir()
	pip, log = filepath.Join(dir, "pip"), filepath.Join(dir, "installs.log")
	script := `#!/bin/sh
PATH=/usr/bin:/bin
if [ "$1" = --version ]; then echo "pip 23.2.1 from /fake/pip (python ` + graderPython + `)"; exit 0; fi
req=
while [ $# -gt 0 ]; do if [ "$1" = -r ]; then req=$2; fi; shift; done
{ tr '\n' ' ' < "$req"; echo; } >> ` + log + `
if grep -q unreachable "$req"; then
  echo "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/unreachable-pkg/" >&2
  echo "ERROR: Could not find a version that satisfies the requirement unreachable-pkg (from versions: none)" >&2
  echo "ERROR: No matching distribution found for unreachable-pkg" >&2
  exit 1
fi
if grep -q slow "$req"; then exec sleep 30; fi
exit 0
`
	if err := os.WriteFile(pip, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return pip, log
}

func installRuns(t *testing.T, log string) []string {
	t.Helper()
	data, _ := os.ReadFile(log)
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(data)), " ", "|"))
}

// TestCheckCourseAutograders: every assignment the service cannot grade is
// a FAIL saying why; under the others, what the service will do with them.
func TestCheckCourseAutograders(t *testing.T) {
	dir := autograderCourse(t, map[string]map[string]string{
		"rlab":     {"otter_config.json": `{"lang": "r"}`, "environment.yml": "dependencies:\n  - r-base\n"},
		"ziplab":   {"otter_config.json": `{"zips": true}`},
		"condalab": {"environment.yml": "dependencies:\n  - python=3.11\n  - r-essentials\n"},
		"optlab":   {"requirements.txt": "-e .\n"},
		"pdflab":   {"otter_config.json": `{"pdf": true, "token": "abc"}`},
		"envlab":   {"environment.yml": "dependencies:\n  - python=3.11\n  - numpy=1.26\n  - pip:\n      - otter-grader==" + graderOtterVersion + "\n      - tabulate==0.10.0\n"},
		"samelab":  {"requirements.txt": "tabulate==0.10.0\nnumpy==1.26.*\n"},
		"oldlab": {"requirements.txt": "otter-grader==6.4.0\n", "setup.sh": "#!/bin/bash\nset -e\ncp data.csv /opt/data.csv\n",
			"otter_config.json": `{"plugins": ["otter.plugins.builtin.GoogleSheetsGradeOverride"]}`},
		"netlab": {"requirements.txt": "unreachable-pkg\n"},
	})
	pip, log := fakePip(t)
	out, err := runCheck(t, nil, "-pip", pip, dir)
	t.Log(out)
	if err == nil || !strings.Contains(out, "4 of 9 assignments have problems") {
		t.Errorf("check-course: %v; want 4 of 9 assignments failed", err)
	}
	// section returns the lines about one assignment: its status line and
	// the indented ones under it.
	section := func(name string) string {
		var b strings.Builder
		in := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "FAIL ") || !strings.HasPrefix(l, " ") {
				in = strings.Contains(l, " 8x/1/"+name+" ")
			}
			if in {
				b.WriteString(l + "\n")
			}
		}
		return b.String()
	}
	for name, want := range map[string][]string{
		"rlab":     {"FAIL  8x/1/rlab", "zips/rlab-autograder.zip: the service cannot grade with it:", "it is an R assignment (lang: r)"},
		"ziplab":   {"FAIL  8x/1/ziplab", "zip submissions (zips: true)"},
		"condalab": {"FAIL  8x/1/condalab", `the conda package "r-essentials", which has no pip equivalent`},
		"optlab":   {"FAIL  8x/1/optlab", `its requirements.txt has an option line ("-e .")`},
		"pdflab":   {"ok    8x/1/pdflab", "ignored: pdf: PDFs of submissions are not exported", "ignored: token, course_id: nothing is uploaded to Gradescope"},
		"envlab":   {"ok    8x/1/envlab", "packages: numpy==1.26.*, tabulate==0.10.0 (pip installs them into the assignment's own image", "packages resolved: pip can install them (pip install --dry-run, pip 23.2.1, Python " + graderPython + ")"},
		"samelab":  {"ok    8x/1/samelab", "packages: tabulate==0.10.0, numpy==1.26.*", "packages resolved"},
		"oldlab":   {"ok    8x/1/oldlab", "setup.sh: the course's own, run as root", "plugins: otter.plugins.builtin.GoogleSheetsGradeOverride", "warning: the zip pins otter-grader 6.4.0, but the service grades with otter-grader " + graderOtterVersion},
		"netlab":   {"ok    8x/1/netlab", "packages could not be checked: pip could not use its package index: WARNING: Retrying", "Connection refused"},
	} {
		s := section(name)
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: no %q in\n%s", name, w, s)
			}
		}
	}
	if s := section("optlab"); strings.Contains(s, "Tell your course staff") {
		t.Errorf("optlab: a message for students: %s", s)
	}
	for _, name := range []string{"envlab", "pdflab", "rlab"} {
		if s := section(name); strings.Contains(s, "otter-grader") {
			t.Errorf("%s: the pinned or absent otter-grader is mentioned: %s", name, s)
		}
	}
	// envlab and samelab ask for the same packages: pip resolves them once;
	// the failed assignments are not resolved, and oldlab has no packages.
	if runs := installRuns(t, log); len(runs) != 2 {
		t.Errorf("pip install ran for %q; want once for numpy and tabulate, once for unreachable-pkg", runs)
	}

	// No pip: said, and not a problem. Then pip from OTTER_CHECK_PIP, and
	// a pip that hangs.
	t.Setenv("PATH", t.TempDir())
	dir = autograderCourse(t, map[string]map[string]string{"envlab": {"requirements.txt": "tabulate==0.10.0\n"}})
	out, err = runCheck(t, nil, dir)
	if err != nil || !strings.Contains(out, "packages not resolved: no pip") || !strings.Contains(out, "the packages of 1 could not be checked") {
		t.Errorf("check-course without pip: %v\n%s", err, out)
	}
	out, err = runCheck(t, map[string]string{"OTTER_CHECK_PIP": pip}, dir)
	if err != nil || !strings.Contains(out, "packages resolved") || !strings.Contains(out, "All 1 assignments are ready for grading.\n") {
		t.Errorf("check-course with OTTER_CHECK_PIP: %v\n%s", err, out)
	}
	if out, err = runCheck(t, map[string]string{"OTTER_CHECK_PIP": pip}, "-pip", "none", dir); err != nil || !strings.Contains(out, "packages not resolved") {
		t.Errorf("check-course -pip none: %v\n%s", err, out)
	}
	dir = autograderCourse(t, map[string]map[string]string{"slowlab": {"requirements.txt": "slow-pkg\n"}})
	start := time.Now()
	out, err = runCheck(t, nil, "-pip", pip, "-pip-timeout", "300ms", dir)
	if err != nil || !strings.Contains(out, "packages could not be checked: pip took longer than 300ms") || time.Since(start) > 10*time.Second {
		t.Errorf("check-course with a pip that hangs: %v after %s\n%s", err, time.Since(start), out)
	}
}

// TestCheckCourseResolvesWithPip resolves with the project's real pip
// against the package index its configuration names: a package that does
// not exist fails the assignment, one that does is fine, and the same list
// is resolved once.
func TestCheckCourseResolvesWithPip(t *testing.T) {
	realPip := filepath.Join(testenv.RepoRoot(t), ".venv", "bin", "pip")
	if _, err := os.Stat(realPip); err != nil {
		testenv.Missing(t, "no pip in the project's virtualenv (%v); make test creates it", err)
	}
	dir := t.TempDir()
	pip, log := filepath.Join(dir, "pip"), filepath.Join(dir, "runs.log")
	os.WriteFile(pip, []byte("#!/bin/sh\necho \"$1\" >> "+log+"\nexec "+realPip+" \"$@\"\n"), 0o755)
	course := autograderCourse(t, map[string]map[string]string{
		"good":  {"environment.yml": "dependencies:\n  - pip:\n      - tabulate==0.10.0\n"},
		"good2": {"requirements.txt": "tabulate==0.10.0\n"},
		"bad":   {"requirements.txt": "otter-service-no-such-package==1\n"},
	})
	out, err := runCheck(t, nil, "-pip", pip, course)
	if strings.Contains(out, "could not be checked") {
		testenv.Missing(t, "pip cannot reach a package index:\n%s", out)
	}
	if err == nil || !strings.Contains(out, "1 of 3 assignments have problems") {
		t.Errorf("check-course: %v; want 1 of 3 assignments failed\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL  8x/1/bad ", "zips/bad-autograder.zip: its packages cannot be installed (pip install --dry-run, pip ",
		"No matching distribution found for otter-service-no-such-package==1",
		"packages: otter-service-no-such-package==1",
		"ok    8x/1/good ", "ok    8x/1/good2 ", "packages resolved: pip can install them",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	data, _ := os.ReadFile(log)
	if runs := strings.Fields(string(data)); len(runs) != 3 || runs[0] != "--version" {
		t.Errorf("pip ran as %q; want --version, then install for tabulate and for the missing package", runs)
	}
}

// TestGraderImageVersions keeps check-course's idea of the grading image
// equal to deployment/grader-image.
func TestGraderImageVersions(t *testing.T) {
	root := testenv.RepoRoot(t)
	req, err := os.ReadFile(filepath.Join(root, "deployment", "grader-image", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^otter-grader(\[[^\]]*\])?==(\S+)`).FindSubmatch(req); m == nil || string(m[2]) != graderOtterVersion {
		t.Errorf("deployment/grader-image/requirements.txt pins otter-grader as %q; checkcourse.go's graderOtterVersion is %s", m, graderOtterVersion)
	}
	df, err := os.ReadFile(filepath.Join(root, "deployment", "grader-image", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^FROM python:([0-9]+\.[0-9]+)`).FindSubmatch(df); m == nil || string(m[1]) != graderPython {
		t.Errorf("deployment/grader-image/Dockerfile's Python is %q; checkcourse.go's graderPython is %s", m, graderPython)
	}
}

// TestPipIndexUnreachable reads lines pip 23.2 writes: its --log when the
// index refuses connections, and when it has no such project (404).
func TestPipIndexUnreachable(t *testing.T) {
	refused := "2026-12-01T10:26:13,848 Could not fetch URL https://user:****@127.0.0.1:9/simple/tabulate/: connection error: HTTPSConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /simple/tabulate/ (Caused by NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused')) - skipping\n" +
		"2026-12-01T10:26:13,849 ERROR: No matching distribution found for tabulate==0.10.0\n"
	if got := indexUnreachable(strings.NewReader(refused)); !strings.HasPrefix(got, "Could not fetch URL https://***@127.0.0.1:9/simple/tabulate/: connection error") || strings.Contains(got, "user") {
		t.Errorf("refused: %q", got)
	}
	missing := "2026-12-01T10:26:13,564 Could not fetch URL https://pypi.org/simple/otter-service-no-such-package/: 404 Client Error: Not Found for url: https://pypi.org/simple/otter-service-no-such-package/ - skipping\n" +
		"2026-12-01T10:26:13,568 ERROR: No matching distribution found for otter-service-no-such-package==1\n"
	if got := indexUnreachable(strings.NewReader(missing)); got != "" {
		t.Errorf("a project the index does not have: %q; want it not blamed on the index", got)
	}
	conflict := "Collecting a\nERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.\n\nThe conflict is caused by:\n    a 1 depends on c<1\n    b 2 depends on c>2\n\nERROR: ResolutionImpossible: for help visit https://pip.pypa.io/\n"
	if got := pipErrors(conflict); !packageUnavailable(conflict) || len(got) != 5 || !strings.HasPrefix(got[0], "ERROR: Cannot install") || got[2] != "    a 1 depends on c<1" {
		t.Errorf("a conflict: %q", got)
	}
}
