// Package storetest is the conformance suite every service.Store runs, so the
// embedded and the cloud stores cannot drift apart.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// Run runs the suite. open returns a new, empty store for each subtest; it
// must implement Faulty.
func Run(t *testing.T, open func(t *testing.T) service.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, service.Store)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"DuplicateID", testDuplicateID},
		{"NotFound", testNotFound},
		{"QueueOrder", testQueueOrder},
		{"ClaimEmpty", testClaimEmpty},
		{"ExpiredLeaseIsReclaimed", testExpiredLease},
		{"LeaseHolderOnly", testLeaseHolderOnly},
		{"ReleaseRequeues", testRelease},
		{"ReleaseUntilStepsAside", testReleaseUntil},
		{"FinishGradedOnce", testFinishGradedOnce},
		{"FinishFailed", testFinishFailed},
		{"NeedsReview", testNeedsReview},
		{"ConcurrentClaimsAreExclusive", testConcurrentClaims},
		{"ConcurrentCreates", testConcurrentCreates},
		{"Logs", testLogs},
		{"HeldBodies", testHeld},
		{"HeldUsage", testHeldUsage},
		{"ListSubmissions", testListSubmissions},
		{"Refusals", testRefusals},
		{"RequeueRegrades", testRequeue},
		{"Review", testReview},
		{"Repost", testRepost},
		{"AuditLog", testAuditLog},
		{"NotebookName", testNotebookName},
		{"GradePosts", testPosts},
		{"NewestGradeWins", testNewestGradeWins},
		{"BestGradeWins", testBestGradeWins},
		{"RefusedPost", testPostRefused},
		{"NewGradeKeepsTheWait", testNewGradeKeepsTheWait},
		{"ConcurrentPostClaimsAreExclusive", testConcurrentPostClaims},
		{"CountsAndInFlight", testCounts},
		{"DisabledPostsAreNeverClaimed", testPostsDisabled},
		{"GradingClaimSurvivesFaults", testClaimFaults(service.KindGrade)},
		{"PostClaimSurvivesFaults", testClaimFaults(service.KindPost)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func newSub(i int, user string) *service.Submission {
	return &service.Submission{
		ID:         service.NewID(),
		User:       user,
		Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: fmt.Sprintf("lab%02d", i%3+1)},
		Status:     service.StatusQueued,
		ReceivedAt: t0.Add(time.Duration(i) * time.Second),
	}
}

func create(t *testing.T, s service.Store, sub *service.Submission, nb []byte) {
	t.Helper()
	if err := s.CreateSubmission(context.Background(), sub, nb); err != nil {
		t.Fatalf("CreateSubmission: %v", err)
	}
}

func claim(t *testing.T, s service.Store, now time.Time) (*service.Submission, *service.Lease) {
	t.Helper()
	job, err := s.Claim(context.Background(), service.KindGrade, now, time.Minute)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if job == nil {
		return nil, nil
	}
	if job.Lease == nil || job.Submission == nil || job.Lease.Kind != service.KindGrade || job.Lease.ID != job.Submission.ID {
		t.Fatalf("Claim = %+v: want a grading lease on its submission", job)
	}
	return job.Submission, job.Lease
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := service.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

func testCreateAndRead(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "alice")
	nb := bytes.Repeat([]byte(`{"x":1}`), 50000) // 350 kB
	create(t, s, sub, nb)
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sub.ID || got.User != "alice" || got.Assignment != sub.Assignment || got.Status != service.StatusQueued ||
		!got.ReceivedAt.Equal(sub.ReceivedAt) || got.Attempts != 0 || !got.StartedAt.IsZero() || got.Failure != nil {
		t.Errorf("Submission = %+v, want what was created: %+v", got, sub)
	}
	gotNB, err := s.Notebook(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotNB, nb) {
		t.Errorf("Notebook returned %d bytes, want the %d stored", len(gotNB), len(nb))
	}
	if pos, err := s.QueuePosition(ctx, sub.ID); err != nil || pos != 1 {
		t.Errorf("QueuePosition = %d, %v; want 1", pos, err)
	}
}

