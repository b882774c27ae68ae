package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/otter-service/otter-service/grading"
)

// Spare containers and the warm graders in them.
//
// Each worker's next grading should not wait for a container to be created
// and started, nor for the grader's start-up (about 1,300 modules imported,
// the kernel started and otter imported in it), which is most of a short
// grading's time. So the runner keeps spares: containers of an image,
// started before any submission is known, in each of which (with warm
// graders on) one exec (harness/warmstart.py) imported the libraries both
// sides use, then forked: the notebook's kernel runs as the student's uid,
// started as a cold one is, and the grader (harness/grader.py --warm), as
// its own uid, has connected to it, set otter up in it, and waits on its
// standard input. The kernel is the grader's child: when it ends, the
// grader ends with exitKernelEnded (or exitSpareBroken before a job). A job
// takes a spare, copies itself in and writes "go"; the grader then grades
// exactly as a cold one does (the same code, from reading the job on). A
// spare holds nothing of any submission until it is taken, and is removed
// after its one job, like every container.
//
// An assignment whose plugins run before the kernel is used (otter runs
// them on the notebook first) is graded cold: in a new container, its
// kernel and grader started for it.
//
// Spares are kept per image: the grading image's as many as workers, an
// assignment image's as many as it was asked for in the last
// spareDemandWindow (at most workers), and never more than workers plus
// spareExtra in all. Spares of an image nobody asked for in that window are
// removed.

const (
	spareDemandWindow = 10 * time.Minute
	spareExtra        = 2
	// spareWait bounds how long a job waits for a spare on its way before
	// it is graded cold.
	spareWait = 30 * time.Second
	// warmReadyTimeout bounds a warm grader's start-up.
	warmReadyTimeout = 2 * time.Minute
	// warmReady is the line the warm grader writes on its standard output
	// when it is ready, and warmGo the one when it has read "go" (the
	// student's side cannot write to that stream).
	warmReady = "otter-service: warm grader ready\n"
	warmGo    = "otter-service: grading\n"
	// maxHeld bounds what the execs of a spare may write before a job
	// takes it.
	maxHeld = 64 << 10
)

// Path says how a grading was run.
type Path string

const (
	PathWarm Path = "warm" // in a spare, its grader started ahead
	PathCold Path = "cold" // its kernel and grader started for it
)

// warmGrader is a grading's kernel and grader: started ahead in a spare
// (one exec, which forked), or for the job by startCold (two execs, kernel
// and kernelID set).
type warmGrader struct {
	kernel, grader     types.HijackedResponse
	kernelID, graderID string
	out                *holdWriter
	took               chan struct{} // closed when the grader has read "go"
	finished           chan struct{} // closed when the grader's output ends
	streamErr          error         // set before finished is closed
}

// tookJob reports whether the grader read "go": if it ended without, its
// end is the runner's trouble, not the notebook's.
func (w *warmGrader) tookJob() bool {
	select {
	case <-w.took:
		return true
	default:
		return false
	}
}

// alive reports whether the grader still waits (its output has not ended).
func (w *warmGrader) alive() bool {
	select {
	case <-w.finished:
		return false
	default:
		return true
	}
}

// close ends the connections; a grader that never got "go" exits at its
// standard input's end.
func (w *warmGrader) close() {
	for _, c := range []types.HijackedResponse{w.grader, w.kernel} {
		if c.Conn != nil { // a warm one's kernel has no exec of its own
			c.Close()
		}
	}
}

// holdWriter keeps what is written to it (up to maxHeld bytes) until send
// gives it a destination, and passes everything on from then.
type holdWriter struct {
	mu   sync.Mutex
	held []byte
	to   io.Writer
}

