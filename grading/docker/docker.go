// Package docker grades notebooks inside locked-down containers, driven
// through the Docker Engine API (with API-version negotiation, so Debian's
// docker.io engine, API 1.41, works as well as current engines).
//
// Each job gets a container from the grading image with a size-limited tmpfs
// volume at /autograder, laid out by layout: the autograder and the
// results for the grader's uid only, a working directory for the student's.
// Two processes run in it (two execs, or one that forks: see warm.go): the
// notebook's kernel, as the student's uid, and the grader
// (harness/grader.py), as the grader's uid, which runs the notebook
// in that kernel, evaluates the tests on its own side and writes
// results.json (see the grader's own documentation for what the kernel is
// trusted with). The container has no network (loopback only), a read-only
// root filesystem, a size-limited /tmp, all capabilities dropped (but the
// two a warm start needs: see capAdd), no new privileges, and limits on
// memory (no swap), CPU and processes. Output is read as it comes and
// capped; a wall-clock timeout stops it. When the grader has ended, the
// container is frozen (or, where it cannot be, every student process
// killed) and results.json copied out; the container and its volume are removed
// whatever happened. Containers and volumes are labelled, so that
// RemoveOrphans can clear what a crashed service left.
package docker

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/grading"
)

// LabelInstance labels everything the runner creates with the service
// instance that made it.
const LabelInstance = "otter-service.instance"

// The grading command and the user it runs as (the grading image's
// contract), and what the container runs meanwhile.
var (
	// The grader (harness/grader.py, embedded in the binary): it drives the
	// kernel, runs the tests on its side and writes results.json. PDF
	// export and Gradescope uploads are off there: the image has no pandoc
	// or LaTeX, nothing may leave the container, and grades do not depend
	// on them.
	graderCommand = []string{"python3", "-I", "/autograder/harness/grader.py", "/autograder"}
	// The notebook's kernel, started before the grader connects to it.
	kernelCommand = []string{"python3", "-c", "import os, runpy, sys\nos.makedirs('/tmp/student', mode=0o700, exist_ok=True)\n" +
		"sys.argv = ['ipykernel_launcher', '-f', '/autograder/kernel/kernel.json']\nrunpy.run_module('ipykernel_launcher', run_name='__main__', alter_sys=True)"}
	holdCommand = []string{"python3", "-c", "import time\nwhile True: time.sleep(3600)"}
)

const (
	graderUID  = 1000
	studentUID = 1001
)

//go:embed harness/grader.py
var harness []byte

// warmStart is the program of a warm spare's one exec (see warm.go).
//
//go:embed harness/warmstart.py
var warmStart string

// Limits bound what one grading may use.
type Limits struct {
	Memory    int64         // bytes of memory, swap off; default 1 GiB
	CPUs      float64       // cores; default 1
	Processes int64         // processes and threads; default 256
	Disk      int64         // bytes writable under /autograder; default 512 MiB
	Tmp       int64         // bytes writable under /tmp; default 256 MiB
	Output    int           // bytes of output before the grading is stopped; default 1 MiB
	Timeout   time.Duration // wall clock; default 10 minutes
}

func (l *Limits) withDefaults() {
	if l.Memory <= 0 {
		l.Memory = 1 << 30
	}
	if l.CPUs <= 0 {
		l.CPUs = 1
	}
	if l.Processes <= 0 {
		l.Processes = 256
	}
	if l.Disk <= 0 {
		l.Disk = 512 << 20
	}
	if l.Tmp <= 0 {
		l.Tmp = 256 << 20
	}
	if l.Output <= 0 {
		l.Output = 1 << 20
	}
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Minute
	}
}

// Runner grades notebooks in containers.
type Runner struct {
	cli      *client.Client
	image    string
	limits   Limits
	instance string

	// Containers started ahead of need, with warm graders in them (see
	// warm.go).
	spares   spares
	mu       sync.Mutex // guards closed, refills.Add and removals.Add
	closed   bool
	once     sync.Once
	refills  sync.WaitGroup
	removals sync.WaitGroup // of containers gradings are done with
	measure  func(Usage)    // see MeasureUsage

	// The boxes some grading or the pool holds, by key (LabelBox): the
	// reaper removes this instance's other containers and volumes, which
	// removals that failed (the engine unreachable) left behind.
	liveMu   sync.Mutex
	live     map[string]bool
	leftover atomic.Bool   // a removal failed: reap as soon as the engine answers
	stopReap chan struct{} // closed by Close
	reaped   sync.WaitGroup

	builds   Builds
	log      *slog.Logger
	buildMu  sync.Mutex              // guards building and failed
	building map[string]*sync.Mutex  // per assignment image being built
	failed   map[string]*failedBuild // per assignment image whose build failed
}

