package service

import (
	"testing"
	"time"
)

var qt0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func pg(id string, grade float64, received int) PostedGrade {
	return PostedGrade{SubmissionID: id, Grade: grade, ReceivedAt: qt0.Add(time.Duration(received) * time.Second)}
}

func TestPolicyPrefers(t *testing.T) {
	for _, tc := range []struct {
		policy PostPolicy
		c, cur PostedGrade
		want   bool
	}{
		{PostLatest, pg("b", 0, 2), PostedGrade{}, true},
		{PostLatest, pg("b", 0, 2), pg("a", 1, 1), true},  // newer, lower
		{PostLatest, pg("a", 1, 1), pg("b", 0, 2), false}, // older, higher
		{PostLatest, pg("b", 0, 1), pg("a", 1, 1), true},  // received together: the larger id
		{PostLatest, pg("a", 0, 1), pg("a", 1, 1), true},  // a regrade
		{PostBest, pg("b", 0.5, 2), pg("a", 1, 1), false},
		{PostBest, pg("b", 1, 2), pg("a", 1, 1), false},  // equal: the first stays
		{PostBest, pg("a", 0.5, 1), pg("a", 1, 1), true}, // a regrade replaces its own grade
		{PostBest, pg("c", 1, 0), pg("a", 0.5, 1), true},
	} {
		if got := tc.policy.Prefers(tc.c, tc.cur); got != tc.want {
			t.Errorf("%s.Prefers(%+v, %+v) = %v, want %v", tc.policy, tc.c, tc.cur, got, tc.want)
		}
	}
}

func TestApplyPostResult(t *testing.T) {
	at := qt0.Add(time.Hour)
	zero, perfect := pg("zero", 0, 1), pg("perfect", 1, 2)
	base := PostTask{Status: TaskPosting, Want: zero, InFlight: zero, Attempts: 2}
	for _, tc := range []struct {
		name      string
		task      PostTask
		r         PostResult
		status    PostTaskStatus
		next      time.Time
		sent      PostedGrade
		confirmed bool
		marks     []SentMark
		attempts  int
	}{
		{"applied", base, PostResult{Outcome: PostApplied, At: at}, TaskPosted, time.Time{}, zero, true,
			[]SentMark{{"zero", true}}, 2},
		{"unanswered: follow up", base, PostResult{Outcome: PostUnanswered, At: at, NextAt: at.Add(time.Minute)}, TaskQueued, at.Add(time.Minute), zero, false,
			[]SentMark{{"zero", false}}, 2},
		{"retry", base, PostResult{Outcome: PostRetry, At: at, NextAt: at.Add(time.Minute)}, TaskQueued, at.Add(time.Minute), PostedGrade{}, false, nil, 2},
		{"refused", base, PostResult{Outcome: PostRefused, At: at}, TaskFailed, time.Time{}, PostedGrade{}, false, nil, 2},
		{"applied, a newer grade selected meanwhile: due now", withWant(base, perfect), PostResult{Outcome: PostApplied, At: at},
			TaskQueued, at, zero, true, []SentMark{{"zero", true}}, 0},
		{"refused, a newer grade selected meanwhile: due now", withWant(base, perfect), PostResult{Outcome: PostRefused, At: at},
			TaskQueued, at, PostedGrade{}, false, nil, 0},
		{"unanswered, a newer grade selected meanwhile: after the wait", withWant(base, perfect), PostResult{Outcome: PostUnanswered, At: at, NextAt: at.Add(time.Minute)},
			TaskQueued, at.Add(time.Minute), zero, false, []SentMark{{"zero", false}}, 0},
		{"after an interrupted post of the same grade", withInterrupted(base, zero), PostResult{Outcome: PostApplied, At: at},
			TaskPosted, time.Time{}, zero, true, []SentMark{{"zero", false}, {"zero", true}}, 2},
	} {
		after, marks := ApplyPostResult(tc.task, tc.r)
		if after.Status != tc.status || !after.NextAt.Equal(tc.next) || !after.Sent.Same(tc.sent) || after.Confirmed != tc.confirmed ||
			after.Attempts != tc.attempts || after.InFlight.SubmissionID != "" || after.Interrupted.SubmissionID != "" || !sameMarks(marks, tc.marks) {
			t.Errorf("%s: ApplyPostResult = %+v, %v", tc.name, after, marks)
		}
	}
}

func withWant(t PostTask, g PostedGrade) PostTask        { t.Want = g; return t }
func withInterrupted(t PostTask, g PostedGrade) PostTask { t.Interrupted = g; return t }

func sameMarks(a, b []SentMark) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOfferGrade(t *testing.T) {
	at := qt0.Add(time.Hour)
	a := Assignment{Course: "8x", Section: "1", Assignment: "lab01"}
	first, changed := OfferGrade(nil, "k", "alice", a, pg("a", 0.5, 1), at, PostLatest)
	if !changed || first.Status != TaskQueued || !first.NextAt.Equal(at) || first.Want.SubmissionID != "a" {
		t.Fatalf("first offer = %+v, %v", first, changed)
	}
	if same, changed := OfferGrade(&first, "k", "alice", a, pg("a", 0.5, 1), at.Add(time.Hour), PostLatest); changed || !same.WantSince.Equal(at) {
		t.Errorf("a retried offer changed the post: %+v", same)
	}
	posting := first
	posting.Status = TaskPosting
	if got, _ := OfferGrade(&posting, "k", "alice", a, pg("b", 1, 2), at, PostLatest); got.Status != TaskPosting || got.Want.SubmissionID != "b" {
		t.Errorf("offer during a post = %+v; want it selected, the post in flight left alone", got)
	}
	waiting := first
	waiting.NextAt = at.Add(time.Hour)
	if got, _ := OfferGrade(&waiting, "k", "alice", a, pg("b", 1, 2), at, PostLatest); !got.NextAt.Equal(at.Add(time.Hour)) {
		t.Errorf("offer during a wait = %+v; want the wait kept", got)
	}
	done := first
	done.Status, done.NextAt = TaskPosted, time.Time{}
	if got, _ := OfferGrade(&done, "k", "alice", a, pg("b", 1, 2), at.Add(time.Minute), PostLatest); got.Status != TaskQueued || !got.NextAt.Equal(at.Add(time.Minute)) || got.Attempts != 0 {
		t.Errorf("offer after a post = %+v; want due at once", got)
	}
}
