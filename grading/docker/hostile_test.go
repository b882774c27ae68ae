package docker_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
)

// withCellAt returns the example with a code cell inserted at index i (after
// otter's init cell at 0, a cell runs before any of the notebook's checks).
func (e example) withCellAt(t *testing.T, i int, source string) example {
	t.Helper()
	var nb map[string]any
	if err := json.Unmarshal(e.notebook, &nb); err != nil {
		t.Fatal(err)
	}
	cells := nb["cells"].([]any)
	cell := map[string]any{"cell_type": "code", "execution_count": nil, "id": "hostile-" + strings.Repeat("x", i%3),
		"metadata": map[string]any{}, "outputs": []any{}, "source": source}
	nb["cells"] = append(cells[:i:i], append([]any{cell}, cells[i:]...)...)
	data, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	e.notebook = data
	return e
}

// The hidden test cases of examples/ lab01 (its q2), which no report a
// student can see may echo.
var lab01Hidden = []string{"double(-4)", "double(0.5)"}

// tamperCase is a notebook with no right answer that attacks the grading
// from inside.
type tamperCase struct {
	name string
	ex   example
}

// tampering returns the attacks on the grading from inside: lab01-zero with
// a cell that tampers, run before any check.
func tampering(t *testing.T) []tamperCase {
	zero := load(t, "lab01-zero.ipynb")
	daemon := "import os, json, time\n" +
		"if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n" +
		"        forged = {'tests': [{'name': n, 'score': 1, 'max_score': 1} for n in ('q1', 'q2', 'q3')]}\n" +
		"        end = time.time() + 120\n        while time.time() < end:\n" +
		"            for d in ('/autograder/results', '/autograder', '/tmp'):\n" +
		"                try:\n                    json.dump(forged, open(d + '/results.json.tmp', 'w'))\n" +
		"                    os.replace(d + '/results.json.tmp', d + '/results.json')\n                except OSError:\n                    pass\n" +
		"            time.sleep(0.005)\n    os._exit(0)\n"
	passAll := "OK_FORMAT = True\ntest = {'name': 'q1', 'points': 1, 'suites': [{'cases': [{'code': '>>> assert True', 'hidden': False, 'locked': False}], 'scored': True, 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n"
	var out []tamperCase
	for _, tt := range []struct{ name, cell string }{
		{"patches otter in the kernel", "import otter.test_files.ok_test as m\nm.run_doctest = lambda n, s, g: (True, '')\nimport otter.execute\notter.execute.Checker.check = classmethod(lambda *a, **k: None)"},
		{"rewrites the tests", "import glob, os\nfor p in glob.glob('/autograder/**/*.py', recursive=True) + ['/autograder/source/tests/q1.py', 'tests/q1.py']:\n" +
			"    try:\n        os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n        open(p, 'w').write(" + jsonQuote(passAll) + ")\n    except OSError:\n        pass"},
		{"races the results file from a daemon", daemon},
		{"answers every expression with True", "import builtins\nbuiltins.eval = lambda *a, **k: True\nbuiltins.exec = lambda *a, **k: None"},
		// Values that equal anything: they cannot be sent as plain values, so
		// their asserts run in the kernel, where the decoys give them away.
		{"has answers that equal everything", "class Any:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__"},
		{"lies through IPython", "ip = get_ipython()\nimport builtins\n_real_compile = builtins.compile\ndef _c(src, *a, **k):\n    if isinstance(src, str) and 'assert' in src:\n        src = 'pass'\n    return _real_compile(src, *a, **k)\nbuiltins.compile = _c"},
		{"adds fake results with hidden tests in their names", "from otter.execute import Checker\nimport glob\nsrc = ''.join(open(p).read() for p in glob.glob('/autograder/source/tests/*.py'))\nfrom otter.test_files.ok_test import OKTestFile\nChecker._test_files.append(OKTestFile('leak ' + src[:150], 'x', [], False))"},
		{"reads the hidden tests and prints them", "import glob\nfor p in glob.glob('/autograder/**/tests/*.py', recursive=True):\n    try:\n        print(open(p).read())\n    except OSError as e:\n        print(e)"},
		{"echoes what it is asked, later", "import builtins\n_seen = []\n_rc = builtins.compile\ndef _c(src, *a, **k):\n    if isinstance(src, str):\n        _seen.append(src)\n        print(' | '.join(_seen[-20:]))\n    return _rc(src, *a, **k)\nbuiltins.compile = _c"},
		{"kills other uids' processes", "import os, signal\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n        try:\n            os.kill(int(pid), signal.SIGKILL)\n        except OSError:\n            pass"},
	} {
		nb := zero.withCellAt(t, 1, tt.cell)
		if tt.name == "has answers that equal everything" {
			nb = nb.withAnswer(t, "square_of_seven = 7 * 2", "square_of_seven = Any()").withAnswer(t, "return x + 2", "return Any()")
		}
		out = append(out, tamperCase{tt.name, nb})
	}
	return out
}