// box is a started grading container with its /autograder volume.
type box struct {
	key        string // its LabelBox
	id, volume string
	warm       *warmGrader // its kernel and grader started ahead; nil if none
	graded     bool        // a job was given it
}

// LabelBox labels a grading container and its volume with the key the
// runner holds them by.
const LabelBox = "otter-service.box"

// reapEvery is how often the reaper looks for leftovers when nothing is
// known to be left; reapRetry, how often it tries while something is.
const (
	reapEvery = time.Minute
	reapRetry = 5 * time.Second
)

var _ grading.Runner = (*Runner)(nil)

// Option changes how a Runner works.
type Option func(*Runner)

// ColdGraders starts no grader ahead in the spare containers: each grading
// starts its kernel and grader itself (see warm.go).
func ColdGraders() Option { return func(r *Runner) { r.spares.graders = false } }

// New connects to the engine named by the environment (DOCKER_HOST, or the
// local socket) and returns a runner using image. It keeps spare
// containers started ahead of need, with warm graders in them, for warm
// gradings at once (0: none; see warm.go), and builds per-assignment
// images as builds says.
func New(image, instance string, limits Limits, warm int, builds Builds, opts ...Option) (*Runner, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	limits.withDefaults()
	log := builds.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{cli: cli, image: image, limits: limits, instance: instance,
		spares: spares{byImage: map[string][]*box{}, pending: map[string]int{}, demand: map[string][]time.Time{}, failed: map[string]time.Time{},
			changed: make(chan struct{}), workers: max(warm, 0), graders: true, defImage: image},
		builds: builds, log: log,
		live: map[string]bool{}, stopReap: make(chan struct{}),
		building: map[string]*sync.Mutex{}, failed: map[string]*failedBuild{}}
	for _, o := range opts {
		o(r)
	}
	r.reaped.Add(1)
	go r.reapLoop()
	return r, nil
}

// reapLoop removes leftovers (see Reap): every reapEvery, and every
// reapRetry while a removal is known to have failed, until Close. Every
// reapRetry it also makes up for spares that were lost (see topUp).
func (r *Runner) reapLoop() {
	defer r.reaped.Done()
	last := time.Now()
	t := time.NewTicker(reapRetry)
	defer t.Stop()
	for {
		select {
		case <-r.stopReap:
			return
		case <-t.C:
		}
		r.topUp()
		if !r.leftover.Load() && time.Since(last) < reapEvery {
			continue
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), reapRetry)
		r.trimSpares(ctx)
		n, err := r.Reap(ctx)
		cancel()
		switch {
		case err != nil:
			r.leftover.Store(true) // the engine may still be away: try again soon
		case n > 0:
			r.log.Info("removed grading containers and volumes left behind", "removed", n)
		}
	}
}

// Reap removes this instance's containers and volumes that neither a
// grading nor the pool of warm containers holds (left by removals that
// failed, the engine unreachable), and returns how many it removed.
func (r *Runner) Reap(ctx context.Context) (int, error) {
	f := filters.NewArgs(filters.Arg("label", LabelInstance+"="+r.instance))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("listing containers: %w", err)
	}
	vols, err := r.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return 0, fmt.Errorf("listing volumes: %w", err)
	}
	// Read who is live after listing: a box made meanwhile is live by then
	// (its key is taken before its objects are created).
	r.liveMu.Lock()
	live := make(map[string]bool, len(r.live))
	for k := range r.live {
		live[k] = true
	}
	r.liveMu.Unlock()
	n := 0
	var errs []error
	for _, c := range list {
		if live[c.Labels[LabelBox]] {
			continue
		}
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	for _, v := range vols.Volumes {
		if live[v.Labels[LabelBox]] {
			continue
		}
		if err := removeVolume(ctx, r.cli, v.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) == 0 {
		r.leftover.Store(false)
	}
	return n, errors.Join(errs...)
}

// removeVolume removes a volume, retrying a little while the engine still
// says it is in use (the removal of its container is not finished).
func removeVolume(ctx context.Context, cli *client.Client, name string) error {
	for try := 1; ; try++ {
		err := cli.VolumeRemove(ctx, name, true)
		if err == nil || client.IsErrNotFound(err) {
			return nil
		}
		if try == 5 || !strings.Contains(err.Error(), "in use") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(try) * 200 * time.Millisecond):
		}
	}
}

