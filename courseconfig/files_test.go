package courseconfig_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/courseconfig"
)

func makeZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, content := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	w.Close()
	return b.Bytes()
}

func TestCheckAutograder(t *testing.T) {
	good := map[string]string{"otter_config.json": `{"name": "lab01"}`, "tests/q1.py": "test = {}", "tests/q2.py": "test = {}"}
	if n, err := courseconfig.CheckAutograder(makeZip(t, good)); err != nil || n != 2 {
		t.Errorf("a good autograder: %d tests, %v", n, err)
	}
	for name, tt := range map[string]struct {
		files map[string]string
		want  string
	}{
		"no config":        {map[string]string{"tests/q1.py": ""}, "otter_config.json is missing"},
		"broken config":    {map[string]string{"otter_config.json": "{", "tests/q1.py": ""}, "otter_config.json is not a JSON object"},
		"no tests":         {map[string]string{"otter_config.json": "{}"}, "no tests"},
		"traversal":        {map[string]string{"otter_config.json": "{}", "tests/q1.py": "", "../../etc/cron.d/x": ""}, "would leave"},
		"absolute":         {map[string]string{"otter_config.json": "{}", "tests/q1.py": "", "/etc/passwd": ""}, "would leave"},
		"backslash":        {map[string]string{"otter_config.json": "{}", "tests/q1.py": "", `..\x`: ""}, "would leave"},
		"nested directory": {map[string]string{"lab01/otter_config.json": "{}", "lab01/tests/q1.py": ""}, "otter_config.json is missing"},
	} {
		_, err := courseconfig.CheckAutograder(makeZip(t, tt.files))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error saying %q", name, err, tt.want)
		}
	}
	if _, err := courseconfig.CheckZip([]byte("not a zip")); err == nil || !strings.Contains(err.Error(), "not a zip") {
		t.Errorf("not a zip: %v", err)
	}
	many := map[string]string{}
	for i := 0; i <= courseconfig.MaxZipEntries; i++ {
		many[fmt.Sprintf("tests/t%d.py", i)] = ""
	}
	if _, err := courseconfig.CheckZip(makeZip(t, many)); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Errorf("too many entries: %v", err)
	}
}

const cfg = `{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022", "subpath_to_zips": "zips",
	"assignments": {"lab01": "aaaa", "lab02": "bbbb"}}}}`

func TestLoadAndCheckDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("course-config.json", []byte(cfg))
	write("zips/lab01-autograder.zip", makeZip(t, map[string]string{"otter_config.json": "{}", "tests/q1.py": ""}))
	files := courseconfig.Dir(dir)
	if _, err := courseconfig.Load(files); err == nil || !strings.Contains(err.Error(), `"lab02"`) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Load with lab02's zip missing: %v; want an error naming lab02", err)
	}
	results, err := courseconfig.Check(files)
	if err != nil || len(results) != 2 || results[0].Err != nil || results[0].Tests != 1 || results[1].Err == nil {
		t.Errorf("Check = %+v, %v; want lab01 good and lab02 missing", results, err)
	}

	// A zip reached through a symbolic link is refused, even inside the directory.
	if err := os.Symlink("lab01-autograder.zip", filepath.Join(dir, "zips/lab02-autograder.zip")); err != nil {
		t.Fatal(err)
	}
	if _, err := courseconfig.Load(files); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Load with a symlinked zip: %v", err)
	}
	os.Remove(filepath.Join(dir, "zips/lab02-autograder.zip"))
	write("zips/lab02-autograder.zip", makeZip(t, map[string]string{"otter_config.json": "{}", "tests/q1.py": ""}))
	if c, err := courseconfig.Load(files); err != nil || len(c["8x"]["1"].Assignments) != 2 {
		t.Errorf("Load of a good course: %v", err)
	}
	if _, err := courseconfig.Check(courseconfig.Dir(t.TempDir())); err == nil || !strings.Contains(err.Error(), "course-config.json") {
		t.Errorf("Check of an empty directory: %v", err)
	}
}
