package grading_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/grading/local"
	"github.com/otter-service/otter-service/internal/testenv"
)

// The fidelity corpus (tests/corpus): autograder zips made by otter assign
// from master notebooks, submissions, and the grade otter run gives each in
// a complete environment (tests/corpus/expected.json, written by
// tests/corpus/build.sh --expected). Both runners must give exactly that
// grade and those per-question scores.

type corpusEntry struct {
	Assignment string `json:"assignment"`
	Notebook   string `json:"notebook"`
	Status     string `json:"status"`
	Code       string `json:"code"`
	Grade      float64
	Questions  []struct {
		Name       string  `json:"name"`
		Score      float64 `json:"score"`
		MaxScore   float64 `json:"max_score"`
		Visibility string  `json:"visibility"`
	} `json:"questions"`
}

// corpus returns the built corpus directory and the expected outcomes,
// checking that the build is of the current sources.
func corpus(t *testing.T) (string, map[string]corpusEntry) {
	t.Helper()
	testenv.Slow(t, "grades the whole corpus")
	root := testenv.RepoRoot(t)
	src := filepath.Join(root, "tests", "corpus")
	dir := os.Getenv("OTTER_CORPUS_DIR")
	if dir == "" {
		dir = filepath.Join(root, "var", "corpus")
	}
	stamp, err := os.ReadFile(filepath.Join(dir, "sources.sha256"))
	if err != nil {
		testenv.Missing(t, "the corpus is not built (bash tests/corpus/build.sh, which make test runs): %v", err)
	}
	if got, want := strings.TrimSpace(string(stamp)), sourcesHash(t, src); got != want {
		testenv.Missing(t, "the corpus in %s was built from other sources (%s, now %s): run bash tests/corpus/build.sh", dir, got[:min(12, len(got))], want[:12])
	}
	data, err := os.ReadFile(filepath.Join(src, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]corpusEntry
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	var index map[string]struct{ Assignment, Notebook string }
	data, err = os.ReadFile(filepath.Join(dir, "submissions", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	if len(index) != len(want) {
		t.Fatalf("the corpus has %d submissions, expected.json %d: regenerate it with bash tests/corpus/build.sh --expected", len(index), len(want))
	}
	for id, sub := range index {
		if w, ok := want[id]; !ok || w.Assignment != sub.Assignment || w.Notebook != sub.Notebook {
			t.Fatalf("submission %s is not in expected.json as built: regenerate it with bash tests/corpus/build.sh --expected", id)
		}
	}
	return dir, want
}

// sourcesHash is tests/corpus/build.py's sources_hash.
func sourcesHash(t *testing.T, src string) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if rel != "expected.json" && rel != "README.md" {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, rel := range paths {
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(rel + "\x00"))
		h.Write(data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func corpusJob(t *testing.T, dir, id string, e corpusEntry) grading.Job {
	t.Helper()
	nb, err := os.ReadFile(filepath.Join(dir, "submissions", id, e.Notebook))
	if err != nil {
		t.Fatal(err)
	}
	zip, err := os.ReadFile(filepath.Join(dir, "course", "materials", e.Assignment+"-autograder.zip"))
	if err != nil {
		t.Fatal(err)
	}
	return grading.Job{ID: id, NotebookName: e.Notebook, Notebook: nb, Autograder: zip}
}

// gradeCorpus grades every corpus submission with r, two at a time, and
// checks each outcome against otter's.
func gradeCorpus(t *testing.T, r grading.Runner) {
	dir, want := corpus(t)
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, id := range ids {
		e := want[id]
		job := corpusJob(t, dir, id, e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			res, err := r.Run(ctx, job)
			checkCorpus(t, id, e, res, err)
		}()
	}
	wg.Wait()
}

func checkCorpus(t *testing.T, id string, want corpusEntry, res *grading.Result, err error) {
	t.Helper()
	if want.Status != "graded" {
		gerr, ok := grading.AsError(err)
		if !ok || (want.Code != "" && gerr.Kind != want.Code) {
			t.Errorf("%s: got %+v, %v; want a failure %q", id, res, err, want.Code)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v; want graded %v", id, err, want.Grade)
		return
	}
	if len(res.Review) != 0 {
		t.Errorf("%s: an honest notebook flagged for review: %q", id, res.Review)
	}
	if math.Abs(res.Grade-want.Grade) > 1e-9 {
		t.Errorf("%s: grade %v, otter's %v", id, res.Grade, want.Grade)
	}
	if len(res.Tests) != len(want.Questions) {
		t.Errorf("%s: %d questions %+v, otter's %d", id, len(res.Tests), res.Tests, len(want.Questions))
		return
	}
	for i, q := range want.Questions {
		got := res.Tests[i]
		if got.Name != q.Name || math.Abs(got.Score-q.Score) > 1e-9 || got.MaxScore != q.MaxScore || got.Visibility != q.Visibility {
			t.Errorf("%s: question %d is %s %v/%v (%s), otter's %s %v/%v (%s)", id, i, got.Name, got.Score, got.MaxScore, got.Visibility, q.Name, q.Score, q.MaxScore, q.Visibility)
		}
	}
}

// TestCorpusDocker grades the corpus in containers: per-assignment images
// are built for the assignments that declare packages.
func TestCorpusDocker(t *testing.T) {
	corpus(t) // skip before starting anything if it is not built
	pipConf, caCert := testenv.PipBuildFiles()
	r, err := docker.New(testenv.GradingImage(), "otter-service-corpus-test", docker.Limits{Timeout: 5 * time.Minute}, 2,
		docker.Builds{Enabled: true, Network: "host", PipConfig: pipConf, CACert: caCert})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Check(ctx); err != nil {
		testenv.Missing(t, "no Docker engine with the grading image: %v", err)
	}
	gradeCorpus(t, r)
	if f := r.BuildFailures(); len(f) != 0 {
		t.Errorf("failed builds: %+v", f)
	}
}

// TestCorpusLocal grades the corpus with otter run in the corpus's complete
// environment (var/corpus-venv): the local runner installs nothing.
func TestCorpusLocal(t *testing.T) {
	corpus(t)
	otter := filepath.Join(testenv.RepoRoot(t), "var", "corpus-venv", "bin", "otter")
	if _, err := os.Stat(otter); err != nil {
		testenv.Missing(t, "the corpus's environment is not made (bash tests/corpus/build.sh): %v", err)
	}
	gradeCorpus(t, &local.Runner{Otter: otter, Timeout: 5 * time.Minute, MaxOutput: 1 << 20})
}

// TestCorpusAutograders reads each corpus zip as the runners do: what otter
// 7 wrote is understood (its own setup.sh is not a course script, its
// environment.yml gives exactly the declared packages).
func TestCorpusAutograders(t *testing.T) {
	dir, _ := corpus(t)
	want := map[string][]string{
		"pkgs_env": {"toolz==1.2.*", "humanize==4.17.0"},
		"pkgs_req": {"tabulate==0.10.0"},
	}
	zips, _ := filepath.Glob(filepath.Join(dir, "course", "materials", "*-autograder.zip"))
	if len(zips) == 0 {
		t.Fatal("no zips in the corpus")
	}
	for _, z := range zips {
		name := strings.TrimSuffix(filepath.Base(z), "-autograder.zip")
		data, err := os.ReadFile(z)
		if err != nil {
			t.Fatal(err)
		}
		a, err := grading.ReadAutograder(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Setup != nil {
			t.Errorf("%s: otter's setup.sh taken for a course script", name)
		}
		if strings.Join(a.Packages, " ") != strings.Join(want[name], " ") {
			t.Errorf("%s: packages %q, want %q", name, a.Packages, want[name])
		}
		if name != "rlang" && len(a.Questions) == 0 {
			t.Errorf("%s: no question names read from its tests", name)
		}
		if a.OtterVersion != "7.0.0" {
			t.Errorf("%s: otter version %q, want 7.0.0", name, a.OtterVersion)
		}
		if unsupported := a.Unsupported() != nil; unsupported != (name == "rlang") {
			t.Errorf("%s: unsupported %v (%q)", name, unsupported, a.Problems)
		}
		if name == "data" && (len(a.Ignored) != 1 || !strings.Contains(a.Ignored[0], "pdf")) {
			t.Errorf("data: ignored %q; want its pdf: true named", a.Ignored)
		}
	}
}
