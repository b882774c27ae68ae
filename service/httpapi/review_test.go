package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/service"
)

// TestNeedsReviewIsHeld: a grading in which the grader detected
// interference is held for course staff: the student is told so and sees
// no grade, staff see the grade and the evidence, and nothing is posted.
func TestNeedsReviewIsHeld(t *testing.T) {
	res := &grading.Result{Grade: 1, Tests: []grading.Test{{Name: "q1", Score: 1, MaxScore: 1, Visibility: grading.VisibilityVisible}},
		Review: []string{"the kernel claimed that contradictory checks all hold (<doctest q1 0[0]>)"}}
	poster := &fakePoster{open: true}
	ids := headerIdentity{"alice": {Name: "alice"}, "prof": {Name: "prof", Admin: true}}
	srv := newServerWith(t, resultRunner{res}, ids, service.Config{Poster: poster, PostBackoffBase: 10 * time.Millisecond, PostBackoffMax: 20 * time.Millisecond})
	s := submitAs(t, srv, "alice")
	get := func(user string) (status, []byte) {
		_, body, st := statusAs(t, srv, s.StatusURL, user)
		return st, body
	}
	waitFor(t, func() bool { st, _ := get("alice"); return st.Status == string(service.StatusNeedsReview) })

	st, body := get("alice")
	if st.Grade != nil || st.Error != nil || len(st.Questions) != 0 || !strings.Contains(st.Message, "needs review by course staff") ||
		strings.Contains(string(body), "contradictory") {
		t.Errorf("the student's status %s; want the review message, no grade, no evidence", body)
	}
	st, body = get("prof")
	if st.Grade == nil || *st.Grade != 1 || st.Error == nil || st.Error.Code != service.FailureReview || !strings.Contains(st.Error.Message, "contradictory") {
		t.Errorf("staff's status %s; want the grade and the evidence", body)
	}
	if p := postStatus(t, srv, s.ID); p.Status != service.PostNone {
		t.Errorf("post %+v; want none", p)
	}
	grades, err := srv.store.Grades(context.Background(), service.GradeFilter{User: "alice"})
	if err != nil || len(grades) != 0 {
		t.Errorf("grade records %+v, %v; want none", grades, err)
	}
	poster.set(func(p *fakePoster) {
		if len(p.posted) != 0 {
			t.Errorf("posted %v; want nothing", p.posted)
		}
	})
}
