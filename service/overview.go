package service

import (
	"context"
	"slices"
	"sort"
	"time"
)

// Overview is what course staff see of the submissions a filter selects:
// counts, the grades students have, how long grading takes, and what
// needs their attention.
type Overview struct {
	Submissions int
	ByStatus    map[Status]int
	Students    int
	// Histogram counts students by the grade the posting policy selects, in
	// tenths: [0] is 0 to under 0.1, ..., [9] 0.9 to 1 inclusive.
	Histogram [10]int
	// Time from arrival to a result (graded, failed or needing review).
	TimeToGrade struct{ P50, P90, Max time.Duration }
	Failures    []FailureGroup // by reason, most frequent first
	Posts       map[PostStatus]int
	PostsToSee  []*Submission // failed posts, and pending ones, newest first (at most 100)
	NeedsReview []*Submission // newest first (at most 100)
}

// FailureGroup is the failed submissions of one reason.
type FailureGroup struct {
	Code    string
	Count   int
	Example string // one's message
	Latest  *Submission
}

// Overview returns the overview of the submissions f selects (all of
// them, at most MaxExport). Course staff only; the errors of Export.
func (s *Service) Overview(ctx context.Context, who Identity, f SubmissionFilter) (*Overview, error) {
	subs, students, err := s.Export(ctx, who, f)
	if err != nil {
		return nil, err
	}
	o := &Overview{Submissions: len(subs), ByStatus: map[Status]int{}, Posts: map[PostStatus]int{}}
	for _, g := range students {
		if g.Selected.SubmissionID == "" {
			continue
		}
		o.Students++
		o.Histogram[min(int(g.Selected.Grade*10), 9)]++
	}
	var took []time.Duration
	groups := map[string]*FailureGroup{}
	for _, sub := range subs { // newest first
		o.ByStatus[sub.Status]++
		if !sub.FinishedAt.IsZero() && sub.Batch == "" { // a regrade's time is the staff's, not the student's wait
			took = append(took, sub.FinishedAt.Sub(sub.ReceivedAt))
		}
		switch sub.Status {
		case StatusFailed:
			code, msg := "unknown", ""
			if sub.Failure != nil {
				code, msg = sub.Failure.Code, sub.Failure.Message
			}
			g := groups[code]
			if g == nil {
				g = &FailureGroup{Code: code, Example: msg, Latest: sub}
				groups[code] = g
			}
			g.Count++
		case StatusNeedsReview:
			if len(o.NeedsReview) < 100 {
				o.NeedsReview = append(o.NeedsReview, sub)
			}
		case StatusGraded:
			o.Posts[sub.Post.Status]++
			if (sub.Post.Status == PostFailed || sub.Post.Status == PostPending) && len(o.PostsToSee) < 100 {
				o.PostsToSee = append(o.PostsToSee, sub)
			}
		}
	}
	if len(took) > 0 {
		slices.Sort(took)
		o.TimeToGrade.P50 = took[len(took)/2]
		o.TimeToGrade.P90 = took[min(len(took)*9/10, len(took)-1)]
		o.TimeToGrade.Max = took[len(took)-1]
	}
	for _, g := range groups {
		o.Failures = append(o.Failures, *g)
	}
	sort.Slice(o.Failures, func(i, j int) bool {
		if o.Failures[i].Count != o.Failures[j].Count {
			return o.Failures[i].Count > o.Failures[j].Count
		}
		return o.Failures[i].Code < o.Failures[j].Code
	})
	return o, nil
}
