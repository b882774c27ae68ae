package grading_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/grading"
)

func TestParseResults(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		grade     float64
		tests     int
		errSubstr string // non-empty: an autograder error is expected
	}{
		{"perfect", `{"tests": [{"name": "q1", "score": 1, "max_score": 1, "visibility": "visible", "output": "ok"},
			{"name": "q2", "score": 2, "max_score": 2, "visibility": "hidden"}]}`, 1, 2, ""},
		{"partial", `{"tests": [{"name": "q1", "score": 1, "max_score": 1}, {"name": "q2", "score": 0, "max_score": 1},
			{"name": "q3", "score": 1, "max_score": 1}]}`, 2.0 / 3, 3, ""},
		{"zero", `{"tests": [{"name": "q1", "score": 0, "max_score": 1}]}`, 0, 1, ""},
		{"entries without max_score do not count", `{"tests": [{"name": "q1", "score": 1, "max_score": 1},
			{"name": "Public Tests", "output": "..."}]}`, 1, 1, ""},
		{"score above max is clamped", `{"tests": [{"name": "q1", "score": 100, "max_score": 1}, {"name": "q2", "score": 0, "max_score": 1}]}`, 0.5, 2, ""},
		{"negative score is clamped", `{"tests": [{"name": "q1", "score": -5, "max_score": 1}, {"name": "q2", "score": 1, "max_score": 1}]}`, 0.5, 2, ""},
		{"null score counts as zero", `{"tests": [{"name": "q1", "score": null, "max_score": 1}]}`, 0, 1, ""},
		{"extra fields ignored", `{"tests": [{"name": "q1", "score": 1, "max_score": 1, "status": "passed"}], "execution_time": 3, "output": "x"}`, 1, 1, ""},
		{"otter's error result", `{"score": 0, "output": "Traceback ...", "tests": []}`, 0, 0, "no scored tests"},
		{"error result without tests", `{"score": 0, "output": "Traceback ..."}`, 0, 0, "list no tests"},
		{"all max zero", `{"tests": [{"name": "q1", "score": 0, "max_score": 0}]}`, 0, 0, "no scored tests"},
		{"negative max", `{"tests": [{"name": "q1", "score": 0, "max_score": -1}]}`, 0, 0, "impossible max_score"},
		{"huge max", `{"tests": [{"name": "q1", "score": 1e300, "max_score": 1e300}]}`, 0, 0, "impossible max_score"},
		{"NaN is not JSON", `{"tests": [{"name": "q1", "score": NaN, "max_score": 1}]}`, 0, 0, "could not be read"},
		{"not json", `Traceback (most recent call last)`, 0, 0, "could not be read"},
		{"tests not a list", `{"tests": {"q1": 1}}`, 0, 0, "could not be read"},
		{"score is a string", `{"tests": [{"name": "q1", "score": "1", "max_score": 1}]}`, 0, 0, "could not be read"},
		{"top-level array", `[]`, 0, 0, "could not be read"},
		{"empty", ``, 0, 0, "could not be read"},
		{"too many tests", `{"tests": [` + strings.Repeat(`{"name": "q", "score": 1, "max_score": 1},`, grading.MaxTests) + `{}]}`, 0, 0, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := grading.ParseResults([]byte(tt.json), nil)
			if tt.errSubstr != "" {
				gerr, ok := grading.AsError(err)
				if !ok || gerr.Kind != grading.KindAutograder || !strings.Contains(gerr.Message, tt.errSubstr) {
					t.Fatalf("err = %v; want an autograder error mentioning %q", err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.Grade-tt.grade) > 1e-12 || len(res.Tests) != tt.tests {
				t.Errorf("grade %v with %d tests; want %v with %d", res.Grade, len(res.Tests), tt.grade, tt.tests)
			}
			if res.Grade < 0 || res.Grade > 1 {
				t.Errorf("grade %v outside [0, 1]", res.Grade)
			}
		})
	}
}

