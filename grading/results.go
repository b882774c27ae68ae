package grading

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on results.json. It is written inside the grading environment,
// which runs student code, so nothing in it is trusted.
const (
	MaxResultsSize = 8 << 20 // bytes
	MaxTests       = 1000
	MaxTestName    = 200  // characters kept of a test's name
	MaxTestOutput  = 4096 // bytes kept of a test's output
	maxPoints      = 1e6  // larger max_score values are not believable
)

// Result is a graded notebook.
type Result struct {
	Grade float64 // Σscore / Σmax_score, in [0, 1]
	Tests []Test
}

// Test is one entry of results.json, cleaned.
type Test struct {
	Name     string
	Score    float64 // clamped to [0, MaxScore]
	MaxScore float64
	Hidden   bool   // visibility other than "visible"
	Output   string // truncated to MaxTestOutput
}

type rawResults struct {
	Tests *[]rawTest `json:"tests"`
}

type rawTest struct {
	Name       *string  `json:"name"`
	Score      *float64 `json:"score"`
	MaxScore   *float64 `json:"max_score"`
	Visibility string   `json:"visibility"`
	Output     string   `json:"output"`
}

// ParseResults reads otter-grader's results.json: {"tests": [{"name",
// "score", "max_score", "visibility", "output"}, ...]}. Entries without
// max_score do not count. It returns an *Error of kind KindAutograder when the
// data is not a usable result: too large, malformed, or without any scored
// test (otter's own error result has a top-level "score": 0 and no
// max_score).
func ParseResults(data []byte) (*Result, error) {
	if len(data) > MaxResultsSize {
		return nil, autograderError("the autograder's results are larger than %d bytes", MaxResultsSize)
	}
	var raw rawResults
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, autograderError("the autograder's results could not be read (%v)", err)
	}
	if raw.Tests == nil {
		return nil, autograderError("the autograder's results list no tests")
	}
	if len(*raw.Tests) > MaxTests {
		return nil, autograderError("the autograder's results list more than %d tests", MaxTests)
	}
	res := &Result{}
	var total, possible float64
	for i, t := range *raw.Tests {
		name := fmt.Sprintf("test %d", i+1)
		if t.Name != nil && strings.TrimSpace(*t.Name) != "" {
			name = clean(*t.Name, MaxTestName)
		}
		if t.MaxScore == nil {
			continue
		}
		max := *t.MaxScore
		if math.IsNaN(max) || max < 0 || max > maxPoints {
			return nil, autograderError("test %q has an impossible max_score %v", name, max)
		}
		score := 0.0
		if t.Score != nil && !math.IsNaN(*t.Score) {
			score = math.Min(math.Max(*t.Score, 0), max)
		}
		res.Tests = append(res.Tests, Test{
			Name:     name,
			Score:    score,
			MaxScore: max,
			Hidden:   t.Visibility != "" && t.Visibility != "visible",
			Output:   clean(t.Output, MaxTestOutput),
		})
		total += score
		possible += max
	}
	if possible == 0 {
		return nil, autograderError("the autograder produced no scored tests")
	}
	res.Grade = math.Min(math.Max(total/possible, 0), 1)
	return res, nil
}

func autograderError(format string, args ...any) *Error {
	return &Error{Kind: KindAutograder, Message: "The notebook could not be graded: " + fmt.Sprintf(format, args...) + "."}
}

// clean truncates s to at most n bytes on a character boundary and removes
// control characters other than newline and tab.
func clean(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\t') {
			return -1
		}
		return r
	}, s)
}
