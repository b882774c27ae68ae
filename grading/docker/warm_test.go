package docker_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// waitSpares waits until r has n spares of image ready.
func waitSpares(t testing.TB, r *docker.Runner, image string, n int) {
	t.Helper()
	if !sparesWithin(r, image, n, 3*time.Minute) {
		t.Fatalf("no %d spares of %s ready in 3 minutes (%v)", n, image, r.Spares())
	}
}

// sparesWithin reports whether r has n spares of image ready within d.
func sparesWithin(r *docker.Runner, image string, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for r.Spares()[image] < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestWarmGrading: a grading takes a spare whose grader was started ahead,
// and gives otter's grade.
func TestWarmGrading(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute})
	r.StartSpares()
	exp := expected(t)
	for _, name := range []string{"lab01-perfect.ipynb", "lab01-partial.ipynb", "lab02-perfect.ipynb"} {
		waitSpares(t, r, testenv.GradingImage(), 1)
		res, timing, err := r.RunTimed(context.Background(), load(t, name).job())
		if err != nil || math.Abs(res.Grade-exp[name].Grade) > 1e-9 {
			t.Fatalf("%s: %+v, %v; want %v", name, res, err, exp[name].Grade)
		}
		if timing.Path != docker.PathWarm {
			t.Errorf("%s: graded %s", name, timing.Path)
		}
		t.Logf("%s: %s in %v (container %v)", name, timing.Path, timing.Total, timing.Container)
	}
}

// TestWarmKernelImportsTheAssignmentsModule: a module the assignment ships
// beside the notebook is importable in a kernel started before it was
// there.
func TestWarmKernelImportsTheAssignmentsModule(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute})
	r.StartSpares()
	ex := withModule(t, load(t, "lab01-perfect.ipynb").withAnswer(t, "square_of_seven = 7 ** 2", "import helper\\nsquare_of_seven = helper.seven() ** 2"))
	for i := 0; i < 3; i++ {
		waitSpares(t, r, testenv.GradingImage(), 1)
		res, timing, err := r.RunTimed(context.Background(), ex.job())
		if err != nil || res.Grade != 1 || timing.Path != docker.PathWarm {
			t.Fatalf("grading %d: %+v, %v, %s; want 1, warm", i, res, err, timing.Path)
		}
	}
}

// TestSparesHoldNoSubmission: a spare holds the grader and its kernel's
// connection file and nothing of any submission, and the container that
// graded a job is gone once the runner has removed it, never used again.
func TestSparesHoldNoSubmission(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute})
	r.StartSpares()
	waitSpares(t, r, testenv.GradingImage(), 2)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	containers := func() map[string]bool {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+instance))})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, c := range list {
			ids[c.ID] = true
		}
		return ids
	}
	spares := containers()
	if len(spares) != 2 {
		t.Fatalf("%d containers; want the 2 spares", len(spares))
	}
	for id := range spares {
		// As the grader's uid, which may read everything of /autograder.
		files := execOutput(t, cli, id, "1000:1000", "find", "/autograder", "/tmp", "-type", "f")
		for _, f := range strings.Fields(files) {
			if f != "/autograder/harness/grader.py" && f != "/autograder/kernel/kernel.json" && !strings.HasPrefix(f, "/tmp/") {
				t.Errorf("spare %.12s holds %s", id, f)
			}
			if strings.HasSuffix(f, ".ipynb") || strings.Contains(f, "source") || strings.Contains(f, "job") {
				t.Errorf("spare %.12s holds %s", id, f)
			}
		}
		if !strings.Contains(files, "/autograder/harness/grader.py") {
			t.Errorf("spare %.12s has no grader: %q", id, files)
		}
		t.Logf("spare %.12s: %s", id, strings.Join(strings.Fields(files), " "))
	}
	res, timing, err := r.RunTimed(ctx, load(t, "lab01-perfect.ipynb").job())
	if err != nil || res.Grade != 1 || timing.Path != docker.PathWarm {
		t.Fatalf("grading: %+v, %v, %s", res, err, timing.Path)
	}
	// The used one is removed (in the background) and never taken again;
	// the other spare stays, and a new one replaces the used one.
	deadline := time.Now().Add(time.Minute)
	for {
		now := containers()
		gone := 0
		for id := range spares {
			if !now[id] {
				gone++
			}
		}
		if gone == 1 && r.Spares()[testenv.GradingImage()] == 2 {
			break
		}
		if time.Now().After(deadline) || gone > 1 {
			t.Fatalf("after one grading, %d of the 2 spares are gone and %v are ready; want 1 gone, 2 ready", gone, r.Spares())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execOutput runs cmd in container id as user and returns its output.
func execOutput(t *testing.T, cli *client.Client, id, user string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	exec, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	attach, err := cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer attach.Close()
	var out, errOut bytes.Buffer
	stdcopy.StdCopy(&out, &errOut, attach.Reader)
	return out.String()
}
