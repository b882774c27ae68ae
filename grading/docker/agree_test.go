package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// corpusJobs returns the fidelity corpus's submissions (tests/corpus, built
// into var/corpus by make test) as jobs, by id.
func corpusJobs(t *testing.T) map[string]grading.Job {
	t.Helper()
	dir := os.Getenv("OTTER_CORPUS_DIR")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(t), "var", "corpus")
	}
	data, err := os.ReadFile(filepath.Join(dir, "submissions", "index.json"))
	if err != nil {
		testenv.Missing(t, "the corpus is not built (bash tests/corpus/build.sh, which make test runs): %v", err)
	}
	var index map[string]struct{ Assignment, Notebook string }
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]grading.Job{}
	for id, e := range index {
		nb, err := os.ReadFile(filepath.Join(dir, "submissions", id, e.Notebook))
		if err != nil {
			t.Fatal(err)
		}
		zip, err := os.ReadFile(filepath.Join(dir, "course", "materials", e.Assignment+"-autograder.zip"))
		if err != nil {
			t.Fatal(err)
		}
		jobs["corpus "+id] = grading.Job{ID: id, NotebookName: e.Notebook, Notebook: nb, Autograder: zip}
	}
	return jobs
}

// random matches what differs between two gradings of one notebook:
// otter's and the grader's random names and markers.
var random = regexp.MustCompile(`[0-9a-f]{16,}|tmp[a-z0-9_]{8}`)

// outcome is a grading's outcome with its random names replaced: what the
// warm and the cold path must agree on.
type outcome struct {
	Kind     string // a failure's kind; "" when graded
	Grade    float64
	Tests    []grading.Test
	Feedback []grading.Feedback
	Review   []string
}

func outcomeOf(res *grading.Result, err error) (outcome, error) {
	if err != nil {
		gerr, ok := grading.AsError(err)
		if !ok {
			return outcome{}, err // the runner's own trouble
		}
		return outcome{Kind: gerr.Kind}, nil
	}
	o := outcome{Grade: res.Grade, Tests: slices.Clone(res.Tests), Feedback: slices.Clone(res.Feedback), Review: slices.Clone(res.Review)}
	for i := range o.Tests {
		o.Tests[i].Output = random.ReplaceAllString(o.Tests[i].Output, "<random>")
	}
	for i := range o.Feedback {
		o.Feedback[i].Output = random.ReplaceAllString(o.Feedback[i].Output, "<random>")
	}
	for i := range o.Review {
		o.Review[i] = random.ReplaceAllString(o.Review[i], "<random>")
	}
	return o, nil
}

