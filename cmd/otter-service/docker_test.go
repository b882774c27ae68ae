package main

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
)

// ourContainers lists the containers labelled with instance.
func ourContainers(t *testing.T, cli *client.Client, instance string) int {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelInstance+"="+instance))})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// dockerWithImage returns a client of the Docker engine, closed when t ends,
// or skips t (fails it where required) if no engine with the grading image
// answers.
func dockerWithImage(t *testing.T) *client.Client {
	t.Helper()
	testenv.Slow(t, "runs the service with real grading containers")
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := cli.ImageInspect(context.Background(), testenv.GradingImage()); err != nil {
		testenv.Missing(t, "no Docker engine with the grading image: %v", err)
	}
	return cli
}

// TestDockerCrashLeavesNoOrphans kills the service hard while grading
// containers run: after a restart no container of the dead run remains and
// every submission is graded exactly once.
func TestDockerCrashLeavesNoOrphans(t *testing.T) {
	cli := dockerWithImage(t)
	root, expected := examples(t)
	env := baseEnv(t, root)
	instance := fmt.Sprintf("crash-test-%d", time.Now().UnixNano())
	env["OTTER_RUNNER"] = "docker"
	env["OTTER_GRADING_IMAGE"] = testenv.GradingImage()
	env["OTTER_INSTANCE"] = instance
	env["OTTER_WORKERS"] = "2"
	env["OTTER_LEASE"] = "3s"
	p := start(t, env)

	names := []string{"lab01-perfect.ipynb", "lab01-partial.ipynb", "lab01-zero.ipynb", "lab02-perfect.ipynb", "lab01-error.ipynb"}
	urls, ids := map[string]string{}, map[string]string{}
	for i, name := range names {
		ids[name], urls[name] = submit(t, p, filepath.Join(root, "examples", "submissions", name), i)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ourContainers(t, cli, instance) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no grading container started")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	p.stop(syscall.SIGKILL)
	if n := ourContainers(t, cli, instance); n == 0 {
		t.Log("the containers had finished before the kill; the test proves less than it should")
	}

	p = start(t, env)
	for _, name := range names {
		checkOutcome(t, name, waitDone(t, p, urls[name], 5*time.Minute), expected[name])
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if n := ourContainers(t, cli, instance); n != 0 {
		t.Errorf("%d grading containers left behind", n)
	}
	store := openEmbedded(t, env)
	for _, name := range names {
		grades, _ := store.Grades(context.Background(), service.GradeFilter{SubmissionID: ids[name]})
		want := 1
		if expected[name].Status == "failed" {
			want = 0
		}
		if len(grades) != want {
			t.Errorf("%s has %d grade records, want %d", name, len(grades), want)
		}
	}
}
