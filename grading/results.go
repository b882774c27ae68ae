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
	// MaxTests bounds the entries of a Result, scored (Tests) and unscored
	// (Feedback) together.
	MaxTests      = 1000
	MaxTestName   = 200  // characters kept of a test's or feedback's name
	MaxTestOutput = 4096 // bytes kept of a test's or feedback's output
	maxPoints     = 1e6  // larger max_score values are not believable
)

// Result is a graded notebook.
type Result struct {
	// Grade is otter's own total over its points possible when results.json
	// has one (see ParseResults), else Σscore / Σmax_score; in [0, 1].
	Grade float64
	Tests []Test
	// Feedback is what otter reports that is not scored, in results.json's
	// order: its entries without max_score (with otter's defaults, the
	// visible "Public Tests" summary of the public test cases), preceded by
	// otter's top-level "output" if it has one (see ParseResults). It never
	// counts toward the grade.
	Feedback []Feedback
	// Review lists what the grader saw the notebook's kernel do that an
	// honest kernel cannot (results.json's "otter_service" → "needs_review",
	// written by the Docker runner's grader): a grade with any is not to be
	// trusted without course staff looking at it.
	Review []string
}

// Feedback is one unscored entry of results.json, cleaned.
type Feedback struct {
	Name string
	// Visibility is otter's, normalized as a Test's is.
	Visibility string
	Output     string // truncated to MaxTestOutput, control characters removed
}

// OutputFeedback is the name of the Feedback entry that holds results.json's
// top-level "output".
const OutputFeedback = "Autograder output"

// Test is one scored entry of results.json, cleaned.
type Test struct {
	Name     string
	Score    float64 // clamped to [0, MaxScore]
	MaxScore float64
	// Visibility is otter's: one of the Visibility* values (anything else,
	// or none, is VisibilityHidden).
	Visibility string
	Output     string // truncated to MaxTestOutput, control characters removed
}

// Visibility of a test, as otter-grader writes it in results.json (the
// values of Gradescope's autograder format).
const (
	VisibilityVisible        = "visible"         // shown to students
	VisibilityHidden         = "hidden"          // never shown to students
	VisibilityAfterDueDate   = "after_due_date"  // shown after the due date
	VisibilityAfterPublished = "after_published" // shown once grades are published
)

// normalizeVisibility returns v if it is one of otter's visibilities, else
// VisibilityHidden.
func normalizeVisibility(v string) string {
	switch v {
	case VisibilityVisible, VisibilityHidden, VisibilityAfterDueDate, VisibilityAfterPublished:
		return v
	}
	return VisibilityHidden
}

type rawResults struct {
	Tests *[]rawTest `json:"tests"`
	// Score is otter's own total, written only with points_possible or
	// score_threshold in the assignment's configuration (and as 0 in its
	// error result). Read apart so that a malformed one does not make the
	// whole document unreadable.
	Score json.RawMessage `json:"score"`
	// Service is what the Docker runner's grader adds.
	Service struct {
		NeedsReview []string `json:"needs_review"`
	} `json:"otter_service"`
	// Output is text about the whole submission, set by otter's plugins
	// (RateLimiting's message); read apart too, and kept only if a string.
	Output json.RawMessage `json:"output"`
}

type rawTest struct {
	Name       *string  `json:"name"`
	Score      *float64 `json:"score"`
	MaxScore   *float64 `json:"max_score"`
	Visibility string   `json:"visibility"`
	Output     string   `json:"output"`
}

