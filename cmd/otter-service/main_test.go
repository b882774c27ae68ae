package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/sqlite"
)

// The end-to-end tests run the real service: this test binary re-executes
// itself as otter-service (see TestMain) with a temporary data directory,
// the example course in a real git repository, the embedded store and the
// local runner with real otter-grader.

func TestMain(m *testing.M) {
	if os.Getenv("OTTER_SERVICE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const prefix = "/services/otter_grade/"

type expectation struct {
	Status string   `json:"status"`
	Grade  *float64 `json:"grade"`
}

func examples(t *testing.T) (root string, expected map[string]expectation) {
	t.Helper()
	root = testenv.RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "examples", "submissions", "expected.json"))
	if err != nil {
		t.Fatalf("the example submissions are missing: %v", err)
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	return root, expected
}

// courseRepo makes a git repository of the example course with the project's
// own script.
func courseRepo(t *testing.T, root string) string {
	t.Helper()
	testenv.Git(t)
	dir := filepath.Join(t.TempDir(), "course-repo")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "example-repo.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("example-repo.sh: %v\n%s", err, out)
	}
	return dir
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan error
}

// start runs the service with env added to a minimal environment and waits
// until it listens.
func start(t *testing.T, env map[string]string) *proc {
	t.Helper()
	testenv.Slow(t, "runs the service, grading with otter")
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = []string{"OTTER_SERVICE_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "OTTER_LISTEN=127.0.0.1:0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "listening" {
				listening <- entry.Addr
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("service log:\n%s", p.log())
		}
	})
	select {
	case p.addr = <-listening:
	case err := <-p.exited:
		t.Fatalf("the service exited before listening: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("the service did not start listening\n%s", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

// stop sends sig and waits for the process to exit.
func (p *proc) stop(sig syscall.Signal) error {
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(3 * time.Minute):
		p.t.Fatalf("the service did not exit after %v", sig)
		return nil
	}
}

// submit posts an example notebook in one of the forms clients use.
func submit(t *testing.T, p *proc, path string, form int) (id, statusURL string) {
	t.Helper()
	nb, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader
	contentType := "application/json"
	switch form % 3 {
	case 0: // the Submit button: {"nb": <notebook>}
		body = strings.NewReader(`{"nb": ` + string(nb) + `}`)
	case 1: // a bare .ipynb
		body = bytes.NewReader(nb)
	case 2: // curl -F file=@lab01.ipynb
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		part, _ := w.CreateFormFile("file", filepath.Base(path))
		part.Write(nb)
		w.Close()
		body, contentType = &b, w.FormDataContentType()
	}
	resp, err := http.Post(p.url(prefix), contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ ID, Status, Status_URL, Message string }
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(data, &r) != nil || r.ID == "" {
		t.Fatalf("submitting %s: %d %s", path, resp.StatusCode, data)
	}
	return r.ID, r.Status_URL
}

type status struct {
	ID         string
	Status     string
	Grade      *float64
	Attempts   int
	Questions  []service.Question
	Error      *service.Failure
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Message    string
}

func getStatus(t *testing.T, p *proc, statusURL string) status {
	t.Helper()
	resp, err := http.Get(p.url(statusURL))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s status
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &s) != nil {
		t.Fatalf("status %s: %d %s", statusURL, resp.StatusCode, data)
	}
	return s
}

// waitDone polls until the submission is graded or failed.
func waitDone(t *testing.T, p *proc, statusURL string, timeout time.Duration) status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := getStatus(t, p, statusURL)
		if s.Status == "graded" || s.Status == "failed" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after %s", statusURL, s.Status, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func checkOutcome(t *testing.T, name string, s status, want expectation) {
	t.Helper()
	if s.Status != want.Status {
		t.Errorf("%s: status %q (%+v), want %q", name, s.Status, s.Error, want.Status)
		return
	}
	switch want.Status {
	case "graded":
		if s.Grade == nil || math.Abs(*s.Grade-*want.Grade) > 1e-9 || len(s.Questions) == 0 || s.FinishedAt == nil {
			t.Errorf("%s: grade %v with %d questions; want %v", name, s.Grade, len(s.Questions), *want.Grade)
		}
	case "failed":
		if s.Grade != nil || s.Error == nil || s.Error.Code == "" || len(s.Error.Message) < 20 {
			t.Errorf("%s: failed without a readable reason: %+v", name, s)
		}
	}
}

