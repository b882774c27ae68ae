package docker

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/grading"
)

// TestZipLimitsAgreeWithCheckCourse checks that the runner refuses a zip
// beyond courseconfig's limits for the reason check-course and the course
// source (courseconfig.CheckZip) give, so neither accepts a zip the other
// refuses. It needs no Docker: layout unpacks the zip before any
// container is made.
func TestZipLimitsAgreeWithCheckCourse(t *testing.T) {
	// An entry that declares itself one byte larger than MaxZipUnpacked
	// unpacked (it holds nothing): both refuse on the declared size, before
	// reading it.
	var big bytes.Buffer
	zw := zip.NewWriter(&big)
	for _, name := range []string{"otter_config.json", "tests/q1.py"} {
		if _, err := zw.Create(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := zw.CreateRaw(&zip.FileHeader{Name: "files/data.csv", Method: zip.Store, UncompressedSize64: courseconfig.MaxZipUnpacked + 1}); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	var many bytes.Buffer
	zw = zip.NewWriter(&many)
	for i := 0; i <= courseconfig.MaxZipEntries; i++ {
		if _, err := zw.Create(fmt.Sprintf("tests/t%d.py", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	for name, data := range map[string][]byte{"unpacked size": big.Bytes(), "entries": many.Bytes()} {
		_, checkErr := courseconfig.CheckZip(data)
		if checkErr == nil {
			t.Errorf("%s: courseconfig.CheckZip accepted the zip", name)
			continue
		}
		_, runErr := layout(&grading.Job{NotebookName: "lab01.ipynb", Notebook: []byte("{}"), Autograder: data}, nil)
		if runErr == nil || !strings.Contains(runErr.Error(), checkErr.Error()) {
			t.Errorf("%s: the runner says %v; want it to refuse the zip because %s, as check-course does", name, runErr, checkErr)
		}
	}
}
