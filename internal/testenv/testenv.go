// Package testenv tells tests whether a real component they need is here, and
// whether they may skip without it: on a laptop a missing component skips the
// test with the reason; where the environment says components are required
// (CI=true, or OTTER_TEST_REQUIRE=1), it fails the test instead.
package testenv

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Required reports whether missing components fail tests instead of
// skipping them.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("OTTER_TEST_REQUIRE") == "1"
}

// Missing skips or fails t because a component is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("required component missing: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Slow skips t under -short: it grades in real containers, or builds and
// runs the service, and takes seconds to minutes. go test -short ./... is
// the quick loop while working; make test and CI run everything.
func Slow(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping under -short: %s", what)
	}
}

// RepoRoot returns the repository's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Otter returns the otter executable for the local runner: $OTTER_COMMAND,
// or the project's .venv (made by scripts/python-env.sh).
func Otter(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OTTER_COMMAND"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(t), ".venv", "bin", "otter")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "otter-grader is not installed in .venv (run scripts/python-env.sh or make test)")
	}
	return p
}

// Git returns the git executable.
func Git(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		Missing(t, "git is not installed")
	}
	return p
}

// GradingImage is the grading image the Docker tests use: $OTTER_GRADING_IMAGE,
// or the one deployment/grader-image/build-local.sh builds.
func GradingImage() string {
	if img := os.Getenv("OTTER_GRADING_IMAGE"); img != "" {
		return img
	}
	return "otter-service-grader:local"
}

// PipBuildFiles returns this machine's pip configuration file and CA bundle,
// for builds that install packages inside containers ("" where there is
// none): $PIP_CONFIG_FILE or /etc/pip.conf, and $PIP_CERT or Debian's bundle.
func PipBuildFiles() (pipConf, caCert string) {
	for _, p := range []string{os.Getenv("PIP_CONFIG_FILE"), "/etc/pip.conf"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				pipConf = p
				break
			}
		}
	}
	for _, p := range []string{os.Getenv("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				caCert = p
				break
			}
		}
	}
	return pipConf, caCert
}

// FirestoreEmulator returns the address of a Firestore emulator for t:
// $FIRESTORE_EMULATOR_HOST if set, else a new one started from
// tests/emulator (the npm package @firestore-emulator/server) on a free
// loopback port, stopped when t ends.
func FirestoreEmulator(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		return h
	}
	dir := filepath.Join(RepoRoot(t), "tests", "emulator")
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is not installed, and FIRESTORE_EMULATOR_HOST names no emulator")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@firestore-emulator", "server")); err != nil {
		Missing(t, "the Firestore emulator is not installed (npm ci in tests/emulator, which make test runs)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, "serve.js", strconv.Itoa(port))
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the Firestore emulator exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the Firestore emulator did not start in 30s")
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}