func testDuplicateID(t *testing.T, s service.Store) {
	sub := newSub(0, "alice")
	create(t, s, sub, []byte("{}"))
	err := s.CreateSubmission(context.Background(), sub, []byte("{}"))
	wantCode(t, "second CreateSubmission with the same id", err, service.ECONFLICT)
}

func testNotFound(t *testing.T, s service.Store) {
	ctx := context.Background()
	_, err := s.Submission(ctx, "nope")
	wantCode(t, "Submission", err, service.ENOTFOUND)
	_, err = s.Notebook(ctx, "nope")
	wantCode(t, "Notebook", err, service.ENOTFOUND)
	_, err = s.QueuePosition(ctx, "nope")
	wantCode(t, "QueuePosition", err, service.ENOTFOUND)
}

func testQueueOrder(t *testing.T, s service.Store) {
	ctx := context.Background()
	var subs []*service.Submission
	for i := 0; i < 5; i++ {
		sub := newSub(i, "alice")
		create(t, s, sub, []byte("{}"))
		subs = append(subs, sub)
	}
	for i, sub := range subs {
		if pos, err := s.QueuePosition(ctx, sub.ID); err != nil || pos != i+1 {
			t.Errorf("QueuePosition(#%d) = %d, %v; want %d", i, pos, err, i+1)
		}
	}
	for i, want := range subs {
		got, l := claim(t, s, t0.Add(time.Hour))
		if got == nil || got.ID != want.ID {
			t.Fatalf("claim #%d got %v, want %s (first in, first out)", i, got, want.ID)
		}
		if got.Status != service.StatusGrading || got.Attempts != 1 || l == nil || l.Token == "" {
			t.Errorf("claimed submission = %+v, lease %+v; want grading, attempt 1, a lease", got, l)
		}
	}
	_, err := s.QueuePosition(ctx, subs[0].ID)
	wantCode(t, "QueuePosition of a claimed submission", err, service.ENOTFOUND)
}

func testClaimEmpty(t *testing.T, s service.Store) {
	if sub, l := claim(t, s, t0); sub != nil || l != nil {
		t.Fatalf("Claim on an empty store = %v, %v; want nothing", sub, l)
	}
}

func testExpiredLease(t *testing.T, s service.Store) {
	sub := newSub(0, "alice")
	create(t, s, sub, []byte("{}"))
	now := t0.Add(time.Hour)
	first, l1 := claim(t, s, now)
	if first == nil {
		t.Fatal("nothing claimed")
	}
	if again, _ := claim(t, s, now.Add(59*time.Second)); again != nil {
		t.Fatalf("claimed %s while its lease was held", again.ID)
	}
	second, l2 := claim(t, s, now.Add(61*time.Second))
	if second == nil || second.ID != sub.ID || second.Attempts != 2 {
		t.Fatalf("after the lease expired, Claim = %+v; want %s on attempt 2", second, sub.ID)
	}
	if l2.Token == l1.Token {
		t.Fatal("the new lease has the old lease's token")
	}
	// The first worker woke up late: it may no longer finish.
	err := s.Finish(context.Background(), l1, service.Outcome{Status: service.StatusGraded, Grade: 1, FinishedAt: now})
	wantCode(t, "Finish with an expired, reclaimed lease", err, service.ECONFLICT)
}