// ParseResults reads otter-grader's results.json, written by grading with
// autograder (the zip otter assign made; its otter_config.json is read for
// points_possible): {"tests": [{"name", "score", "max_score", "visibility",
// "output"}, ...], "score"?: ..., "output"?: ...}. Entries without
// max_score do not count toward the grade: they are kept as the Result's
// Feedback, as is the top-level "output" (a string that is not blank), which
// comes first and is VisibilityVisible: Gradescope, whose format otter
// writes, shows it to students whatever the tests' visibility (otter's
// RateLimiting plugin hides every test and tells the student why there).
// It is dropped if results.json already lists MaxTests entries, so that the
// Result never holds more.
//
// The grade is otter's own: with points_possible or score_threshold in the
// assignment's configuration, otter 7 writes a top-level "score" out of
// points_possible (when set and non-zero, else out of Σmax_score), and the
// grade is that score over that. Without a top-level score, or with one or
// a points_possible that is not believable (negative, not a number, above
// a million), or with an autograder whose otter_config.json cannot be
// read, the grade is Σscore / Σmax_score. Either way it is clamped to
// [0, 1].
//
// It returns an *Error of kind KindAutograder when the data is not a usable
// result: too large, malformed, or without any scored test (otter's own
// error result has a top-level "score": 0 and no max_score). Its unscored
// entries ("Autograder Error", or "Autograder Failed" and "Autograder
// Exception") are not feedback then: there is no Result to keep them in.
func ParseResults(data, autograder []byte) (*Result, error) {
	ag, err := ReadAutograder(autograder)
	if err != nil {
		ag = nil // its points_possible and question names are then unknown
	}
	return ParseResultsFor(data, ag)
}

// ParseResultsFor is ParseResults with the autograder already read (nil if
// it could not be).
func ParseResultsFor(data []byte, ag *Autograder) (*Result, error) {
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
	for i, why := range raw.Service.NeedsReview {
		if i == 20 {
			break
		}
		res.Review = append(res.Review, cleanName(why, MaxTestName))
	}
	if out, ok := topLevelOutput(raw.Output); ok && len(*raw.Tests) < MaxTests {
		res.Feedback = append(res.Feedback, Feedback{Name: OutputFeedback, Visibility: VisibilityVisible, Output: out})
	}
	// Only the autograder's own questions count: results under another
	// name (which only a notebook interfering with grading can add) are
	// dropped, and flagged.
	var known map[string]bool
	if ag != nil && ag.Questions != nil {
		known = map[string]bool{}
		for _, q := range ag.Questions {
			known[q] = true
		}
	}
	var total, possible float64
	for i, t := range *raw.Tests {
		name := fmt.Sprintf("test %d", i+1)
		if t.Name != nil && strings.TrimSpace(*t.Name) != "" {
			name = cleanName(*t.Name, MaxTestName)
		}
		if t.MaxScore == nil {
			res.Feedback = append(res.Feedback, Feedback{
				Name:       name,
				Visibility: normalizeVisibility(t.Visibility),
				Output:     clean(t.Output, MaxTestOutput),
			})
			continue
		}
		if known != nil && !known[name] {
			if len(res.Review) < 20 {
				res.Review = append(res.Review, fmt.Sprintf("results for a question the autograder does not have (%q)", name))
			}
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
			Name:       name,
			Score:      score,
			MaxScore:   max,
			Visibility: normalizeVisibility(t.Visibility),
			Output:     clean(t.Output, MaxTestOutput),
		})
		total += score
		possible += max
	}
	if possible == 0 {
		return nil, autograderError("the autograder produced no scored tests")
	}
	if score, ok := believable(raw.Score); ok && ag != nil && ag.PointsOK {
		if ag.PointsPossible > 0 { // otter's `points_possible or possible`
			possible = ag.PointsPossible
		}
		total = math.Min(score, possible)
	}
	res.Grade = math.Min(math.Max(total/possible, 0), 1)
	return res, nil
}

// topLevelOutput returns results.json's top-level "output", cleaned, if it
// is a string that is not blank.
func topLevelOutput(raw json.RawMessage) (string, bool) {
	var s *string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil || s == nil {
		return "", false
	}
	out := clean(*s, MaxTestOutput)
	return out, strings.TrimSpace(out) != ""
}

// believable returns the number raw holds if it is one in [0, maxPoints].
func believable(raw json.RawMessage) (float64, bool) {
	var v *float64
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
		return 0, false
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > maxPoints {
		return 0, false
	}
	return *v, true
}

func autograderError(format string, args ...any) *Error {
	return &Error{Kind: KindAutograder, Message: "The notebook could not be graded: " + fmt.Sprintf(format, args...) + "."}
}

// cleanName is clean, also removing bidirectional formatting characters
// (U+202E and the like), with which a name could show itself reversed or
// hide part of itself in the pages and logs staff read.
func cleanName(s string, n int) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, clean(s, n))
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
