package service

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCleanNotebookName(t *testing.T) {
	tests := []struct {
		in, want string // want "" for refused
	}{
		{"lab01.ipynb", "lab01.ipynb"},
		{"lab01 (1).ipynb", "lab01 (1).ipynb"},
		{"Lab01-Copy1.ipynb", "Lab01-Copy1.ipynb"},
		{"Übung 3 – café.ipynb", "Übung 3 – café.ipynb"},
		{"实验一.ipynb", "实验一.ipynb"},
		{"work/lab01/passesAll.ipynb", "passesAll.ipynb"},
		{`C:\Users\me\Downloads\lab01.ipynb`, "lab01.ipynb"},
		{"mixed/dirs\\and/lab.ipynb", "lab.ipynb"},
		{"50% done.ipynb", "50% done.ipynb"},
		{"lab01%20(1).ipynb", "lab01%20(1).ipynb"}, // not decoded here
		{" spaced .ipynb", " spaced .ipynb"},
		{strings.Repeat("a", 249) + ".ipynb", strings.Repeat("a", 249) + ".ipynb"}, // 255 bytes
		{strings.Repeat("a", 250) + ".ipynb", ""},                                  // 256 bytes
		{strings.Repeat("é", 125) + ".ipynb", ""},                                  // 256 bytes, 131 characters
		{"", ""},
		{".ipynb", ""},
		{"a/b/.ipynb", ""},
		{".hidden.ipynb", ""},
		{"../../etc/passwd", ""},
		{"..", ""},
		{"lab01.ipynb/", ""},
		{"lab01.py", ""},
		{"lab01.IPYNB", ""},
		{"lab01.ipynb.txt", ""},
		{"lab\n01.ipynb", ""},
		{"lab\r01.ipynb", ""},
		{"lab\x0001.ipynb", ""},
		{"lab\x7f01.ipynb", ""},
		{"lab\u008501.ipynb", ""},
		{"lab\u202801.ipynb", ""},
		{"lab\xff01.ipynb", ""},
	}
	for _, tt := range tests {
		got, ok := CleanNotebookName(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("CleanNotebookName(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestNotebookNameFromPath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"work/lab01/passesAll.ipynb", "passesAll.ipynb"},
		{"work/lab%2001/lab01%20(1).ipynb", "lab01 (1).ipynb"},
		{"%C3%9Cbung%203.ipynb", "Übung 3.ipynb"},
		{"lab+1.ipynb", "lab+1.ipynb"},         // a path's +, not a form's space
		{"50% done.ipynb", "50% done.ipynb"},   // not URL-encoding: as it is
		{"lab%252001.ipynb", "lab%2001.ipynb"}, // decoded once only
		{"a%2F..%2F..%2Fb.ipynb", "b.ipynb"},   // decoded, then the base name
		{"..%2F..%2Fetc%2Fpasswd", ""},         // not a notebook
		{"lab%0A01.ipynb", ""},                 // a newline
		{"lab%0001.ipynb", ""},                 // NUL
		{"lab%FF.ipynb", ""},                   // not UTF-8
		{"work/%2Eipynb", ""},                  // .ipynb alone
		{"work/%2Ebashrc.ipynb", ""},           // leading dot
		{"work/lab01.ipynb%2Fx", ""},           // a directory
	}
	for _, tt := range tests {
		got, ok := NotebookNameFromPath(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NotebookNameFromPath(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// codeCells returns the JSON cells array of code cells with the given
// sources (a string is one string source; a []string the list form).
func codeCells(t *testing.T, sources ...any) []byte {
	t.Helper()
	var cells []map[string]any
	for _, src := range sources {
		cells = append(cells, map[string]any{"cell_type": "code", "metadata": map[string]any{}, "outputs": []any{}, "source": src})
	}
	b, err := json.Marshal(cells)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNotebookNameInCells(t *testing.T) {
	tests := []struct {
		name  string
		cells []byte
		want  string
	}{
		{"otter assign's init cell", codeCells(t, "# Initialize Otter\nimport otter\ngrader = otter.Notebook(\"lab01.ipynb\")"), "lab01.ipynb"},
		{"list-of-lines source", codeCells(t, []string{"import otter\n", "grader = otter.Notebook('lab 01 (1).ipynb')\n"}), "lab 01 (1).ipynb"},
		{"nb_path keyword", codeCells(t, `grader = otter.Notebook(tests_dir="./tests", nb_path="hw02.ipynb")`), "hw02.ipynb"},
		{"nb_path first", codeCells(t, `grader = otter.Notebook(nb_path = "hw02.ipynb", tests_dir="t")`), "hw02.ipynb"},
		{"spaces and lines in the call", codeCells(t, "grader = otter.Notebook (\n    \"hw03.ipynb\",\n    tests_dir='tests'\n)"), "hw03.ipynb"},
		{"triple-quoted", codeCells(t, `g = otter.Notebook("""x.ipynb""")`), "x.ipynb"},
		{"raw string", codeCells(t, `g = otter.Notebook(r"x.ipynb")`), "x.ipynb"},
		{"escaped quote", codeCells(t, `g = otter.Notebook("it\'s.ipynb")`), "it's.ipynb"},
		{"unicode", codeCells(t, `g = otter.Notebook("Übung 3 – café.ipynb")`), "Übung 3 – café.ipynb"},
		{"the first cell that names one", codeCells(t, "x = 1", "g = otter.Notebook()", `g = otter.Notebook("second.ipynb")`, `g = otter.Notebook("third.ipynb")`), "second.ipynb"},
		{"no arguments", codeCells(t, "grader = otter.Notebook()"), ""},
		{"a variable", codeCells(t, "name = 'x.ipynb'\ngrader = otter.Notebook(name)"), ""},
		{"an expression", codeCells(t, `grader = otter.Notebook("lab" + "01.ipynb")`), ""},
		{"an f-string", codeCells(t, `grader = otter.Notebook(f"{n}.ipynb")`), ""},
		{"bytes", codeCells(t, `grader = otter.Notebook(b"x.ipynb")`), ""},
		{"tests_dir only", codeCells(t, `grader = otter.Notebook(tests_dir="x.ipynb")`), ""},
		{"second positional", codeCells(t, `grader = otter.Notebook(None, "x.ipynb")`), ""},
		{"in a comment", codeCells(t, "# grader = otter.Notebook(\"old.ipynb\")\ngrader = otter.Notebook(\"new.ipynb\")"), "new.ipynb"},
		{"only in a comment", codeCells(t, "# grader = otter.Notebook(\"old.ipynb\")"), ""},
		{"in a string", codeCells(t, `print("otter.Notebook('fake.ipynb')")`), ""},
		{"in a docstring", codeCells(t, "'''\notter.Notebook(\"fake.ipynb\")\n'''\nx = otter.Notebook(\"real.ipynb\")"), "real.ipynb"},
		{"another Notebook", codeCells(t, `nb = nbformat.Notebook("x.ipynb")`), ""},
		{"unterminated", codeCells(t, `grader = otter.Notebook("x.ipynb`), ""},
		{"unclosed call", codeCells(t, `grader = otter.Notebook("x.ipynb"`), "x.ipynb"},
		{"not cells", []byte(`{"Notebook": 1}`), ""},
		{"empty", []byte(`[]`), ""},
		{"markdown cell", []byte(`[{"cell_type": "markdown", "metadata": {}, "source": "otter.Notebook(\"md.ipynb\")"}]`), ""},
		{"markdown then code", []byte(`[{"cell_type": "markdown", "metadata": {}, "source": "otter.Notebook(\"md.ipynb\")"},
			{"source": ["otter.Notebook(\"code.ipynb\")"], "outputs": [{"text": "Notebook"}], "cell_type": "code"}]`), "code.ipynb"},
		{"an output", []byte(`[{"cell_type": "code", "source": "x", "outputs": [{"text": "otter.Notebook(\"out.ipynb\")"}]}]`), ""},
		{"not a cell", []byte(`[1, "otter.Notebook(\"x.ipynb\")", {"cell_type": "code", "source": "otter.Notebook(\"y.ipynb\")"}]`), "y.ipynb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notebookNameInCells(tt.cells); got != tt.want {
				t.Errorf("notebookNameInCells(%s) = %q, want %q", tt.cells, got, tt.want)
			}
		})
	}
}

func TestChooseNotebookName(t *testing.T) {
	cells := codeCells(t, `grader = otter.Notebook("lab01.ipynb")`)
	for _, tt := range []struct {
		given string
		cells []byte
		want  string
	}{
		{"lab01 (1).ipynb", cells, "lab01 (1).ipynb"}, // the request's first
		{"../../etc/passwd", cells, "lab01.ipynb"},    // an unusable one is skipped
		{"", cells, "lab01.ipynb"},
		{"", codeCells(t, `grader = otter.Notebook(".ipynb")`), ""}, // the notebook's, checked too
		{"", []byte(`[]`), ""},                                      // the assignment's, at grading
	} {
		if got := chooseNotebookName(tt.given, tt.cells); got != tt.want {
			t.Errorf("chooseNotebookName(%q, %s) = %q, want %q", tt.given, tt.cells, got, tt.want)
		}
	}
}

func TestGradingName(t *testing.T) {
	sub := &Submission{Assignment: Assignment{Assignment: "lab01"}}
	if got := sub.GradingName(); got != "lab01.ipynb" {
		t.Errorf("without a name: %q", got)
	}
	sub.NotebookName = "Lab01-Copy1.ipynb"
	if got := sub.GradingName(); got != "Lab01-Copy1.ipynb" {
		t.Errorf("with a name: %q", got)
	}
}

// The notebook's name is chosen from the same scan that validates it: a
// notebook the Submit button wraps in {"nb": ...}, or sends as a string.
func TestParseSubmissionCells(t *testing.T) {
	nb := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "lab01"}},
		"cells": [{"cell_type": "code", "source": ["import otter\n", "grader = otter.Notebook(\"other.ipynb\")"], "metadata": {}, "outputs": []}]}`
	quoted, _ := json.Marshal(nb)
	for _, body := range []string{nb, `{"nb": ` + nb + `}`, `{"nb": ` + string(quoted) + `}`} {
		_, cells, _, err := parseSubmission([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := notebookNameInCells(cells); got != "other.ipynb" {
			t.Errorf("name in %.40s…: %q", body, got)
		}
	}
}

// FuzzNotebookCall: any source is read without a panic, and what is found is
// a string literal's text from it.
func FuzzNotebookCall(f *testing.F) {
	for _, s := range []string{`otter.Notebook("a.ipynb")`, `otter.Notebook(nb_path='''b''')`, `otter.Notebook(r"\`, `otter.Notebook("\`, `# otter.Notebook("x")`, `otter.Notebook(f"{x}", (1, [2]))`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		name := notebookCall(src)
		if name != "" && !strings.Contains(src, "Notebook") {
			t.Errorf("found %q in a source without a call", name)
		}
	})
}