// Close removes the spare containers and releases the connection to the
// engine.
func (r *Runner) Close() error {
	var err error
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.refills.Wait()
		r.closeSpares()
		r.removals.Wait()
		close(r.stopReap)
		r.reaped.Wait()
		if r.leftover.Load() { // one last try
			ctx, cancel := context.WithTimeout(context.Background(), reapRetry)
			r.Reap(ctx)
			cancel()
		}
		err = r.cli.Close()
	})
	return err
}

// Check reports whether the engine answers and has the grading image.
func (r *Runner) Check(ctx context.Context) error {
	if _, err := r.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	if _, err := r.cli.ImageInspect(ctx, r.image); err != nil {
		return fmt.Errorf("grading image %s: %w", r.image, err)
	}
	return nil
}

// RemoveOrphans removes the containers and volumes this instance left
// behind (a crash mid-grading leaves them; their submissions go back to the
// queue when their leases lapse). It returns how many containers it removed.
func (r *Runner) RemoveOrphans(ctx context.Context) (int, error) {
	f := filters.NewArgs(filters.Arg("label", LabelInstance+"="+r.instance))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("listing containers: %w", err)
	}
	var errs []error
	for _, c := range list {
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, err)
		}
	}
	vols, err := r.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return len(list), errors.Join(append(errs, err)...)
	}
	for _, v := range vols.Volumes {
		if err := removeVolume(ctx, r.cli, v.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return len(list), errors.Join(errs...)
}

// Timing splits one grading's wall-clock time.
type Timing struct {
	Total     time.Duration // Run, from start to end
	Container time.Duration // the container's own run: otter grading
	Path      Path          // warm or cold
	Image     string        // the image it was graded in
}

// Run implements grading.Runner.
func (r *Runner) Run(ctx context.Context, job grading.Job) (*grading.Result, error) {
	res, _, err := r.RunTimed(ctx, job)
	return res, err
}

// RunTimed is Run, also telling where the time went.
func (r *Runner) RunTimed(ctx context.Context, job grading.Job) (res *grading.Result, timing Timing, err error) {
	start := time.Now()
	defer func() { timing.Total = time.Since(start) }()
	res, err = r.run(ctx, job, &timing)
	return res, timing, err
}

func (r *Runner) run(ctx context.Context, job grading.Job, timing *Timing) (*grading.Result, error) {
	// The archive first: a broken zip is the submission's assignment's
	// problem, found before any container exists.
	archive, err := layout(&job, nil)
	if err != nil {
		return nil, err
	}
	ag, err := grading.ReadAutograder(job.Autograder)
	if err != nil {
		return nil, err
	}
	if err := ag.Unsupported(); err != nil {
		return nil, err
	}
	// Cleanup must happen even when ctx is cancelled (the service stopping).
	cleanup := context.WithoutCancel(ctx)
	image, err := r.imageFor(ctx, ag)
	if err != nil {
		return nil, err
	}
	// A spare: warm when it has a grader started ahead, which an
	// assignment that cannot be graded warm must not take.
	eligible, coldWhy := warmEligible(ag)
	if !r.spares.graders {
		coldWhy = "warm graders are off"
	}
	var b *box
	if eligible || !r.spares.graders {
		b = r.takeSpare(ctx, image)
	}
	if b == nil {
		if b, err = r.prepare(ctx, image); err != nil {
			return nil, err
		}
		if coldWhy == "" {
			coldWhy = "no spare was ready"
		}
	}
	b.graded = true
	defer r.dropLater(b)
	r.refill(image)
	id := b.id
	timing.Path, timing.Image = PathCold, image
	if b.warm != nil {
		timing.Path, coldWhy = PathWarm, ""
	} else {
		// The grader and the kernel's connection file with the job, in
		// one copy.
		conn, err := kernelConnection()
		if err != nil {
			return nil, err
		}
		if archive, err = layout(&job, conn); err != nil {
			return nil, err
		}
	}
	r.log.Info("grading", "submission", job.ID, "path", timing.Path, "why_cold", coldWhy, "image", image)
	if err := r.cli.CopyToContainer(ctx, id, "/autograder", bytes.NewReader(archive), container.CopyToContainerOptions{}); err != nil {
		return nil, fmt.Errorf("copying the job into its container: %w", err)
	}

	over := make(chan struct{})
	out := &grading.OutputBuffer{Max: r.limits.Output, OnOverflow: func() { close(over) }}
	started := time.Now()
	g := b.warm
	if g != nil {
		if err := g.start(out); err != nil {
			return nil, fmt.Errorf("handing the job to its warm grader: %w", err)
		}
	} else if g, err = r.startCold(ctx, id, out); err != nil {
		return nil, err
	} else {
		defer g.close()
	}
	// The kernel's end, seen by the engine (a process the notebook forks
	// may keep the kernel's output open, so its stream does not tell).
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	kernelGone := r.watchExec(watch, g.kernelID) // a warm grader watches its own kernel
	finished := g.finished
	timer := time.NewTimer(r.limits.Timeout)
	defer timer.Stop()
	var timedOut, tooMuch, kernelDied bool
	kill := func() { r.cli.ContainerKill(cleanup, id, "KILL") }
	select {
	case <-finished:
	case <-kernelGone:
		kernelDied = true
	case <-timer.C:
		timedOut = true
	case <-over:
		tooMuch = true
	case <-ctx.Done():
		kill()
		return nil, ctx.Err() // the service is stopping: not the submission's fault
	}
	timing.Container = time.Since(started)
	var data []byte
	var exitCode int
	var resultsErr error
	oom := false
	if kernelDied {
		oom = r.oomKills(cleanup, id, user) > 0
	}
	if !timedOut && !tooMuch && !kernelDied {
		// The grader's output ending is not the grader ending: the
		// connection to the engine may have broken, and the engine may
		// even be still starting it (it answers an exec start before the
		// process exists). Only an exec the engine reports started and
		// finished has an exit code to trust; anything else is our
		// trouble, not the notebook's, and the submission is graded again.
		// This is asked before the container is frozen: an exec starting
		// in a frozen container never starts, and the engine (Debian's
		// docker.io 20.10) then stops answering for that container.
		ins, err := r.cli.ContainerExecInspect(cleanup, g.graderID)
		if err != nil {
			kill()
			return nil, fmt.Errorf("inspecting the grading command: %w", err)
		}
		if ins.Running || ins.Pid == 0 {
			kill()
			return nil, fmt.Errorf("the connection to the Docker engine broke while the grading command still ran or started (%v)", g.streamErr)
		}
		if g.kernelID != "" {
			if k, err := r.cli.ContainerExecInspect(cleanup, g.kernelID); err != nil || k.Pid == 0 {
				kill()
				return nil, fmt.Errorf("inspecting the kernel: the engine has not started it (%v)", err)
			}
		}
		if timing.Path == PathWarm && (!g.tookJob() || ins.ExitCode == exitSpareBroken) {
			kill()
			return nil, fmt.Errorf("the warm grader ended (status %d) before it took the job: %s", ins.ExitCode, out.Tail())
		}
		exitCode = ins.ExitCode
		if timing.Path == PathWarm && exitCode == exitKernelEnded {
			kernelDied = true // as the engine would have told of a kernel exec of its own
			oom = r.oomKills(cleanup, id, user) > 0
		}
	}
	if !timedOut && !tooMuch && !kernelDied {
		// The container is frozen while results.json (which only the
		// grader could write) is copied out, so nothing of the student's
		// acts meanwhile; where it cannot be frozen, every process of the
		// student's uid is killed first. A frozen container is killed and
		// removed as it is (dropLater); it is thawed only where an exec
		// explains a failure.
		paused := r.cli.ContainerPause(cleanup, id) == nil
		if !paused {
			r.killStudent(cleanup, id)
		}
		data, resultsErr = r.results(cleanup, id)
		if resultsErr != nil && !errors.Is(resultsErr, errNoResults) {
			kill()
			return nil, fmt.Errorf("reading results.json from the grading container: %w", resultsErr)
		}
		if exitCode != 0 || resultsErr != nil { // only a failure needs explaining
			if paused {
				if err := r.cli.ContainerUnpause(cleanup, id); err != nil {
					kill()
					return nil, fmt.Errorf("thawing the grading container: %w", err)
				}
				r.killStudent(cleanup, id)
			}
			oom = r.oomKills(cleanup, id, user) > 0
		}
	}
	info, err := r.cli.ContainerInspect(cleanup, id)
	if err != nil {
		return nil, fmt.Errorf("inspecting the grading container: %w", err)
	}
	if timedOut || tooMuch || kernelDied {
		kill() // at once; a finished one is killed by its removal
	}
	oom = oom || info.State != nil && info.State.OOMKilled
	log := out.Tail()
	switch {
	case tooMuch:
		return nil, grading.OutputError(r.limits.Output, log)
	case timedOut:
		return nil, grading.TimeoutError(r.limits.Timeout, log)
	case oom:
		return nil, grading.MemoryError(r.limits.Memory, log)
	case kernelDied:
		return nil, grading.KernelError(log)
	}
	if exitCode != 0 || resultsErr != nil {
		if strings.Contains(log, "No space left on device") {
			return nil, &grading.Error{Kind: grading.KindAutograder, Log: log,
				Message: fmt.Sprintf("The notebook wrote more files than the %d MiB allowed while being graded, so it could not be graded. Do not write large files, and submit again.", r.limits.Disk>>20)}
		}
		why := fmt.Sprintf("otter exited with status %d", exitCode)
		if exitCode == 0 {
			why = "it wrote no results"
		}
		return nil, grading.FailedError(why, log)
	}
	return grading.ParseResultsFor(data, ag)
}

// startCold starts the kernel, then the grader, in container id, their
// output going to out.
func (r *Runner) startCold(ctx context.Context, id string, out io.Writer) (*warmGrader, error) {
	g := &warmGrader{took: make(chan struct{}), finished: make(chan struct{})}
	var err error
	// The student's side: the notebook's kernel, as its own uid.
	if g.kernel, g.kernelID, err = r.start(ctx, id, container.ExecOptions{User: student, WorkingDir: "/autograder/submission",
		Env: studentEnv, Cmd: kernelCommand}, out); err != nil {
		return nil, fmt.Errorf("starting the notebook's kernel: %w", err)
	}
	// The grader's side, which drives the kernel and writes results.json.
	exec, err := r.cli.ContainerExecCreate(ctx, id, container.ExecOptions{
		User: user, WorkingDir: "/autograder", Env: graderEnv, Cmd: graderCommand, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		g.kernel.Close()
		return nil, fmt.Errorf("creating the grading command: %w", err)
	}
	g.graderID = exec.ID
	if g.grader, err = r.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{}); err != nil {
		g.kernel.Close()
		return nil, fmt.Errorf("starting the grading command: %w", err)
	}
	close(g.took)
	go func() {
		defer close(g.finished)
		_, g.streamErr = stdcopy.StdCopy(out, out, g.grader.Reader) // until the command ends, or the connection breaks
	}()
	return g, nil
}

// Environments and users of what runs in a grading container: the grader
// (and the container's own process) as graderUID, the notebook's kernel as
// studentUID.
var (
	env        = []string{"HOME=/tmp", "TMPDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=Agg"}
	graderEnv  = []string{"HOME=/tmp/grader", "TMPDIR=/tmp/grader", "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=Agg"}
	studentEnv = []string{"HOME=/tmp/student", "TMPDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=Agg"}
	user       = fmt.Sprintf("%d:%d", graderUID, graderUID)
	student    = fmt.Sprintf("%d:%d", studentUID, studentUID)
)

// start runs an exec in the background, its output going to out; it
// returns the exec's id.
func (r *Runner) start(ctx context.Context, id string, opts container.ExecOptions, out io.Writer) (types.HijackedResponse, string, error) {
	opts.AttachStdout, opts.AttachStderr = true, true
	exec, err := r.cli.ContainerExecCreate(ctx, id, opts)
	if err != nil {
		return types.HijackedResponse{}, "", err
	}
	attach, err := r.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return types.HijackedResponse{}, "", err
	}
	go stdcopy.StdCopy(out, out, attach.Reader)
	return attach, exec.ID, nil
}