func testLeaseHolderOnly(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "alice")
	create(t, s, sub, []byte("{}"))
	now := t0.Add(time.Hour)
	got, l := claim(t, s, now)
	if got == nil {
		t.Fatal("nothing claimed")
	}
	stranger := &service.Lease{Kind: service.KindGrade, ID: sub.ID, Token: "someone-else", Expires: l.Expires}
	wantCode(t, "Extend by a stranger", s.Extend(ctx, stranger, now, time.Minute), service.ECONFLICT)
	wantCode(t, "Release by a stranger", s.Release(ctx, stranger, time.Time{}), service.ECONFLICT)
	wantCode(t, "Finish by a stranger", s.Finish(ctx, stranger, service.Outcome{Status: service.StatusGraded, Grade: 1, FinishedAt: now}), service.ECONFLICT)
	if err := s.Extend(ctx, l, now.Add(50*time.Second), time.Minute); err != nil {
		t.Fatalf("Extend by the holder: %v", err)
	}
	if want := now.Add(110 * time.Second); !l.Expires.Equal(want) {
		t.Errorf("extended lease expires %v, want %v", l.Expires, want)
	}
	if again, _ := claim(t, s, now.Add(100*time.Second)); again != nil {
		t.Fatal("claimed a submission whose lease was extended")
	}
}

