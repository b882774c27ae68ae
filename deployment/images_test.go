package deployment

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
)

// The production image must stay small: a static binary and a few files.
const maxImageBytes = 80 << 20

// TestServiceImage builds the production image (../Dockerfile) on the local
// Docker engine and checks what it holds. No registry is reachable here, so
// the Go image it builds with is made locally: the Debian base image that
// grader-image/build-local.sh imports, plus this machine's Go toolchain
// (tagged by content, built once). Module downloads use this machine's Go
// proxy settings, passed as build arguments.
func TestServiceImage(t *testing.T) {
	docker := dockerCLI(t)
	root := testenv.RepoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	goImage := localGoImage(ctx, t, docker)
	image := "otter-service:image-test"
	args := []string{"build", "--force-rm", "--network", "host", "--build-arg", "GO_IMAGE=" + goImage,
		"--label", "otter-service.image-test=1", "-f", filepath.Join(root, "Dockerfile")}
	for _, name := range []string{"GOPROXY", "GOFLAGS", "GOSUMDB", "GONOSUMDB", "GOPRIVATE"} {
		args = append(args, "--build-arg", name+"="+goEnv(t, name))
	}
	start := time.Now()
	// The stages are tagged too, so that the previous run's stage images
	// become dangling and are removed below, while the layers the new ones
	// share with them (the module downloads, the compiled dependencies) stay
	// as the next run's cache.
	for _, target := range []string{"deps", "build", ""} {
		tag := image
		a := append([]string{}, args...)
		if target != "" {
			tag = "otter-service-" + target + ":image-test"
			a = append(a, "--target", target)
		}
		run(ctx, t, docker, append(a, "-t", tag, root)...)
	}
	t.Logf("built %s in %s", image, time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		exec.Command(docker, "image", "prune", "-f", "--filter", "label=otter-service.image-test=1").Run()
	})

	var info []struct {
		Size   int64
		Config struct {
			User         string
			Env          []string
			ExposedPorts map[string]any
			Entrypoint   []string
			Cmd          []string
		}
	}
	if err := json.Unmarshal([]byte(run(ctx, t, docker, "image", "inspect", image)), &info); err != nil || len(info) != 1 {
		t.Fatalf("docker image inspect: %v", err)
	}
	cfg := info[0].Config
	t.Logf("image size %.1f MB", float64(info[0].Size)/1e6)
	if info[0].Size > maxImageBytes {
		t.Errorf("image is %d bytes, over %d", info[0].Size, maxImageBytes)
	}
	if user := strings.Split(cfg.User, ":")[0]; user == "" || user == "0" || user == "root" {
		t.Errorf("image runs as %q; want a non-root numeric user", cfg.User)
	} else if strings.Trim(user, "0123456789") != "" {
		t.Errorf("image user %q is not numeric (Kubernetes' runAsNonRoot cannot check a name)", cfg.User)
	}
	if _, ok := cfg.ExposedPorts["10101/tcp"]; !ok {
		t.Errorf("image exposes %v; want 10101/tcp", cfg.ExposedPorts)
	}
	if !slices.Contains(cfg.Env, "OTTER_DATA_DIR=/var/lib/otter-service") {
		t.Errorf("image environment %v does not set OTTER_DATA_DIR=/var/lib/otter-service", cfg.Env)
	}
	if !slices.Equal(cfg.Cmd, []string{"serve"}) {
		t.Errorf("image command %v; want [serve]", cfg.Cmd)
	}

	// The binary runs: its settings are those of the service.
	out := run(ctx, t, docker, "run", "--rm", "--network", "none", image, "settings")
	for _, want := range []string{"OTTER_LISTEN", "OTTER_COURSE_REPOS", "JUPYTERHUB_API_TOKEN_FILE"} {
		if !slices.Contains(strings.Fields(out), want) {
			t.Errorf("otter-service settings in the image does not list %s", want)
		}
	}

	// No shell, no toolchain: nothing but the files the service needs.
	for _, prog := range []string{"/bin/sh", "/bin/bash", "go", "/usr/local/go/bin/go", "apt-get"} {
		cmd := exec.CommandContext(ctx, docker, "run", "--rm", "--network", "none", "--entrypoint", prog, image, "-c", "true")
		if err := cmd.Run(); err == nil {
			t.Errorf("%s runs inside the image", prog)
		}
	}
	files := imageFiles(ctx, t, docker, image)
	want := map[string]string{
		"etc/group":                         "",
		"etc/passwd":                        "",
		"etc/ssl/certs/ca-certificates.crt": "",
		"tmp/":                              "0:0 dtrwxrwxrwx",
		"usr/local/bin/otter-service":       "0:0 -rwxr-xr-x",
		"var/lib/otter-service/":            "65532:65532 drwxr-xr-x",
	}
	for name := range files {
		if strings.HasSuffix(name, "/") || engineFile(name) {
			continue
		}
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file in the image: %s", name)
		}
	}
	for name, mode := range want {
		got, ok := files[name]
		if !ok {
			t.Errorf("%s is missing from the image", name)
		} else if mode != "" && got != mode {
			t.Errorf("%s: %s; want %s", name, got, mode)
		}
	}
	if passwd := catFromImage(ctx, t, docker, image, "etc/passwd"); !strings.Contains(passwd, ":65532:65532:") {
		t.Errorf("etc/passwd has no entry for uid 65532: %q", passwd)
	}

	// It serves, as its user, writing its database into its data directory.
	// (No submission is made: the local runner's otter need not exist, and
	// the course repository is absent, which the service only logs.)
	port := freePort(t)
	name := fmt.Sprintf("otter-service-image-test-%d", time.Now().UnixNano())
	run(ctx, t, docker, "run", "-d", "--name", name, "--network", "host",
		"-e", "OTTER_LISTEN=127.0.0.1:"+port, "-e", "TEST_USER=student", "-e", "OTTER_RUNNER=local",
		"-e", "OTTER_COMMAND=/nonexistent/otter", "-e", "OTTER_COURSE_REPOS=example=/nonexistent", image)
	t.Cleanup(func() { exec.Command(docker, "rm", "-f", name).Run() })
	url := "http://127.0.0.1:" + port + "/services/otter_grade/"
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			if state, _ := exec.Command(docker, "inspect", "--format", "{{.State.Running}}", name).Output(); strings.TrimSpace(string(state)) == "false" {
				break // it exited
			}
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = fmt.Sprintf("%d %s", resp.StatusCode, b)
		break
	}
	if !strings.HasPrefix(body, "200 ") || !strings.Contains(body, `"student"`) {
		logs, _ := exec.Command(docker, "logs", name).CombinedOutput()
		t.Fatalf("GET %s: %q; container log:\n%s", url, body, logs)
	}
	diff := run(ctx, t, docker, "diff", name)
	if !strings.Contains(diff, "/var/lib/otter-service/otter.db") {
		t.Errorf("the service wrote no database into /var/lib/otter-service; changes:\n%s", diff)
	}
}