func baseEnv(t *testing.T, root string) map[string]string {
	return map[string]string{
		"OTTER_DATA_DIR":          t.TempDir(),
		"OTTER_COURSE_REPOS":      "8x=" + courseRepo(t, root),
		"OTTER_COMMAND":           testenv.Otter(t),
		"TEST_USER":               "student",
		"OTTER_GRADING_TIMEOUT":   "3m",
		"VERBOSE_LOGGING":         "true",
		"OTTER_DRAIN_DELAY":       "0s",
		"OTTER_UNAVAILABLE_RETRY": "2s",
	}
}

func TestEndToEnd(t *testing.T) {
	root, expected := examples(t)
	env := baseEnv(t, root)
	env["OTTER_WORKERS"] = "2"
	p := start(t, env)

	ids := map[string]string{}
	urls := map[string]string{}
	form := 0
	for name := range expected {
		ids[name], urls[name] = submit(t, p, filepath.Join(root, "examples", "submissions", name), form)
		form++
	}
	// An assignment the course's config does not have is refused by name.
	nb, _ := os.ReadFile(filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb"))
	resp, err := http.Post(p.url(prefix), "application/json", strings.NewReader(strings.Replace(string(nb), `"assignment": "lab01"`, `"assignment": "lab99"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `\"lab99\"`) {
		t.Errorf("unknown assignment: %d %s; want 422 naming lab99", resp.StatusCode, data)
	}

	for name, want := range expected {
		checkOutcome(t, name, waitDone(t, p, urls[name], 5*time.Minute), want)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	// The grades record holds one entry per graded submission.
	store := openEmbedded(t, env)
	for name, want := range expected {
		grades, err := store.Grades(context.Background(), service.GradeFilter{SubmissionID: ids[name]})
		if err != nil {
			t.Fatal(err)
		}
		wantN := 0
		if want.Status == "graded" {
			wantN = 1
		}
		if len(grades) != wantN || (wantN == 1 && (grades[0].User != "student" || math.Abs(grades[0].Grade-*want.Grade) > 1e-9)) {
			t.Errorf("%s: grade records %+v; want %d for student", name, grades, wantN)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(env["OTTER_DATA_DIR"], "jobs")); len(entries) != 0 {
		t.Errorf("job directories left behind: %v", entries)
	}
}

// TestRestartLosesNothing kills the service hard in the middle of grading and
// starts it again: every accepted submission is graded, exactly once.
func TestRestartLosesNothing(t *testing.T) {
	root, expected := examples(t)
	env := baseEnv(t, root)
	env["OTTER_WORKERS"] = "1"
	env["OTTER_LEASE"] = "3s"
	p := start(t, env)

	names := []string{"lab01-perfect.ipynb", "lab01-partial.ipynb", "lab01-zero.ipynb", "lab02-perfect.ipynb"}
	urls := map[string]string{}
	ids := map[string]string{}
	for i, name := range names {
		ids[name], urls[name] = submit(t, p, filepath.Join(root, "examples", "submissions", name), i)
	}
	deadline := time.Now().Add(time.Minute)
	for getStatus(t, p, urls[names[0]]).Status != "grading" {
		if time.Now().After(deadline) {
			t.Fatal("grading never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // well inside otter's run
	p.stop(syscall.SIGKILL)

	// Nothing of the killed service's grading survives it: otter dies with
	// the service (its parent-death signal) and the kernel when it sees its
	// parent gone, within a few seconds on a busy machine.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", filepath.Join(env["OTTER_DATA_DIR"], "jobs")).Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("grading processes outlived the killed service by 20 s: %s", out)
			break
		}
	}

	p = start(t, env)
	for _, name := range names {
		checkOutcome(t, name, waitDone(t, p, urls[name], 5*time.Minute), expected[name])
	}
	if s := getStatus(t, p, urls[names[0]]); s.Attempts < 2 {
		t.Errorf("the interrupted submission shows %d attempts; want at least 2", s.Attempts)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	store := openEmbedded(t, env)
	count, total := gradesPerSubmission(t, store)
	for _, name := range names {
		if count[ids[name]] != 1 {
			t.Errorf("%s has %d grade records, want exactly 1", name, count[ids[name]])
		}
	}
	if total != len(names) {
		t.Errorf("%d grade records for %d submissions", total, len(names))
	}
}

// TestGracefulShutdown sends SIGTERM while a notebook is being graded: the
// grading finishes, the queue is left as it is, and a restart grades the rest.
func TestGracefulShutdown(t *testing.T) {
	root, expected := examples(t)
	env := baseEnv(t, root)
	env["OTTER_WORKERS"] = "1"
	env["OTTER_SHUTDOWN_GRACE"] = "3m"
	env["OTTER_SHUTDOWN_TIMEOUT"] = "4m" // above the grace, as the configuration requires
	p := start(t, env)
	names := []string{"lab01-partial.ipynb", "lab01-perfect.ipynb", "lab02-perfect.ipynb"}
	urls := map[string]string{}
	for i, name := range names {
		_, urls[name] = submit(t, p, filepath.Join(root, "examples", "submissions", name), i)
	}
	deadline := time.Now().Add(time.Minute)
	for getStatus(t, p, urls[names[0]]).Status != "grading" {
		if time.Now().After(deadline) {
			t.Fatal("grading never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	store, err := sqlite.Open(filepath.Join(env["OTTER_DATA_DIR"], "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := store.Submission(context.Background(), strings.TrimPrefix(urls[names[0]], prefix+"submissions/"))
	rest, _ := store.Submission(context.Background(), strings.TrimPrefix(urls[names[2]], prefix+"submissions/"))
	store.Close()
	if first == nil || first.Status != service.StatusGraded {
		t.Errorf("the grading in progress at SIGTERM did not finish: %+v", first)
	}
	if rest == nil || rest.Status != service.StatusQueued {
		t.Errorf("a queued submission is %+v after shutdown; want still queued", rest)
	}
	p = start(t, env)
	for _, name := range names {
		checkOutcome(t, name, waitDone(t, p, urls[name], 5*time.Minute), expected[name])
	}
}

func TestConfigErrorsAreAllReported(t *testing.T) {
	var stderr bytes.Buffer
	env := map[string]string{"OTTER_WORKERS": "zero", "POST_GRADE": "maybe", "OTTER_GRADING_TIMEOUT": "soon", "JUPYTERHUB_SERVICE_PREFIX": "services/x",
		"OTTER_MAX_QUEUE": "0", "OTTER_MAX_IN_FLIGHT_PER_USER": "-1", "OTTER_DRAIN_DELAY": "a while", "OTTER_POST_BACKOFF": "zz",
		"LTI_CONSUMER_SECRET": "s", "LTI_CONSUMER_SECRET_FILE": "/nonexistent"}
	err := realMain(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, &stderr)
	if err == nil {
		t.Fatal("started with a broken configuration")
	}
	for _, want := range []string{"OTTER_WORKERS", "POST_GRADE", "OTTER_GRADING_TIMEOUT", "JUPYTERHUB_SERVICE_PREFIX", "OTTER_COURSE_REPOS",
		"OTTER_MAX_QUEUE", "OTTER_MAX_IN_FLIGHT_PER_USER", "OTTER_DRAIN_DELAY", "OTTER_POST_BACKOFF", "LTI_CONSUMER_SECRET_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	err := realMain(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("err = %v", err)
	}
}

// openEmbedded opens the embedded store of a stopped service; closed when t ends.
func openEmbedded(t *testing.T, env map[string]string) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(env["OTTER_DATA_DIR"], "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// gradesPerSubmission counts the grade records of each submission, and all of them.
func gradesPerSubmission(t *testing.T, store service.Store) (map[string]int, int) {
	t.Helper()
	all, err := store.Grades(context.Background(), service.GradeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, g := range all {
		count[g.SubmissionID]++
	}
	return count, len(all)
}
