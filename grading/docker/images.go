package docker

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"

	"github.com/otter-service/otter-service/grading"
)

// Builds configures the per-assignment images: an assignment whose
// autograder zip has a requirements.txt with packages beyond otter-grader
// (which the grading image has) is graded in an image layered on the grading
// image with those packages installed. The image is built through the
// engine once and reused by every submission whose zip asks for the same
// packages.
type Builds struct {
	Enabled bool
	// Network is the build's network mode ("" for the engine's default;
	// "host" where the engine has no bridge network).
	Network string
	// PipConfig and CACert are files given to pip in the build (a pip.conf,
	// and a CA bundle for an index behind a TLS-inspecting proxy); "" for
	// none.
	PipConfig, CACert string
}

// AssignmentImagePrefix names the per-assignment images.
const AssignmentImagePrefix = "otter-service-assignment"

// extraRequirements returns the requirements an autograder zip declares
// beyond otter-grader, one per line, or nil if there are none. Only a
// requirements.txt at the zip's root counts: otter assign's environment.yml
// is for conda, which the grading image does not use.
func extraRequirements(zipData []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return nil, zipError("it is not a zip file (%v)", err)
	}
	for _, f := range zr.File {
		if f.Name != "requirements.txt" {
			continue
		}
		if f.UncompressedSize64 > 1<<20 {
			return nil, zipError("its requirements.txt is larger than 1 MiB")
		}
		rc, err := f.Open()
		if err != nil {
			return nil, zipError("its requirements.txt cannot be read (%v)", err)
		}
		defer rc.Close()
		var extra bytes.Buffer
		sc := bufio.NewScanner(io.LimitReader(rc, 1<<20))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name := strings.ToLower(strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune("<>=!~[; @", r) })[0])
			if strings.ReplaceAll(name, "_", "-") == "otter-grader" {
				continue // the grading image's own, pinned
			}
			if strings.HasPrefix(line, "-") {
				return nil, zipError("its requirements.txt has an option line (%q); only package requirements are allowed", line)
			}
			extra.WriteString(line)
			extra.WriteByte('\n')
		}
		if extra.Len() == 0 {
			return nil, nil
		}
		return extra.Bytes(), nil
	}
	return nil, nil
}

// imageFor returns the image to grade a job in: the grading image, or the
// assignment's own image, built first if needed.
func (r *Runner) imageFor(ctx context.Context, zipData []byte) (string, error) {
	extra, err := extraRequirements(zipData)
	if err != nil || extra == nil || !r.builds.Enabled {
		return r.image, err
	}
	base, err := r.cli.ImageInspect(ctx, r.image)
	if err != nil {
		return "", fmt.Errorf("grading image %s: %w", r.image, err)
	}
	sum := sha256.Sum256(append([]byte(base.ID+"\n"), extra...))
	tag := AssignmentImagePrefix + ":" + hex.EncodeToString(sum[:8])

	// One build per image at a time; the others wait for it.
	r.buildMu.Lock()
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
	return tag, r.build(ctx, tag, extra)
}

// build builds the assignment image tag on the grading image.
func (r *Runner) build(ctx context.Context, tag string, requirements []byte) error {
	files := map[string][]byte{"requirements.txt": requirements}
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
	files["Dockerfile"] = []byte(fmt.Sprintf(`FROM %s
USER root
COPY . /tmp/otter-build/
RUN%s pip install --no-cache-dir --no-input -r /tmp/otter-build/requirements.txt && rm -rf /tmp/otter-build
USER %d:%d
`, r.image, env, graderUID, graderUID))

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
			return &grading.Error{Kind: grading.KindAutograder, Log: tail + msg.Error,
				Message: "The packages this assignment's autograder requires could not be installed, so it cannot be graded yet. Tell your course staff."}
		}
	}
}
