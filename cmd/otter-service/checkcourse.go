package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
)

// The grading image this build of the service is made with
// (deployment/grader-image): the otter-grader version its requirements.txt
// pins and the Python of its Dockerfile. A test keeps them equal to those
// files; an operator grading with another image says so with
// -otter-version.
const (
	graderOtterVersion = "7.0.0"
	graderPython       = "3.11"
)

const checkCourseUsage = `usage: otter-service check-course [-course NAME] [-branch BRANCH] [-otter-version V] [-pip PATH] [-pip-timeout D] <repository URL or directory>

Checks a course repository as the service would read it: course-config.json
(its types and names) and, for every assignment, that the autograder zip is
present, safe to unpack, made by otter assign (otter_config.json
parseable, tests in tests/), and one the service can grade (not an R
assignment, not zip submissions, packages pip can install). It notes what
the service will do with the zip: the packages it installs into the
assignment's own image, a setup.sh it runs there, the settings it ignores
(PDF export, Gradescope upload), plugins, and an otter-grader version other
than the service's.

Packages are resolved with "pip install --dry-run" (nothing is installed),
with pip's own configuration (index, proxy, certificates): -pip, else
$OTTER_CHECK_PIP, else pip3 or pip on PATH; "-pip none" skips it. An index
that cannot be reached is reported, not counted as a problem.

A directory is checked as it is on disk (a work tree, before committing); a
URL is cloned (its newest commit on BRANCH, or the default branch) with the
credentials the service would use, from the same environment variables
(those of course NAME with -course).
Exits with status 1 if anything is wrong.`

// checkCourse is the check-course subcommand.
func checkCourse(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-course", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, checkCourseUsage) }
	course := fs.String("course", "", "use the credentials configured for this course")
	branch := fs.String("branch", "", "branch to check (default: the remote's default branch)")
	otterVersion := fs.String("otter-version", graderOtterVersion, "the otter-grader version the service grades with (its grading image's)")
	pipPath := fs.String("pip", "", `pip to resolve packages with (default: $OTTER_CHECK_PIP, else pip3 or pip on PATH; "none": do not resolve)`)
	pipTimeout := fs.Duration("pip-timeout", 2*time.Minute, "time limit of resolving one assignment's packages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("check-course needs one repository URL or directory")
	}
	target := fs.Arg(0)

	var files courseconfig.Files
	where := target
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		files = courseconfig.Dir(target)
		if abs, err := filepath.Abs(target); err == nil {
			where = abs
		}
	} else {
		p := &envParser{getenv: getenv}
		kind := repoKind(target)
		auth := p.credentials(*course, kind, target, map[string]*git.GitHubApp{})
		if len(p.problems) > 0 {
			return fmt.Errorf("credentials: %w", errors.Join(p.problems...))
		}
		ctx, cancel := context.WithTimeout(ctx, git.DefaultFetchTimeout)
		defer cancel()
		f, commit, err := git.Snapshot(ctx, git.Repo{URL: target, Branch: *branch, Auth: auth})
		if err != nil {
			return err
		}
		files = f
		where = fmt.Sprintf("%s at commit %s", target, commit)
	}
	fmt.Fprintf(stdout, "Checking %s\n", where)

	results, err := courseconfig.Check(files)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  %s\n", courseconfig.FileName)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stdout, "      %s\n", line)
		}
		return fmt.Errorf("%s cannot be used", courseconfig.FileName)
	}
	fmt.Fprintf(stdout, "ok    %s\n", courseconfig.FileName)

	pip := &pipResolver{path: choosePip(*pipPath, getenv), timeout: *pipTimeout, cache: map[string]resolution{}}
	bad, unchecked := 0, 0
	for _, r := range results {
		name := r.Course + "/" + r.Section + "/" + r.Assignment
		fail := func(msg string, details ...string) {
			bad++
			if !strings.Contains(msg, r.ZipPath) {
				msg = r.ZipPath + ": " + msg
			}
			fmt.Fprintf(stdout, "FAIL  %-24s %s\n", name, msg)
			for _, d := range details {
				fmt.Fprintf(stdout, "      %s\n", d)
			}
		}
		if r.Err != nil {
			fail(r.Err.Error())
			continue
		}
		data, err := files.ReadFile(r.ZipPath, courseconfig.MaxZipSize)
		if err != nil {
			fail(err.Error())
			continue
		}
		ag, err := grading.ReadAutograder(data)
		if err != nil {
			fail(staffMessage(err))
			continue
		}
		if len(ag.Problems) > 0 {
			fail("the service cannot grade with it:", ag.Problems...)
			continue
		}
		notes := autograderNotes(ag, *otterVersion)
		if len(ag.Packages) > 0 {
			res := pip.resolve(ctx, ag.SortedPackages())
			switch res.outcome {
			case resolveFailed:
				fail(fmt.Sprintf("its packages cannot be installed (pip install --dry-run%s):", pip.forPython()),
					append(indent(res.detail), notes...)...)
				continue
			case resolveUnchecked:
				unchecked++
			}
			notes = append(notes, res.note)
		}
		fmt.Fprintf(stdout, "ok    %-24s %s (%d test files)\n", name, r.ZipPath, r.Tests)
		for _, n := range notes {
			fmt.Fprintf(stdout, "      %s\n", n)
		}
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "%d of %d assignments have problems; the service refuses a commit whose autograders are missing, and fails submissions whose autograder is unusable.\n", bad, len(results))
		return fmt.Errorf("%d of %d assignments have problems", bad, len(results))
	}
	if unchecked > 0 {
		fmt.Fprintf(stdout, "All %d assignments are ready for grading, but the packages of %d could not be checked (see above).\n", len(results), unchecked)
		return nil
	}
	fmt.Fprintf(stdout, "All %d assignments are ready for grading.\n", len(results))
	return nil
}

