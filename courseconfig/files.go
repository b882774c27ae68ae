package courseconfig

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits on what is read from a course repository. The graders
// (grading/docker) refuse a zip beyond MaxZipEntries or MaxZipUnpacked with
// the same reason CheckZip gives, so check-course and the course source
// refuse exactly what grading would.
const (
	MaxConfigSize     = 10 << 20  // course-config.json
	MaxZipSize        = 100 << 20 // one autograder zip
	MaxZipEntries     = 10000     // entries in one zip
	MaxZipUnpacked    = 256 << 20 // the sum of a zip's uncompressed sizes
	maxOtterConfigLen = 1 << 20   // otter_config.json inside a zip
)

// Files reads a course repository's files by slash-separated path from its
// root. Implementations refuse symbolic links and anything but regular files
// anywhere along a path.
type Files interface {
	// Size returns the size of the regular file at p.
	Size(p string) (int64, error)
	// ReadFile returns the contents of the regular file at p, refusing a file
	// larger than max bytes.
	ReadFile(p string, max int64) ([]byte, error)
}

// Load reads course-config.json from files and validates it: its types and
// names (Parse), and that every assignment's autograder zip is present and no
// larger than MaxZipSize. A configuration that fails any check is not
// returned.
func Load(files Files) (Config, error) {
	cfg, err := read(files)
	if err != nil {
		return nil, err
	}
	var problems []error
	cfg.each(func(course, section, assignment string, a Assignment) {
		size, err := files.Size(a.ZipPath)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("course %q section %q assignment %q: autograder: %w", course, section, assignment, err))
		case size > MaxZipSize:
			problems = append(problems, fmt.Errorf("course %q section %q assignment %q: autograder %s is larger than %d MiB", course, section, assignment, a.ZipPath, MaxZipSize>>20))
		}
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s is not valid: %w", FileName, errors.Join(problems...))
	}
	return cfg, nil
}

// each calls f for every assignment, in name order.
func (c Config) each(f func(course, section, assignment string, a Assignment)) {
	for _, course := range sortedKeys(c) {
		for _, section := range sortedKeys(c[course]) {
			for _, name := range sortedKeys(c[course][section].Assignments) {
				a, _ := c.Lookup(course, section, name)
				f(course, section, name, a)
			}
		}
	}
}

// CheckZip reads an autograder zip with limits: at most MaxZipSize bytes,
// MaxZipEntries entries and MaxZipUnpacked bytes unpacked, and only entries
// whose names stay inside the directory it is unpacked into. It returns the
// zip's reader.
func CheckZip(data []byte) (*zip.Reader, error) {
	if len(data) > MaxZipSize {
		return nil, fmt.Errorf("it is larger than %d MiB", MaxZipSize>>20)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("it is not a zip file (%v)", err)
	}
	if len(zr.File) > MaxZipEntries {
		return nil, fmt.Errorf("it has more than %d entries", MaxZipEntries)
	}
	var total uint64
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if err := CheckPath(name); err != nil || name == "" {
			return nil, fmt.Errorf("entry %q has a name that would leave the directory it is unpacked into", f.Name)
		}
		if !f.Mode().IsRegular() && !f.Mode().IsDir() {
			return nil, fmt.Errorf("entry %q is not a regular file or directory", f.Name)
		}
		total += f.UncompressedSize64
		if total > MaxZipUnpacked {
			return nil, fmt.Errorf("it unpacks to more than %d MiB", MaxZipUnpacked>>20)
		}
	}
	return zr, nil
}

// CheckAutograder checks that data is an autograder zip as otter assign
// makes it: safe to unpack (CheckZip), with a parseable otter_config.json and
// tests in tests/ at its root. It returns the number of test files.
func CheckAutograder(data []byte) (tests int, err error) {
	zr, err := CheckZip(data)
	if err != nil {
		return 0, err
	}
	var config *zip.File
	for _, f := range zr.File {
		switch {
		case f.Name == "otter_config.json":
			config = f
		case strings.HasPrefix(f.Name, "tests/") && !f.FileInfo().IsDir():
			tests++
		}
	}
	if config == nil {
		return 0, errors.New("otter_config.json is missing at the zip's root (was it made by otter assign?)")
	}
	if config.UncompressedSize64 > maxOtterConfigLen {
		return 0, fmt.Errorf("otter_config.json is larger than %d KiB", maxOtterConfigLen>>10)
	}
	rc, err := config.Open()
	if err != nil {
		return 0, fmt.Errorf("otter_config.json cannot be read (%v)", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxOtterConfigLen+1))
	if err != nil {
		return 0, fmt.Errorf("otter_config.json cannot be read (%v)", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return 0, fmt.Errorf("otter_config.json is not a JSON object (%v)", err)
	}
	if tests == 0 {
		return 0, errors.New("there are no tests: tests/ is missing or empty")
	}
	return tests, nil
}

// AssignmentCheck is the outcome of checking one assignment's autograder.
type AssignmentCheck struct {
	Course, Section, Assignment string
	ZipPath                     string
	Tests                       int   // test files in the zip's tests/
	Err                         error // nil if the autograder is usable
}

// read reads and parses course-config.json.
func read(files Files) (Config, error) {
	data, err := files.ReadFile(FileName, MaxConfigSize)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Check is what course staff run before pushing: it parses course-config.json
// and checks every autograder zip it names with CheckAutograder. It returns
// an error if course-config.json itself is unusable, and otherwise one result
// per assignment.
func Check(files Files) ([]AssignmentCheck, error) {
	cfg, err := read(files)
	if err != nil {
		return nil, err
	}
	var out []AssignmentCheck
	cfg.each(func(course, section, assignment string, a Assignment) {
		c := AssignmentCheck{Course: course, Section: section, Assignment: assignment, ZipPath: a.ZipPath}
		data, err := files.ReadFile(a.ZipPath, MaxZipSize)
		if err == nil {
			c.Tests, err = CheckAutograder(data)
		}
		c.Err = err
		out = append(out, c)
	})
	return out, nil
}

// Dir returns the Files of a directory on disk, such as a work tree of a
// course repository.
func Dir(dir string) Files { return dirFiles(dir) }

type dirFiles string

// stat checks every component of p with Lstat, so neither a symbolic link
// nor ".." can lead outside the directory, and returns the file's info.
func (d dirFiles) stat(p string) (fs.FileInfo, error) {
	if err := CheckPath(p); err != nil || p == "" {
		return nil, fmt.Errorf("%q is not a path inside the repository", p)
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		sub := path.Join(parts[:i+1]...)
		fi, err := os.Lstat(filepath.Join(string(d), filepath.FromSlash(sub)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", p)
		}
		if err != nil {
			return nil, err
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("%s is a symbolic link, which is not allowed", sub)
		case !last && !fi.IsDir():
			return nil, fmt.Errorf("%s does not exist", p)
		case last && !fi.Mode().IsRegular():
			return nil, fmt.Errorf("%s is not a regular file", p)
		case last:
			return fi, nil
		}
	}
	return nil, fmt.Errorf("%s does not exist", p)
}

func (d dirFiles) Size(p string) (int64, error) {
	fi, err := d.stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (d dirFiles) ReadFile(p string, max int64) ([]byte, error) {
	fi, err := d.stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	return data, nil
}
