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