// watchExec returns a channel closed when the exec's process has ended,
// asking the engine every 250 ms until ctx ends.
func (r *Runner) watchExec(ctx context.Context, execID string) <-chan struct{} {
	gone := make(chan struct{})
	if execID == "" {
		return gone
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ins, err := r.cli.ContainerExecInspect(ctx, execID)
			if err == nil && !ins.Running && ins.Pid != 0 {
				close(gone)
				return
			}
		}
	}()
	return gone
}

// killStudent kills every process of the student's uid in the container:
// kill(-1) from that uid reaches all of them (and the killer itself), so a
// daemon the notebook left cannot survive it. It waits for the kill to be
// done.
func (r *Runner) killStudent(ctx context.Context, id string) {
	exec, err := r.cli.ContainerExecCreate(ctx, id, container.ExecOptions{User: student, WorkingDir: "/",
		Cmd: []string{"python3", "-I", "-c", "import os, signal\nos.kill(-1, signal.SIGKILL)"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return
	}
	attach, err := r.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return
	}
	defer attach.Close()
	io.Copy(io.Discard, io.LimitReader(attach.Reader, 64<<10))
}

// prepare creates and starts a grading container with a fresh volume. The
// container only holds the job's mounts while otter runs in it as an exec:
// /autograder is a tmpfs volume, whose contents exist only while it is
// mounted, that is while the container runs. The exec's end is a signal
// student code cannot forge.
func (r *Runner) prepare(ctx context.Context, image string) (b *box, err error) {
	key := randomKey()
	r.liveMu.Lock()
	r.live[key] = true
	r.liveMu.Unlock()
	labels := map[string]string{LabelInstance: r.instance, LabelBox: key}
	vol, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{
		Driver: "local",
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs",
			"o": fmt.Sprintf("size=%d,uid=%d,gid=%d,mode=0755,nosuid,nodev", r.limits.Disk, graderUID, graderUID)},
		Labels: labels,
	})
	if err != nil {
		r.forget(key)
		return nil, fmt.Errorf("creating a grading volume: %w", err)
	}
	b = &box{key: key, volume: vol.Name}
	defer func() {
		if err != nil {
			r.discard(context.WithoutCancel(ctx), b)
		}
	}()
	pids := r.limits.Processes
	init := true
	created, err := r.cli.ContainerCreate(ctx, &container.Config{
		Image:      image,
		Cmd:        r.holdCommand(),
		User:       r.containerUser(),
		WorkingDir: "/autograder",
		Env:        env,
		Labels:     labels,
	}, &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": fmt.Sprintf("rw,nosuid,nodev,size=%d,mode=1777", r.limits.Tmp)},
		Mounts:         []mount.Mount{{Type: mount.TypeVolume, Source: vol.Name, Target: "/autograder"}},
		CapDrop:        []string{"ALL"},
		CapAdd:         r.capAdd(),
		SecurityOpt:    []string{"no-new-privileges"},
		Init:           &init,
		LogConfig:      container.LogConfig{Type: "none"},
		Resources: container.Resources{
			Memory:     r.limits.Memory,
			MemorySwap: r.limits.Memory, // no swap
			NanoCPUs:   int64(r.limits.CPUs * 1e9),
			PidsLimit:  &pids,
			Ulimits:    []*container.Ulimit{{Name: "core", Soft: 0, Hard: 0}},
		},
	}, nil, nil, "")
	if err != nil {
		return b, fmt.Errorf("creating a grading container: %w", err)
	}
	b.id = created.ID
	if err := r.cli.ContainerStart(ctx, b.id, container.StartOptions{}); err != nil {
		return b, fmt.Errorf("starting a grading container: %w", err)
	}
	return b, nil
}

