package service_test

import (
	"slices"
	"testing"

	"github.com/otter-service/otter-service/service"
)

func TestViewQuestions(t *testing.T) {
	qs := []service.Question{
		{Name: "q1", Score: 1, MaxScore: 1, Visibility: "visible", Output: "q1 passed"},
		{Name: "q2", Score: 0.5, MaxScore: 2, Visibility: "hidden", Output: "q2: hidden case failed"},
		{Name: "q3", Score: 1, MaxScore: 1, Visibility: "after_due_date", Output: "q3 out"},
		{Name: "q4", Score: 1, MaxScore: 1, Visibility: "after_published", Output: "q4 out"},
		{Name: "q5", Score: 1, MaxScore: 3}, // recorded before visibility was kept
	}
	t.Run("student", func(t *testing.T) {
		got := service.ViewQuestions(qs, false)
		if len(got) != len(qs) {
			t.Fatalf("%d questions, want %d", len(got), len(qs))
		}
		if v := got[0]; v.Name != "q1" || v.MaxScore != 1 || v.Visibility != "visible" || v.Score == nil || *v.Score != 1 || v.Output != "q1 passed" {
			t.Errorf("visible question = %+v; want its score and output", v)
		}
		want := []string{"", "hidden", "after_due_date", "after_published", "hidden"}
		for i := 1; i < len(qs); i++ {
			v := got[i]
			if v.Name != qs[i].Name || v.MaxScore != qs[i].MaxScore || v.Visibility != want[i] || v.Score != nil || v.Output != "" {
				t.Errorf("%s = %+v; want name, max score and visibility %q only", qs[i].Name, v, want[i])
			}
		}
	})
	t.Run("staff", func(t *testing.T) {
		for i, v := range service.ViewQuestions(qs, true) {
			q := qs[i]
			if v.Name != q.Name || v.MaxScore != q.MaxScore || v.Score == nil || *v.Score != q.Score || v.Output != q.Output {
				t.Errorf("%s = %+v; want everything", q.Name, v)
			}
		}
	})
	t.Run("scores are copies", func(t *testing.T) {
		got := service.ViewQuestions(qs, true)
		*got[0].Score = 42
		if qs[0].Score != 1 {
			t.Error("the view shares the record's score")
		}
	})
	if service.ViewQuestions(nil, false) != nil {
		t.Error("no questions should view as none")
	}
}

func TestViewFeedback(t *testing.T) {
	fs := []service.Feedback{
		{Name: "Autograder output", Visibility: "visible", Output: "You have 1 submission in that period."},
		{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!"},
		{Name: "Autograder Exception", Visibility: "hidden", Output: "Traceback: SECRET"},
		{Name: "x", Visibility: "after_published", Output: "later"},
		{Name: "y", Visibility: "after_due_date", Output: "later"},
		{Name: "z", Output: "no visibility"},
	}
	t.Run("student", func(t *testing.T) {
		got := service.ViewFeedback(fs, false)
		want := []service.FeedbackView{
			{Name: "Autograder output", Visibility: "visible", Output: "You have 1 submission in that period."},
			{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("student sees %+v; want the visible entries only, %+v", got, want)
		}
	})
	t.Run("staff", func(t *testing.T) {
		got := service.ViewFeedback(fs, true)
		if len(got) != len(fs) {
			t.Fatalf("staff see %d entries, want %d", len(got), len(fs))
		}
		for i, v := range got {
			f := fs[i]
			want := service.FeedbackView{Name: f.Name, Visibility: f.Visibility, Output: f.Output}
			if want.Visibility == "" {
				want.Visibility = "hidden"
			}
			if v != want {
				t.Errorf("staff see %+v; want %+v", v, want)
			}
		}
	})
	if service.ViewFeedback(nil, true) != nil || service.ViewFeedback(fs[2:], false) != nil {
		t.Error("no feedback, or none visible, should view as none")
	}
}

func TestEscapeControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext\nok":    "plain\ttext\nok",
		"\x1b[31mred\x1b[0m": `\x1b[31mred\x1b[0m`,
		"nul\x00here":        `nul\x00here`,
		"abc\u202edcba":      `abc\u202edcba`,
		"café 数据":            "café 数据",
		"bad\xffbyte":        `bad\xffbyte`,
		"c1\u009bcontrol":    `c1\u009bcontrol`,
	} {
		if got := service.EscapeControls(in); got != want {
			t.Errorf("EscapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}
