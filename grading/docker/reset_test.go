package docker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
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

// engineProxy forwards connections to the Docker engine's socket, counting
// the exec starts it sees, and can reset every connection open (the engine
// restarting, a proxy in between dropping them); new ones go through.
type engineProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	starts int
	gos    int
	cond   *sync.Cond
	down   bool // refusing connections: the engine unreachable
}

func newEngineProxy(t *testing.T) *engineProxy {
	target := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		target = strings.TrimPrefix(h, "unix://")
	} else if h != "" {
		t.Skipf("DOCKER_HOST=%s is not a unix socket", h)
	}
	path := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &engineProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.reset() })
	t.Setenv("DOCKER_HOST", "unix://"+path)
	return p
}

func (p *engineProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, &counting{r: c, p: p}); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// counting notes the exec starts in a client's requests, and the jobs
// handed to warm graders (their "go" on an attached exec's input).
type counting struct {
	r io.Reader
	p *engineProxy
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 && bytes.Contains(b[:n], []byte("/start HTTP/1.1")) && bytes.Contains(b[:n], []byte("/exec/")) {
		c.p.mu.Lock()
		c.p.starts++
		c.p.cond.Broadcast()
		c.p.mu.Unlock()
	}
	if n > 0 && bytes.Equal(b[:n], []byte("go\n")) {
		c.p.mu.Lock()
		c.p.gos++
		c.p.cond.Broadcast()
		c.p.mu.Unlock()
	}
	return n, err
}

func (p *engineProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// setDown makes the engine unreachable (resetting what is open) or
// reachable again.
func (p *engineProxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.reset()
	}
}

func (p *engineProxy) waitStarts(t *testing.T, n int) { p.waitFor(t, "exec starts", &p.starts, n) }

// waitGos waits for n jobs handed to warm graders.
func (p *engineProxy) waitGos(t *testing.T, n int) {
	p.waitFor(t, "jobs handed to warm graders", &p.gos, n)
}

func (p *engineProxy) waitFor(t *testing.T, what string, count *int, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	deadline := time.AfterFunc(2*time.Minute, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer deadline.Stop()
	start := time.Now()
	for *count < n {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("saw %d %s in 2 minutes, want %d", *count, what, n)
		}
		p.cond.Wait()
	}
}

// TestEngineConnectionResetIsOurs: the connection to the engine reset while
// good notebooks are graded, on either path, fails none of them as the
// notebook's fault: each grading ends with its grade, or with an error of
// ours (the submission goes back to the queue), never with a
// grading.Error; and nothing is left behind.
func TestEngineConnectionResetIsOurs(t *testing.T) {
	testenv.Slow(t, "grades in real containers")
	const n = 4
	for _, warm := range []bool{false, true} {
		t.Run(map[bool]string{false: "cold", true: "warm"}[warm], func(t *testing.T) {
			p := newEngineProxy(t)
			var opts []docker.Option
			if !warm {
				opts = append(opts, docker.ColdGraders())
			}
			r, err := docker.New(testenv.GradingImage(), instance, docker.Limits{}, n, docker.Builds{}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if warm {
				r.StartSpares()
				waitSpares(t, r, testenv.GradingImage(), n)
			}
			ex := load(t, "lab01-perfect.ipynb").withCell(t, "import time\ntime.sleep(5)")
			var wg sync.WaitGroup
			errs := make([]error, n)
			paths := make([]docker.Path, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					job := ex.job()
					job.ID = fmt.Sprintf("reset-%d", i)
					var timing docker.Timing
					_, timing, errs[i] = r.RunTimed(context.Background(), job)
					paths[i] = timing.Path
				}()
			}
			if warm {
				p.waitGos(t, n) // each grading's warm grader has its job
			} else {
				p.waitStarts(t, 2*n) // each grading's kernel and grader are running
			}
			p.reset()
			wg.Wait()
			for i, err := range errs {
				t.Logf("grading %d (%s): %v", i, paths[i], err)
				if _, isGrading := grading.AsError(err); isGrading {
					t.Errorf("grading %d, its engine connection reset: %v; want a grade or an error of ours, not the notebook's", i, err)
				}
			}
			// The engine answers again: what the broken gradings left is removed.
			r.Close()
			noLeftovers(t)
		})
	}
}

// TestLeftoversAreReapedWhenTheEngineAnswers: containers and volumes a
// grading could not remove while the engine was unreachable are removed as
// soon as it answers again, not at the next start of the service.
func TestLeftoversAreReapedWhenTheEngineAnswers(t *testing.T) {
	testenv.Slow(t, "grades in real containers")
	p := newEngineProxy(t)
	pipConf, caCert := testenv.PipBuildFiles()
	inst := fmt.Sprintf("otter-service-reap-%d", os.Getpid())
	r, err := docker.New(testenv.GradingImage(), inst, docker.Limits{}, 0, docker.Builds{Enabled: true, Network: "host", PipConfig: pipConf, CACert: caCert})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Check(ctx); err != nil {
		testenv.Missing(t, "no Docker engine with the grading image: %v", err)
	}
	ex := load(t, "lab01-perfect.ipynb").withCell(t, "import time\ntime.sleep(30)")
	done := make(chan error, 1)
	go func() { _, err := r.Run(context.Background(), ex.job()); done <- err }()
	p.waitStarts(t, 2)
	p.setDown(true)
	if err := <-done; err == nil {
		t.Fatal("a grading whose engine went away succeeded")
	} else if _, isGrading := grading.AsError(err); isGrading {
		t.Errorf("engine gone: %v; want an error of ours", err)
	}
	// The engine directly, not through the proxy: what the grading left.
	direct, err := client.NewClientWithOpts(client.WithHost("unix://"+p.target), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	f := filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+inst))
	count := func() int {
		list, err := direct.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		vols, err := direct.VolumeList(context.Background(), volume.ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(list) + len(vols.Volumes)
	}
	if n := count(); n == 0 {
		t.Fatal("the grading left nothing behind; the test needs it to")
	}
	p.setDown(false)
	deadline := time.Now().Add(time.Minute)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d containers and volumes still left a minute after the engine answered again", count())
		}
		time.Sleep(200 * time.Millisecond) // polling the engine, with a deadline
	}
}
