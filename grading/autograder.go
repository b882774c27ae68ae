package grading

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Autograder is what an autograder zip made by otter assign (or otter
// generate) declares about how to grade with it, read the way otter 7 reads
// it:
//
//   - otter_config.json: the language ("python" or "r"), plugins, and the
//     PDF and Gradescope settings, which this service ignores;
//   - the packages to install: a root requirements.txt (older otter
//     versions and hand-made zips), and environment.yml, where otter 7 puts
//     them (`dependencies:` → `pip:` for pip packages, plain entries for
//     conda packages);
//   - setup.sh: otter's own (which installs conda and environment.yml, so is
//     replaced here by installing the same packages with pip) or a course's
//     own script.
type Autograder struct {
	Lang     string   // "python" or "r"
	Notebook string   // otter_config.json's "notebook", if any
	Packages []string // pip requirements beyond otter-grader, in order, deduplicated
	// Setup is a setup.sh that is not otter's own: course code to run, as
	// root, when the assignment's image is built. Nil if none.
	Setup   []byte
	Plugins []string // plugin import paths from otter_config.json
	// PointsPossible is otter_config.json's points_possible: 0 when it sets
	// none (or null, or 0, which otter takes as none too). PointsOK is false
	// when it sets one that is not believable (not a number in [0, 1e6]).
	PointsPossible float64
	PointsOK       bool
	// Questions are the names of the zip's tests (tests/*.py, the name each
	// OK-format file gives itself), sorted; nil if one cannot be read.
	Questions []string
	// OtterVersion is the otter-grader version the zip pins, if it pins one.
	OtterVersion string
	// Ignored lists settings this service does not act on, for course staff.
	Ignored []string
	// Problems lists why this service cannot grade with the zip at all
	// (an R assignment, a conda package with no pip equivalent). Empty if it
	// can.
	Problems []string
}

// Limits on the files of the zip read here.
const (
	maxConfigFile = 1 << 20
	maxSetupFile  = 256 << 10
)

// ReadAutograder reads what an autograder zip declares. It returns an *Error
// of kind KindAutograder if the zip or one of its declaration files cannot
// be read; an assignment the service cannot grade is reported in Problems,
// not as an error.
func ReadAutograder(data []byte) (*Autograder, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, unusable("it is not a zip file (%v)", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	read := func(name string, limit int64) ([]byte, error) {
		f := files[name]
		if f == nil {
			return nil, nil
		}
		if f.UncompressedSize64 > uint64(limit) {
			return nil, unusable("its %s is larger than %d KiB", name, limit>>10)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, unusable("its %s cannot be read (%v)", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, limit+1))
		if err != nil || int64(len(b)) > limit {
			return nil, unusable("its %s cannot be read", name)
		}
		return b, nil
	}
	a := &Autograder{Lang: "python", PointsOK: true}
	a.Questions = questionNames(zr.File)

	cfg, err := read("otter_config.json", maxConfigFile)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if err := a.readConfig(cfg); err != nil {
			return nil, err
		}
	}
	var pkgs packageList
	req, err := read("requirements.txt", maxConfigFile)
	if err != nil {
		return nil, err
	}
	if req != nil {
		lines, err := requirementLines(req)
		if err != nil {
			return nil, unusable("its requirements.txt %v", err)
		}
		for _, l := range lines {
			pkgs.add(a, l)
		}
	}
	env, err := read("environment.yml", maxConfigFile)
	if err != nil {
		return nil, err
	}
	if env != nil {
		if err := a.readEnvironment(env, &pkgs); err != nil {
			return nil, err
		}
	}
	a.Packages = pkgs.lines
	setup, err := read("setup.sh", maxSetupFile)
	if err != nil {
		return nil, err
	}
	if setup != nil && !isOtterSetup(setup) {
		a.Setup = setup
	}
	if a.Lang == "r" {
		// Its conda list (r-base and the like) needs no other words.
		a.Problems = []string{"it is an R assignment (lang: r); this service grades Python notebooks only"}
		a.Packages, a.Setup = nil, nil
	}
	return a, nil
}

// Unsupported returns the *Error a submission to an assignment that cannot
// be graded here gets, or nil if it can be.
func (a *Autograder) Unsupported() error {
	if len(a.Problems) == 0 {
		return nil
	}
	return &Error{Kind: KindUnsupported,
		Message: "This assignment's autograder cannot be used by this grading service (" + strings.Join(a.Problems, "; ") + "), so your notebook was not graded. This is not a problem with your notebook: tell your course staff."}
}

// NeedsImage reports whether grading needs an image beyond the grading
// image: packages to install or a setup script to run.
func (a *Autograder) NeedsImage() bool { return len(a.Packages) > 0 || a.Setup != nil }

func (a *Autograder) readConfig(data []byte) error {
	var c struct {
		Lang     string            `json:"lang"`
		Notebook string            `json:"notebook"`
		PDF      bool              `json:"pdf"`
		Token    any               `json:"token"`
		CourseID any               `json:"course_id"`
		Plugins  []json.RawMessage `json:"plugins"`
		PDFHTML  bool              `json:"pdf_via_html"`
		Zips     bool              `json:"zips"`
		Points   json.RawMessage   `json:"points_possible"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return unusable("its otter_config.json is not valid (%v)", err)
	}
	switch strings.ToLower(c.Lang) {
	case "", "python":
	case "r":
		a.Lang = "r"
	default:
		a.Lang = c.Lang
		a.Problems = append(a.Problems, fmt.Sprintf("its language %q is not one otter grades", c.Lang))
	}
	a.Notebook = c.Notebook
	if len(c.Points) > 0 && string(c.Points) != "null" {
		a.PointsPossible, a.PointsOK = believable(c.Points)
	}
	if c.PDF || c.PDFHTML {
		a.Ignored = append(a.Ignored, "pdf: PDFs of submissions are not exported (no pandoc or LaTeX in the grading image); grades do not depend on them")
	}
	if c.Token != nil && c.Token != "" || c.CourseID != nil {
		a.Ignored = append(a.Ignored, "token, course_id: nothing is uploaded to Gradescope")
	}
	if c.Zips {
		a.Problems = append(a.Problems, "it grades zip submissions (zips: true); submissions here are notebooks")
	}
	for _, p := range c.Plugins {
		var name string
		if json.Unmarshal(p, &name) != nil {
			var m map[string]json.RawMessage
			if json.Unmarshal(p, &m) != nil || len(m) != 1 {
				return unusable("its otter_config.json has a plugin entry that is neither a name nor {name: config}")
			}
			for k := range m {
				name = k
			}
		}
		a.Plugins = append(a.Plugins, name)
	}
	return nil
}

// readEnvironment reads a conda environment.yml: pip packages from the
// `pip:` list, conda packages mapped to pip where they can be.
func (a *Autograder) readEnvironment(data []byte, pkgs *packageList) error {
	var env struct {
		Dependencies []any `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(data, &env); err != nil {
		return unusable("its environment.yml is not valid YAML (%v)", err)
	}
	for _, d := range env.Dependencies {
		switch d := d.(type) {
		case string:
			pip, problem := condaToPip(d)
			switch {
			case problem != "":
				a.Problems = append(a.Problems, problem)
			case pip != "":
				pkgs.add(a, pip)
			}
		case map[string]any:
			for k, v := range d {
				if k != "pip" {
					return unusable("its environment.yml has a dependency entry %q that is not a package or a pip list", k)
				}
				list, ok := v.([]any)
				if !ok {
					return unusable("its environment.yml's pip entry is not a list")
				}
				for _, item := range list {
					s, ok := item.(string)
					if !ok {
						return unusable("its environment.yml's pip list has an entry that is not a string")
					}
					lines, err := requirementLines([]byte(s))
					if err != nil {
						return unusable("its environment.yml's pip list %v", err)
					}
					for _, l := range lines {
						pkgs.add(a, l)
					}
				}
			}
		default:
			return unusable("its environment.yml has a dependency that is not a string or a pip list")
		}
	}
	return nil
}

// packageList collects pip requirement lines, dropping otter-grader (the
// grading image's own, pinned) and exact duplicates.
type packageList struct {
	lines []string
	seen  map[string]bool
}

func (p *packageList) add(a *Autograder, line string) {
	name := requirementName(line)
	if name == "otter-grader" {
		if m := pinnedVersionRE.FindStringSubmatch(line); m != nil {
			a.OtterVersion = m[1]
		}
		return
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[line] {
		return
	}
	p.seen[line] = true
	p.lines = append(p.lines, line)
}

// requirementLines returns the requirement lines of a requirements.txt
// (comments and blank lines dropped). Option lines (-r, -e, --index-url)
// are refused: they could point pip anywhere.
func requirementLines(data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-") {
			return nil, fmt.Errorf("has an option line (%q); only package requirements are allowed", line)
		}
		if strings.ContainsAny(line, "\x00\r") || !requirementRE.MatchString(line) {
			return nil, fmt.Errorf("has a line that is not a package requirement (%q)", line)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot be read (%v)", err)
	}
	return out, nil
}

// requirementRE is a PEP 508 requirement's start: a name, then anything.
var (
	pinnedVersionRE  = regexp.MustCompile(`==\s*([0-9][^\s,;]*)`)
	nameSeparatorsRE = regexp.MustCompile(`[-_.]+`)
)

var requirementRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~;@ ].*)?$`)

// requirementName is a requirement's normalized project name (PEP 503).
func requirementName(line string) string {
	name := strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune("<>=!~[; @", r) })
	if len(name) == 0 {
		return ""
	}
	return strings.ToLower(nameSeparatorsRE.ReplaceAllString(name[0], "-"))
}

// Conda packages the grading image provides in its own way, or that only
// matter to conda itself or to otter's Gradescope setup.
var condaProvided = map[string]bool{
	"python": true, "pip": true, "jupyter_server": true, "jupyter-server": true,
	"nb_conda_kernels": true, "ipykernel": true, "setuptools": true, "wheel": true,
}

// Conda packages whose pip project has another name.
var condaRenamed = map[string]string{
	"pytorch":         "torch",
	"py-xgboost":      "xgboost",
	"matplotlib-base": "matplotlib",
	"pytables":        "tables",
	"python-graphviz": "graphviz",
	"py-opencv":       "opencv-python-headless",
	"opencv":          "opencv-python-headless",
}

// condaSpecRE is a conda match spec: [channel::]name[ op version[ build]].
var condaSpecRE = regexp.MustCompile(`^(?:[A-Za-z0-9_.-]+::)?([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:(==|=|>=|<=|>|<|!=|~=)\s*([A-Za-z0-9_.*+!-]+(?:,\s*[<>=!~]*\s*[A-Za-z0-9_.*+!-]+)*))?(?:\s+[A-Za-z0-9_.*]+)?$`)

// condaToPip maps a conda dependency to a pip requirement: "" if the
// grading image provides it, or a problem if it has no pip equivalent.
func condaToPip(spec string) (pip, problem string) {
	spec = strings.TrimSpace(spec)
	m := condaSpecRE.FindStringSubmatch(spec)
	if m == nil {
		return "", fmt.Sprintf("its environment.yml has a conda dependency %q this service cannot read", spec)
	}
	name := strings.ToLower(m[1])
	if condaProvided[name] {
		return "", ""
	}
	if strings.HasPrefix(name, "r-") || name == "r" || strings.HasSuffix(name, "-compiler") ||
		strings.HasPrefix(name, "lib") || name == "zlib" || name == "cudatoolkit" || name == "mkl" {
		return "", fmt.Sprintf("its environment.yml needs the conda package %q, which has no pip equivalent this service can install", spec)
	}
	if to, ok := condaRenamed[name]; ok {
		name = to
	}
	op, ver := m[2], m[3]
	switch {
	case op == "":
		return name, ""
	case op == "=": // conda's "=" is a prefix match: 1.26 is 1.26.*
		if strings.HasSuffix(ver, "*") {
			return name + "==" + strings.TrimSuffix(strings.TrimSuffix(ver, "*"), ".") + ".*", ""
		}
		return name + "==" + ver + ".*", ""
	default:
		return name + op + ver, ""
	}
}

// isOtterSetup reports whether a setup.sh is one otter generate writes: it
// sets up conda and installs environment.yml (otter ≥ 4), or pip-installs
// requirements.txt (older otter), which this service does with pip from the
// same lists. Anything else in such a script (the apt packages otter's
// installs for PDF export and for R) is not needed here.
func isOtterSetup(script []byte) bool {
	s := string(script)
	for _, sig := range []string{
		"mamba env create -f", "conda env create -f", "conda env update -f",
		"Miniforge3-Linux", "Miniconda3-latest-Linux", "Mambaforge-Linux",
	} {
		if strings.Contains(s, sig) {
			return true
		}
	}
	lines := 0
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || l == "set -e" {
			continue
		}
		lines++
		if !strings.Contains(l, "pip install -r") && !strings.Contains(l, "pip3 install -r") &&
			!strings.HasPrefix(l, "apt-get") && !strings.HasPrefix(l, "export DEBIAN_FRONTEND") {
			return false
		}
	}
	return lines > 0
}

// SortedPackages returns the packages sorted, the form image keys are made of.
func (a *Autograder) SortedPackages() []string {
	s := append([]string(nil), a.Packages...)
	sort.Strings(s)
	return s
}

func unusable(format string, args ...any) *Error {
	return &Error{Kind: KindAutograder,
		Message: "The assignment's autograder cannot be used: " + fmt.Sprintf(format, args...) + ". Tell your course staff."}
}

// testStartRE finds where an OK-format test file's dict begins: test = {.
var testStartRE = regexp.MustCompile(`(?m)^test\s*=\s*\{`)

// testName returns the "name" key's string at the top level of an
// OK-format test file's dict (otter writes the keys sorted, so other keys
// may come first), skipping nested values and strings; "" if there is none.
func testName(src []byte) string {
	loc := testStartRE.FindIndex(src)
	if loc == nil {
		return ""
	}
	s := string(src[loc[1]:])
	depth := 1
	var lastString string
	for i := 0; i < len(s) && depth > 0; i++ {
		switch c := s[i]; c {
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
		case '\'', '"':
			q := string(c)
			if strings.HasPrefix(s[i:], strings.Repeat(q, 3)) {
				q = strings.Repeat(q, 3)
			}
			j := i + len(q)
			for j < len(s) && !strings.HasPrefix(s[j:], q) {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			str := s[min(i+len(q), len(s)):min(j, len(s))]
			i = j + len(q) - 1
			if depth != 1 {
				continue
			}
			if lastString == "name" {
				return str
			}
			// A key is a string followed by a colon.
			rest := strings.TrimLeft(s[min(i+1, len(s)):], " \t\n")
			if strings.HasPrefix(rest, ":") {
				lastString = str
			} else {
				lastString = ""
			}
		case ',':
			if depth == 1 {
				lastString = ""
			}
		}
	}
	return ""
}

func questionNames(files []*zip.File) []string {
	var names []string
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "tests/") || !strings.HasSuffix(f.Name, ".py") || strings.Count(f.Name, "/") != 1 {
			continue
		}
		if f.UncompressedSize64 > maxConfigFile {
			return nil
		}
		rc, err := f.Open()
		if err != nil {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxConfigFile))
		rc.Close()
		name := testName(data)
		if err != nil || name == "" || len(name) > 200 || strings.ContainsAny(name, "\n\\") {
			return nil
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
