package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// What course staff do: regrade, review, post again; and the audit log.

func submissionOf(t *testing.T, s service.Store, id string) *service.Submission {
	t.Helper()
	sub, err := s.Submission(context.Background(), id)
	if err != nil {
		t.Fatalf("Submission(%s): %v", id, err)
	}
	return sub
}

func gradesOf(t *testing.T, s service.Store, id string) []service.Grade {
	t.Helper()
	gs, err := s.Grades(context.Background(), service.GradeFilter{SubmissionID: id})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// testRequeue: a graded submission regraded in place. It waits behind the
// submissions queued before the request, keeps its old grade in its Grade
// record and post until the new one replaces both, and its new grade is the
// one posted, as the newest submission's.
func testRequeue(t *testing.T, s service.Store) {
	ctx := context.Background()
	finished := t0.Add(time.Minute)
	old := gradedAs(t, s, "bob", t0.Add(-time.Hour), 1, service.PostPending, service.PostLatest, finished)
	a := gradedAs(t, s, "alice", t0, 0.25, service.PostPending, service.PostLatest, finished)
	newest := gradedAs(t, s, "bob", t0, 0.5, service.PostPending, service.PostLatest, finished)

	// Fresh submissions received before and after the request.
	before, after := newSub(10, "carol"), newSub(11, "dave")
	before.ReceivedAt, after.ReceivedAt = t0.Add(2*time.Hour), t0.Add(4*time.Hour)
	create(t, s, before, []byte("{}"))
	at := t0.Add(3 * time.Hour)
	for _, sub := range []*service.Submission{a, old} {
		if err := s.Requeue(ctx, sub.ID, service.Requeue{At: at, Batch: "batch-1"}); err != nil {
			t.Fatalf("Requeue(%s): %v", sub.ID, err)
		}
	}
	create(t, s, after, []byte("{}"))
	got := submissionOf(t, s, a.ID)
	if got.Status != service.StatusQueued || got.Attempts != 0 || got.Grade != 0 || got.Questions != nil || got.Failure != nil ||
		!got.FinishedAt.IsZero() || got.Batch != "batch-1" {
		t.Fatalf("after Requeue, submission = %+v; want queued afresh in batch-1", got)
	}
	if gs := gradesOf(t, s, a.ID); len(gs) != 1 || gs[0].Grade != 0.25 {
		t.Errorf("while regrading, Grade records = %+v; want the old one", gs)
	}
	if w := task(t, s, a).Want; !w.Same(grade(a, 0.25)) {
		t.Errorf("while regrading, the post wants %+v; want the old grade", w)
	}
	if n, err := s.InFlight(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("InFlight of a student whose submission staff requeued = %d, %v; want 0 (the bound is the student's)", n, err)
	}
	if n, err := s.InFlight(ctx, "carol"); err != nil || n != 1 {
		t.Errorf("InFlight of a student with one queued = %d, %v; want 1", n, err)
	}
	wantCode(t, "Requeue of a queued submission", s.Requeue(ctx, a.ID, service.Requeue{At: at}), service.ECONFLICT)
	wantCode(t, "Requeue of nothing", s.Requeue(ctx, "no-such-id", service.Requeue{At: at}), service.ENOTFOUND)

	// Fresh submissions go first, also one received after the request;
	// then the regrades, in the order they were received.
	order := []string{before.ID, after.ID, old.ID, a.ID}
	for i, id := range order {
		if pos, err := s.QueuePosition(ctx, id); err != nil || pos != i+1 {
			t.Errorf("QueuePosition(%d) = %d, %v; want %d", i, pos, err, i+1)
		}
	}
	newGrade := map[string]float64{a.ID: 0.75, old.ID: 0}
	for i, want := range order {
		sub, l := claim(t, s, at.Add(2*time.Hour))
		if sub == nil || sub.ID != want {
			t.Fatalf("claim %d = %+v; want %s", i, sub, want)
		}
		if sub.Attempts != 1 {
			t.Errorf("claim %d has %d attempts; want 1", i, sub.Attempts)
		}
		if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusGraded, Grade: newGrade[want], Post: service.PostPending,
			Policy: service.PostLatest, FinishedAt: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	got = submissionOf(t, s, a.ID)
	if got.Status != service.StatusGraded || got.Grade != 0.75 || !got.FinishedAt.Equal(at.Add(time.Hour)) || got.Batch != "batch-1" {
		t.Errorf("after its regrade, submission = %+v", got)
	}
	if gs := gradesOf(t, s, a.ID); len(gs) != 1 || gs[0].Grade != 0.75 || !gs[0].Timestamp.Equal(at.Add(time.Hour)) {
		t.Errorf("after its regrade, Grade records = %+v; want one, the new grade at its time", gs)
	}
	if w := task(t, s, a).Want; !w.Same(grade(a, 0.75)) {
		t.Errorf("after its regrade, the post wants %+v; want the new grade", w)
	}
	// Bob's older submission, regraded, does not displace his newest.
	if w := task(t, s, newest).Want; !w.Same(grade(newest, 0.5)) {
		t.Errorf("after an older submission's regrade, the post wants %+v; want the newest submission's grade", w)
	}

	// A failed one goes back too; the batch lists what it requeued.
	failed := newSub(20, "erin")
	create(t, s, failed, []byte("{}"))
	_, l := claim(t, s, at.Add(2*time.Hour))
	if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusFailed, Failure: &service.Failure{Code: service.FailureAutograder, Message: "broken"}, FinishedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, failed.ID, service.Requeue{At: at.Add(time.Hour), Batch: "batch-2"}); err != nil {
		t.Fatal(err)
	}
	if got := submissionOf(t, s, failed.ID); got.Status != service.StatusQueued || got.Failure != nil {
		t.Errorf("requeued failure = %+v", got)
	}
	for batch, want := range map[string][]string{"batch-1": {a.ID, old.ID}, "batch-2": {failed.ID}} {
		subs, _, err := s.ListSubmissions(ctx, service.SubmissionFilter{Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		if !sameNewestFirst(ids(subs), want, subs) || len(subs) != len(want) {
			t.Errorf("ListSubmissions(batch %s) = %v; want %v", batch, ids(subs), want)
		}
	}
}

func ids(subs []*service.Submission) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

// testReview: course staff accept one needs_review submission's grade
// (recorded and posted as a grading's) and reject another's.
func testReview(t *testing.T, s service.Store) {
	ctx := context.Background()
	review := func(user string) *service.Submission {
		sub := newSub(0, user)
		create(t, s, sub, []byte("{}"))
		_, l := claim(t, s, t0.Add(time.Hour))
		if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusNeedsReview, Grade: 0.8,
			Questions:  []service.Question{{Name: "q1", Score: 0.8, MaxScore: 1}},
			Failure:    &service.Failure{Code: service.FailureReview, Message: "the notebook replaced the test runner"},
			FinishedAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	accepted, rejected := review("alice"), review("bob")
	at := t0.Add(2 * time.Hour)
	if err := s.Review(ctx, accepted.ID, service.Outcome{Status: service.StatusGraded, Post: service.PostPending, Policy: service.PostLatest, FinishedAt: at}); err != nil {
		t.Fatalf("Review(accept): %v", err)
	}
	got := submissionOf(t, s, accepted.ID)
	if got.Status != service.StatusGraded || got.Grade != 0.8 || got.Failure != nil || len(got.Questions) != 1 || got.Post.Status != service.PostPending {
		t.Errorf("accepted = %+v; want graded with its recorded grade, to be posted", got)
	}
	if gs := gradesOf(t, s, accepted.ID); len(gs) != 1 || gs[0].Grade != 0.8 || !gs[0].Timestamp.Equal(at) {
		t.Errorf("accepted: Grade records = %+v", gs)
	}
	if w := task(t, s, accepted).Want; !w.Same(grade(accepted, 0.8)) {
		t.Errorf("accepted: the post wants %+v", w)
	}
	wantCode(t, "Review of a graded submission", s.Review(ctx, accepted.ID, service.Outcome{Status: service.StatusGraded, FinishedAt: at}), service.ECONFLICT)

	why := &service.Failure{Code: service.FailureRejected, Message: "Course staff rejected it."}
	if err := s.Review(ctx, rejected.ID, service.Outcome{Status: service.StatusFailed, Failure: why, FinishedAt: at}); err != nil {
		t.Fatalf("Review(reject): %v", err)
	}
	got = submissionOf(t, s, rejected.ID)
	if got.Status != service.StatusFailed || got.Failure == nil || *got.Failure != *why || got.Post.Status != service.PostNone {
		t.Errorf("rejected = %+v; want failed as rejected, never posted", got)
	}
	if gs := gradesOf(t, s, rejected.ID); len(gs) != 0 {
		t.Errorf("rejected: Grade records = %+v; want none", gs)
	}
	if _, err := s.PostTask(ctx, rejected.Assignment, rejected.User); service.ErrorCode(err) != service.ENOTFOUND {
		t.Errorf("rejected: PostTask error = %v; want none", err)
	}
	wantCode(t, "Review of nothing", s.Review(ctx, "no-such-id", service.Outcome{Status: service.StatusGraded, FinishedAt: at}), service.ENOTFOUND)
}

// testRepost: a post edX refused is posted again when course staff ask,
// afresh; one in flight is left alone.
func testRepost(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := gradedAs(t, s, "alice", t0, 0.5, service.PostPending, service.PostLatest, t0.Add(time.Minute))
	now := t0.Add(time.Hour)
	_, l := claimPost(t, s, now)
	if l == nil {
		t.Fatal("no post to claim")
	}
	_, err := s.Repost(ctx, sub.Assignment, sub.User, now)
	wantCode(t, "Repost in flight", err, service.ECONFLICT)
	finishPost(t, s, l, service.PostResult{Outcome: service.PostRefused, Error: "edX refused it", At: now})
	if pt := task(t, s, sub); pt.Status != service.TaskFailed {
		t.Fatalf("after a refusal, post = %+v", pt)
	}
	later := now.Add(time.Hour)
	pt, err := s.Repost(ctx, sub.Assignment, sub.User, later)
	if err != nil {
		t.Fatalf("Repost: %v", err)
	}
	if pt.Status != service.TaskQueued || !pt.NextAt.Equal(later) || !pt.WantSince.Equal(later) || pt.Attempts != 0 || pt.LastError != "" || !pt.Want.Same(grade(sub, 0.5)) {
		t.Errorf("Repost = %+v; want queued afresh with the same grade", pt)
	}
	if got := task(t, s, sub); got.Status != service.TaskQueued || !got.NextAt.Equal(later) {
		t.Errorf("after Repost, post = %+v", got)
	}
	if again, _ := claimPost(t, s, later); again == nil || again.Key != pt.Key || !again.InFlight.Same(grade(sub, 0.5)) {
		t.Errorf("after Repost, Claim = %+v", again)
	}
	_, err = s.Repost(ctx, service.Assignment{Course: "8x", Section: "1", Assignment: "lab09"}, "alice", later)
	wantCode(t, "Repost of nothing", err, service.ENOTFOUND)
}

// testAuditLog: what staff did in a course, newest first, with who did it.
func testAuditLog(t *testing.T, s service.Store) {
	ctx := context.Background()
	a := service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}
	for i, e := range []service.LogEntry{
		{SubmissionID: "s1", User: "alice", Assignment: a, Message: "regrade asked", Type: service.LogAudit, Actor: "ta"},
		{SubmissionID: "s1", User: "alice", Assignment: a, Message: "graded", Type: service.LogInfo},
		{Assignment: service.Assignment{Course: "9x", Assignment: "lab01"}, Message: "other course", Type: service.LogAudit, Actor: "ta"},
		{Assignment: a, Message: "regrade of lab01 asked", Type: service.LogAudit, Actor: "prof"},
		{SubmissionID: "s2", User: "bob", Assignment: a, Message: "accepted", Type: service.LogAudit, Actor: "ta"},
	} {
		e.Timestamp = t0.Add(time.Duration(i) * time.Minute)
		if err := s.AppendLog(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuditLog(ctx, "8x", t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Actor+": "+e.Message)
	}
	if want := []string{"ta: accepted", "prof: regrade of lab01 asked", "ta: regrade asked"}; !slices.Equal(msgs, want) {
		t.Errorf("AuditLog = %q; want %q", msgs, want)
	}
	if got, _ := s.AuditLog(ctx, "8x", t0.Add(time.Minute), 1); len(got) != 1 || got[0].Message != "accepted" {
		t.Errorf("AuditLog since the second entry, one = %+v", got)
	}
	if logs, _ := s.Logs(ctx, "s2"); len(logs) != 1 || logs[0].Actor != "ta" || logs[0].Type != service.LogAudit {
		t.Errorf("Logs(s2) = %+v; want the audit entry with its actor", logs)
	}
	if refused, _ := s.Refusals(ctx, "", t0, 10); len(refused) != 0 {
		t.Errorf("Refusals with no user = %+v; audit entries are not refusals", refused)
	}
}
