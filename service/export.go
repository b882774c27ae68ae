package service

import (
	"context"
	"sort"
)

// MaxExport bounds how many submissions one export reads.
const MaxExport = 200_000

// StudentGrades is one student's grades for one assignment, as the
// export's per-student rows give them.
type StudentGrades struct {
	User string
	Assignment
	Submissions int         // all of them, graded or not
	Selected    PostedGrade // the one the posting policy selects; zero when none is graded
	Best        PostedGrade // the highest grade (the first of equal ones)
	Latest      PostedGrade // the newest graded
}

// Export returns the submissions f selects (without its Limit and After:
// all of them, newest first, at most MaxExport) and, per student and
// assignment, the grades the posting policy selects, the best and the
// latest, sorted by assignment then student. Course staff only: Admin, or
// the staff of f.Course.
//
// Returns EFORBIDDEN for anyone else, EINVALID when more than MaxExport
// submissions match (narrow the filter).
func (s *Service) Export(ctx context.Context, who Identity, f SubmissionFilter) ([]*Submission, []StudentGrades, error) {
	if !who.StaffOf(f.Course) {
		return nil, nil, errNotStaff("export grades")
	}
	all, err := s.allSubmissions(ctx, who, f)
	if err != nil {
		return nil, nil, err
	}
	type key struct {
		user string
		a    Assignment
	}
	by := map[key]*StudentGrades{}
	// Oldest first, so that "the first of equal ones" is the earliest.
	for i := len(all) - 1; i >= 0; i-- {
		sub := all[i]
		k := key{sub.User, sub.Assignment}
		g := by[k]
		if g == nil {
			g = &StudentGrades{User: sub.User, Assignment: sub.Assignment}
			by[k] = g
		}
		g.Submissions++
		if sub.Status != StatusGraded {
			continue
		}
		c := PostedGrade{SubmissionID: sub.ID, Grade: sub.Grade, ReceivedAt: sub.ReceivedAt}
		if PostLatest.Prefers(c, g.Latest) {
			g.Latest = c
		}
		if PostBest.Prefers(c, g.Best) {
			g.Best = c
		}
		if s.cfg.PostPolicy.Prefers(c, g.Selected) {
			g.Selected = c
		}
	}
	students := make([]StudentGrades, 0, len(by))
	for _, g := range by {
		students = append(students, *g)
	}
	sort.Slice(students, func(i, j int) bool {
		a, b := students[i], students[j]
		if a.Assignment != b.Assignment {
			return a.Course+"\x00"+a.Section+"\x00"+a.Assignment.Assignment < b.Course+"\x00"+b.Section+"\x00"+b.Assignment.Assignment
		}
		return a.User < b.User
	})
	return all, students, nil
}

// Policy is the posting policy, which selects a student's grade.
func (s *Service) Policy() PostPolicy { return s.cfg.PostPolicy }

// Posting reports whether grades are posted to edX.
func (s *Service) Posting() bool { return s.cfg.Poster != nil }

// allSubmissions returns every submission f selects (without its Limit
// and After), newest first, at most MaxExport.
// Returns EINVALID when more match.
func (s *Service) allSubmissions(ctx context.Context, who Identity, f SubmissionFilter) ([]*Submission, error) {
	f.Limit, f.After = MaxListLimit, ""
	var all []*Submission
	for {
		page, next, err := s.ListSubmissions(ctx, who, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(all) > MaxExport {
			return nil, Errorf(EINVALID, "More than %d submissions match: take a course, section or assignment at a time.", MaxExport)
		}
		if next == "" {
			return all, nil
		}
		f.After = next
	}
}