func testRelease(t *testing.T, s service.Store) {
	ctx := context.Background()
	a, b := newSub(0, "alice"), newSub(1, "bob")
	create(t, s, a, []byte("{}"))
	create(t, s, b, []byte("{}"))
	_, l := claim(t, s, t0.Add(time.Hour))
	if err := s.Release(ctx, l, time.Time{}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	sub, err := s.Submission(ctx, a.ID)
	if err != nil || sub.Status != service.StatusQueued || sub.Attempts != 0 {
		t.Fatalf("after Release, submission = %+v, %v; want queued with no attempt counted", sub, err)
	}
	if again, _ := claim(t, s, t0.Add(time.Hour)); again == nil || again.ID != a.ID {
		t.Fatalf("after Release, Claim = %v; want %s back at the head of the queue", again, a.ID)
	}
	wantCode(t, "Release with a spent lease", s.Release(ctx, l, time.Time{}), service.ECONFLICT)
}

// testReleaseUntil: a submission released until later does not hold up the
// queue behind it, and is claimed again once its time comes.
func testReleaseUntil(t *testing.T, s service.Store) {
	ctx := context.Background()
	a, b := newSub(0, "alice"), newSub(1, "bob")
	create(t, s, a, []byte("{}"))
	create(t, s, b, []byte("{}"))
	now := t0.Add(time.Hour)
	got, l := claim(t, s, now)
	if got == nil || got.ID != a.ID {
		t.Fatalf("Claim = %+v; want %s", got, a.ID)
	}
	if err := s.Release(ctx, l, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if next, _ := claim(t, s, now.Add(time.Second)); next == nil || next.ID != b.ID {
		t.Fatalf("while %s steps aside, Claim = %+v; want %s", a.ID, next, b.ID)
	}
	if none, _ := claim(t, s, now.Add(2*time.Second)); none != nil {
		t.Fatalf("claimed %s before its time", none.ID)
	}
	if again, _ := claim(t, s, now.Add(30*time.Second)); again == nil || again.ID != a.ID || again.Attempts != 1 {
		t.Fatalf("at its time, Claim = %+v; want %s with one attempt counted", again, a.ID)
	}
}

func testFinishGradedOnce(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "alice")
	create(t, s, sub, []byte("{}"))
	now := t0.Add(time.Hour)
	_, l := claim(t, s, now)
	out := service.Outcome{
		Status: service.StatusGraded, Grade: 2.0 / 3,
		Questions: []service.Question{
			{Name: "q1", Score: 1, MaxScore: 1, Visibility: "visible", Output: "q1 results: All test cases passed!"},
			{Name: "q2", Score: 1, MaxScore: 2, Visibility: "hidden", Output: "q2 results:\n    q2 - 2 result:\n        ❌ Test case failed\n\tassert f(-1) == 0"},
			{Name: "q3", Score: 0, MaxScore: 1, Visibility: "after_published"},
		},
		Feedback: []service.Feedback{
			{Name: "Autograder output", Visibility: "visible", Output: "Students are allowed 3 submissions every 1 day. You have 1 submissions in that period."},
			{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!\n\nq2 results: All test cases passed!"},
			{Name: "PDF Generation Failed", Visibility: "hidden"},
		},
		FinishedAt: now.Add(5 * time.Second),
	}
	for i := 0; i < 3; i++ { // a retried Finish changes nothing
		if err := s.Finish(ctx, l, out); err != nil {
			t.Fatalf("Finish #%d: %v", i+1, err)
		}
	}
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != service.StatusGraded || got.Grade != out.Grade || !slices.Equal(got.Questions, out.Questions) || !slices.Equal(got.Feedback, out.Feedback) ||
		!got.FinishedAt.Equal(out.FinishedAt) || !got.StartedAt.Equal(now) {
		t.Errorf("graded submission = %+v; want the outcome %+v", got, out)
	}
	grades, err := s.Grades(ctx, service.GradeFilter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(grades) != 1 {
		t.Fatalf("Grades = %+v; want exactly one record", grades)
	}
	g := grades[0]
	if g.SubmissionID != sub.ID || g.User != "alice" || g.Grade != out.Grade || g.Assignment != sub.Assignment || !g.Timestamp.Equal(out.FinishedAt) {
		t.Errorf("grade record = %+v", g)
	}
	if other, _ := s.Grades(ctx, service.GradeFilter{User: "bob"}); len(other) != 0 {
		t.Errorf("Grades for another user = %+v; want none", other)
	}
	if again, _ := claim(t, s, now.Add(24*time.Hour)); again != nil {
		t.Errorf("claimed a graded submission: %+v", again)
	}
}

// testNeedsReview: a grading held for review keeps its grade, questions,
// feedback and evidence, gives no Grade record, and is not posted.
func testNeedsReview(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "carol")
	create(t, s, sub, []byte("{}"))
	now := t0.Add(time.Hour)
	_, l := claim(t, s, now)
	out := service.Outcome{
		Status: service.StatusNeedsReview, Grade: 1,
		Questions:  []service.Question{{Name: "q1", Score: 1, MaxScore: 1, Visibility: "hidden"}},
		Feedback:   []service.Feedback{{Name: "Public Tests", Visibility: "visible", Output: "q1 results: All test cases passed!"}},
		Failure:    &service.Failure{Code: service.FailureReview, Message: "The grader detected interference with grading: a decoy held"},
		FinishedAt: now.Add(5 * time.Second),
	}
	for i := 0; i < 2; i++ {
		if err := s.Finish(ctx, l, out); err != nil {
			t.Fatalf("Finish #%d: %v", i+1, err)
		}
	}
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != service.StatusNeedsReview || got.Grade != 1 || !slices.Equal(got.Questions, out.Questions) ||
		!slices.Equal(got.Feedback, out.Feedback) || got.Failure == nil || *got.Failure != *out.Failure || got.Post.Status != service.PostNone {
		t.Errorf("submission held for review = %+v; want the outcome %+v, not posted", got, out)
	}
	if grades, _ := s.Grades(ctx, service.GradeFilter{User: "carol"}); len(grades) != 0 {
		t.Errorf("Grades = %+v; want none for a grade held for review", grades)
	}
	if job, err := s.Claim(ctx, service.KindPost, now.Add(time.Hour), time.Minute); err != nil || job != nil {
		t.Errorf("Claim(post) = %+v, %v; want nothing to post", job, err)
	}
}

func testFinishFailed(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "alice")
	create(t, s, sub, []byte("{}"))
	_, l := claim(t, s, t0.Add(time.Hour))
	f := &service.Failure{Code: service.FailureTimeout, Message: "Grading took longer than 10 minutes."}
	if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusFailed, Failure: f, FinishedAt: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Submission(ctx, sub.ID)
	if got.Status != service.StatusFailed || got.Failure == nil || *got.Failure != *f {
		t.Errorf("failed submission = %+v; want failure %+v", got, f)
	}
	if grades, _ := s.Grades(ctx, service.GradeFilter{SubmissionID: sub.ID}); len(grades) != 0 {
		t.Errorf("a failed submission has grade records: %+v", grades)
	}
}

func testConcurrentClaims(t *testing.T, s service.Store) {
	const n = 20
	for i := 0; i < n; i++ {
		create(t, s, newSub(i, "alice"), []byte("{}"))
	}
	seen := claimConcurrently(t, s, service.KindGrade, t0.Add(time.Hour))
	if len(seen) != n {
		t.Errorf("claimed %d distinct submissions, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("submission %s claimed %d times while its lease was held", id, c)
		}
	}
}

func testConcurrentCreates(t *testing.T, s service.Store) {
	const n = 100
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := newSub(i, "alice")
			ids[i] = sub.ID
			if err := s.CreateSubmission(context.Background(), sub, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		nb, err := s.Notebook(context.Background(), id)
		if err != nil || string(nb) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("submission %d: notebook %q, %v", i, nb, err)
		}
	}
}

