package local_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/local"
)

// TestGradingDiesWithTheService: what a grading started (the kernel, and
// whatever the notebook started) dies as soon as the service is killed
// outright, not when each notices on its own, or never.
func TestGradingDiesWithTheService(t *testing.T) {
	if os.Getenv("OTTER_LOCAL_SERVICE") != "" {
		// The "service": grade until killed.
		r := &local.Runner{Otter: os.Getenv("OTTER_LOCAL_SERVICE"), WorkDir: os.Getenv("OTTER_LOCAL_WORK"), Timeout: time.Hour}
		r.Run(context.Background(), grading.Job{ID: "x", NotebookName: "lab01.ipynb", Notebook: []byte(`{}`), Autograder: []byte("PK")})
		return
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// otter, as far as this test goes: it starts a process of the
	// notebook's, which outlives otter unless something kills it.
	otter := fakeOtter(t, `sleep 600 & echo $! > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; wait`)
	svc := exec.Command(os.Args[0], "-test.run=^TestGradingDiesWithTheService$")
	svc.Env = append(os.Environ(), "OTTER_LOCAL_SERVICE="+otter, "OTTER_LOCAL_WORK="+t.TempDir())
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var pid int
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			svc.Process.Kill()
			t.Fatal("the grading never started")
		}
		time.Sleep(10 * time.Millisecond) // polling for the file, with a deadline
	}
	svc.Process.Kill() // SIGKILL: nothing of the service's runs after it
	svc.Wait()
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the notebook's process %d outlived the killed service", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling for the process, with a deadline
	}
}
