package service

import "github.com/otter-service/otter-service/grading"

// QuestionView is a question as one user may see it. Score nil and Output
// empty mean they are withheld.
type QuestionView struct {
	Name       string   `json:"name"`
	MaxScore   float64  `json:"max_score"`
	Visibility string   `json:"visibility"`
	Score      *float64 `json:"score,omitempty"`
	Output     string   `json:"output,omitempty"`
}

// ShownToStudents reports whether students see q's score and output: only
// when otter marks the test "visible". Hidden, after_due_date and
// after_published tests (this service has no due dates and publishes
// nothing) are withheld, as is a question recorded without a visibility.
func (q Question) ShownToStudents() bool { return q.Visibility == grading.VisibilityVisible }

// ViewQuestions returns qs as a user sees them: staff see everything; anyone
// else sees every question's name, max score and visibility, and the score
// and output only of those ShownToStudents.
func ViewQuestions(qs []Question, staff bool) []QuestionView {
	if qs == nil {
		return nil
	}
	out := make([]QuestionView, len(qs))
	for i, q := range qs {
		v := QuestionView{Name: q.Name, MaxScore: q.MaxScore, Visibility: q.Visibility}
		if v.Visibility == "" {
			v.Visibility = grading.VisibilityHidden
		}
		if staff || q.ShownToStudents() {
			score := q.Score
			v.Score, v.Output = &score, q.Output
		}
		out[i] = v
	}
	return out
}

// FeedbackView is a feedback entry as one user may see it.
type FeedbackView struct {
	Name       string `json:"name"`
	Visibility string `json:"visibility"`
	Output     string `json:"output,omitempty"`
}

// ShownToStudents reports whether students see f: only when otter marks it
// "visible", as for questions.
func (f Feedback) ShownToStudents() bool { return f.Visibility == grading.VisibilityVisible }

// ViewFeedback returns fs as a user sees them: staff see every entry; anyone
// else only those ShownToStudents (with otter's defaults, the "Public Tests"
// summary). An entry withheld is left out whole: a withheld question's name
// and max score still tell what the grade is made of; an unscored entry's
// name alone tells nothing.
func ViewFeedback(fs []Feedback, staff bool) []FeedbackView {
	var out []FeedbackView
	for _, f := range fs {
		if !staff && !f.ShownToStudents() {
			continue
		}
		v := FeedbackView{Name: f.Name, Visibility: f.Visibility, Output: f.Output}
		if v.Visibility == "" {
			v.Visibility = grading.VisibilityHidden
		}
		out = append(out, v)
	}
	return out
}