func (h *holdWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.to != nil {
		return h.to.Write(p)
	}
	if room := maxHeld - len(h.held); room > 0 {
		h.held = append(h.held, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (h *holdWriter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.held)
}

func (h *holdWriter) send(to io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	to.Write(h.held)
	h.held, h.to = nil, to
}

// markWriter passes what the grader writes on its standard output to next,
// but for the marker lines it is told of, in their order, each of which
// closes its channel when it goes by.
type markWriter struct {
	next  io.Writer
	marks []mark
	seen  []byte // since the last marker, while one is awaited
}

type mark struct {
	line string
	seen chan struct{}
}

func (w *markWriter) Write(p []byte) (int, error) {
	if len(w.marks) == 0 {
		return w.next.Write(p)
	}
	w.seen = append(w.seen, p...)
	for len(w.marks) > 0 {
		i := bytes.Index(w.seen, []byte(w.marks[0].line))
		if i < 0 {
			break
		}
		if _, err := w.next.Write(w.seen[:i]); err != nil {
			return 0, err
		}
		close(w.marks[0].seen)
		w.seen, w.marks = w.seen[i+len(w.marks[0].line):], w.marks[1:]
	}
	if len(w.marks) == 0 || len(w.seen) > maxHeld { // nothing more to look for, or not coming
		w.next.Write(w.seen)
		w.seen, w.marks = nil, nil
	}
	return len(p), nil
}

// warmUp starts the kernel and a warm grader in b, and waits until the
// grader is ready. Nothing of any submission is in b.
func (r *Runner) warmUp(ctx context.Context, b *box) error {
	conn, err := kernelConnection()
	if err != nil {
		return err
	}
	archive, err := spareArchive(conn)
	if err != nil {
		return err
	}
	if err := r.cli.CopyToContainer(ctx, b.id, "/autograder", bytes.NewReader(archive), container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copying the grader into a spare: %w", err)
	}
	w := &warmGrader{out: &holdWriter{}, took: make(chan struct{}), finished: make(chan struct{})}
	// One exec, as root only until it forks: the kernel as the student,
	// the grader as itself (harness/warmstart.py). Its environment is the
	// kernel's, which the grader's replaces after the fork.
	exec, err := r.cli.ContainerExecCreate(ctx, b.id, container.ExecOptions{
		User: "0:0", WorkingDir: "/", Env: studentEnv, Cmd: []string{"python3", "-c", warmStart, warmSpec},
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("creating the grader of a spare: %w", err)
	}
	w.graderID = exec.ID
	w.grader, err = r.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("starting the grader of a spare: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(w.finished)
		marks := &markWriter{next: w.out, marks: []mark{{warmReady, ready}, {warmGo, w.took}}}
		_, w.streamErr = stdcopy.StdCopy(marks, w.out, w.grader.Reader)
	}()
	timer := time.NewTimer(warmReadyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		b.warm = w
		return nil
	case <-w.finished:
		err = errors.New("the grader of a spare ended before it was ready: " + w.out.String())
	case <-timer.C:
		err = errors.New("the grader of a spare was not ready in time")
	case <-ctx.Done():
		err = ctx.Err()
	}
	w.close()
	return err
}

// The exit statuses of a warm grader (harness/grader.py) whose kernel, its
// child, ended: while it graded (the notebook's doing, as a kernel exec
// ending is), or before it took the job (the spare's trouble).
const (
	exitKernelEnded = 4
	exitSpareBroken = 5
)

// warmSpec tells harness/warmstart.py what to import before it forks, and
// how each side starts: the kernel exactly as kernelCommand, the grader as
// graderCommand --warm, each with its uid, groups, directory and
// environment.
var warmSpec = func() string {
	type side struct {
		UID    int      `json:"uid"`
		GID    int      `json:"gid"`
		Groups []int    `json:"groups"`
		Cwd    string   `json:"cwd"`
		Env    []string `json:"env,omitempty"`
		Code   string   `json:"code,omitempty"`
		Path   string   `json:"path,omitempty"`
		Args   []string `json:"args,omitempty"`
	}
	spec, err := json.Marshal(map[string]any{
		// Libraries both sides import, none of which looks at a running
		// kernel when imported (see warmstart.py for those left out).
		"shared": []string{"numpy", "pandas", "nbformat", "nbconvert", "nbclient", "jupyter_client", "zmq", "IPython",
			"ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "jinja2", "bleach", "bs4", "yaml", "dill",
			"jsonschema", "mistune", "pygments", "tornado", "traitlets", "fica", "requests", "dateutil"},
		"kernel": side{UID: studentUID, GID: studentUID, Groups: []int{studentUID}, Cwd: "/autograder/submission", Code: kernelCommand[2]},
		"grader": side{UID: graderUID, GID: graderUID, Groups: []int{graderUID}, Cwd: "/autograder", Env: graderEnv,
			Path: graderCommand[2], Args: append(append([]string{}, graderCommand[3:]...), "--warm")},
	})
	if err != nil {
		panic(err)
	}
	return string(spec)
}()

// capAdd is what a grading container may do beyond nothing: with warm
// graders, change uids, for the warm start's root process (before it
// forks, and before anything of a job is there). The engine gives an exec
// as root capabilities only in a container whose own user is root, so
// such a container starts as root: its init (which only reaps and passes
// signals on) stays root, its held process drops to the grader's uid at
// once. Every other process runs as a uid other than root, under
// no-new-privileges, so it holds no capability and can gain none (the
// engine gives none to an exec as another user).
func (r *Runner) capAdd() []string {
	if !r.spares.graders {
		return nil
	}
	return []string{"SETUID", "SETGID"}
}

func (r *Runner) containerUser() string {
	if !r.spares.graders {
		return user
	}
	return "0:0"
}

func (r *Runner) holdCommand() []string {
	if !r.spares.graders {
		return holdCommand
	}
	return []string{"python3", "-c", fmt.Sprintf("import os, time\nos.setgroups([%d])\nos.setresgid(%[1]d, %[1]d, %[1]d)\nos.setresuid(%[1]d, %[1]d, %[1]d)\n"+
		"while True: time.sleep(3600)", graderUID)}
}

// spareArchive is what a spare holds before any job: the layout of
// layout with the grader and the kernel's connection file, and no file
// of any submission or assignment.
func spareArchive(kernelConnection []byte) ([]byte, error) {
	return layout(nil, kernelConnection)
}

// start hands the job to the warm grader: its output goes to out from now.
func (w *warmGrader) start(out io.Writer) error {
	w.out.send(out)
	_, err := w.grader.Conn.Write([]byte("go\n"))
	return err
}

// spares are the containers started ahead, per image.
type spares struct {
	mu       sync.Mutex
	byImage  map[string][]*box
	pending  map[string]int         // refills under way
	demand   map[string][]time.Time // takes in the last spareDemandWindow
	workers  int                    // the grading image's spares; the most of any image's
	graders  bool                   // start warm graders in them
	defImage string
	started  bool                 // the grading image's spares were started (StartSpares, or a grading)
	failed   map[string]time.Time // when making a spare of an image last failed
	changed  chan struct{}        // closed (and replaced) when a spare is made or its making ends
}

// notify wakes those waiting for a spare; s.mu is held.
func (s *spares) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *spares) total() int {
	n := 0
	for _, bs := range s.byImage {
		n += len(bs)
	}
	for _, p := range s.pending {
		n += p
	}
	return n
}

// want is how many spares image should have, at now.
func (s *spares) want(image string, now time.Time) int {
	recent := s.demand[image][:0]
	for _, t := range s.demand[image] {
		if now.Sub(t) < spareDemandWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(s.demand, image)
	} else {
		s.demand[image] = recent
	}
	if image == s.defImage {
		return s.workers
	}
	return min(len(recent), s.workers)
}

// take returns a spare of image, if one is ready, and notes the demand.
func (r *Runner) takeSpare(ctx context.Context, image string) *box {
	s := &r.spares
	s.mu.Lock()
	s.demand[image] = append(s.demand[image], time.Now())
	s.started = true
	s.mu.Unlock()
	// None ready, but one on its way: it is cheaper to wait for it (a
	// second or two in a burst) than to start cold, which costs more than
	// a warm-up and a warm grading together. One is asked for first, in
	// case those on their way are all taken.
	wait := time.NewTimer(spareWait)
	defer wait.Stop()
	for asked := false; ; {
		s.mu.Lock()
		var dead []*box
		var b *box
		for bs := s.byImage[image]; b == nil && len(bs) > 0; bs = s.byImage[image] {
			s.byImage[image] = bs[:len(bs)-1]
			if c := bs[len(bs)-1]; c.warm == nil || c.warm.alive() {
				b = c
			} else {
				dead = append(dead, c)
			}
		}
		pending, changed := s.pending[image], s.changed
		s.mu.Unlock()
		for _, d := range dead {
			// A grader that ended waiting (its kernel did: nothing of the
			// student's ran in it) is the spare's trouble. One that ends
			// from now until it takes the job is too (tookJob).
			r.log.Warn("a spare's grader ended while it waited; removing it", "output", d.warm.out.String())
			r.dropLater(d)
		}
		if b != nil {
			return b
		}
		if pending == 0 {
			if asked {
				return nil
			}
			asked = true
			r.refill(image)
			continue
		}
		select {
		case <-changed:
		case <-wait.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// refill starts spares of image in the background, as many as it should
// have (see spares), within the bound on all spares.
func (r *Runner) refill(image string) {
	s := &r.spares
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	s.mu.Lock()
	now := time.Now()
	n := s.want(image, now) - len(s.byImage[image]) - s.pending[image]
	// Room for them: made by removing other assignment images' spares, the
	// least lately asked for first.
	var evicted []*box
	for room := s.workers + spareExtra - s.total(); n > room; room++ {
		victim := ""
		for other, bs := range s.byImage {
			if other == image || other == s.defImage || len(bs) == 0 {
				continue
			}
			if victim == "" || lastDemand(s.demand[other]).Before(lastDemand(s.demand[victim])) {
				victim = other
			}
		}
		if victim == "" {
			n = room
			break
		}
		bs := s.byImage[victim]
		evicted = append(evicted, bs[len(bs)-1])
		s.byImage[victim] = bs[:len(bs)-1]
	}
	for i := 0; i < n; i++ {
		s.pending[image]++
		r.refills.Add(1)
		go r.makeSpare(image)
	}
	s.mu.Unlock()
	for _, b := range evicted {
		r.refills.Add(1)
		go func() {
			defer r.refills.Done()
			r.drop(context.Background(), b)
		}()
	}
}

func lastDemand(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[len(ts)-1]
}

func (r *Runner) makeSpare(image string) {
	defer r.refills.Done()
	s := &r.spares
	ctx, cancel := context.WithTimeout(context.Background(), warmReadyTimeout+time.Minute)
	defer cancel()
	b, err := r.prepare(ctx, image)
	if err != nil {
		r.log.Warn("cannot start a spare grading container", "image", image, "err", err)
	}
	if err == nil && s.graders {
		if err = r.warmUp(ctx, b); err != nil {
			r.log.Warn("a spare grading container could not be warmed; removing it", "image", image, "err", err)
			r.discard(ctx, b)
		}
	}
	s.mu.Lock()
	s.pending[image]--
	if err != nil {
		s.failed[image] = time.Now()
	}
	keep := err == nil && len(s.byImage[image]) < s.want(image, time.Now())
	if keep {
		s.byImage[image] = append(s.byImage[image], b)
	}
	s.notify()
	s.mu.Unlock()
	if err == nil && !keep {
		r.drop(ctx, b)
	}
}

// drop removes a container (a spare, or one a grading is done with), after
// telling MeasureUsage's function what it used.
func (r *Runner) drop(ctx context.Context, b *box) {
	if b.warm != nil {
		b.warm.close()
	}
	if r.measure != nil && b.id != "" {
		if u, err := r.usage(ctx, b.id); err == nil {
			u.Graded = b.graded
			r.measure(u)
		}
	}
	r.discard(ctx, b)
}

// dropLater removes a container in the background: a grading's result
// does not wait for the engine's removal (which kills what is left in it,
// frozen or not; what the removal cannot do, the reaper does).
func (r *Runner) dropLater(b *box) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.drop(context.Background(), b)
		return
	}
	r.removals.Add(1)
	go func() {
		defer r.removals.Done()
		r.drop(context.Background(), b)
	}()
}

// Usage is what one grading container used in all its life: for a warm
// spare, its warm-up too.
type Usage struct {
	CPU    time.Duration // CPU time of all its processes
	Memory int64         // bytes of memory it holds now
	Graded bool          // it graded a job (else: a spare never used)
}

// MeasureUsage has fn told what each container used, just before it is
// removed (for benchmarks: it asks the engine, which takes a little time).
func MeasureUsage(fn func(Usage)) Option { return func(r *Runner) { r.measure = fn } }

// usage asks the engine what container id used.
func (r *Runner) usage(ctx context.Context, id string) (Usage, error) {
	resp, err := r.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return Usage{}, err
	}
	defer resp.Body.Close()
	var st struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
		Memory struct {
			Usage uint64 `json:"usage"`
		} `json:"memory_stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Usage{}, err
	}
	return Usage{CPU: time.Duration(st.CPU.Usage.Total), Memory: int64(st.Memory.Usage)}, nil
}

// SpareUsage returns what the spares ready now have used (their warm-up,
// and their wait since).
func (r *Runner) SpareUsage(ctx context.Context) ([]Usage, error) {
	s := &r.spares
	s.mu.Lock()
	var ids []string
	for _, bs := range s.byImage {
		for _, b := range bs {
			ids = append(ids, b.id)
		}
	}
	s.mu.Unlock()
	var out []Usage
	for _, id := range ids {
		u, err := r.usage(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// topUp starts the spares the images should have and do not: those lost
// since they were made (a grader that died waiting, a removal by the
// engine). Only images with spares wanted: the grading image once its
// spares were started, others asked for lately.
func (r *Runner) topUp() {
	s := &r.spares
	s.mu.Lock()
	var images []string
	for image := range s.demand {
		images = append(images, image)
	}
	if s.started && !slices.Contains(images, s.defImage) {
		images = append(images, s.defImage)
	}
	// Not again at once where it failed: the engine or the image is in
	// trouble, and the next grading makes its own container anyway.
	images = slices.DeleteFunc(images, func(image string) bool { return time.Since(s.failed[image]) < time.Minute })
	s.mu.Unlock()
	for _, image := range images {
		r.refill(image)
	}
}

// trimSpares removes the spares of images nobody asked for lately, and
// those whose warm grader died.
func (r *Runner) trimSpares(ctx context.Context) {
	s := &r.spares
	s.mu.Lock()
	var gone []*box
	now := time.Now()
	for image, bs := range s.byImage {
		keep := bs[:0]
		for _, b := range bs {
			if len(keep) < s.want(image, now) && (b.warm == nil || b.warm.alive()) {
				keep = append(keep, b)
			} else {
				gone = append(gone, b)
			}
		}
		s.byImage[image] = keep
	}
	s.mu.Unlock()
	for _, b := range gone {
		r.drop(ctx, b)
	}
}

// StartSpares starts the grading image's spares, in the background (the
// first grading's refill would start them otherwise).
func (r *Runner) StartSpares() {
	r.spares.mu.Lock()
	r.spares.started = true
	r.spares.mu.Unlock()
	r.refill(r.image)
}

// Spares returns how many spares are ready, by image.
func (r *Runner) Spares() map[string]int {
	s := &r.spares
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for image, bs := range s.byImage {
		if len(bs) > 0 {
			out[image] = len(bs)
		}
	}
	return out
}

// closeSpares removes every spare (after the refills have ended).
func (r *Runner) closeSpares() {
	s := &r.spares
	s.mu.Lock()
	var all []*box
	for image, bs := range s.byImage {
		all = append(all, bs...)
		delete(s.byImage, image)
	}
	s.mu.Unlock()
	for _, b := range all {
		r.drop(context.Background(), b)
	}
}

// warmEligible reports whether ag can be graded by a warm grader exactly
// as a cold one would grade it: not when plugins run on the notebook
// before its kernel is used.
func warmEligible(ag *grading.Autograder) (bool, string) {
	if len(ag.Plugins) > 0 {
		return false, "its plugins run before the kernel is used"
	}
	return true, ""
}
