package docker_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// withRequirements returns the example with a requirements.txt added to its
// autograder zip.
func (e example) withRequirements(t *testing.T, requirements string) example {
	t.Helper()
	return e.withZipFile(t, "requirements.txt", requirements)
}

// withZipFile returns the example with the file name added to its
// autograder zip.
func (e example) withZipFile(t *testing.T, name, content string) example {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(e.zip), int64(len(e.zip)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	e.zip = buf.Bytes()
	return e
}

func assignmentImages(t *testing.T) []image.Summary {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ImageList(context.Background(), image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", docker.AssignmentImagePrefix+":*"))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func removeAssignmentImages(t *testing.T) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, img := range assignmentImages(t) {
		cli.ImageRemove(context.Background(), img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

// TestAssignmentImage grades a notebook that needs a package the grading
// image lacks (toolz): its assignment's zip declares it, so it is graded in an
// image built for the assignment, once.
func TestAssignmentImage(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 3 * time.Minute})
	removeAssignmentImages(t)
	t.Cleanup(func() { removeAssignmentImages(t) })
	ex := load(t, "lab01-perfect.ipynb").
		withAnswer(t, `"square_of_seven = 7 ** 2\n"`, `"import toolz\n", "square_of_seven = 7 ** 2\n"`).
		withRequirements(t, "# extras for this lab\notter-grader[grading]==7.0.0\ntoolz==1.2.0\n")

	start := time.Now()
	res, err := r.Run(context.Background(), ex.job())
	if err != nil || res.Grade != 1 {
		t.Fatalf("with its declared package: %+v, %v; want 1.0", res, err)
	}
	first := time.Since(start)
	if n := len(assignmentImages(t)); n != 1 {
		t.Fatalf("%d assignment images after the first grading, want 1", n)
	}
	start = time.Now()
	if res, err := r.Run(context.Background(), ex.job()); err != nil || res.Grade != 1 {
		t.Fatalf("second grading: %+v, %v", res, err)
	}
	if n := len(assignmentImages(t)); n != 1 {
		t.Errorf("%d assignment images after the second grading, want the same 1", n)
	}
	t.Logf("first grading (with the build) %s, second %s", first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Without per-assignment images, the package is missing: q1 fails.
	pipConf, caCert := testenv.PipBuildFiles()
	off, err := docker.New(testenv.GradingImage(), instance, docker.Limits{Timeout: 3 * time.Minute}, 0, docker.Builds{Enabled: false, PipConfig: pipConf, CACert: caCert})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if res, err := off.Run(context.Background(), ex.job()); err != nil || math.Abs(res.Grade-2.0/3) > 1e-9 {
		t.Errorf("with per-assignment images off: %+v, %v; want 2/3 (toolz missing)", res, err)
	}
	r.Close()
	noLeftovers(t)
}

func TestAssignmentImageThatCannotBeBuilt(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 3 * time.Minute})
	t.Cleanup(func() { removeAssignmentImages(t) })
	ex := load(t, "lab01-perfect.ipynb").withRequirements(t, "otter-service-no-such-package-anywhere==0.0.1\n")
	_, err := r.Run(context.Background(), ex.job())
	gerr, ok := grading.AsError(err)
	if !ok || gerr.Kind != grading.KindUnsupported || !strings.Contains(gerr.Message, "could not be installed") ||
		!strings.Contains(gerr.Message, "not a problem with your notebook") || !strings.Contains(gerr.Log, "otter-service-no-such-package-anywhere") {
		t.Fatalf("err = %v; want an unsupported-autograder error about the packages, with pip's output for the operator", err)
	}
	failures := r.BuildFailures()
	if len(failures) != 1 || !strings.Contains(failures[0].Log, "No matching distribution") ||
		len(failures[0].Packages) != 1 || !failures[0].Until.After(failures[0].At) {
		t.Fatalf("build failures = %+v; want the one build, with pip's log and when it is tried again", failures)
	}
	// The next submission to the same assignment is not built again: it
	// gets the remembered failure.
	_, err = r.Run(context.Background(), ex.job())
	if again, ok := grading.AsError(err); !ok || again.Kind != grading.KindUnsupported {
		t.Fatalf("second submission: %v; want the same failure", err)
	}
	if f := r.BuildFailures(); len(f) != 1 || !f[0].At.Equal(failures[0].At) {
		t.Fatalf("build failures after a second submission = %+v; want the first failure, not a new build", f)
	}
	r.Close()
	noLeftovers(t)
}

func TestRedactURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"Looking in indexes: https://user:s3cret@pypi.example.org/simple":                    "Looking in indexes: https://***@pypi.example.org/simple",
		"Looking in indexes: https://user:****@pypi.example.org/simple":                      "Looking in indexes: https://***@pypi.example.org/simple",
		"ERROR: 401 for url 'https://ghp_tok3n@pypi.example.org/simple/x/'":                  "ERROR: 401 for url 'https://***@pypi.example.org/simple/x/'",
		"https://u:p@ss/w0rd@host/simple and http://a:b@proxy:3128\n":                        "https://***@host/simple and http://***@proxy:3128\n",
		"ProxyError('Cannot connect', 'HTTPS://U:P@proxy.example:3128')":                     "ProxyError('Cannot connect', 'HTTPS://***@proxy.example:3128')",
		"pkg @ git+https://github.com/org/repo@v1.0 from https://pypi.org/simple":            "pkg @ git+https://github.com/org/repo@v1.0 from https://pypi.org/simple",
		"git+ssh://git@github.com/org/repo@v1 via http://proxy.example:3128 mail a@b.org":    "git+ssh://***@github.com/org/repo@v1 via http://proxy.example:3128 mail a@b.org",
		"ERROR: No matching distribution found for no-such-package==1 (from versions: none)": "ERROR: No matching distribution found for no-such-package==1 (from versions: none)",
	} {
		if got := docker.RedactURLCredentials(in); got != want {
			t.Errorf("RedactURLCredentials(%q) = %q; want %q", in, got, want)
		}
	}
}
