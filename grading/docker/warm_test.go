package docker_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// waitSpares waits until r has n spares of image ready.
func waitSpares(t testing.TB, r *docker.Runner, image string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for r.Spares()[image] < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d spares of %s ready in 3 minutes (%v)", n, image, r.Spares())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
