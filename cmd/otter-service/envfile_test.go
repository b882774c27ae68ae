package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
)

// TestJupyterHubEnvFile loads deployment/jupyterhub/otter-service.env the
// three ways an operator does: a shell (set -a; . file), systemd's
// EnvironmentFile= and docker run --env-file. Each must give every variable
// the file's literal text (none of them may eat quotes or expand anything),
// and the service must accept the result.
func TestJupyterHubEnvFile(t *testing.T) {
	file := filepath.Join(testenv.RepoRoot(t), "deployment", "jupyterhub", "otter-service.env")
	want := literalEnvFile(t, file)
	if len(want) < 8 {
		t.Fatalf("%s declares %d variables; is it the env file?", file, len(want))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	check := func(t *testing.T, got map[string]string) {
		t.Helper()
		for name, value := range want {
			if g, ok := got[name]; !ok {
				t.Errorf("%s is not set", name)
			} else if g != value {
				t.Errorf("%s = %q; the file says %q", name, g, value)
			}
		}
		env := map[string]string{}
		for name := range want {
			env[name] = got[name]
		}
		c, err := loadWith(env, nil)
		if err != nil {
			t.Fatalf("the service refuses the file's settings: %v", err)
		}
		if c.Hub == nil {
			t.Errorf("the file's settings give no JupyterHub configuration")
		}
	}

	for _, shell := range []string{"/bin/sh", "/bin/bash"} {
		t.Run(filepath.Base(shell), func(t *testing.T) {
			if _, err := os.Stat(shell); err != nil {
				t.Skipf("skipping: no %s here", shell)
			}
			out, err := exec.CommandContext(ctx, shell, "-c", `set -a; . "$1"; exec env -0`, "sh", file).Output()
			if err != nil {
				t.Fatalf("%s: %v", shell, err)
			}
			check(t, nulEnv(out))
		})
	}

	t.Run("systemd", func(t *testing.T) {
		check(t, systemdEnvironmentFile(ctx, t, file))
	})

	t.Run("docker", func(t *testing.T) {
		docker, err := exec.LookPath("docker")
		if err != nil {
			testenv.Missing(t, "the docker command is not installed (scripts/docker-engine.sh installs it)")
		}
		image := testenv.GradingImage()
		if out, err := exec.CommandContext(ctx, docker, "image", "inspect", "--format", "{{.Id}}", image).CombinedOutput(); err != nil {
			testenv.Missing(t, "no Docker engine with %s: %s", image, bytes.TrimSpace(out))
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, docker, "run", "--rm", "--network", "none", "--env-file", file,
			"--entrypoint", "/usr/bin/env", image, "-0")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("docker run --env-file: %v: %s", err, stderr.Bytes())
		}
		check(t, nulEnv(out))
	})
}

// literalEnvFile returns the variables file declares, each with the text
// after its "=" as written.
func literalEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			t.Fatalf("%s:%d is neither a comment nor NAME=value: %q", file, n, line)
		}
		vars[name] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// nulEnv parses the output of env -0.
func nulEnv(out []byte) map[string]string {
	vars := map[string]string{}
	for _, kv := range bytes.Split(out, []byte{0}) {
		if name, value, ok := strings.Cut(string(kv), "="); ok {
			vars[name] = value
		}
	}
	return vars
}

// systemdEnvironmentFile returns the environment a systemd unit with
// EnvironmentFile=file gives its process, read by systemd itself: a user
// manager started for the test, in a mount namespace of its own (in which
// /run/systemd/system exists, as a user manager requires; nothing outside
// it changes), runs env -0 as a transient unit through systemd-run.
func systemdEnvironmentFile(ctx context.Context, t *testing.T, file string) map[string]string {
	t.Helper()
	tools := map[string]string{}
	for _, name := range []string{"systemd", "systemd-run", "systemctl", "unshare", "mount"} {
		p, err := exec.LookPath(name)
		if err != nil {
			testenv.Missing(t, "%s is not installed (Debian's systemd and util-linux have it)", name)
		}
		tools[name] = p
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "starting a systemd manager in a namespace of its own needs root")
	}
	runtime, err := os.MkdirTemp("", "otter-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runtime) })
	script := `set -eu
mount -t tmpfs otter-test /run/systemd 2>/dev/null || { mkdir -p /run/systemd; mount -t tmpfs otter-test /run/systemd; }
mkdir /run/systemd/system
"$SYSTEMD" --user --log-target=console >"$XDG_RUNTIME_DIR/manager.log" 2>&1 &
manager=$!
trap 'kill $manager; wait $manager || true' EXIT
# Until the manager answers on its socket, then until it has started.
until "$SYSTEMCTL" --user show-environment >/dev/null 2>&1; do
  kill -0 $manager 2>/dev/null || { cat "$XDG_RUNTIME_DIR/manager.log" >&2; exit 1; }
  sleep 0.05
done
"$SYSTEMCTL" --user is-system-running --wait >/dev/null 2>&1 || true
"$SYSTEMD_RUN" --user --wait --pipe --quiet -p EnvironmentFile="$1" /usr/bin/env -0 ||
  { status=$?; echo "the manager's log:" >&2; cat "$XDG_RUNTIME_DIR/manager.log" >&2; exit $status; }
`
	cmd := exec.CommandContext(ctx, tools["unshare"], "--mount", "--propagation", "private", "/bin/bash", "-c", script, "bash", file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + runtime, "XDG_RUNTIME_DIR=" + runtime,
		"SYSTEMD=" + tools["systemd"], "SYSTEMD_RUN=" + tools["systemd-run"], "SYSTEMCTL=" + tools["systemctl"]}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if testenv.Required() {
			t.Fatalf("systemd-run with EnvironmentFile=: %v: %s", err, stderr.Bytes())
		}
		t.Skipf("skipping: no systemd user manager could be started here: %v: %s", err, stderr.Bytes())
	}
	return nulEnv(out)
}
