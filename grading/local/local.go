// Package local grades notebooks by running otter-grader's `otter run` as a
// child process on this machine, in a fresh directory per job, with a
// wall-clock timeout and a cap on the output it keeps. It isolates nothing
// else: student code runs with the service's privileges and network. Use it
// for development and tests; production grades in containers (grading/docker).
package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Run implements grading.Runner.
func (r *Runner) Run(ctx context.Context, job grading.Job) (*grading.Result, error) {
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
	out := &cappedBuffer{max: r.MaxOutput}
	cmd := exec.CommandContext(runCtx, r.Otter, "run", "-a", zip, "-o", filepath.Join(dir, "results"), nb)
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
	// otter starts a kernel and more; kill the whole process group, and have
	// the kernel die with us if the service itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out.kill = func() {
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
	case out.exceeded():
		return nil, &grading.Error{Kind: grading.KindOutput, Log: out.tail(),
			Message: fmt.Sprintf("The notebook printed more than %d KiB of output while being graded. Remove large or endless prints and submit again.", r.MaxOutput>>10)}
	case ctx.Err() != nil:
		return nil, ctx.Err() // the service is stopping: not the submission's fault
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, &grading.Error{Kind: grading.KindTimeout, Log: out.tail(),
			Message: fmt.Sprintf("Grading took longer than %s, so it was stopped. Check for endless loops or very slow code, and submit again.", r.Timeout)}
	}
	data, readErr := readResults(filepath.Join(dir, "results", "results.json"))
	if runErr != nil || readErr != nil {
		var exit *exec.ExitError
		if runErr != nil && !errors.As(runErr, &exit) {
			return nil, fmt.Errorf("running otter: %w", runErr) // could not start it: our trouble
		}
		log := out.tail()
		if strings.Contains(log, "DeadKernelError") || strings.Contains(log, "Kernel died") {
			return nil, &grading.Error{Kind: grading.KindKernel, Log: log,
				Message: "The notebook's Python kernel died while it was graded (the code may have exited the interpreter or crashed it). Run the notebook from the top, fix the cell that crashes, and submit again."}
		}
		return nil, &grading.Error{Kind: grading.KindAutograder, Log: log,
			Message: fmt.Sprintf("The autograder could not grade this notebook (%s). Run all cells from the top to check for errors, and submit again; if it keeps happening, tell your course staff.", summarize(runErr, readErr, time.Since(started)))}
	}
	return grading.ParseResults(data)
}

func summarize(runErr, readErr error, took time.Duration) string {
	if runErr != nil {
		return fmt.Sprintf("otter exited with %v after %s", runErr, took.Round(time.Second))
	}
	return "it wrote no results"
}

// readResults reads results.json, at most one byte past the size limit
// (ParseResults refuses anything larger than the limit).
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

// cappedBuffer keeps the first max bytes written to it; past that it calls
// kill once and drops the rest.
type cappedBuffer struct {
	max  int
	buf  bytes.Buffer
	over bool
	kill func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		if !b.over {
			b.over = true
			if b.kill != nil {
				b.kill()
			}
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) exceeded() bool { return b.over }

// tail returns the last 8 KiB of output, for operators.
func (b *cappedBuffer) tail() string {
	s := b.buf.Bytes()
	if len(s) > 8<<10 {
		s = s[len(s)-8<<10:]
	}
	return string(bytes.ToValidUTF8(s, nil))
}
