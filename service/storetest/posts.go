package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// gradedAs creates a submission of user's, received at received, and
// records it graded at finished with grade and the given post status and
// policy.
func gradedAs(t *testing.T, s service.Store, user string, received time.Time, grade float64, post service.PostStatus, policy service.PostPolicy, finished time.Time) *service.Submission {
	t.Helper()
	sub := newSub(0, user)
	sub.ReceivedAt = received
	create(t, s, sub, []byte("{}"))
	got, l := claim(t, s, finished.Add(-time.Minute))
	if got == nil || got.ID != sub.ID {
		t.Fatalf("claimed %+v, want %s", got, sub.ID)
	}
	if err := s.Finish(context.Background(), l, service.Outcome{Status: service.StatusGraded, Grade: grade, Post: post, Policy: policy, FinishedAt: finished}); err != nil {
		t.Fatal(err)
	}
	return sub
}

// graded is gradedAs for alice, grade 0.5, received i seconds after t0.
func graded(t *testing.T, s service.Store, i int, post service.PostStatus, finished time.Time) *service.Submission {
	t.Helper()
	return gradedAs(t, s, "alice", t0.Add(time.Duration(i)*time.Second), 0.5, post, "", finished)
}

func claimPost(t *testing.T, s service.Store, now time.Time) (*service.PostTask, *service.Lease) {
	t.Helper()
	job, err := s.Claim(context.Background(), service.KindPost, now, time.Minute)
	if err != nil {
		t.Fatalf("Claim(post): %v", err)
	}
	if job == nil {
		return nil, nil
	}
	if job.Lease == nil || job.Post == nil || job.Lease.Kind != service.KindPost || job.Lease.ID != job.Post.Key {
		t.Fatalf("Claim(post) = %+v: want a post lease on its post", job)
	}
	return job.Post, job.Lease
}

func finishPost(t *testing.T, s service.Store, l *service.Lease, r service.PostResult) {
	t.Helper()
	if err := s.FinishPost(context.Background(), l, r); err != nil {
		t.Fatalf("FinishPost(%s): %v", r.Outcome, err)
	}
}