// staffMessage is an autograder error as course staff read it: without
// the words addressed to a student.
func staffMessage(err error) string {
	e, ok := grading.AsError(err)
	if !ok {
		return err.Error()
	}
	msg := strings.TrimPrefix(e.Message, "The assignment's autograder cannot be used: ")
	return strings.TrimSuffix(msg, " Tell your course staff.")
}

// autograderNotes are the lines printed under an assignment the service
// can grade, saying what it does with the zip beyond grading.
func autograderNotes(ag *grading.Autograder, otterVersion string) []string {
	var notes []string
	if len(ag.Packages) > 0 {
		notes = append(notes, "packages: "+strings.Join(ag.Packages, ", ")+
			" (pip installs them into the assignment's own image, built on the grading image for its first submission; not with OTTER_ASSIGNMENT_IMAGES=false)")
	}
	if ag.Setup != nil {
		notes = append(notes, "setup.sh: the course's own, run as root in the assignment's own image when it is built")
	}
	for _, s := range ag.Ignored {
		notes = append(notes, "ignored: "+s)
	}
	if len(ag.Plugins) > 0 {
		notes = append(notes, "plugins: "+strings.Join(ag.Plugins, ", ")+" (otter runs them while grading, in a container without network)")
	}
	if ag.OtterVersion != "" && otterVersionKey(ag.OtterVersion) != otterVersionKey(otterVersion) {
		notes = append(notes, fmt.Sprintf("warning: the zip pins otter-grader %s, but the service grades with otter-grader %s; regenerate it with otter assign from otter-grader %s, or check that it grades the same",
			ag.OtterVersion, otterVersion, otterVersion))
	}
	return notes
}

// otterVersionKey makes 7.0 and 7.0.0 the same version.
func otterVersionKey(v string) string {
	v = strings.TrimSpace(v)
	for strings.HasSuffix(v, ".0") && strings.Count(v, ".") > 1 {
		v = strings.TrimSuffix(v, ".0")
	}
	return v
}

func indent(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "  " + l
	}
	return out
}

// choosePip returns the pip to resolve packages with, or "" for none.
func choosePip(flagValue string, getenv func(string) string) string {
	switch {
	case flagValue == "none":
		return ""
	case flagValue != "":
		return flagValue
	case getenv("OTTER_CHECK_PIP") != "":
		if v := getenv("OTTER_CHECK_PIP"); v != "none" {
			return v
		}
		return ""
	}
	for _, name := range []string{"pip3", "pip"} {
		if p, err := execLookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Outcomes of resolving a package list.
const (
	resolveOK = iota
	resolveFailed
	resolveUnchecked
)

type resolution struct {
	outcome int
	note    string   // the line printed under the assignment
	detail  []string // pip's last lines, for a failure
}

// pipResolver resolves package lists with pip install --dry-run, each
// distinct list once.
type pipResolver struct {
	path    string // "" for none
	timeout time.Duration

	probed          bool
	version, python string // pip's, from pip --version
	probeErr        string
	cache           map[string]resolution
}

var pipVersionRE = regexp.MustCompile(`^pip (\S+) from .* \(python ([0-9]+\.[0-9]+)\)`)

// probe runs pip --version once: is it there, new enough, for which Python.
func (p *pipResolver) probe(ctx context.Context) {
	if p.probed {
		return
	}
	p.probed = true
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.path, "--version")
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		p.probeErr = fmt.Sprintf("%s --version failed (%v)", p.path, err)
		return
	}
	m := pipVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		p.probeErr = fmt.Sprintf("%s --version says %q, not which pip it is", p.path, strings.TrimSpace(string(out)))
		return
	}
	p.version, p.python = m[1], m[2]
	var major, minor int
	fmt.Sscanf(p.version, "%d.%d", &major, &minor)
	if major < 22 || major == 22 && minor < 2 {
		p.probeErr = fmt.Sprintf("%s is pip %s; resolving without installing needs pip 22.2 or later", p.path, p.version)
	}
}