func TestParseResultsHostile(t *testing.T) {
	t.Run("oversized", func(t *testing.T) {
		big := `{"tests": [{"name": "q1", "score": 1, "max_score": 1, "output": "` + strings.Repeat("A", grading.MaxResultsSize) + `"}]}`
		if _, err := grading.ParseResults([]byte(big), nil); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v; want a size refusal", err)
		}
	})
	t.Run("long names and outputs are cut, control characters dropped", func(t *testing.T) {
		name := strings.Repeat("é", 300) + "\x1b[31m"
		js := fmt.Sprintf(`{"tests": [{"name": %s, "score": 1, "max_score": 1, "output": %s}]}`, jsonString(name), jsonString(strings.Repeat("x\x07", 10000)))
		res, err := grading.ParseResults([]byte(js), nil)
		if err != nil {
			t.Fatal(err)
		}
		tt := res.Tests[0]
		if len(tt.Name) > grading.MaxTestName || strings.ContainsAny(tt.Name, "\x1b\ufffd") {
			t.Errorf("name not cleaned: %d bytes %q", len(tt.Name), tt.Name[len(tt.Name)-5:])
		}
		if len(tt.Output) > grading.MaxTestOutput || strings.Contains(tt.Output, "\x07") {
			t.Errorf("output not cleaned: %d bytes", len(tt.Output))
		}
	})
	t.Run("bidirectional overrides dropped from names", func(t *testing.T) {
		js := `{"tests": [{"name": "q1\u202e\u2066evil\u2069", "score": 1, "max_score": 1, "output": "שלום\u200f ok"}]}`
		res, err := grading.ParseResults([]byte(js), nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt := res.Tests[0]; tt.Name != "q1evil" || tt.Output != "שלום\u200f ok" {
			t.Errorf("name %q, output %q; want the name without bidi controls, the output as written", tt.Name, tt.Output)
		}
	})
	t.Run("deeply nested", func(t *testing.T) {
		js := `{"tests": [{"name": "q1", "score": 1, "max_score": 1, "x": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}]}`
		if _, err := grading.ParseResults([]byte(js), nil); err == nil {
			t.Fatal("accepted 100000 levels of nesting")
		}
	})
	t.Run("visibility", func(t *testing.T) {
		res, err := grading.ParseResults([]byte(`{"tests": [
			{"name": "a", "score": 1, "max_score": 1, "visibility": "visible", "output": "a ok"},
			{"name": "b", "score": 1, "max_score": 1, "visibility": "hidden"},
			{"name": "c", "score": 1, "max_score": 1, "visibility": "after_due_date"},
			{"name": "d", "score": 1, "max_score": 1, "visibility": "after_published"},
			{"name": "e", "score": 1, "max_score": 1},
			{"name": "f", "score": 1, "max_score": 1, "visibility": "Visible"},
			{"name": "g", "score": 1, "max_score": 1, "visibility": "everyone"}]}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"visible", "hidden", "after_due_date", "after_published", "hidden", "hidden", "hidden"}
		for i, tt := range res.Tests {
			if tt.Visibility != want[i] {
				t.Errorf("%s: visibility %q, want %q", tt.Name, tt.Visibility, want[i])
			}
		}
		if res.Tests[0].Output != "a ok" {
			t.Errorf("output %q, want it kept", res.Tests[0].Output)
		}
	})
}

// TestParseResultsOtter reads what otter-grader 7.0.0 wrote (testdata/gen.sh)
// for one submission under several assignment configurations, and checks
// the grade against the total and percentage otter printed for it.
func TestParseResultsOtter(t *testing.T) {
	cases := []string{"default", "points_possible", "threshold_pass", "threshold_fail", "threshold_points",
		"show_hidden", "show_all_public", "thirds_points"}
	scoreRE := regexp.MustCompile(`^Total Score: ([0-9.]+) / ([0-9.]+) \(([0-9.]+)%\)\n$`)
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			data, zip := otterCase(t, name)
			printed := readFile(t, name+".score.txt")
			m := scoreRE.FindStringSubmatch(string(printed))
			if m == nil {
				t.Fatalf("%s.score.txt: %q is not otter's score line", name, printed)
			}
			percent, _ := strconv.ParseFloat(m[3], 64)
			res, err := grading.ParseResults(data, zip)
			if err != nil {
				t.Fatal(err)
			}
			// otter prints the percentage to 3 decimals.
			if math.Abs(res.Grade*100-percent) > 0.0005+1e-9 {
				t.Errorf("grade %v; otter printed %q", res.Grade, strings.TrimSpace(string(printed)))
			}
			// The entries are results.json's scored ones, as they are.
			var raw struct {
				Tests []struct {
					Name       string   `json:"name"`
					Score      *float64 `json:"score"`
					MaxScore   *float64 `json:"max_score"`
					Visibility string   `json:"visibility"`
					Output     string   `json:"output"`
				} `json:"tests"`
			}
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			i := 0
			for _, r := range raw.Tests {
				if r.MaxScore == nil {
					continue
				}
				if i >= len(res.Tests) {
					t.Fatalf("%d tests, want more", len(res.Tests))
				}
				got := res.Tests[i]
				if got.Name != r.Name || got.Score != *r.Score || got.MaxScore != *r.MaxScore || got.Visibility != r.Visibility || r.Output == "" || got.Output != r.Output {
					t.Errorf("test %d: %+v; results.json has %+v", i, got, r)
				}
				i++
			}
			if i != len(res.Tests) || i == 0 {
				t.Errorf("%d tests; results.json has %d scored", len(res.Tests), i)
			}
			// The unscored one, otter's summary of the public test cases,
			// is the feedback, as it is.
			var unscored []grading.Feedback
			for _, r := range raw.Tests {
				if r.MaxScore == nil {
					unscored = append(unscored, grading.Feedback{Name: r.Name, Visibility: r.Visibility, Output: r.Output})
				}
			}
			if len(unscored) != 1 || unscored[0].Name != "Public Tests" || unscored[0].Visibility != grading.VisibilityVisible || unscored[0].Output == "" {
				t.Fatalf("results.json's unscored entries %+v; want otter's visible Public Tests", unscored)
			}
			if !slices.Equal(res.Feedback, unscored) {
				t.Errorf("feedback %+v; results.json has %+v", res.Feedback, unscored)
			}
		})
	}
	t.Run("the public summary leaves out the hidden test cases", func(t *testing.T) {
		data, zip := otterCase(t, "default")
		res, err := grading.ParseResults(data, zip)
		if err != nil {
			t.Fatal(err)
		}
		// q2's hidden case, assert f(-1) == 0, fails, and its scored entry
		// (hidden) says so; the Public Tests summary has q2's public case only.
		if !strings.Contains(res.Tests[1].Output, "f(-1)") {
			t.Fatalf("q2's output %q does not show its hidden case", res.Tests[1].Output)
		}
		if pub := res.Feedback[0].Output; strings.Contains(pub, "f(-1)") || !strings.Contains(pub, "q2 results: All test cases passed!") {
			t.Errorf("Public Tests output %q; want q2's public case only", pub)
		}
	})
	t.Run("without the autograder's configuration, Σscore/Σmax_score", func(t *testing.T) {
		data, _ := otterCase(t, "threshold_points")
		want, err := grading.ParseResults(readFile(t, "default.results.json"), otterZip(t, "default"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := grading.ParseResults(data, nil)
		if err != nil || res.Grade != want.Grade {
			t.Fatalf("grade %v (%v); want Σscore/Σmax_score %v", res.Grade, err, want.Grade)
		}
	})
	t.Run("error result", func(t *testing.T) {
		data, zip := otterCase(t, "error")
		_, err := grading.ParseResults(data, zip)
		if gerr, ok := grading.AsError(err); !ok || gerr.Kind != grading.KindAutograder || !strings.Contains(gerr.Message, "no scored tests") {
			t.Fatalf("err = %v; want an autograder error", err)
		}
	})
}

// Entries without max_score, and the top-level output, are kept as feedback
// and change nothing else.
func TestParseResultsFeedback(t *testing.T) {
	const scored = `{"name": "q1", "score": 1, "max_score": 1, "visibility": "hidden", "output": "q1 out"},
		{"name": "q2", "score": 0, "max_score": 3, "visibility": "hidden", "output": "q2 out"}`
	plain, err := grading.ParseResults([]byte(`{"tests": [`+scored+`]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("in order, cleaned, never graded", func(t *testing.T) {
		res, err := grading.ParseResults([]byte(`{"output": "Students are allowed 3 submissions every 1 day.\u001b", "tests": [
			{"name": "Public Tests", "visibility": "visible", "output": "q1 results: All test cases passed!", "status": "passed"},
			{"name": "PDF Generation Failed", "visibility": "visible", "output": "no pdf", "status": "failed"},
			`+scored+`,
			{"name": "", "visibility": "Visible", "output": "x"},
			{"name": "with a score but no max_score", "score": 5}]}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Grade != plain.Grade || !slices.Equal(res.Tests, plain.Tests) {
			t.Errorf("grade %v, tests %+v; want those without feedback: %v, %+v", res.Grade, res.Tests, plain.Grade, plain.Tests)
		}
		want := []grading.Feedback{
			{Name: grading.OutputFeedback, Visibility: "visible", Output: "Students are allowed 3 submissions every 1 day."},
			{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!"},
			{Name: "PDF Generation Failed", Visibility: "visible", Output: "no pdf"},
			{Name: "test 5", Visibility: "hidden", Output: "x"},
			{Name: "with a score but no max_score", Visibility: "hidden"},
		}
		if !slices.Equal(res.Feedback, want) {
			t.Errorf("feedback %+v;\nwant %+v", res.Feedback, want)
		}
	})
	t.Run("a top-level output that is not text is left out", func(t *testing.T) {
		for _, out := range []string{`null`, `3`, `{"a": 1}`, `["x"]`, `""`, `" \n "`} {
			res, err := grading.ParseResults([]byte(`{"output": `+out+`, "tests": [`+scored+`]}`), nil)
			if err != nil || res.Grade != plain.Grade || len(res.Feedback) != 0 {
				t.Errorf("output %s: %+v, %v; want the grade without feedback", out, res, err)
			}
		}
	})
	t.Run("long outputs are cut", func(t *testing.T) {
		long := jsonString(strings.Repeat("é", grading.MaxTestOutput))
		res, err := grading.ParseResults([]byte(`{"output": `+long+`, "tests": [{"name": "Public Tests", "output": `+long+`}, `+scored+`]}`), nil)
		if err != nil || len(res.Feedback) != 2 {
			t.Fatalf("%+v, %v", res, err)
		}
		for _, f := range res.Feedback {
			if len(f.Output) > grading.MaxTestOutput || len(f.Output) < grading.MaxTestOutput-1 {
				t.Errorf("%s: %d bytes of output; want it cut to %d", f.Name, len(f.Output), grading.MaxTestOutput)
			}
		}
	})
	t.Run("MaxTests bounds scored and feedback entries together", func(t *testing.T) {
		entries := strings.Repeat(`{"name": "Public Tests", "output": "p"},`, grading.MaxTests-1) + `{"name": "q1", "score": 1, "max_score": 1}`
		res, err := grading.ParseResults([]byte(`{"output": "hello", "tests": [`+entries+`]}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Tests) + len(res.Feedback); n != grading.MaxTests || res.Feedback[0].Name == grading.OutputFeedback || res.Grade != 1 {
			t.Errorf("%d entries, the first feedback %q, grade %v; want %d, the top-level output dropped, 1", n, res.Feedback[0].Name, res.Grade, grading.MaxTests)
		}
		if _, err := grading.ParseResults([]byte(`{"tests": [`+entries+`, {"name": "one too many"}]}`), nil); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("err = %v; want more than %d entries refused", err, grading.MaxTests)
		}
	})
	t.Run("otter's error results stay errors", func(t *testing.T) {
		for _, js := range []string{
			`{"score": 0, "stdout_visibility": "hidden", "tests": [{"name": "Autograder Error", "output": "Otter encountered an error"}]}`,
			`{"score": 0, "output": "plugin says hi", "tests": [{"name": "Autograder Failed", "visibility": "visible", "output": "The autograder failed", "status": "failed"},
				{"name": "Autograder Exception", "visibility": "hidden", "output": "Traceback", "status": "failed"}]}`,
		} {
			if _, err := grading.ParseResults([]byte(js), nil); err == nil || !strings.Contains(err.Error(), "no scored tests") {
				t.Errorf("err = %v; want an autograder error", err)
			}
		}
	})
}

// TestParseResultsOtterTotal checks the validation of otter's own total and
// of the points_possible it is out of, with documents shaped like otter's.
func TestParseResultsOtterTotal(t *testing.T) {
	const tests = `"tests": [{"name": "Public Tests", "visibility": "visible", "output": "..."},
		{"name": "q1", "score": 1.0, "max_score": 1.0, "visibility": "hidden"},
		{"name": "q2", "score": 0, "max_score": 3.0, "visibility": "hidden"}]`
	cases := []struct {
		name   string
		score  string // results.json's top-level score; "" for none
		config string // otter_config.json; "" for no zip
		grade  float64
	}{
		{"no total: Σscore/Σmax_score", "", `{"points_possible": 10}`, 0.25},
		{"total out of points_possible", `7.5`, `{"points_possible": 10}`, 0.75},
		{"total out of Σmax_score", `4`, `{"score_threshold": 0.2}`, 1},
		{"threshold not met", `0`, `{"score_threshold": 0.5}`, 0},
		{"points_possible 0 is none", `2`, `{"points_possible": 0}`, 0.5},
		{"points_possible null is none", `2`, `{"points_possible": null}`, 0.5},
		{"no otter_config.json", `2`, "-", 0.5},
		{"total above points_possible is clamped", `12`, `{"points_possible": 10}`, 1},
		{"total above Σmax_score is clamped", `5`, `{}`, 1},
		{"negative total: Σ", `-3`, `{"points_possible": 10}`, 0.25},
		{"huge total: Σ", `1e300`, `{"points_possible": 10}`, 0.25},
		{"total not a number: Σ", `"7.5"`, `{"points_possible": 10}`, 0.25},
		{"null total: Σ", `null`, `{"points_possible": 10}`, 0.25},
		{"NaN total: unreadable", `NaN`, `{"points_possible": 10}`, -1},
		{"negative points_possible: Σ", `3`, `{"points_possible": -10}`, 0.25},
		{"huge points_possible: Σ", `3`, `{"points_possible": 1e300}`, 0.25},
		{"points_possible not a number: Σ", `3`, `{"points_possible": "10"}`, 0.25},
		{"unreadable otter_config.json: Σ", `3`, `{"points_possible": 10`, 0.25},
		{"no zip: Σ", `3`, "", 0.25},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			js := "{" + tests
			if tt.score != "" {
				js += `, "score": ` + tt.score
			}
			js += "}"
			var zip []byte
			switch tt.config {
			case "":
			case "-":
				zip = makeZip(t, map[string]string{"tests/q1.py": "OK_FORMAT = True"})
			default:
				zip = makeZip(t, map[string]string{"otter_config.json": tt.config})
			}
			res, err := grading.ParseResults([]byte(js), zip)
			if tt.grade < 0 {
				if err == nil {
					t.Fatalf("grade %v; want an error", res.Grade)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.Grade-tt.grade) > 1e-12 || len(res.Tests) != 2 {
				t.Errorf("grade %v with %d tests; want %v with 2", res.Grade, len(res.Tests), tt.grade)
			}
		})
	}
	t.Run("an error result stays one with points_possible", func(t *testing.T) {
		_, err := grading.ParseResults([]byte(`{"score": 0, "stdout_visibility": "hidden", "tests": [{"name": "Autograder Error", "output": "..."}]}`),
			makeZip(t, map[string]string{"otter_config.json": `{"points_possible": 10}`}))
		if gerr, ok := grading.AsError(err); !ok || gerr.Kind != grading.KindAutograder {
			t.Fatalf("err = %v; want an autograder error", err)
		}
	})
}

// otterCase returns a case's results.json and an autograder zip holding its
// otter_config.json.
func otterCase(t *testing.T, name string) (results, autograder []byte) {
	return readFile(t, name+".results.json"), otterZip(t, name)
}

func otterZip(t *testing.T, name string) []byte {
	return makeZip(t, map[string]string{"otter_config.json": string(readFile(t, name+".otter_config.json"))})
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func makeZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
