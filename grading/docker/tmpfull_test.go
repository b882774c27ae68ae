package docker_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
)

// TestFullDisksAfterTheCells: a notebook that fills its space and leaves it
// full (catching the error, so that its kernel lives on). /tmp full does not
// keep otter from grading (its files are elsewhere): the notebook gets its
// grade. The working directory full is told that it wrote more than the
// space allowed, naming the limit, not that the autograder produced
// nothing.
func TestFullDisksAfterTheCells(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 60 * time.Second, Memory: 512 << 20, Output: 256 << 10, Disk: 64 << 20, Tmp: 48 << 20, Processes: 128})
	defer r.Close()
	fill := func(path string) example {
		return load(t, "lab01-perfect.ipynb").withCell(t, "try:\n    with open('"+path+"', 'wb') as f:\n"+
			"        while True:\n            f.write(b'x' * (1 << 20))\n            f.flush()\nexcept OSError:\n    pass")
	}
	res, err := r.Run(context.Background(), fill("/tmp/fill").job())
	if err != nil || math.Abs(res.Grade-1) > 1e-9 {
		t.Errorf("a perfect notebook that left /tmp full: %+v, %v; want grade 1", res, err)
	}
	_, err = r.Run(context.Background(), fill("fill").job())
	if gerr, ok := grading.AsError(err); !ok || !strings.Contains(gerr.Message, "64 MiB allowed") {
		t.Errorf("a notebook that left its working directory full: %v; want a failure naming the 64 MiB allowed", err)
	}
}