// forPython says which pip resolved, and for which Python if it is not the
// grading image's.
func (p *pipResolver) forPython() string {
	if p.python == "" || p.python == graderPython {
		return fmt.Sprintf(", pip %s, Python %s", p.version, p.python)
	}
	return fmt.Sprintf(", pip %s for Python %s, but the grading image has Python %s: the answer may differ there", p.version, p.python, graderPython)
}

// resolve resolves a sorted package list.
func (p *pipResolver) resolve(ctx context.Context, pkgs []string) resolution {
	key := strings.Join(pkgs, "\n")
	if r, ok := p.cache[key]; ok {
		return r
	}
	r := p.run(ctx, pkgs)
	p.cache[key] = r
	return r
}

func (p *pipResolver) run(ctx context.Context, pkgs []string) resolution {
	if p.path == "" {
		return resolution{outcome: resolveUnchecked, note: "packages not resolved: no pip (give one with -pip or OTTER_CHECK_PIP)"}
	}
	p.probe(ctx)
	if p.probeErr != "" {
		return resolution{outcome: resolveUnchecked, note: "packages could not be checked: " + p.probeErr}
	}
	dir, err := os.MkdirTemp("", "otter-check-pip-")
	if err != nil {
		return resolution{outcome: resolveUnchecked, note: fmt.Sprintf("packages could not be checked: %v", err)}
	}
	defer os.RemoveAll(dir)
	req := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(req, []byte(strings.Join(pkgs, "\n")+"\n"), 0o600); err != nil {
		return resolution{outcome: resolveUnchecked, note: fmt.Sprintf("packages could not be checked: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	// --ignore-installed: every package is looked up in the index, whatever
	// this machine has; dependencies are resolved too, so conflicts among
	// them show. --report lets pip resolve for an externally managed Python
	// (PEP 668) as well, since nothing is installed. --log keeps pip's
	// debug log, the only place where it says that it could not reach an
	// index (it then says no version was found, as for a missing package).
	pipLog := filepath.Join(dir, "pip.log")
	cmd := exec.CommandContext(ctx, p.path, "install", "--dry-run", "--ignore-installed", "--quiet", "--no-input",
		"--disable-pip-version-check", "--report", filepath.Join(dir, "report.json"), "--log", pipLog, "-r", req)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PIP_REQUIRE_VIRTUALENV=false")
	cmd.WaitDelay = 5 * time.Second
	out := &tailWriter{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	console := docker.RedactURLCredentials(string(bytes.ToValidUTF8(out.buf, nil)))
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return resolution{outcome: resolveUnchecked, note: fmt.Sprintf("packages could not be checked: pip took longer than %s (-pip-timeout)", p.timeout)}
	case err == nil:
		return resolution{outcome: resolveOK, note: "packages resolved: pip can install them (pip install --dry-run" + p.forPython() + ")"}
	}
	unreachable := indexUnreachable(strings.NewReader(console))
	if f, err := os.Open(pipLog); unreachable == "" && err == nil {
		unreachable = indexUnreachable(f)
		f.Close()
	}
	switch {
	case unreachable != "":
		return resolution{outcome: resolveUnchecked, note: "packages could not be checked: pip could not use its package index: " + unreachable}
	case packageUnavailable(console):
		return resolution{outcome: resolveFailed, detail: pipErrors(console)}
	default:
		return resolution{outcome: resolveUnchecked, note: fmt.Sprintf("packages could not be checked: pip failed (%v): %s", err, strings.Join(lastLines(console, 3), " / "))}
	}
}

// pipLogTime is the time stamp starting each line of pip's --log.
var pipLogTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT[0-9:,.]+ `)

// indexUnreachable returns the first line of pip's output saying that it
// could not use an index (not reached, or refused other than with 404, which
// is how an index says it has no such project), shortened and without
// credentials; "" if there is none.
func indexUnreachable(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !docker.PipIndexUnreachable(line) {
			continue
		}
		line = strings.TrimSpace(pipLogTime.ReplaceAllString(line, ""))
		if len(line) > 300 {
			line = strings.ToValidUTF8(line[:300], "") + "…"
		}
		return docker.RedactURLCredentials(line)
	}
	return ""
}

// pipErrors returns pip's error report: its output from the first ERROR
// line on, at most 15 lines.
func pipErrors(console string) []string {
	if i := strings.Index(console, "ERROR:"); i >= 0 {
		console = console[i:]
	}
	return lastLines(console, 15)
}

// packageUnavailable reports whether pip's output says a package, a version
// or a combination of them cannot be had: the assignment's to fix.
func packageUnavailable(log string) bool {
	for _, s := range []string{"No matching distribution found", "ResolutionImpossible", "conflicting dependencies",
		"Could not find a version that satisfies", "Invalid requirement", "metadata-generation-failed",
		"requires a different Python", "Requires-Python"} {
		if strings.Contains(log, s) {
			return true
		}
	}
	return false
}

// lastLines returns the last n non-blank lines of s.
func lastLines(s string, n int) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r \t"); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}
