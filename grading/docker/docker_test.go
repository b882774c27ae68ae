package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// These tests grade real notebooks in real containers: they need a Docker
// engine and the grading image (scripts/docker-engine.sh and
// deployment/grader-image/build-local.sh, both run by make test).

// instance labels this test process's containers, apart from any other's.
var instance = fmt.Sprintf("otter-service-test-%d", os.Getpid())

func newRunner(t testing.TB, limits docker.Limits) *docker.Runner {
	t.Helper()
	testenv.Slow(t, "grades in real containers")
	pipConf, caCert := testenv.PipBuildFiles()
	builds := docker.Builds{Enabled: true, Network: "host", PipConfig: pipConf, CACert: caCert}
	r, err := docker.New(testenv.GradingImage(), instance, limits, 2, builds)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Check(ctx); err != nil {
		r.Close()
		testenv.Missing(t, "no Docker engine with the grading image: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type example struct {
	name     string
	notebook []byte
	zip      []byte
}

func load(t testing.TB, name string) example {
	t.Helper()
	root := testenv.RepoRoot(t)
	nb, err := os.ReadFile(filepath.Join(root, "examples", "submissions", name))
	if err != nil {
		t.Fatal(err)
	}
	lab := strings.SplitN(name, "-", 2)[0]
	zip, err := os.ReadFile(filepath.Join(root, "examples", "course", "materials", "x22", "lab", "1", lab+"-autograder.zip"))
	if err != nil {
		t.Fatal(err)
	}
	return example{name: name, notebook: nb, zip: zip}
}

func (e example) job() grading.Job {
	return grading.Job{ID: "test-" + e.name, NotebookName: strings.SplitN(e.name, "-", 2)[0] + ".ipynb", Notebook: e.notebook, Autograder: e.zip}
}

// withCell returns the example with one more code cell at the end.
func (e example) withCell(t *testing.T, source string) example {
	t.Helper()
	var nb map[string]any
	if err := json.Unmarshal(e.notebook, &nb); err != nil {
		t.Fatal(err)
	}
	cells := nb["cells"].([]any)
	nb["cells"] = append(cells, map[string]any{"cell_type": "code", "execution_count": nil, "id": "hostile",
		"metadata": map[string]any{}, "outputs": []any{}, "source": source})
	data, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	e.notebook = data
	return e
}

// withAnswer returns the example with old replaced by new in its code cells.
func (e example) withAnswer(t *testing.T, old, new string) example {
	t.Helper()
	if !bytes.Contains(e.notebook, []byte(old)) {
		t.Fatalf("%s has no %q", e.name, old)
	}
	e.notebook = bytes.Replace(e.notebook, []byte(old), []byte(new), 1)
	return e
}

func expected(t *testing.T) map[string]struct {
	Status string
	Grade  float64
} {
	var exp map[string]struct {
		Status string
		Grade  float64
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "submissions", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestExamplesAsLocally grades the example notebooks in containers: the same
// outcomes as otter run on the machine (examples/submissions/expected.json,
// which the local runner's end-to-end test checks too).
func TestExamplesAsLocally(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 3 * time.Minute})
	var wg sync.WaitGroup
	for name, want := range expected(t) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Run(context.Background(), load(t, name).job())
			switch want.Status {
			case "graded":
				if err != nil || math.Abs(res.Grade-want.Grade) > 1e-9 {
					t.Errorf("%s: %+v, %v; want grade %v", name, res, err, want.Grade)
				}
			case "failed":
				if gerr, ok := grading.AsError(err); !ok || gerr.Kind != grading.KindKernel {
					t.Errorf("%s: %v; want a kernel_died failure", name, err)
				}
			}
		}()
	}
	wg.Wait()
	r.Close()
	noLeftovers(t)
}

// hostileCase is a notebook that attacks the grader's limits, and what its
// grading may end with.
type hostileCase struct {
	name  string
	ex    example
	kinds []string // acceptable failure kinds; empty: graded with grade
	grade float64
}

// hostileLimits are the limits the hostile notebooks are graded with.
var hostileLimits = docker.Limits{Timeout: 40 * time.Second, Memory: 512 << 20, Output: 256 << 10, Disk: 64 << 20, Tmp: 64 << 20, Processes: 128}

