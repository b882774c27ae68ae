package grading_test

import (
	"encoding/json"
	"fmt"
	"math"
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
			res, err := grading.ParseResults([]byte(tt.json))
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
		if _, err := grading.ParseResults([]byte(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v; want a size refusal", err)
		}
	})
	t.Run("long names and outputs are cut, control characters dropped", func(t *testing.T) {
		name := strings.Repeat("é", 300) + "\x1b[31m"
		js := fmt.Sprintf(`{"tests": [{"name": %s, "score": 1, "max_score": 1, "output": %s}]}`, jsonString(name), jsonString(strings.Repeat("x\x07", 10000)))
		res, err := grading.ParseResults([]byte(js))
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
	t.Run("deeply nested", func(t *testing.T) {
		js := `{"tests": [{"name": "q1", "score": 1, "max_score": 1, "x": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}]}`
		if _, err := grading.ParseResults([]byte(js)); err == nil {
			t.Fatal("accepted 100000 levels of nesting")
		}
	})
	t.Run("hidden flag", func(t *testing.T) {
		res, err := grading.ParseResults([]byte(`{"tests": [{"name": "a", "score": 1, "max_score": 1, "visibility": "after_published"},
			{"name": "b", "score": 1, "max_score": 1, "visibility": "visible"}]}`))
		if err != nil || !res.Tests[0].Hidden || res.Tests[1].Hidden {
			t.Fatalf("hidden flags wrong: %+v %v", res, err)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