// TestStudentCannotChangeItsGrade grades notebooks with no right answer
// that attack the grading from inside: each must end with 0, or with the
// tampering flagged for review, never with a higher grade unflagged; the
// questions are the autograder's own; nothing a student may see holds a
// hidden test's code.
func TestStudentCannotChangeItsGrade(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute, Memory: 768 << 20})
	// What the grader must flag, not only keep at 0.
	mustFlag := map[string]bool{"answers every expression with True": true, "has answers that equal everything": true}
	for _, tt := range tampering(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := r.Run(context.Background(), tt.ex.job())
			if err != nil {
				if _, ok := grading.AsError(err); !ok {
					t.Fatalf("the runner's own error: %v", err)
				}
				t.Logf("failed: %v", err) // a failure gives no grade: not a raised one
				return
			}
			if mustFlag[tt.name] && len(res.Review) == 0 {
				t.Errorf("grade %v with nothing flagged for review; want the interference detected", res.Grade)
			}
			if res.Grade > 0 && len(res.Review) == 0 {
				t.Errorf("grade %v without review, from a notebook with no right answer: %+v", res.Grade, res.Tests)
			}
			var names []string
			for _, q := range res.Tests {
				names = append(names, q.Name)
			}
			if !slices.Equal(names, []string{"q1", "q2", "q3"}) {
				t.Errorf("questions %q; want the autograder's q1, q2, q3", names)
			}
			for _, f := range res.Feedback {
				if f.Visibility != grading.VisibilityVisible {
					continue
				}
				for _, h := range lab01Hidden {
					if strings.Contains(f.Output, h) {
						t.Errorf("visible feedback %q holds hidden test code %q:\n%s", f.Name, h, f.Output)
					}
				}
			}
			t.Logf("%s: grade %v, review %q", tt.name, res.Grade, res.Review)
		})
	}
}

// TestHonestGradesAreNotFlagged: the examples' honest submissions are
// graded as before, with nothing for review.
func TestHonestGradesAreNotFlagged(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute})
	var wg sync.WaitGroup
	for _, name := range []string{"lab01-perfect.ipynb", "lab01-partial.ipynb", "lab01-zero.ipynb", "lab02-perfect.ipynb"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Run(context.Background(), load(t, name).job())
			if err != nil || len(res.Review) != 0 {
				t.Errorf("%s: %+v, %v; want graded with nothing to review", name, res, err)
			}
		}()
	}
	wg.Wait()
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestPlantedModuleDoesNotChangeTheClassification: a notebook that leaves
// a re.py (the out-of-memory check imports re) where it can and then kills
// its kernel fails as a dead kernel, not as what its module would claim.
func TestPlantedModuleDoesNotChangeTheClassification(t *testing.T) {
	r := newRunner(t, docker.Limits{Timeout: 2 * time.Minute})
	plant := "fake = 'def search(*a, **k):\\n    class M:\\n        def group(self, i):\\n            return \"7\"\\n    return M()\\n'\n" +
		"for d in ('.', '/tmp', '/autograder', '/autograder/source', '/autograder/results'):\n" +
		"    try:\n        open(d + '/re.py', 'w').write(fake)\n    except OSError:\n        pass\n" +
		"import os\nos._exit(1)"
	_, err := r.Run(context.Background(), load(t, "lab01-perfect.ipynb").withCellAt(t, 1, plant).job())
	gerr, ok := grading.AsError(err)
	if !ok || gerr.Kind != grading.KindKernel {
		t.Fatalf("err = %v; want the kernel_died failure, whatever the planted module says", err)
	}
}