// TestWarmAndColdAgree grades the fidelity corpus, the examples and the
// hostile notebooks (those that tamper with the grading and those that
// attack its limits) through the warm path (a grader started ahead in a
// spare) and the cold path (one started for the job), and requires the same
// outcome: the same grade, per-question scores, visibility and outputs,
// feedback and review evidence, or the same kind of failure. Every job an
// assignment allows is graded warm (again, once a spare of its image is
// ready, if its first grading found none); an assignment with plugins is
// graded cold on both.
func TestWarmAndColdAgree(t *testing.T) {
	jobs := corpusJobs(t)
	for name := range expected(t) {
		jobs["example "+name] = load(t, name).job()
	}
	// A notebook that imports a module the assignment ships beside it (the
	// zip's files/): there after the warm kernel started.
	jobs["example lab01 importing the assignment's module"] = withModule(t, load(t, "lab01-perfect.ipynb").
		withAnswer(t, "square_of_seven = 7 ** 2", "import helper\nsquare_of_seven = helper.seven() ** 2")).job()
	kinds := map[string][]string{} // what a hostile notebook may end with, when not one thing
	for _, tt := range tampering(t) {
		jobs["tampering: "+tt.name] = tt.ex.job()
	}
	grades := map[string]float64{} // what a hostile notebook graded must get, on both paths
	for _, tt := range hostile(t) {
		jobs["hostile: "+tt.name] = tt.ex.job()
		if len(tt.kinds) == 0 {
			grades["hostile: "+tt.name] = tt.grade
		}
		if len(tt.kinds) > 1 {
			kinds["hostile: "+tt.name] = tt.kinds
		}
	}
	limits := hostileLimits
	limits.Timeout, limits.Memory = 25*time.Second, 768<<20
	pipConf, caCert := testenv.PipBuildFiles()
	builds := docker.Builds{Enabled: true, Network: "host", PipConfig: pipConf, CACert: caCert}
	warm := newRunner(t, limits)
	cold, err := docker.New(testenv.GradingImage(), instance+"-cold", limits, 2, builds, docker.ColdGraders())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cold.Close() })
	warm.StartSpares()

	names := make([]string, 0, len(jobs))
	for name := range jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	type graded struct {
		o    outcome
		path docker.Path
	}
	coldOut := map[string]outcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the cold path, two at a time, meanwhile
		defer wg.Done()
		sem := make(chan struct{}, 2)
		var inner sync.WaitGroup
		for _, name := range names {
			inner.Add(1)
			sem <- struct{}{}
			go func() {
				defer inner.Done()
				defer func() { <-sem }()
				res, timing, err := cold.RunTimed(context.Background(), jobs[name])
				o, err := outcomeOf(res, err)
				if err != nil {
					t.Errorf("%s, cold: the runner's own error: %v", name, err)
					return
				}
				if timing.Image != "" && timing.Path != docker.PathCold {
					t.Errorf("%s: graded %s by a runner without warm graders", name, timing.Path)
				}
				mu.Lock()
				coldOut[name] = o
				mu.Unlock()
			}()
		}
		inner.Wait()
	}()
	// The warm path, two at a time too: a job that found no spare of its
	// image ready is graded again once one is.
	warmOut := map[string]graded{}
	sem := make(chan struct{}, 2)
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			withPlugins := plugins(jobs[name])
			res, timing, err := warm.RunTimed(context.Background(), jobs[name])
			for try := 0; try < 5 && timing.Image != "" && timing.Path == docker.PathCold && !withPlugins; try++ {
				sparesWithin(warm, timing.Image, 1, time.Minute) // else a grading asks for one again
				res, timing, err = warm.RunTimed(context.Background(), jobs[name])
			}
			if timing.Image != "" && (timing.Path == docker.PathWarm) == withPlugins {
				t.Errorf("%s: graded %s (plugins: %v)", name, timing.Path, withPlugins)
			}
			o, err := outcomeOf(res, err)
			if err != nil {
				t.Errorf("%s, warm: the runner's own error: %v", name, err)
				return
			}
			mu.Lock()
			warmOut[name] = graded{o, timing.Path}
			mu.Unlock()
		}()
	}
	wg.Wait()

	warmPaths := 0
	for _, name := range names {
		w, c := warmOut[name], coldOut[name]
		if w.path == docker.PathWarm {
			warmPaths++
		}
		if k := kinds[name]; k != nil {
			if !slices.Contains(k, w.o.Kind) || !slices.Contains(k, c.Kind) {
				t.Errorf("%s: warm %q, cold %q; want one of %v", name, w.o.Kind, c.Kind, k)
			}
			continue
		}
		if g, ok := grades[name]; ok && (w.o.Kind != "" || w.o.Grade != g) {
			t.Errorf("%s: graded %s: %+v; want grade %v", name, w.path, w.o, g)
		}
		if fmt.Sprintf("%+v", w.o) != fmt.Sprintf("%+v", c) {
			t.Errorf("%s: the warm path (%s) and the cold path disagree:\nwarm %+v\ncold %+v", name, w.path, w.o, c)
		}
	}
	t.Logf("%d jobs, %d graded warm", len(names), warmPaths)
	if warmPaths < len(names)/2 {
		t.Errorf("only %d of %d jobs graded warm", warmPaths, len(names))
	}
}

// plugins reports whether job's assignment has plugins (graded cold).
func plugins(job grading.Job) bool {
	ag, err := grading.ReadAutograder(job.Autograder)
	return err == nil && len(ag.Plugins) > 0
}

// withModule returns the example with files/helper.py in its autograder
// zip (otter puts the zip's files/ beside the notebook).
func withModule(t *testing.T, e example) example {
	t.Helper()
	return e.withZipFile(t, "files/helper.py", "def seven():\n    return 7\n")
}