// TestDevImageSteps checks ../Dockerfile-dev as far as it can be without
// building it (its apt and pip steps need a registry's Go image and the
// Debian archive inside the build): the base image is a build argument, and
// every file and script it copies or runs is in the repository.
func TestDevImageSteps(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, name := range []string{"Dockerfile", "Dockerfile-dev"} {
		t.Run(name, func(t *testing.T) {
			steps := dockerfileSteps(t, filepath.Join(root, name))
			var froms int
			args := map[string]bool{}
			for _, s := range steps {
				switch s.op {
				case "ARG":
					args[strings.SplitN(s.args, "=", 2)[0]] = true
				case "FROM":
					froms++
					base := strings.Fields(s.args)[0]
					if froms == 1 && !strings.HasPrefix(base, "${") {
						t.Errorf("line %d: the first base image %q is not a build argument", s.line, base)
					}
					if strings.HasPrefix(base, "${") && !args[strings.Trim(base, "${}")] {
						t.Errorf("line %d: %s is not declared by an ARG before it", s.line, base)
					}
				case "COPY", "ADD":
					if strings.Contains(s.args, "--from=") {
						continue
					}
					f := strings.Fields(s.args)
					for _, src := range f[:len(f)-1] {
						if strings.HasPrefix(src, "--") || src == "." {
							continue
						}
						if _, err := os.Stat(filepath.Join(root, src)); err != nil {
							t.Errorf("line %d: %s copies %s, which is not in the repository", s.line, s.op, src)
						}
					}
				case "RUN":
					for _, w := range strings.Fields(s.args) {
						if strings.HasPrefix(w, "scripts/") || strings.HasPrefix(w, "deployment/") {
							if _, err := os.Stat(filepath.Join(root, w)); err != nil {
								t.Errorf("line %d: RUN uses %s, which is not in the repository", s.line, w)
							}
						}
					}
				}
			}
			if froms == 0 {
				t.Fatal("no FROM")
			}
		})
	}
}

type step struct {
	line     int
	op, args string
}

