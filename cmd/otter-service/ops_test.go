package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
)

// cutProxy forwards connections from a listener to a target and can be
// cut (listener and live connections closed: the target is unreachable
// from the service's side) and restored on the same address.
type cutProxy struct {
	network, addr, target string
	mu                    sync.Mutex
	ln                    net.Listener
	conns                 []net.Conn
}

func newCutProxy(t *testing.T, network, addr, targetNetwork, target string) *cutProxy {
	p := &cutProxy{network: network, addr: addr, target: targetNetwork + "|" + target}
	p.restore(t)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) restore(t *testing.T) {
	t.Helper()
	if p.network == "unix" {
		os.Remove(p.addr)
	}
	ln, err := net.Listen(p.network, p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tn, ta, _ := strings.Cut(p.target, "|")
			u, err := net.Dial(tn, ta)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

type readyBody struct {
	Ready    bool              `json:"ready"`
	NotReady map[string]string `json:"not_ready"`
}

func getReady(t *testing.T, p *proc) (int, readyBody) {
	t.Helper()
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

// waitReady waits until /readyz answers want (200 or 503) and, for 503,
// names the check.
func waitReady(t *testing.T, p *proc, want int, check string) readyBody {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, b := getReady(t, p)
		if code == want && (check == "" || b.NotReady[check] != "") && (want != 200 || b.Ready) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %+v; want %d naming %q", code, b, want, check)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReadinessFollowsDependencies runs the service on the Firestore
// emulator and the Docker engine, each reached through a proxy the test
// cuts and restores: readiness names what is unreachable and comes back on
// its own.
func TestReadinessFollowsDependencies(t *testing.T) {
	emulator := testenv.FirestoreEmulator(t)
	engine := strings.TrimPrefix(dockerWithImage(t).DaemonHost(), "unix://")
	store := newCutProxy(t, "tcp", "127.0.0.1:0", "tcp", emulator)
	sock := filepath.Join(t.TempDir(), "engine.sock")
	docker := newCutProxy(t, "unix", sock, "unix", engine)

	root, _ := examples(t)
	env := baseEnv(t, root)
	env["GCP_PROJECT_ID"] = "otter-service-test"
	env["FIRESTORE_EMULATOR_HOST"] = store.addr
	env["ENVIRONMENT"] = "ready" + strconv.FormatInt(time.Now().UnixNano(), 10)
	env["OTTER_RUNNER"] = "docker"
	env["OTTER_GRADING_IMAGE"] = testenv.GradingImage()
	env["OTTER_INSTANCE"] = "ready-test-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	env["DOCKER_HOST"] = "unix://" + sock
	p := start(t, env)

	waitReady(t, p, 200, "")
	store.cut()
	b := waitReady(t, p, 503, "store")
	if b.NotReady["grading"] != "" {
		t.Errorf("with only the store cut, readiness blames the engine too: %+v", b)
	}
	store.restore(t)
	waitReady(t, p, 200, "")
	docker.cut()
	waitReady(t, p, 503, "grading")
	docker.restore(t)
	waitReady(t, p, 200, "")

	// Liveness does not depend on them.
	resp, err := http.Get(p.url("/healthz"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// On SIGTERM, readiness fails before intake stops.
	p.stop(syscall.SIGTERM)
}

// metric returns the value of the first sample whose line starts with
// name{labels} (or name alone), or -1.
func metric(text, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func scrape(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get(p.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricsMove: the metrics families are exposed and move when
// submissions are accepted, refused and graded.
func TestMetricsMove(t *testing.T) {
	root, _ := examples(t)
	env := baseEnv(t, root)
	p := start(t, env)
	waitReady(t, p, 200, "") // the course repository is cloned
	before := scrape(t, p)
	for _, family := range []string{"otter_submissions_accepted_total", "otter_queue_depth", "otter_gradings_in_progress",
		"otter_lti_posts_pending", "otter_store_up", `otter_course_repo_available{course="8x"}`,
		`otter_course_repo_age_seconds{course="8x"}`, `otter_course_repo_refreshes_total{course="8x",result="ok"}`,
		"otter_grading_duration_seconds_count", "otter_submission_to_grade_seconds_count", "go_goroutines"} {
		if metric(before, family) < 0 {
			t.Errorf("/metrics has no %s:\n%s", family, before)
		}
	}
	if metric(before, `otter_course_repo_available{course="8x"}`) != 1 {
		t.Errorf("the course repository is not reported available")
	}

	_, url := submit(t, p, filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb"), 0)
	nb, _ := os.ReadFile(filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb"))
	resp, err := http.Post(p.url(prefix), "application/json", strings.NewReader(regexp.MustCompile(`"assignment": *"lab01"`).ReplaceAllString(string(nb), `"assignment": "lab77"`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitDone(t, p, url, 5*time.Minute)
	after := scrape(t, p)
	for series, delta := range map[string]float64{
		"otter_submissions_accepted_total":                        1,
		`otter_submissions_refused_total{reason="unprocessable"}`: 1,
		`otter_gradings_total{outcome="graded"}`:                  1,
		"otter_grading_duration_seconds_count":                    1,
		"otter_submission_to_grade_seconds_count":                 1,
	} {
		was := max(metric(before, series), 0)
		if got := metric(after, series); got != was+delta {
			t.Errorf("%s went from %v to %v; want +%v", series, was, got, delta)
		}
	}
	if metric(after, `otter_http_request_duration_seconds_count{route="/services/otter_grade/",status="202"}`) != 1 {
		t.Errorf("HTTP durations by route and status are missing:\n%s", after)
	}

	// Every log line about a submission names it, its user and its
	// assignment; no line holds the notebook.
	p.stop(syscall.SIGTERM)
	lines := 0
	for _, line := range strings.Split(p.log(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if strings.Contains(line, "otter_service") || strings.Contains(line, "nbformat") {
			t.Errorf("a log line holds the notebook: %s", line)
		}
		if _, ok := entry["submission"]; !ok {
			continue
		}
		lines++
		for _, k := range []string{"user", "course", "section", "assignment"} {
			if _, ok := entry[k]; !ok {
				t.Errorf("a log line about a submission has no %s: %s", k, line)
			}
		}
	}
	if lines < 3 {
		t.Errorf("only %d log lines about submissions", lines)
	}
}

// TestDrainOnSIGTERM: after SIGTERM, readiness fails at once while intake
// still takes submissions for the drain delay; then the service stops, and
// after a restart everything accepted is graded.
func TestDrainOnSIGTERM(t *testing.T) {
	root, expected := examples(t)
	env := baseEnv(t, root)
	env["OTTER_DRAIN_DELAY"] = "4s"
	env["OTTER_WORKERS"] = "1"
	env["OTTER_SHUTDOWN_GRACE"] = "1s"
	p := start(t, env)
	waitReady(t, p, 200, "")
	lab := filepath.Join(root, "examples", "submissions", "lab01-perfect.ipynb")
	_, first := submit(t, p, lab, 0)
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitReady(t, p, 503, "shutdown")
	_, during := submit(t, p, lab, 1) // taken while traffic drains
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p = start(t, env)
	for _, u := range []string{first, during} {
		checkOutcome(t, "lab01-perfect.ipynb", waitDone(t, p, u, 5*time.Minute), expected["lab01-perfect.ipynb"])
	}
}
