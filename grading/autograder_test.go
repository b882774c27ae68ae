package grading_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/grading"
)

// otter 7's environment.yml for an assignment with requirements: and a
// user environment (conda and pip packages), as otter generate merges them.
const otter7Environment = `name: otter-env
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - toolz=1.2
  - conda-forge::scikit-learn>=1.5
  - pytorch
  - jupyter_server
  - pip:
      - humanize==4.17.0
      - otter-grader[grading,plugins]==7.0.0
      - tabulate==0.10.0
`

func TestReadAutograderPackages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"otter 7 default", map[string]string{"otter_config.json": `{"lang": "python"}`,
			"environment.yml": "name: otter-env\ndependencies:\n  - python=3.13\n  - pip\n  - jupyter_server\n  - pip:\n      - otter-grader[grading,plugins]==7.0.0\n"},
			nil},
		{"otter 7 environment.yml", map[string]string{"otter_config.json": `{}`, "environment.yml": otter7Environment},
			[]string{"toolz==1.2.*", "scikit-learn>=1.5", "torch", "humanize==4.17.0", "tabulate==0.10.0"}},
		{"requirements.txt", map[string]string{"requirements.txt": "# extras\notter-grader==7.0.0\nsix==1.16.0 # inline comment\n\ndatascience\nnumpy>=2; python_version >= '3.10'\n"},
			[]string{"six==1.16.0", "datascience", "numpy>=2; python_version >= '3.10'"}},
		{"both, duplicates once", map[string]string{"requirements.txt": "tabulate==0.10.0\n", "environment.yml": otter7Environment},
			[]string{"tabulate==0.10.0", "toolz==1.2.*", "scikit-learn>=1.5", "torch", "humanize==4.17.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := grading.ReadAutograder(makeZip(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Packages, tc.want) {
				t.Errorf("packages = %q, want %q", a.Packages, tc.want)
			}
			if a.NeedsImage() != (len(tc.want) > 0) || len(a.Problems) != 0 || a.Unsupported() != nil {
				t.Errorf("needs image %v, problems %q", a.NeedsImage(), a.Problems)
			}
		})
	}
}

func TestReadAutograderOtterVersion(t *testing.T) {
	a, err := grading.ReadAutograder(makeZip(t, map[string]string{"environment.yml": otter7Environment}))
	if err != nil || a.OtterVersion != "7.0.0" {
		t.Fatalf("otter version %q, %v; want 7.0.0", a.OtterVersion, err)
	}
}

func TestReadAutograderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"option line", "requirements.txt", "--index-url http://example.invalid/simple\nsix\n", "option line"},
		{"editable", "requirements.txt", "-e git+https://example.invalid/x.git\n", "option line"},
		{"not a requirement", "requirements.txt", "six; rm -rf /\n$(curl x)\n", "not a package requirement"},
		{"bad yaml", "environment.yml", "dependencies: [\n", "not valid YAML"},
		{"odd dependency", "environment.yml", "dependencies:\n  - {conda: [x]}\n", "not a package or a pip list"},
		{"bad config", "otter_config.json", "{", "otter_config.json is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := grading.ReadAutograder(makeZip(t, map[string]string{tc.file: tc.content}))
			gerr, ok := grading.AsError(err)
			if !ok || gerr.Kind != grading.KindAutograder || !strings.Contains(gerr.Message, tc.want) || !strings.Contains(gerr.Message, tc.file) {
				t.Fatalf("err = %v; want an autograder error naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
	if _, err := grading.ReadAutograder([]byte("not a zip")); err == nil {
		t.Error("a non-zip was read")
	}
}

func TestReadAutograderUnsupported(t *testing.T) {
	rEnv := "dependencies:\n  - python=3.13\n  - r-base=4.5.*\n  - r-ottr==1.6.0\n  - pip:\n      - otter-grader[grading,plugins]==7.0.0\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"R", map[string]string{"otter_config.json": `{"lang": "r"}`, "environment.yml": rEnv}, "R assignment"},
		{"conda-only package", map[string]string{"environment.yml": "dependencies:\n  - libgdal=3.8\n"}, `conda package "libgdal=3.8"`},
		{"zips", map[string]string{"otter_config.json": `{"zips": true}`}, "zip submissions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := grading.ReadAutograder(makeZip(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			uerr := a.Unsupported()
			gerr, ok := grading.AsError(uerr)
			if !ok || gerr.Kind != grading.KindUnsupported || !strings.Contains(gerr.Message, tc.want) ||
				!strings.Contains(gerr.Message, "not a problem with your notebook") || len(a.Problems) != 1 {
				t.Fatalf("problems %q, error %v; want one naming %q, for the student not blaming the notebook", a.Problems, uerr, tc.want)
			}
		})
	}
}

