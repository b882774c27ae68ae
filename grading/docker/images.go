package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"

	"github.com/otter-service/otter-service/grading"
)

// Builds configures the per-assignment images: an assignment whose
// autograder zip declares packages beyond otter-grader (which the grading
// image has), in requirements.txt or environment.yml, or has a setup.sh of
// its own, is graded in an image layered on the grading image with those
// packages installed by pip and that script run (see grading.ReadAutograder
// for what is read and how). The image is built through the engine once and
// reused by every submission whose zip asks for the same; a build that
// failed is remembered for FailureTTL, so the submissions behind it fail at
// once instead of each trying again.
type Builds struct {
	Enabled bool
	// Network is the build's network mode ("" for the engine's default;
	// "host" where the engine has no bridge network).
	Network string
	// PipConfig and CACert are files given to pip in the build (a pip.conf,
	// and a CA bundle for an index behind a TLS-inspecting proxy); "" for
	// none.
	PipConfig, CACert string
	// FailureTTL is how long a failed build is remembered; default 15
	// minutes.
	FailureTTL time.Duration
	// Logger receives what happens to builds; nil for slog.Default().
	Logger *slog.Logger
}

// AssignmentImagePrefix names the per-assignment images.
const AssignmentImagePrefix = "otter-service-assignment"

// BuildFailure is a per-assignment image build that failed, as staff
// diagnostics show it.
type BuildFailure struct {
	Image    string    `json:"image"`
	Packages []string  `json:"packages"`
	Setup    bool      `json:"setup_sh"`
	Message  string    `json:"message"`
	Log      string    `json:"log"` // the build's last lines
	At       time.Time `json:"at"`
	Until    time.Time `json:"until"` // when a submission will try the build again
}

type failedBuild struct {
	BuildFailure
	err *grading.Error
}