// dockerfileSteps reads a Dockerfile's instructions, joining continued lines.
func dockerfileSteps(t *testing.T, path string) []step {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
		cur.WriteString(" ")
		if cont {
			continue
		}
		op, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		steps = append(steps, step{start, strings.ToUpper(op), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return steps
}

// dockerCLI returns the docker command, if an engine answers it.
func dockerCLI(t *testing.T) string {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		testenv.Missing(t, "the docker command is not installed (scripts/docker-engine.sh installs it)")
	}
	if out, err := exec.Command(docker, "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		testenv.Missing(t, "no Docker engine answers (scripts/docker-engine.sh starts one): %s", bytes.TrimSpace(out))
	}
	return docker
}

// run runs docker with the classic builder (this engine has no BuildKit) and
// returns its standard output; a failure ends the test with its output.
func run(ctx context.Context, t *testing.T, docker string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, docker, args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		out := stdout.String() + stderr.String()
		if len(out) > 8000 {
			out = "..." + out[len(out)-8000:]
		}
		t.Fatalf("docker %s: %v\n%s", strings.Join(args[:min(len(args), 3)], " "), err, out)
	}
	return stdout.String()
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// localGoImage returns a Go build image made from the local Debian base
// image and this machine's GOROOT, tagged by their identity so that it is
// built only once.
func localGoImage(ctx context.Context, t *testing.T, docker string) string {
	t.Helper()
	out, _ := exec.Command(docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "otter-service-grader-base").Output()
	fields := strings.Fields(string(out))
	if len(fields) < 2 {
		testenv.Missing(t, "no local Debian base image otter-service-grader-base (deployment/grader-image/build-local.sh makes it)")
	}
	base, baseID := fields[0], fields[1]
	goroot, version := goEnv(t, "GOROOT"), goEnv(t, "GOVERSION")
	// This machine's CA bundle replaces the base's, so that module downloads
	// work where this machine's own do (a TLS-inspecting proxy, say).
	_, caBundle := testenv.PipBuildFiles()
	var ca []byte
	if caBundle != "" {
		var err error
		if ca, err = os.ReadFile(caBundle); err != nil {
			t.Fatal(err)
		}
	}
	caSum := sha256.Sum256(ca)
	sum := sha256.Sum256([]byte(baseID + " " + version + " " + goEnv(t, "GOOS") + "/" + goEnv(t, "GOARCH") + " " + hex.EncodeToString(caSum[:]) + " rev2"))
	image := "otter-service-go:" + hex.EncodeToString(sum[:])[:12]
	if exec.Command(docker, "image", "inspect", image).Run() == nil {
		return image
	}
	start := time.Now()
	dockerfile := "FROM " + base + "\n" +
		"COPY go /usr/local/go\n" +
		"ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPATH=/go GOTOOLCHAIN=local\n" +
		"RUN go version\n"
	if len(ca) > 0 {
		dockerfile += "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeGoContext(pw, dockerfile, ca, goroot)) }()
	cmd := exec.CommandContext(ctx, docker, "build", "--network", "none", "-t", image, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", image, err, out)
	}
	t.Logf("built the Go image %s (%s on %s) in %s", image, version, base, time.Since(start).Round(time.Second))
	return image
}

// writeGoContext writes a build context: the Dockerfile, the CA bundle, and
// GOROOT as go/, without its tests.
func writeGoContext(w io.Writer, dockerfile string, ca []byte, goroot string) error {
	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{"Dockerfile", []byte(dockerfile)}, {"ca-certificates.crt", ca}} {
		if len(f.data) == 0 {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	err := filepath.WalkDir(goroot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, path)
		if d.IsDir() && (rel == "test" || rel == filepath.Join("pkg", "obj")) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join("go", rel))
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// imageFiles lists the files of image's file system with owner and mode
// ("uid:gid mode"), directories with a trailing slash.
func imageFiles(ctx context.Context, t *testing.T, docker, image string) map[string]string {
	t.Helper()
	id := strings.TrimSpace(run(ctx, t, docker, "create", "--network", "none", image))
	defer exec.Command(docker, "rm", "-f", id).Run()
	cmd := exec.CommandContext(ctx, docker, "export", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(bufio.NewReader(out))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		files[name] = fmt.Sprintf("%d:%d %s", hdr.Uid, hdr.Gid, hdr.FileInfo().Mode())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return files
}

// engineFile reports whether the engine itself puts name into every
// container (mount points and resolver files).
func engineFile(name string) bool {
	switch name {
	case ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab":
		return true
	}
	return strings.HasPrefix(name, "dev/") || strings.HasPrefix(name, "proc/") || strings.HasPrefix(name, "sys/")
}

func catFromImage(ctx context.Context, t *testing.T, docker, image, path string) string {
	t.Helper()
	id := strings.TrimSpace(run(ctx, t, docker, "create", "--network", "none", image))
	defer exec.Command(docker, "rm", "-f", id).Run()
	out := run(ctx, t, docker, "cp", id+":/"+path, "-")
	tr := tar.NewReader(strings.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("docker cp %s: %v", path, err)
	}
	b, _ := io.ReadAll(tr)
	return string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