func TestReadAutograderIgnoredSettings(t *testing.T) {
	a, err := grading.ReadAutograder(makeZip(t, map[string]string{
		"otter_config.json": `{"pdf": true, "token": "abc", "course_id": 1, "assignment_id": 2, "plugins": ["otter.plugins.builtin.RateLimiting", {"otter.plugins.builtin.GoogleSheetsGradeOverride": {"url": "x"}}]}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Ignored) != 2 || !strings.Contains(a.Ignored[0], "pdf") || !strings.Contains(a.Ignored[1], "Gradescope") {
		t.Errorf("ignored = %q; want the PDF and Gradescope settings named", a.Ignored)
	}
	if want := []string{"otter.plugins.builtin.RateLimiting", "otter.plugins.builtin.GoogleSheetsGradeOverride"}; !reflect.DeepEqual(a.Plugins, want) {
		t.Errorf("plugins = %q, want %q", a.Plugins, want)
	}
	if a.Unsupported() != nil {
		t.Errorf("ignored settings made it unsupported: %v", a.Unsupported())
	}
}

func TestReadAutograderSetup(t *testing.T) {
	otterLike := "#!/usr/bin/env bash\nset -e\napt-get update\napt-get install -y wget\nwget -nv https://example.invalid/Miniforge3-Linux-x86_64.sh -O x.sh\nmamba env create -f /autograder/source/environment.yml\n"
	oldOtter := "#!/usr/bin/env bash\napt-get clean\napt-get update\npip install -r /autograder/source/requirements.txt\n"
	custom := "#!/usr/bin/env bash\nset -e\npip install ./course_helpers-1.0.tar.gz\n"
	for _, tc := range []struct {
		name, script string
		custom       bool
	}{{"otter's", otterLike, false}, {"older otter's", oldOtter, false}, {"course's own", custom, true}} {
		a, err := grading.ReadAutograder(makeZip(t, map[string]string{"setup.sh": tc.script}))
		if err != nil {
			t.Fatal(err)
		}
		if (a.Setup != nil) != tc.custom || a.NeedsImage() != tc.custom {
			t.Errorf("%s setup.sh: kept %v, needs image %v; want %v", tc.name, a.Setup != nil, a.NeedsImage(), tc.custom)
		}
	}
}

func TestOnlyTheAutogradersQuestionsCount(t *testing.T) {
	test := func(name string) string {
		return "OK_FORMAT = True\n\ntest = {   'name': '" + name + "',\n    'points': 1,\n    'suites': []}\n"
	}
	zip := makeZip(t, map[string]string{"tests/q1.py": test("q1"), "tests/q2.py": test("q2")})
	results := `{"tests": [
		{"name": "q1", "score": 1, "max_score": 1, "visibility": "hidden"},
		{"name": "leak: test = {'name': 'q2', 'code': '>>> assert double(-4) == -8'}", "score": 0, "max_score": 0},
		{"name": "q3", "score": 5, "max_score": 5},
		{"name": "q2", "score": 0, "max_score": 1}]}`
	res, err := grading.ParseResults([]byte(results), zip)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range res.Tests {
		names = append(names, q.Name)
	}
	if !reflect.DeepEqual(names, []string{"q1", "q2"}) || res.Grade != 0.5 || len(res.Review) != 2 {
		t.Fatalf("questions %q, grade %v, review %q; want q1 and q2 only, 1/2, and the two others flagged", names, res.Grade, res.Review)
	}
	// A test file whose name cannot be read turns the check off rather
	// than flag honest results.
	odd := makeZip(t, map[string]string{"tests/q1.py": "test = dict(name='q1')\n"})
	if res, err := grading.ParseResults([]byte(results), odd); err != nil || len(res.Tests) != 4 || len(res.Review) != 0 {
		t.Fatalf("with an unreadable test name: %+v, %v; want every result, nothing flagged", res, err)
	}
}

func TestQuestionNamesFromTestFiles(t *testing.T) {
	files := map[string]string{
		// otter assign's form: keys sorted, so others come first.
		"tests/q2.py": "OK_FORMAT = True\n\ntest = {   'all_or_nothing': True,\n    'name': 'q2',\n    'points': 0.5,\n    'suites': [{'cases': [{'code': '>>> assert words == [\"the\"]\\n', 'hidden': False, 'name': 'case one'}]}]}\n",
		// Hand-written: nested case names before the file's own, a
		// triple-quoted string with quotes and a name key inside it.
		"tests/q1.py": "test = {\n  \"suites\": [{\"cases\": [{\"name\": \"inner\", \"code\": r\"\"\"\n>>> d = {'name': 'x'}\n>>> d['name']\n'x'\n\"\"\"}]}],\n  \"name\": \"q1 (part a)\",\n  \"points\": 2,\n}\n",
	}
	a, err := grading.ReadAutograder(makeZip(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"q1 (part a)", "q2"}; !reflect.DeepEqual(a.Questions, want) {
		t.Errorf("questions %q, want %q", a.Questions, want)
	}
}
