package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/courseconfig/git"
)

const checkCourseUsage = `usage: otter-service check-course [-course NAME] [-branch BRANCH] <repository URL or directory>

Checks a course repository as the service would read it: course-config.json
(its types and names) and, for every assignment, that the autograder zip is
present, safe to unpack, and made by otter assign (otter_config.json
parseable, tests in tests/). A directory is checked as it is on disk (a work
tree, before committing); a URL is cloned (its newest commit on BRANCH, or
the default branch) with the credentials the service would use, from the
same environment variables (those of course NAME with -course).
Exits with status 1 if anything is wrong.`

// checkCourse is the check-course subcommand.
func checkCourse(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-course", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, checkCourseUsage) }
	course := fs.String("course", "", "use the credentials configured for this course")
	branch := fs.String("branch", "", "branch to check (default: the remote's default branch)")
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
	bad := 0
	for _, r := range results {
		name := r.Course + "/" + r.Section + "/" + r.Assignment
		if r.Err != nil {
			bad++
			msg := r.Err.Error()
			if !strings.Contains(msg, r.ZipPath) {
				msg = r.ZipPath + ": " + msg
			}
			fmt.Fprintf(stdout, "FAIL  %-24s %s\n", name, msg)
			continue
		}
		fmt.Fprintf(stdout, "ok    %-24s %s (%d test files)\n", name, r.ZipPath, r.Tests)
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "%d of %d assignments have problems; the service refuses a commit whose autograders are missing, and fails submissions whose autograder is unusable.\n", bad, len(results))
		return fmt.Errorf("%d of %d assignments have problems", bad, len(results))
	}
	fmt.Fprintf(stdout, "All %d assignments are ready for grading.\n", len(results))
	return nil
}