// discard removes a container and its volume. What it cannot remove (the
// engine unreachable) the reaper removes when the engine answers again.
func (r *Runner) discard(ctx context.Context, b *box) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok := true
	if b.id != "" {
		if err := r.cli.ContainerRemove(ctx, b.id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			ok = false
		}
	}
	if ok && removeVolume(ctx, r.cli, b.volume) != nil {
		ok = false
	}
	if !ok {
		r.leftover.Store(true)
	}
	r.forget(b.key)
}

func (r *Runner) forget(key string) {
	r.liveMu.Lock()
	delete(r.live, key)
	r.liveMu.Unlock()
}

func randomKey() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// oomCheck prints the container's count of processes killed for lack of
// memory (cgroup v1 or v2). The engine's own flag only covers the
// container's main process, and otter's runs as an exec.
const oomCheck = `import re
for p in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
    try:
        m = re.search(r"^oom_kill (\d+)", open(p).read(), re.M)
    except OSError:
        continue
    if m:
        print(m.group(1))
        break`

// oomKills returns how many processes in the container the kernel killed for
// lack of memory (0 if it cannot tell).
func (r *Runner) oomKills(ctx context.Context, id, user string) int {
	// Isolated (-I) and outside /autograder: nothing the notebook wrote
	// can be imported.
	exec, err := r.cli.ContainerExecCreate(ctx, id, container.ExecOptions{User: user, WorkingDir: "/",
		Cmd: []string{"python3", "-I", "-c", oomCheck}, AttachStdout: true})
	if err != nil {
		return 0
	}
	attach, err := r.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return 0
	}
	defer attach.Close()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, io.Discard, io.LimitReader(attach.Reader, 4096))
	n, _ := strconv.Atoi(strings.TrimSpace(out.String()))
	return n
}

