package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/local"
)

// These tests stand a small shell script in for otter, to drive the runner
// through every way a grading can end. The real otter-grader runs in the
// end-to-end tests (cmd/otter-service).

// fakeOtter writes an executable script that receives otter's arguments:
// run -a ZIP -o OUTDIR NOTEBOOK.
func fakeOtter(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "otter")
	script := "#!/bin/sh\nzip=$3; out=$5; nb=$6\n" + body + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, r *local.Runner, ctx context.Context) (*grading.Result, error) {
	t.Helper()
	if r.WorkDir == "" {
		r.WorkDir = t.TempDir()
	}
	res, err := r.Run(ctx, grading.Job{ID: "x", NotebookName: "lab01.ipynb", Notebook: []byte(`{"nb": 1}`), Autograder: []byte("PK")})
	if entries, _ := os.ReadDir(r.WorkDir); len(entries) != 0 {
		t.Errorf("job directory left behind: %v", entries)
	}
	return res, err
}

func wantKind(t *testing.T, err error, kind, inMessage string) {
	t.Helper()
	gerr, ok := grading.AsError(err)
	if !ok || gerr.Kind != kind || !strings.Contains(gerr.Message, inMessage) {
		t.Fatalf("err = %v; want a %s error mentioning %q", err, kind, inMessage)
	}
}

func TestGraded(t *testing.T) {
	otter := fakeOtter(t, `
test "$1" = run -a "$2" = -a || exit 9
test -f "$zip" && test -f "$nb" || exit 8
grep -q '"nb": 1' "$nb" || exit 7
test -w "$HOME" && test -w "$TMPDIR" || exit 6
echo '{"tests": [{"name": "q1", "score": 1, "max_score": 1}, {"name": "q2", "score": 0, "max_score": 2}]}' > "$out/results.json"`)
	res, err := run(t, &local.Runner{Otter: otter, Timeout: time.Minute, MaxOutput: 1 << 20}, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Grade != 1.0/3 || len(res.Tests) != 2 {
		t.Errorf("result = %+v", res)
	}
}

func TestTimeoutKillsEverything(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	otter := fakeOtter(t, `sleep 300 & echo $! > `+pidFile+`; wait`)
	start := time.Now()
	_, err := run(t, &local.Runner{Otter: otter, Timeout: time.Second, MaxOutput: 1 << 20}, context.Background())
	wantKind(t, err, grading.KindTimeout, "longer than 1s")
	if time.Since(start) > 30*time.Second {
		t.Errorf("the runner took %s to give up", time.Since(start))
	}
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid == 0 {
		t.Fatal("the fake otter did not start its child")
	}
	time.Sleep(100 * time.Millisecond)
	if alive(pid) {
		t.Errorf("the grading's child process %d outlived the timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestOutputLimit(t *testing.T) {
	otter := fakeOtter(t, `yes 'all work and no play' | head -c 5000000; echo '{"tests": [{"name": "q", "score": 1, "max_score": 1}]}' > "$out/results.json"`)
	_, err := run(t, &local.Runner{Otter: otter, Timeout: time.Minute, MaxOutput: 64 << 10}, context.Background())
	wantKind(t, err, grading.KindOutput, "more than 64 KiB")
}

func TestKernelDied(t *testing.T) {
	otter := fakeOtter(t, `echo 'nbclient.exceptions.DeadKernelError: Kernel died' >&2; exit 1`)
	_, err := run(t, &local.Runner{Otter: otter, Timeout: time.Minute, MaxOutput: 1 << 20}, context.Background())
	wantKind(t, err, grading.KindKernel, "kernel died")
}

func TestAutograderError(t *testing.T) {
	for name, body := range map[string]string{
		"exit status":            `echo 'Traceback: something broke' >&2; exit 1`,
		"no results":             `exit 0`,
		"garbage results":        `echo 'not json' > "$out/results.json"`,
		"results is a directory": `mkdir "$out/results.json"`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, &local.Runner{Otter: fakeOtter(t, body), Timeout: time.Minute, MaxOutput: 1 << 20}, context.Background())
			wantKind(t, err, grading.KindAutograder, "could not")
			gerr, _ := grading.AsError(err)
			if name == "exit status" && !strings.Contains(gerr.Log, "something broke") {
				t.Errorf("the operator's log lacks otter's output: %q", gerr.Log)
			}
		})
	}
}

func TestCancelIsNotTheSubmissionsFault(t *testing.T) {
	otter := fakeOtter(t, `sleep 300`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	_, err := run(t, &local.Runner{Otter: otter, Timeout: time.Minute, MaxOutput: 1 << 20}, ctx)
	if _, isGrading := grading.AsError(err); isGrading || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled, not a grading failure", err)
	}
}

func TestMissingOtter(t *testing.T) {
	_, err := run(t, &local.Runner{Otter: filepath.Join(t.TempDir(), "nope"), Timeout: time.Minute, MaxOutput: 1 << 20}, context.Background())
	if _, isGrading := grading.AsError(err); err == nil || isGrading {
		t.Fatalf("err = %v; want the runner's own error, not the submission's", err)
	}
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
