// Package local grades notebooks by running otter-grader's `otter run` as a
// child process on this machine, in a fresh directory per job, with a
// wall-clock timeout and a cap on the output it keeps. It isolates nothing
// else: student code runs with the service's privileges and network. It
// installs nothing either: the packages an autograder declares must already
// be in the otter executable's environment. Use it for development and
// tests; production grades in containers (grading/docker).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/otter-service/otter-service/grading"
)

// Runner runs `otter run` for each job.
type Runner struct {
	Otter     string        // path of the otter executable, e.g. .venv/bin/otter
	WorkDir   string        // where per-job directories are made; "" for the system's temp dir
	Timeout   time.Duration // wall-clock limit per job
	MaxOutput int           // bytes of combined stdout and stderr allowed before the job is stopped
}

var _ grading.Runner = (*Runner)(nil)

// Check reports whether the otter executable is there to run.
func (r *Runner) Check(context.Context) error {
	fi, err := os.Stat(r.Otter)
	if err != nil {
		return fmt.Errorf("otter: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("otter: %s is not executable", r.Otter)
	}
	return nil
}

// Run implements grading.Runner.
func (r *Runner) Run(ctx context.Context, job grading.Job) (*grading.Result, error) {
	// An assignment this service cannot grade is refused as the Docker
	// runner refuses it; a zip otter cannot read, otter reports itself.
	ag, err := grading.ReadAutograder(job.Autograder)
	if err != nil {
		ag = nil
	} else if err := ag.Unsupported(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.WorkDir, "job-")
	if err != nil {
		return nil, fmt.Errorf("creating the job directory: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, sub := range []string{"results", "home", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	zip := filepath.Join(dir, "autograder.zip")
	nb := filepath.Join(dir, filepath.Base(job.NotebookName))
	if err := os.WriteFile(zip, job.Autograder, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(nb, job.Notebook, 0o600); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	out := &grading.OutputBuffer{Max: r.MaxOutput}
	// otter runs under a watchdog that kills its whole process group (the
	// kernel otter starts, and anything the notebook started) as soon as a
	// pipe from the service reads end of file: when the service ends, even
	// killed outright, the kernel closes the pipe's other end.
	if _, err := exec.LookPath(r.Otter); err != nil {
		return nil, fmt.Errorf("running otter: %w", err) // our trouble, not the notebook's
	}
	alive, keepAlive, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer keepAlive.Close()
	defer alive.Close()
	cmd := exec.CommandContext(runCtx, "/bin/sh", "-c", watchdog, "otter", r.Otter, "run", "-a", zip, "-o", filepath.Join(dir, "results"), nb)
	cmd.ExtraFiles = []*os.File{alive} // fd 3
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + filepath.Dir(r.Otter) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"MPLBACKEND=Agg",
	}
	cmd.Stdout, cmd.Stderr = out, out
	// otter starts a kernel and more; kill the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out.OnOverflow = func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	started := time.Now()
	runErr := cmd.Run()
	// Whatever happened, take no stragglers with us.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}

	switch {
	case out.Overflowed():
		return nil, grading.OutputError(r.MaxOutput, out.Tail())
	case ctx.Err() != nil:
		return nil, ctx.Err() // the service is stopping: not the submission's fault
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, grading.TimeoutError(r.Timeout, out.Tail())
	}
	data, readErr := readResults(filepath.Join(dir, "results", "results.json"))
	if runErr != nil || readErr != nil {
		var exit *exec.ExitError
		if runErr != nil && !errors.As(runErr, &exit) {
			return nil, fmt.Errorf("running otter: %w", runErr) // could not start it: our trouble
		}
		return nil, grading.FailedError(summarize(runErr, readErr, time.Since(started)), out.Tail())
	}
	return grading.ParseResultsFor(data, ag)
}

func summarize(runErr, readErr error, took time.Duration) string {
	if runErr != nil {
		return fmt.Sprintf("otter exited with %v after %s", runErr, took.Round(time.Second))
	}
	return "it wrote no results"
}

// readResults reads results.json, at most one byte past the size limit
// (ParseResults refuses anything larger than the limit).
// watchdog runs its arguments, and kills its process group when fd 3 reads
// end of file (the service ended). When the command ends, the service kills
// the group itself (the watcher with it).
const watchdog = `(read _ <&3; kill -KILL 0) >/dev/null 2>&1 </dev/null &
exec 3<&-
"$@"`

func readResults(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, grading.MaxResultsSize+1))
}