// hostile returns the notebooks that attack the grader's limits.
func hostile(t *testing.T) []hostileCase {
	perfect := load(t, "lab01-perfect.ipynb")
	zero := load(t, "lab01-zero.ipynb")
	return []hostileCase{
		{"infinite loop", perfect.withCell(t, "while True:\n    pass"), []string{grading.KindTimeout}, 0},
		{"fork bomb", perfect.withCell(t, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"), []string{grading.KindTimeout, grading.KindKernel, grading.KindMemory}, 0},
		// Usually reported as out_of_memory (the cgroup counts the kill);
		// once in CI the kernel's death was seen without the count.
		{"allocate 4 GiB", perfect.withCell(t, "hog = b'x' * (4 * 1024**3)"), []string{grading.KindMemory, grading.KindKernel}, 0},
		// print() output is kept in the notebook, in otter's memory.
		{"endless printing", perfect.withCell(t, "while True:\n    print('spam ' * 100)"), []string{grading.KindMemory, grading.KindTimeout}, 0},
		{"endless writing to stdout", perfect.withCell(t, "import os\nwhile True:\n    os.write(1, b'spam ' * 1000)"), []string{grading.KindOutput}, 0},
		{"endless file", perfect.withCell(t, "with open('fill', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))"), []string{grading.KindAutograder, grading.KindKernel}, 0},
		// No interface but loopback, so no way to the host or beyond (the
		// test sends nothing off this machine: it only looks, and tries the
		// service's port on the container's own loopback). q1 stays right
		// only if that holds.
		{"network", perfect.withCellAt(t, beforeCheckQ1, "import socket\nnames = [n for _, n in socket.if_nameindex()]\ntry:\n    socket.create_connection(('127.0.0.1', 10101), timeout=3)\n    reached = True\nexcept OSError:\n    reached = False\nsquare_of_seven = 49 if names == ['lo'] and not reached else 0"), nil, 1},
		// The kernel holds no capability and can gain none, cannot become
		// the grader or root, and cannot look into its parent (a warm
		// kernel's is the grader, which forked it as root). q1 stays right
		// only if all of that holds.
		{"privileges", perfect.withCellAt(t, beforeCheckQ1, privilegesCell), nil, 1},
		// The student's uid cannot write results.json (nor anything the
		// grader reads).
		{"forged results", zero.withCell(t, "import json, os\nos.makedirs('/autograder/results', exist_ok=True)\njson.dump({'tests': [{'name': 'q1', 'score': 100, 'max_score': 1}]}, open('/autograder/results/results.json', 'w'))"), nil, 0},
	}
}

// beforeCheckQ1 is where a cell goes in lab01-perfect to decide its q1: after
// its answer, before its grader.check("q1").
const beforeCheckQ1 = 5

const privilegesCell = `import ctypes, os
held = []
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
for k in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb'):
    if int(status[k], 16) != 0:
        held.append(k)
if status['NoNewPrivs'].strip() != '1':
    held.append('NoNewPrivs')
for u in (0, 1000):
    for f in (os.setresgid, os.setresuid):
        try:
            f(u, u, u)
            held.append((f.__name__, u))
        except OSError:
            pass
try:
    os.setgroups([0])
    held.append('setgroups')
except OSError:
    pass
ppid = os.getppid()
for what in ('mem', 'environ'):
    try:
        with open('/proc/%d/%s' % (ppid, what), 'rb') as f:
            f.read(1)
        held.append(what)
    except OSError:
        pass
if ppid > 1 and ctypes.CDLL(None, use_errno=True).ptrace(16, ppid, 0, 0) == 0:  # PTRACE_ATTACH
    held.append('ptrace')
print('held:', held)
square_of_seven = 49 if not held else 0`

// TestHostileNotebooks grades notebooks that attack the grader, at the same
// time as an honest one, which must still be graded right.
func TestHostileNotebooks(t *testing.T) {
	r := newRunner(t, hostileLimits)
	tests := hostile(t)
	honest := load(t, "lab01-partial.ipynb")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // an honest submission in flight at the same time
		defer wg.Done()
		res, err := r.Run(context.Background(), honest.job())
		if err != nil || math.Abs(res.Grade-2.0/3) > 1e-9 {
			t.Errorf("the honest submission beside the hostile ones: %+v, %v; want 2/3", res, err)
		}
	}()
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Run(context.Background(), tt.ex.job())
			if len(tt.kinds) == 0 {
				if err != nil || math.Abs(res.Grade-tt.grade) > 1e-9 {
					t.Errorf("%s: %+v, %v; want grade %v", tt.name, res, err, tt.grade)
				}
				return
			}
			gerr, ok := grading.AsError(err)
			if !ok || !contains(tt.kinds, gerr.Kind) || len(gerr.Message) < 20 || (tt.name == "endless file" && !strings.Contains(gerr.Message, "MiB allowed")) {
				t.Errorf("%s: %v; want a failure of kind %v with a message", tt.name, err, tt.kinds)
				return
			}
			t.Logf("%s: %s: %s", tt.name, gerr.Kind, gerr.Message)
		}()
	}
	wg.Wait()
	r.Close()
	noLeftovers(t)
}

func TestBadAutograderZip(t *testing.T) {
	r := newRunner(t, docker.Limits{})
	ex := load(t, "lab01-perfect.ipynb")
	ex.zip = []byte("not a zip")
	_, err := r.Run(context.Background(), ex.job())
	if gerr, ok := grading.AsError(err); !ok || gerr.Kind != grading.KindAutograder || !strings.Contains(gerr.Message, "not a zip") {
		t.Fatalf("err = %v; want an autograder error", err)
	}
}

func TestCancelledGradingLeavesNothing(t *testing.T) {
	r := newRunner(t, docker.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	_, err := r.Run(ctx, load(t, "lab01-perfect.ipynb").withCell(t, "while True:\n    pass").job())
	if _, isGrading := grading.AsError(err); err == nil || isGrading {
		t.Fatalf("err = %v; want the cancellation, not a grading failure", err)
	}
	r.Close()
	noLeftovers(t)
}

func TestRemoveOrphans(t *testing.T) {
	r := newRunner(t, docker.Limits{})
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	labels := map[string]string{docker.LabelInstance: instance}
	vol, err := cli.VolumeCreate(ctx, volume.CreateOptions{Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerCreate(ctx, &container.Config{Image: testenv.GradingImage(), Cmd: []string{"sleep", "600"}, Labels: labels},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	n, err := r.RemoveOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RemoveOrphans = %d, %v; want 1 container", n, err)
	}
	if _, err := cli.VolumeInspect(ctx, vol.Name); !client.IsErrNotFound(err) {
		t.Errorf("the orphaned volume is still there: %v", err)
	}
	r.Close()
	noLeftovers(t)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// noLeftovers checks that no container or volume of the tests remains.
func noLeftovers(t *testing.T) {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+instance))
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vols, err := cli.VolumeList(context.Background(), volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) > 0 || len(vols.Volumes) > 0 {
		t.Errorf("left behind: %d containers, %d volumes", len(list), len(vols.Volumes))
	}
}