func testLogs(t *testing.T, s service.Store) {
	ctx := context.Background()
	sub := newSub(0, "alice")
	for i, typ := range []string{service.LogInfo, service.LogError} {
		e := service.LogEntry{SubmissionID: sub.ID, User: "alice", Assignment: sub.Assignment,
			Message: fmt.Sprintf("message %d", i), Trace: "trace", Type: typ, Timestamp: t0.Add(time.Duration(i) * time.Second)}
		if err := s.AppendLog(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	logs, err := s.Logs(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Message != "message 0" || logs[1].Type != service.LogError || logs[1].User != "alice" ||
		logs[1].Assignment != sub.Assignment || !logs[1].Timestamp.Equal(t0.Add(time.Second)) {
		t.Errorf("Logs = %+v", logs)
	}
}

func testHeld(t *testing.T, s service.Store) {
	ctx := context.Background()
	small := service.HeldSubmission{Body: []byte(`{"nb": {"cells": []}}`), NotebookName: "lab01 (1).ipynb"}
	large := service.HeldSubmission{Body: bytes.Repeat([]byte("0123456789abcdef"), 3<<16)} // 3 MiB: over one document's limit
	if err := s.Hold(ctx, "k-small", small, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, "k-large", large, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, "k-old", small, t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	same := func(a, b service.HeldSubmission) bool {
		return bytes.Equal(a.Body, b.Body) && a.NotebookName == b.NotebookName
	}
	for key, want := range map[string]service.HeldSubmission{"k-small": small, "k-large": large} {
		got, err := s.Held(ctx, key, t0)
		if err != nil || !same(got, want) {
			t.Fatalf("Held(%s) = %d bytes named %q, %v; want the %d bytes held, named %q", key, len(got.Body), got.NotebookName, err, len(want.Body), want.NotebookName)
		}
	}
	_, err := s.Held(ctx, "k-old", t0)
	wantCode(t, "Held of an expired body", err, service.ENOTFOUND)
	_, err = s.Held(ctx, "k-none", t0)
	wantCode(t, "Held of a key never held", err, service.ENOTFOUND)
	_, err = s.Held(ctx, "k-small", t0.Add(time.Minute))
	wantCode(t, "Held at its expiry", err, service.ENOTFOUND)

	if err := s.DropHeld(ctx, "k-large", t0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Held(ctx, "k-large", t0)
	wantCode(t, "Held after DropHeld", err, service.ENOTFOUND)
	if got, err := s.Held(ctx, "k-small", t0); err != nil || !same(got, small) {
		t.Fatalf("DropHeld of another key dropped k-small: %q, %v", got.Body, err)
	}
	if err := s.Hold(ctx, "k-old", large, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Held(ctx, "k-old", t0); err != nil || !same(got, large) {
		t.Fatalf("Hold again did not replace what was held: %d bytes named %q, %v", len(got.Body), got.NotebookName, err)
	}
	if err := s.DropHeld(ctx, "k-none", t0); err != nil {
		t.Fatalf("DropHeld of a key never held: %v", err)
	}
}

// testNotebookName: the notebook's file name is kept exactly as given
// (spaces, case, unicode), is "" for a submission created without one, and
// comes back with every read of the submission, including the claim a worker
// grades from.
func testNotebookName(t *testing.T, s service.Store) {
	ctx := context.Background()
	names := []string{"lab01 (1).ipynb", "Lab01-Copy1.ipynb", "Übung 3 – café.ipynb", ""}
	subs := make([]*service.Submission, len(names))
	for i, name := range names {
		subs[i] = newSub(i, "alice")
		subs[i].NotebookName = name
		create(t, s, subs[i], []byte("{}"))
	}
	for i, sub := range subs {
		got, err := s.Submission(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.NotebookName != names[i] {
			t.Errorf("Submission(%d).NotebookName = %q, want %q", i, got.NotebookName, names[i])
		}
	}
	for i := range subs {
		got, l := claim(t, s, t0.Add(time.Hour))
		if got == nil || got.ID != subs[i].ID || got.NotebookName != names[i] {
			t.Fatalf("claim %d = %+v, want submission %d named %q", i, got, i, names[i])
		}
		finished := t0.Add(time.Hour + time.Duration(i)*time.Second)
		if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusGraded, Grade: 1, Post: service.PostPending, FinishedAt: finished}); err != nil {
			t.Fatal(err)
		}
		after, err := s.Submission(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.NotebookName != names[i] {
			t.Errorf("after Finish, NotebookName = %q, want %q", after.NotebookName, names[i])
		}
	}
}

func testCounts(t *testing.T, s service.Store) {
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	graded(t, s, 0, service.PostPending, t0.Add(time.Hour)) // alice's, graded: not in flight
	for i := 1; i < 4; i++ {
		create(t, s, newSub(i, "alice"), []byte("{}"))
	}
	create(t, s, newSub(4, "bob"), []byte("{}"))
	claim(t, s, t0.Add(2*time.Hour)) // alice's oldest queued one
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c != (service.Counts{Queued: 3, Grading: 1, PostsPending: 1}) {
		t.Errorf("Counts = %+v; want 3 queued, 1 grading, 1 post pending", c)
	}
	for user, want := range map[string]int{"alice": 3, "bob": 1, "carol": 0} {
		if n, err := s.InFlight(ctx, user); err != nil || n != want {
			t.Errorf("InFlight(%s) = %d, %v; want %d", user, n, err, want)
		}
	}
}

// testHeldUsage: the bodies held and not expired, counted with their bytes,
// in all and of one client.
func testHeldUsage(t *testing.T, s service.Store) {
	ctx := context.Background()
	if u, err := s.HeldUsage(ctx, t0, "c1"); err != nil || u != (service.HeldUsage{}) {
		t.Fatalf("HeldUsage of nothing = %+v, %v", u, err)
	}
	for key, h := range map[string]struct {
		size   int
		client string
	}{"a": {100, "c1"}, "b": {2 << 20, "c2"}, "c": {7, "c1"}, "d": {5, ""}} { // b over one document's limit
		if err := s.Hold(ctx, key, service.HeldSubmission{Body: bytes.Repeat([]byte("x"), h.size), Client: h.client}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Hold(ctx, "old", service.HeldSubmission{Body: []byte("expired"), Client: "c1"}, t0); err != nil {
		t.Fatal(err)
	}
	all := 100 + 2<<20 + 7 + 5
	for client, want := range map[string]service.HeldUsage{
		"c1": {Count: 4, Bytes: int64(all), ClientCount: 2, ClientBytes: 107},
		"c2": {Count: 4, Bytes: int64(all), ClientCount: 1, ClientBytes: 2 << 20},
		"c3": {Count: 4, Bytes: int64(all)},
		"":   {Count: 4, Bytes: int64(all)},
	} {
		if u, err := s.HeldUsage(ctx, t0, client); err != nil || u != want {
			t.Errorf("HeldUsage(%q) = %+v, %v; want %+v", client, u, err, want)
		}
	}
	if err := s.DropHeld(ctx, "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if u, err := s.HeldUsage(ctx, t0, "c1"); err != nil || u != (service.HeldUsage{}) {
		t.Errorf("after dropping the expired, HeldUsage = %+v, %v; want none", u, err)
	}
}

// claimConcurrently claims items of kind at now from 8 goroutines until
// none is left, and returns how often each was claimed.
func claimConcurrently(t *testing.T, s service.Store, kind service.Kind, now time.Time) map[string]int {
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				job, err := s.Claim(context.Background(), kind, now, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if job == nil {
					return
				}
				mu.Lock()
				seen[job.Lease.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return seen
}

// testListSubmissions: the submissions a filter selects, newest first (ties
// in any order, each once), page after page, without notebooks, questions
// or feedback, the graded one with its grade.
func testListSubmissions(t *testing.T, s service.Store) {
	ctx := context.Background()
	var all []*service.Submission // in the order created
	for i := 0; i < 9; i++ {
		sub := newSub(i/2, []string{"alice", "bob", "carol"}[i%3]) // two at each second: ties
		if i == 8 {
			sub.Section = "2"
		}
		create(t, s, sub, []byte(`{"cells": []}`))
		all = append(all, sub)
	}
	// The oldest is graded.
	got, l := claim(t, s, t0.Add(time.Hour))
	if got.ID != all[0].ID {
		t.Fatalf("claimed %s; want the oldest, %s", got.ID, all[0].ID)
	}
	if err := s.Finish(ctx, l, service.Outcome{Status: service.StatusGraded, Grade: 0.5, FinishedAt: t0.Add(time.Hour),
		Questions: []service.Question{{Name: "q1", Score: 1, MaxScore: 2, Visibility: "visible"}}}); err != nil {
		t.Fatal(err)
	}
	newestFirst := func(keep func(*service.Submission) bool) []string {
		var ids []string
		for i := len(all) - 1; i >= 0; i-- {
			if keep(all[i]) {
				ids = append(ids, all[i].ID)
			}
		}
		return ids
	}
	list := func(f service.SubmissionFilter) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			page, next, err := s.ListSubmissions(ctx, f)
			if err != nil {
				t.Fatalf("ListSubmissions(%+v): %v", f, err)
			}
			if f.Limit > 0 && len(page) > f.Limit {
				t.Fatalf("ListSubmissions(%+v) gave %d; want at most %d", f, len(page), f.Limit)
			}
			for _, sub := range page {
				ids = append(ids, sub.ID)
				if len(sub.Questions) > 0 || len(sub.Feedback) > 0 {
					t.Errorf("a listed submission has its questions or feedback: %+v", sub)
				}
				if sub.ID == all[0].ID && (sub.Status != service.StatusGraded || sub.Grade != 0.5) {
					t.Errorf("the graded submission is listed as %s with %v", sub.Status, sub.Grade)
				}
			}
			if next == "" {
				return ids
			}
			if pages > len(all) {
				t.Fatalf("ListSubmissions(%+v) does not end", f)
			}
			f.After = next
		}
	}
	for name, c := range map[string]struct {
		f    service.SubmissionFilter
		keep func(*service.Submission) bool
	}{
		"all":              {service.SubmissionFilter{}, func(*service.Submission) bool { return true }},
		"all, pages of 2":  {service.SubmissionFilter{Limit: 2}, func(*service.Submission) bool { return true }},
		"all, pages of 1":  {service.SubmissionFilter{Limit: 1}, func(*service.Submission) bool { return true }},
		"user":             {service.SubmissionFilter{User: "bob", Limit: 1}, func(x *service.Submission) bool { return x.User == "bob" }},
		"assignment":       {service.SubmissionFilter{Course: "8x", Assignment: "lab02", Limit: 3}, func(x *service.Submission) bool { return x.Assignment.Assignment == "lab02" }},
		"section":          {service.SubmissionFilter{Section: "2"}, func(x *service.Submission) bool { return x.Section == "2" }},
		"status":           {service.SubmissionFilter{Status: service.StatusQueued, Limit: 4}, func(x *service.Submission) bool { return x.ID != all[0].ID }},
		"graded, of alice": {service.SubmissionFilter{User: "alice", Status: service.StatusGraded}, func(x *service.Submission) bool { return x.ID == all[0].ID }},
		"time range": {service.SubmissionFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second), Limit: 3},
			func(x *service.Submission) bool {
				return !x.ReceivedAt.Before(t0.Add(time.Second)) && x.ReceivedAt.Before(t0.Add(3*time.Second))
			}},
		"nothing": {service.SubmissionFilter{User: "dave"}, func(*service.Submission) bool { return false }},
	} {
		if got, want := list(c.f), newestFirst(c.keep); !sameNewestFirst(got, want, all) {
			t.Errorf("%s: ListSubmissions = %v; want %v (ties in any order)", name, got, want)
		}
	}
	_, _, err := s.ListSubmissions(ctx, service.SubmissionFilter{After: "not a cursor"})
	wantCode(t, "a cursor the store did not make", err, service.EINVALID)
}

// sameNewestFirst reports whether got lists want's submissions, each once,
// in want's order but for submissions received at the same instant.
func sameNewestFirst(got, want []string, all []*service.Submission) bool {
	at := map[string]time.Time{}
	for _, s := range all {
		at[s.ID] = s.ReceivedAt
	}
	if len(got) != len(want) {
		return false
	}
	g, w := slices.Clone(got), slices.Clone(want)
	// Within equal times, sort by id: then the two must be equal.
	norm := func(ids []string) {
		slices.SortStableFunc(ids, func(a, b string) int {
			if c := at[b].Compare(at[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
	}
	norm(g)
	norm(w)
	return slices.Equal(g, w) && slices.Equal(got, slices.Compact(slices.Clone(got))) &&
		slices.IsSortedFunc(got, func(a, b string) int { return at[b].Compare(at[a]) })
}

// testRefusals: a user's refused submissions (error entries tied to no
// submission) since a time, newest first, at most so many.
func testRefusals(t *testing.T, s service.Store) {
	ctx := context.Background()
	a := service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}
	for i, e := range []service.LogEntry{
		{User: "alice", Type: service.LogError, Message: "refused 0"},
		{User: "alice", Type: service.LogError, Message: "refused 1"},
		{User: "bob", Type: service.LogError, Message: "bob's"},
		{User: "alice", Type: service.LogInfo, Message: "not a refusal"},
		{User: "alice", SubmissionID: "s1", Type: service.LogError, Message: "a submission's error"},
		{User: "alice", Type: service.LogError, Message: "refused 2"},
	} {
		e.Assignment, e.Timestamp = a, t0.Add(time.Duration(i)*time.Minute)
		if err := s.AppendLog(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	messages := func(since time.Time, limit int) []string {
		t.Helper()
		got, err := s.Refusals(ctx, "alice", since, limit)
		if err != nil {
			t.Fatal(err)
		}
		var m []string
		for _, e := range got {
			m = append(m, e.Message)
			if e.User != "alice" || e.Assignment != a || e.Timestamp.IsZero() {
				t.Errorf("a refusal reads back as %+v", e)
			}
		}
		return m
	}
	if got := messages(t0, 10); !slices.Equal(got, []string{"refused 2", "refused 1", "refused 0"}) {
		t.Errorf("Refusals = %v; want alice's three, newest first", got)
	}
	if got := messages(t0.Add(time.Minute), 10); !slices.Equal(got, []string{"refused 2", "refused 1"}) {
		t.Errorf("Refusals since the second = %v", got)
	}
	if got := messages(t0, 1); !slices.Equal(got, []string{"refused 2"}) {
		t.Errorf("Refusals, at most 1 = %v", got)
	}
}