// BuildFailures returns the builds that failed and are still remembered,
// newest first.
func (r *Runner) BuildFailures() []BuildFailure {
	r.buildMu.Lock()
	defer r.buildMu.Unlock()
	now := time.Now()
	var out []BuildFailure
	for tag, f := range r.failed {
		if now.After(f.Until) {
			delete(r.failed, tag)
			continue
		}
		out = append(out, f.BuildFailure)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

// imageFor returns the image to grade a job in: the grading image, or the
// assignment's own image, built first if needed.
func (r *Runner) imageFor(ctx context.Context, ag *grading.Autograder) (string, error) {
	if !ag.NeedsImage() {
		return r.image, nil
	}
	if !r.builds.Enabled {
		r.log.Warn("the assignment declares packages but per-assignment images are off; grading in the grading image", "packages", ag.Packages, "setup_sh", ag.Setup != nil)
		return r.image, nil
	}
	base, err := r.cli.ImageInspect(ctx, r.image)
	if err != nil {
		return "", fmt.Errorf("grading image %s: %w", r.image, err)
	}
	key := base.ID + "\n" + strings.Join(ag.SortedPackages(), "\n") + "\n"
	if ag.Setup != nil {
		key += "setup.sh\n" + string(ag.Setup)
	}
	sum := sha256.Sum256([]byte(key))
	tag := AssignmentImagePrefix + ":" + hex.EncodeToString(sum[:8])

	// One build per image at a time; the others wait for it.
	r.buildMu.Lock()
	if f, ok := r.failed[tag]; ok && time.Now().Before(f.Until) {
		r.buildMu.Unlock()
		return "", f.err
	}
	mu, ok := r.building[tag]
	if !ok {
		mu = &sync.Mutex{}
		r.building[tag] = mu
	}
	r.buildMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if _, err := r.cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	r.buildMu.Lock()
	f, ok := r.failed[tag] // failed while this one waited
	r.buildMu.Unlock()
	if ok && time.Now().Before(f.Until) {
		return "", f.err
	}
	started := time.Now()
	err = r.build(ctx, tag, ag)
	if gerr, ok := grading.AsError(err); ok {
		ttl := r.builds.FailureTTL
		if ttl <= 0 {
			ttl = 15 * time.Minute
		}
		now := time.Now()
		r.buildMu.Lock()
		r.failed[tag] = &failedBuild{err: gerr, BuildFailure: BuildFailure{
			Image: tag, Packages: ag.Packages, Setup: ag.Setup != nil, Message: gerr.Message,
			Log: gerr.Log, At: now, Until: now.Add(ttl)}}
		r.buildMu.Unlock()
		r.log.Error("building an assignment image failed; submissions to it fail until the build is tried again",
			"image", tag, "packages", ag.Packages, "setup_sh", ag.Setup != nil, "retry_at", now.Add(ttl), "log", lastLines(gerr.Log, 20))
		return "", gerr
	}
	if err == nil {
		r.log.Info("built an assignment image", "image", tag, "packages", ag.Packages, "setup_sh", ag.Setup != nil, "seconds", time.Since(started).Seconds())
	}
	return tag, err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// build builds the assignment image tag on the grading image.
func (r *Runner) build(ctx context.Context, tag string, ag *grading.Autograder) error {
	files := map[string][]byte{"requirements.txt": []byte(strings.Join(ag.Packages, "\n") + "\n")}
	env := ""
	if r.builds.PipConfig != "" {
		data, err := os.ReadFile(r.builds.PipConfig)
		if err != nil {
			return fmt.Errorf("reading the build's pip configuration: %w", err)
		}
		files["pip.conf"] = data
		env += " PIP_CONFIG_FILE=/tmp/otter-build/pip.conf"
	}
	if r.builds.CACert != "" {
		data, err := os.ReadFile(r.builds.CACert)
		if err != nil {
			return fmt.Errorf("reading the build's CA certificates: %w", err)
		}
		files["ca.crt"] = data
		env += " PIP_CERT=/tmp/otter-build/ca.crt"
	}
	steps := ""
	if len(ag.Packages) > 0 {
		steps += fmt.Sprintf("RUN%s pip install --no-cache-dir --no-input -r /tmp/otter-build/requirements.txt\n", env)
	}
	if ag.Setup != nil {
		// The course's own setup.sh, run as otter's Gradescope image runs
		// it: as root, from the directory holding the zip's contents.
		files["setup.sh"] = ag.Setup
		steps += fmt.Sprintf("RUN%s cd /tmp/otter-build && bash ./setup.sh\n", env)
	}
	files["Dockerfile"] = []byte(fmt.Sprintf(`FROM %s
USER root
COPY . /tmp/otter-build/
%sRUN rm -rf /tmp/otter-build
USER %d:%d
`, r.image, steps, graderUID, graderUID))

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		tw.Write(data)
	}
	tw.Close()

	resp, err := r.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, NetworkMode: r.builds.Network, Remove: true, ForceRemove: true,
		Labels: map[string]string{"otter-service.base": r.image}, Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err) // the engine's trouble: try again later
	}
	defer resp.Body.Close()
	// The engine streams JSON messages; a failed step ends with an error one.
	var log strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("building %s: %w", tag, err)
		}
		if log.Len() < 64<<10 {
			log.WriteString(msg.Stream)
		}
		if msg.Error != "" {
			tail := log.String()
			if len(tail) > 8<<10 {
				tail = tail[len(tail)-8<<10:]
			}
			// The log goes to the service's log, to the submission's
			// error and to /diagnostics/builds: no index credentials.
			tail, msg.Error = RedactURLCredentials(tail), RedactURLCredentials(msg.Error)
			if transientBuildFailure(tail + msg.Error) {
				// The package index could not be reached: our trouble, to
				// be tried again, not a verdict on the assignment.
				return fmt.Errorf("building %s: the package index could not be reached: %s", tag, lastLines(tail+msg.Error, 3))
			}
			return &grading.Error{Kind: grading.KindUnsupported, Log: tail + msg.Error,
				Message: "The packages this assignment's autograder requires could not be installed (or its setup.sh failed), so it cannot be graded yet. This is not a problem with your notebook: tell your course staff."}
		}
	}
}

// transientBuildFailure reports whether a failed build's log says pip could
// not reach its index, rather than that a package cannot be had.
//
// pip says "No matching distribution found" for a package the index does
// not have and also when it could not reach the index at all, so the
// connection warnings it prints while retrying decide.
func transientBuildFailure(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if PipIndexUnreachable(line) {
			return true
		}
	}
	return false
}

// PipIndexUnreachable reports whether a line of pip's output (its console
// or its debug log) says it could not use its index: not reached, or
// refused other than with 404, which is how an index says it has no such
// project.
func PipIndexUnreachable(line string) bool {
	if strings.Contains(line, "Could not fetch URL") && !strings.Contains(line, "404 Client Error") {
		return true
	}
	for _, s := range []string{"Failed to establish a new connection", "Temporary failure in name resolution",
		"Name or service not known", "Read timed out", "ConnectTimeoutError", "ProxyError", "Connection reset by peer",
		"Network is unreachable", "Connection refused", "SSLError", "CERTIFICATE_VERIFY_FAILED",
		"is not a trusted or secure host", "No route to host"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// urlUserinfo matches the user information of a URL, scheme://user@ or
// scheme://user:password@. With a colon the password runs to the token's
// last "@" (a password may hold a raw one); without, the user name has no
// "/", so a VCS requirement's ref (https://host/org/repo@v1) is left alone.
var urlUserinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/?#@:'"<>]+:[^\s'"<>]*|[^\s/?#@:'"<>]+)@`)

// RedactURLCredentials replaces the user information of every URL in s by
// "***": pip's output may name an index URL with the credentials a pip.conf
// gave it (a token as user name, or user:password).
func RedactURLCredentials(s string) string {
	return urlUserinfo.ReplaceAllString(s, "${1}***@")
}