// results copies results.json out of the container, reading at most one
// byte past the limit.
// errNoResults is wrapped by results' error when the grading wrote no
// results.json; its other errors are the engine's.
var errNoResults = errors.New("no results.json")

func (r *Runner) results(ctx context.Context, id string) ([]byte, error) {
	rc, _, err := r.cli.CopyFromContainer(ctx, id, "/autograder/results/results.json")
	if client.IsErrNotFound(err) {
		return nil, fmt.Errorf("%w: %v", errNoResults, err)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: results.json is not a regular file", errNoResults)
	}
	data, err := io.ReadAll(io.LimitReader(tr, grading.MaxResultsSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// layout builds the tar copied to /autograder. What the student's side
// (the kernel, uid studentUID) may touch and what it may not:
//
//	source/      the zip's contents: tests, config      grader, 0700
//	job/         the grader's copy of the notebook,     grader, 0700
//	             job.json, submission_metadata.json
//	results/     where the grader writes results.json   grader, 0700
//	harness/     the grader program                     grader, 0755, files 0644
//	kernel/      the kernel's connection file           grader, 0755, files 0644
//	submission/  the kernel's working directory: the    student
//	             notebook and the zip's files/
//
// The zip is read with courseconfig.CheckZip's limits on entry count
// (MaxZipEntries) and total unpacked size (MaxZipUnpacked), and no entry
// that would land outside its directory.
//
// A spare gets the directories, the grader and the connection file before
// any job is known (job nil); the job then brings the rest (kernelConnection
// nil).
func layout(job *grading.Job, kernelConnection []byte) ([]byte, error) {
	var zr *zip.Reader
	if job != nil {
		var err error
		zr, err = zip.NewReader(bytes.NewReader(job.Autograder), int64(len(job.Autograder)))
		if err != nil {
			return nil, zipError("it is not a zip file (%v)", err)
		}
		if len(zr.File) > courseconfig.MaxZipEntries {
			return nil, zipError("it has more than %d entries", courseconfig.MaxZipEntries)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := func(name string, uid int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: now})
	}
	file := func(name string, uid int, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), Uid: uid, Gid: uid, ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		uid  int
		mode int64
	}{
		{"source", graderUID, 0o700}, {"job", graderUID, 0o700}, {"results", graderUID, 0o700},
		{"harness", graderUID, 0o755}, {"kernel", graderUID, 0o755}, {"submission", studentUID, 0o755},
	} {
		if err := dir(d.name, d.uid, d.mode); err != nil {
			return nil, err
		}
	}
	if kernelConnection != nil {
		if err := file("harness/grader.py", graderUID, 0o644, harness); err != nil {
			return nil, err
		}
		if err := file("kernel/kernel.json", graderUID, 0o644, kernelConnection); err != nil {
			return nil, err
		}
	}
	if job == nil {
		if err := tw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	nb := path.Base(job.NotebookName)
	if nb == "." || nb == "/" || !strings.HasSuffix(nb, ".ipynb") {
		nb = "submission.ipynb"
	}
	jobJSON, _ := json.Marshal(map[string]any{"notebook": nb})
	for _, f := range []struct {
		name string
		uid  int
		mode int64
		data []byte
	}{
		{"job/job.json", graderUID, 0o600, jobJSON},
		// What otter run writes for plugins to read (on Gradescope, the
		// submission's metadata): nothing is known about earlier submissions.
		{"job/submission_metadata.json", graderUID, 0o600, []byte("{}")},
		{"job/" + nb, graderUID, 0o600, job.Notebook},
		{"submission/" + nb, studentUID, 0o644, job.Notebook},
	} {
		if err := file(f.name, f.uid, f.mode, f.data); err != nil {
			return nil, err
		}
	}
	var total uint64
	dirs := map[string]bool{}
	// mkdirs makes the parents of name under the roots it is copied to.
	mkdirs := func(name string, isDir bool) error {
		var parents []string // shallowest first
		p := path.Dir(name)
		if isDir {
			p = name
		}
		for ; p != "." && !dirs[p]; p = path.Dir(p) {
			parents = append([]string{p}, parents...)
		}
		for _, p := range parents {
			dirs[p] = true
			if err := dir("source/"+p, graderUID, 0o700); err != nil {
				return err
			}
			if rest, ok := strings.CutPrefix(p, "files/"); ok {
				if err := dir("submission/"+rest, studentUID, 0o755); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, f := range zr.File {
		name := strings.TrimPrefix(path.Clean("/"+f.Name), "/")
		if name == "" || strings.Contains(f.Name, `\`) || name != strings.TrimSuffix(f.Name, "/") {
			return nil, zipError("entry %q has an unsafe name", f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := mkdirs(name, true); err != nil {
				return nil, err
			}
			continue
		}
		if !f.Mode().IsRegular() {
			return nil, zipError("entry %q is not a regular file", f.Name)
		}
		if err := mkdirs(name, false); err != nil {
			return nil, err
		}
		total += f.UncompressedSize64
		if total > courseconfig.MaxZipUnpacked {
			return nil, zipError("it unpacks to more than %d MiB", courseconfig.MaxZipUnpacked>>20)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, zipError("entry %q cannot be read (%v)", f.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		rc.Close()
		if err != nil || uint64(len(data)) != f.UncompressedSize64 {
			return nil, zipError("entry %q is damaged", f.Name)
		}
		if err := file("source/"+name, graderUID, 0o600, data); err != nil {
			return nil, err
		}
		// The zip's files/ (data the notebook reads) go beside the
		// notebook, as otter puts them; the student may change its copy.
		if rest, ok := strings.CutPrefix(name, "files/"); ok && rest != nb {
			if err := file("submission/"+rest, studentUID, 0o644, data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// kernelConnection returns a Jupyter connection file for the student's
// kernel: loopback ports (the container's own network namespace) and a
// fresh key.
func kernelConnection() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ports := map[string]int{}
	used := map[int]bool{}
	for _, name := range []string{"shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"} {
		for {
			var b [2]byte
			rand.Read(b[:])
			p := 20000 + int(b[0])<<8%40000 + int(b[1])
			if !used[p] {
				used[p] = true
				ports[name] = p
				break
			}
		}
	}
	conn := map[string]any{"transport": "tcp", "ip": "127.0.0.1", "key": hex.EncodeToString(key),
		"signature_scheme": "hmac-sha256", "kernel_name": "python3"}
	for k, v := range ports {
		conn[k] = v
	}
	return json.Marshal(conn)
}

func zipError(format string, args ...any) error {
	return &grading.Error{Kind: grading.KindAutograder,
		Message: "The assignment's autograder cannot be used: " + fmt.Sprintf(format, args...) + ". Tell your course staff."}
}