func postOf(t *testing.T, s service.Store, sub *service.Submission) service.Post {
	t.Helper()
	got, err := s.Submission(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Post
}

func task(t *testing.T, s service.Store, sub *service.Submission) *service.PostTask {
	t.Helper()
	pt, err := s.PostTask(context.Background(), sub.Assignment, sub.User)
	if err != nil {
		t.Fatalf("PostTask: %v", err)
	}
	return pt
}

func grade(sub *service.Submission, g float64) service.PostedGrade {
	return service.PostedGrade{SubmissionID: sub.ID, Grade: g, ReceivedAt: sub.ReceivedAt}
}

// testPosts: one post through retries, an abandoned attempt and success.
func testPosts(t *testing.T, s service.Store) {
	ctx := context.Background()
	done := t0.Add(time.Hour)
	sub := graded(t, s, 0, service.PostPending, done)
	if p := postOf(t, s, sub); p.Status != service.PostPending || p.Attempts != 0 {
		t.Fatalf("after grading: post %+v, want pending", p)
	}
	pt := task(t, s, sub)
	if pt.Key != service.PostKey(sub.Assignment, "alice") || pt.User != "alice" || pt.Assignment != sub.Assignment ||
		!pt.Want.Same(grade(sub, 0.5)) || pt.Status != service.TaskQueued || !pt.NextAt.Equal(done) || !pt.WantSince.Equal(done) {
		t.Fatalf("post after grading = %+v; want %s's grade 0.5 due at %v", pt, sub.ID, done)
	}
	if p, _ := claimPost(t, s, done.Add(-time.Second)); p != nil {
		t.Fatalf("claimed a post before it was due: %+v", p)
	}
	p, l1 := claimPost(t, s, done)
	if p == nil || !p.InFlight.Same(grade(sub, 0.5)) || p.Attempts != 1 || p.Interrupted.SubmissionID != "" || p.Status != service.TaskPosting {
		t.Fatalf("Claim(post) = %+v, want %s's grade in flight, attempt 1", p, sub.ID)
	}
	if p, _ := claimPost(t, s, done.Add(30*time.Second)); p != nil {
		t.Fatalf("claimed a post another worker holds: %+v", p)
	}
	finishPost(t, s, l1, service.PostResult{Outcome: service.PostRetry, Error: "edX answered 503", At: done, NextAt: done.Add(5 * time.Minute)})
	if got := postOf(t, s, sub); got.Status != service.PostPending || got.LastError != "edX answered 503" || !got.NextAt.Equal(done.Add(5*time.Minute)) || got.Attempts != 1 {
		t.Fatalf("after a failed attempt: post %+v", got)
	}
	if p, _ := claimPost(t, s, done.Add(4*time.Minute)); p != nil {
		t.Fatalf("claimed a post before its retry was due: %+v", p)
	}
	// An attempt that never finishes (its worker died) is due again when
	// its lease expires, posting the same grade; the dead worker's lease
	// is then worthless.
	_, l2 := claimPost(t, s, done.Add(5*time.Minute))
	p, l3 := claimPost(t, s, done.Add(6*time.Minute))
	if p == nil || p.Attempts != 3 || !p.InFlight.Same(grade(sub, 0.5)) || !p.Interrupted.Same(grade(sub, 0.5)) {
		t.Fatalf("after an abandoned attempt: Claim(post) = %+v, want attempt 3 of the same grade, the abandoned one interrupted", p)
	}
	wantCode(t, "FinishPost with an expired lease", s.FinishPost(ctx, l2, service.PostResult{Outcome: service.PostApplied, At: done}), service.ECONFLICT)
	posted := done.Add(6*time.Minute + time.Second)
	finishPost(t, s, l3, service.PostResult{Outcome: service.PostApplied, At: posted})
	if got := postOf(t, s, sub); got.Status != service.PostPosted || !got.PostedAt.Equal(posted) || !got.Confirmed || got.Attempts != 3 {
		t.Fatalf("after posting: post %+v", got)
	}
	if pt := task(t, s, sub); pt.Status != service.TaskPosted || !pt.Sent.Same(grade(sub, 0.5)) || !pt.Confirmed {
		t.Fatalf("post after posting = %+v", pt)
	}
	wantCode(t, "FinishPost after the post was finished", s.FinishPost(ctx, l3, service.PostResult{Outcome: service.PostRefused, At: posted}), service.ECONFLICT)
	if p, _ := claimPost(t, s, done.Add(24*time.Hour)); p != nil {
		t.Fatalf("claimed a posted grade: %+v", p)
	}
	// A retried Finish of the grading changes nothing.
	if c, _ := s.Counts(ctx); c.PostsPending != 0 {
		t.Errorf("Counts.PostsPending = %d after posting, want 0", c.PostsPending)
	}
}

// testNewestGradeWins: a newer grade selected while an older one is in
// flight, and unanswered, is posted after it; an older grade graded late
// is never posted over a newer one.
func testNewestGradeWins(t *testing.T, s service.Store) {
	at := t0.Add(time.Hour)
	zero := gradedAs(t, s, "dana", t0, 0, service.PostPending, service.PostLatest, at)
	p, l := claimPost(t, s, at)
	if p == nil || !p.InFlight.Same(grade(zero, 0)) {
		t.Fatalf("Claim(post) = %+v, want the zero in flight", p)
	}
	perfect := gradedAs(t, s, "dana", t0.Add(time.Minute), 1, service.PostPending, service.PostLatest, at.Add(10*time.Second))
	if p, _ := claimPost(t, s, at.Add(20*time.Second)); p != nil {
		t.Fatalf("claimed a second post of one student's assignment while one is in flight: %+v", p)
	}
	if pt := task(t, s, zero); pt.Status != service.TaskPosting || !pt.Want.Same(grade(perfect, 1)) || !pt.InFlight.Same(grade(zero, 0)) {
		t.Fatalf("post while the zero is in flight = %+v; want the perfect grade selected, the zero still in flight", pt)
	}
	if got := postOf(t, s, zero); got.Status != service.PostReplaced || got.By != perfect.ID || got.Confirmed {
		t.Errorf("the zero's post while in flight = %+v; want on its way (replaced, unconfirmed) by %s, not superseded", got, perfect.ID)
	}
	// edX did not answer: the zero may be applied, even late.
	follow := at.Add(2 * time.Minute)
	finishPost(t, s, l, service.PostResult{Outcome: service.PostUnanswered, Error: "no answer", At: at.Add(30 * time.Second), NextAt: follow})
	if got := postOf(t, s, zero); got.Status != service.PostReplaced || got.By != perfect.ID || got.Confirmed || got.PostedAt.IsZero() {
		t.Errorf("the zero's post = %+v; want sent (unconfirmed), since replaced by %s", got, perfect.ID)
	}
	if got := postOf(t, s, perfect); got.Status != service.PostPending || !got.NextAt.Equal(follow) || got.Attempts != 0 {
		t.Errorf("the perfect grade's post = %+v; want pending, due at %v", got, follow)
	}
	if p, _ := claimPost(t, s, follow.Add(-time.Second)); p != nil {
		t.Fatalf("posted again before the follow-up was due: %+v", p)
	}
	p, l = claimPost(t, s, follow)
	if p == nil || !p.InFlight.Same(grade(perfect, 1)) || p.Attempts != 1 || !p.Sent.Same(grade(zero, 0)) || p.Confirmed {
		t.Fatalf("follow-up Claim(post) = %+v; want the perfect grade in flight after the unconfirmed zero", p)
	}
	finishPost(t, s, l, service.PostResult{Outcome: service.PostApplied, At: follow.Add(time.Second)})
	if got := postOf(t, s, perfect); got.Status != service.PostPosted || !got.Confirmed {
		t.Errorf("the perfect grade's post = %+v; want posted", got)
	}
	// An older submission graded late (a regrade queue, a slow grading)
	// is not selected over the newer one.
	late := gradedAs(t, s, "dana", t0.Add(30*time.Second), 0.5, service.PostPending, service.PostLatest, follow.Add(time.Minute))
	if got := postOf(t, s, late); got.Status != service.PostSuperseded || got.By != perfect.ID || !got.PostedAt.IsZero() {
		t.Errorf("an older grade graded late: post %+v; want superseded by %s, never sent", got, perfect.ID)
	}
	if p, _ := claimPost(t, s, follow.Add(time.Hour)); p != nil {
		t.Errorf("claimed a post with nothing new to post: %+v", p)
	}
	// A newer grade after the post completed is due at once.
	newest := gradedAs(t, s, "dana", t0.Add(2*time.Minute), 0.75, service.PostPending, service.PostLatest, follow.Add(2*time.Minute))
	if p, _ := claimPost(t, s, follow.Add(2*time.Minute)); p == nil || !p.InFlight.Same(grade(newest, 0.75)) {
		t.Errorf("Claim(post) after a newer grade = %+v; want it in flight", p)
	}
}

// testBestGradeWins: with PostBest, a lower grade is never posted over a
// higher one.
func testBestGradeWins(t *testing.T, s service.Store) {
	at := t0.Add(time.Hour)
	half := gradedAs(t, s, "erin", t0, 0.5, service.PostPending, service.PostBest, at)
	lower := gradedAs(t, s, "erin", t0.Add(time.Minute), 0.25, service.PostPending, service.PostBest, at.Add(time.Second))
	if pt := task(t, s, half); !pt.Want.Same(grade(half, 0.5)) {
		t.Fatalf("best of 0.5 and 0.25: post wants %+v", pt.Want)
	}
	if got := postOf(t, s, lower); got.Status != service.PostSuperseded || got.By != half.ID {
		t.Errorf("the lower grade's post = %+v; want superseded by %s", got, half.ID)
	}
	higher := gradedAs(t, s, "erin", t0.Add(2*time.Minute), 0.75, service.PostPending, service.PostBest, at.Add(2*time.Second))
	p, _ := claimPost(t, s, at.Add(time.Minute))
	if p == nil || !p.InFlight.Same(grade(higher, 0.75)) {
		t.Fatalf("Claim(post) = %+v; want the best grade, 0.75", p)
	}
}

// testPostRefused: a refused post fails with its reason, and a newer grade
// is posted anew.
func testPostRefused(t *testing.T, s service.Store) {
	at := t0.Add(time.Hour)
	first := gradedAs(t, s, "finn", t0, 0.5, service.PostPending, "", at)
	_, l := claimPost(t, s, at)
	finishPost(t, s, l, service.PostResult{Outcome: service.PostRefused, Error: "edX refused the grade: User not found.", At: at})
	if got := postOf(t, s, first); got.Status != service.PostFailed || got.LastError != "edX refused the grade: User not found." {
		t.Fatalf("refused post = %+v", got)
	}
	if p, _ := claimPost(t, s, at.Add(time.Hour)); p != nil {
		t.Fatalf("claimed a refused post: %+v", p)
	}
	second := gradedAs(t, s, "finn", t0.Add(time.Minute), 1, service.PostPending, "", at.Add(2*time.Hour))
	if got := postOf(t, s, second); got.Status != service.PostPending || got.LastError != "" {
		t.Errorf("a newer grade after a refusal: post %+v; want pending anew", got)
	}
	if p, _ := claimPost(t, s, at.Add(2*time.Hour)); p == nil || !p.InFlight.Same(grade(second, 1)) {
		t.Errorf("Claim(post) = %+v; want the newer grade", p)
	}
}

// testNewGradeKeepsTheWait: a grade selected while the post waits (edX
// down, or a post without an answer that edX may still apply) is posted
// when the wait ends, not at once.
func testNewGradeKeepsTheWait(t *testing.T, s service.Store) {
	at := t0.Add(time.Hour)
	first := gradedAs(t, s, "gus", t0, 0.5, service.PostPending, "", at)
	_, l := claimPost(t, s, at)
	wait := at.Add(10 * time.Minute)
	finishPost(t, s, l, service.PostResult{Outcome: service.PostRetry, Error: "edX answered 503", At: at, NextAt: wait})
	second := gradedAs(t, s, "gus", t0.Add(time.Minute), 1, service.PostPending, "", at.Add(time.Minute))
	if got := postOf(t, s, second); got.Status != service.PostPending || !got.NextAt.Equal(wait) {
		t.Errorf("a grade selected during a wait: post %+v; want pending, due at %v", got, wait)
	}
	if got := postOf(t, s, first); got.Status != service.PostSuperseded {
		t.Errorf("the first grade's post = %+v; want superseded", got)
	}
	if p, _ := claimPost(t, s, wait.Add(-time.Second)); p != nil {
		t.Fatalf("claimed before the wait ended: %+v", p)
	}
	if p, _ := claimPost(t, s, wait); p == nil || !p.InFlight.Same(grade(second, 1)) || p.Attempts != 1 {
		t.Fatalf("Claim(post) at the end of the wait = %+v; want the new grade, attempt 1", p)
	}
}

func testPostsDisabled(t *testing.T, s service.Store) {
	sub := graded(t, s, 0, service.PostDisabled, t0.Add(time.Hour))
	if p, _ := claimPost(t, s, t0.Add(48*time.Hour)); p != nil {
		t.Fatalf("claimed a post with posting disabled: %+v", p)
	}
	if got := postOf(t, s, sub); got.Status != service.PostDisabled {
		t.Fatalf("post %+v, want disabled", got)
	}
}

// testConcurrentPostClaims: however many workers claim at once, each
// student's post is held by one of them.
func testConcurrentPostClaims(t *testing.T, s service.Store) {
	const students = 4
	at := t0.Add(time.Hour)
	for i := 0; i < students; i++ {
		gradedAs(t, s, "student"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Second), 1, service.PostPending, "", at)
	}
	seen := claimConcurrently(t, s, service.KindPost, at.Add(time.Minute))
	if len(seen) != students {
		t.Errorf("claimed %d distinct posts, want %d", len(seen), students)
	}
	for key, c := range seen {
		if c != 1 {
			t.Errorf("post %s claimed %d times while its lease was held", key, c)
		}
	}
}
