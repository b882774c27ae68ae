package service

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// What course staff do: grade submissions again, decide on the ones held
// for review, post a grade again. Every action is written to the log as a
// LogAudit entry naming who did it (Store.AuditLog reads them back).

// Which submissions of an assignment a batch regrade takes.
const (
	RegradeLatest = "latest" // each student's newest submission
	RegradeFailed = "failed" // every failed submission
)

// Batch is one regrade request of course staff: what it put back in the
// queue.
type Batch struct {
	ID string
	Assignment
	Which     string // RegradeLatest or RegradeFailed; "" for one submission
	Commit    string // the course repository's commit when it was asked; "" if unknown
	By        string
	At        time.Time
	Requeued  int // submissions put back in the queue
	Skipped   int // chosen, but queued or being graded already: left alone
	Submitted []string
}

// BatchProgress is how far a batch's regrades are.
type BatchProgress struct {
	ID       string
	Course   string
	ByStatus map[Status]int
	Total    int
	Done     int // graded, failed or needs_review since
	// Submissions are the batch's, newest first.
	Submissions []*Submission
}

// requeueParallel is how many requeues a batch has in flight at once.
const requeueParallel = 8

// currentCommit reads course's repository now, when the Courses can.
func (s *Service) currentCommit(ctx context.Context, course string) (string, error) {
	r, ok := s.courses.(CourseRefresher)
	if !ok {
		return "", nil
	}
	return r.RefreshCourse(ctx, course)
}

// staffSubmission returns submission id if who is staff of its course.
// Returns EFORBIDDEN for a student, ENOTFOUND for staff of other courses.
func (s *Service) staffSubmission(ctx context.Context, who Identity, id, what string) (*Submission, error) {
	if !who.Staff() {
		return nil, errNotStaff(what)
	}
	sub, err := s.store.Submission(ctx, id)
	if err != nil {
		return nil, err
	}
	if !who.StaffOf(sub.Course) {
		return nil, Errorf(ENOTFOUND, "There is no submission %q.", id)
	}
	return sub, nil
}

// audit writes what who did to the log.
func (s *Service) audit(ctx context.Context, who Identity, sub *Submission, message, detail string) {
	s.log.Info("staff action", "by", who.Name, "submission", sub.ID, "user", sub.User, "course", sub.Course,
		"section", sub.Section, "assignment", sub.Assignment.Assignment, "action", message)
	err := s.store.AppendLog(ctx, LogEntry{
		SubmissionID: sub.ID, User: sub.User, Assignment: sub.Assignment, Message: EscapeControls(message),
		Trace: detail, Type: LogAudit, Timestamp: s.now().UTC(), Actor: who.Name,
	})
	if err != nil {
		s.logger(sub).Warn("cannot write the audit entry to the store", "err", err)
	}
}

// wakeWorkers tells an idle worker that there is work; wakePosts, the
// posting loop.
func (s *Service) wakeWorkers() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) wakePosts() {
	select {
	case s.postWake <- struct{}{}:
	default:
	}
}

// Regrade grades submission id again, against its course repository as it
// is now (see Store.Requeue): its new grade is posted as a grading's is.
// Course staff of its course only.
//
// Returns EFORBIDDEN for a student, ENOTFOUND, ECONFLICT if it is queued or
// being graded, EUNAVAILABLE if the course repository cannot be read.
func (s *Service) Regrade(ctx context.Context, who Identity, id string) (*Batch, error) {
	sub, err := s.staffSubmission(ctx, who, id, "regrade submissions")
	if err != nil {
		return nil, err
	}
	if sub.Status == StatusQueued || sub.Status == StatusGrading {
		return nil, Errorf(ECONFLICT, "Submission %q is %s already.", id, sub.Status.Words())
	}
	commit, err := s.currentCommit(ctx, sub.Course)
	if err != nil {
		return nil, err
	}
	b := &Batch{ID: NewID(), Assignment: sub.Assignment, Commit: commit, By: who.Name, At: s.now().UTC()}
	if err := s.store.Requeue(ctx, id, Requeue{At: b.At, Batch: b.ID}); err != nil {
		return nil, err
	}
	b.Requeued, b.Submitted = 1, []string{id}
	s.wakeWorkers()
	s.audit(ctx, who, sub, fmt.Sprintf("asked for a regrade (it was %s%s)%s", sub.Status.Words(), gradeWords(sub), commitWords(commit)), "batch="+b.ID)
	return b, nil
}

func gradeWords(sub *Submission) string {
	if sub.Status == StatusGraded || sub.Status == StatusNeedsReview {
		return fmt.Sprintf(", %.4g", sub.Grade)
	}
	return ""
}

func commitWords(commit string) string {
	if commit == "" {
		return ""
	}
	return " against commit " + commit[:min(12, len(commit))]
}

// RegradeAssignment grades again the submissions of assignment a (every
// section when a.Section is "") that which chooses (RegradeLatest or
// RegradeFailed), against the course repository as it is now. Submissions
// queued or being graded are left alone. Course staff of a.Course only.
//
// Returns EFORBIDDEN, EINVALID for an unknown which or a missing course
// or assignment, EUNAVAILABLE if the course repository cannot be read or
// the regrades would take more than half of a bounded queue (MaxQueue).
func (s *Service) RegradeAssignment(ctx context.Context, who Identity, a Assignment, which string) (*Batch, error) {
	if !who.StaffOf(a.Course) {
		return nil, errNotStaff("regrade submissions")
	}
	if a.Assignment == "" {
		return nil, Errorf(EINVALID, "Name the assignment to regrade (assignment=...).")
	}
	f := SubmissionFilter{Course: a.Course, Section: a.Section, Assignment: a.Assignment}
	switch which {
	case RegradeLatest:
	case RegradeFailed:
		f.Status = StatusFailed
	default:
		return nil, Errorf(EINVALID, "which must be %q (each student's newest submission) or %q (every failed one), not %q.", RegradeLatest, RegradeFailed, which)
	}
	commit, err := s.currentCommit(ctx, a.Course)
	if err != nil {
		return nil, err
	}
	b := &Batch{ID: NewID(), Assignment: a, Which: which, Commit: commit, By: who.Name, At: s.now().UTC()}
	all, err := s.allSubmissions(ctx, who, f)
	if err != nil {
		return nil, err
	}
	var chosen []*Submission
	seen := map[string]bool{}
	for _, sub := range all { // newest first
		key := sub.User + "\x00" + sub.Section
		if which == RegradeLatest && seen[key] {
			continue
		}
		seen[key] = true
		if sub.Status == StatusQueued || sub.Status == StatusGrading {
			b.Skipped++
			continue
		}
		chosen = append(chosen, sub)
	}
	// Regrades must not crowd out what students submit: with a bound on
	// the queue, they may take at most half of it.
	if s.cfg.MaxQueue > 0 && len(chosen) > 0 {
		n, err := s.queued(ctx)
		if err != nil {
			return nil, err
		}
		if n+len(chosen) > s.cfg.MaxQueue/2 {
			return nil, Errorf(EUNAVAILABLE, "Regrading %d submissions now would take more than half of the queue (%d are waiting; it holds %d), so nothing was regraded. Try again when fewer are waiting, or a section at a time.",
				len(chosen), n, s.cfg.MaxQueue)
		}
	}
	// Requeued a few at a time; one that changed meanwhile (a worker took
	// it, another request requeued it) is skipped.
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, requeueParallel)
	var wg sync.WaitGroup
	for _, sub := range chosen {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := s.store.Requeue(ctx, sub.ID, Requeue{At: b.At, Batch: b.ID})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				b.Requeued++
				b.Submitted = append(b.Submitted, sub.ID)
			case ErrorCode(err) == ECONFLICT:
				b.Skipped++
			case firstErr == nil:
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if b.Requeued > 0 {
		s.wakeWorkers()
	}
	what := map[string]string{RegradeLatest: "the newest submission of each student", RegradeFailed: "every failed submission"}[which]
	s.audit(ctx, who, &Submission{Assignment: a}, fmt.Sprintf("asked for a regrade of %s of %s%s: %d requeued, %d left alone (queued or being graded)",
		what, a.Name(), commitWords(commit), b.Requeued, b.Skipped), "batch="+b.ID)
	if firstErr != nil {
		return b, firstErr
	}
	return b, nil
}

// Name returns the assignment as course/section/assignment.
func (a Assignment) Name() string {
	if a.Section == "" {
		return a.Course + "/" + a.Assignment
	}
	return a.Course + "/" + a.Section + "/" + a.Assignment
}

// Progress returns how far batch's regrades in course are. Course staff of
// course only.
func (s *Service) Progress(ctx context.Context, who Identity, course, batch string) (*BatchProgress, error) {
	if !who.StaffOf(course) {
		return nil, errNotStaff("follow regrades")
	}
	if batch == "" {
		return nil, Errorf(EINVALID, "Name the regrade (batch=...).")
	}
	all, err := s.allSubmissions(ctx, who, SubmissionFilter{Course: course, Batch: batch})
	if err != nil {
		return nil, err
	}
	p := &BatchProgress{ID: batch, Course: course, ByStatus: map[Status]int{}, Total: len(all), Submissions: all}
	for _, sub := range all {
		p.ByStatus[sub.Status]++
		if sub.Status != StatusQueued && sub.Status != StatusGrading {
			p.Done++
		}
	}
	if p.Total == 0 {
		return nil, Errorf(ENOTFOUND, "There is no regrade %q in course %q.", batch, course)
	}
	return p, nil
}

// Review accepts (its grade recorded and posted as a grading's would be)
// or rejects (failed, never posted) a submission held for review. Course
// staff of its course only.
//
// Returns EFORBIDDEN, ENOTFOUND, ECONFLICT if it is not waiting for review.
func (s *Service) Review(ctx context.Context, who Identity, id string, accept bool) (*Submission, error) {
	sub, err := s.staffSubmission(ctx, who, id, "review submissions")
	if err != nil {
		return nil, err
	}
	out := Outcome{Status: StatusFailed, FinishedAt: s.now().UTC(), Failure: &Failure{Code: FailureRejected,
		Message: "Course staff reviewed this submission and did not accept its grade, because the notebook interfered with grading. Ask them for details, or submit again."}}
	verb := "rejected"
	if accept {
		out = Outcome{Status: StatusGraded, Post: PostDisabled, FinishedAt: out.FinishedAt}
		if s.cfg.Poster != nil {
			out.Post, out.Policy = PostPending, s.cfg.PostPolicy
		}
		verb = "accepted"
	}
	if err := s.store.Review(ctx, id, out); err != nil {
		return nil, err
	}
	evidence := ""
	if sub.Failure != nil {
		evidence = sub.Failure.Message
	}
	s.audit(ctx, who, sub, fmt.Sprintf("%s the grade held for review (%.4g)", verb, sub.Grade), evidence)
	if out.Post == PostPending {
		s.wakePosts()
	}
	return s.store.Submission(ctx, id)
}

// Repost posts again the grade of submission id's student for its
// assignment: the grade the posting policy selects, which need not be
// this submission's. Course staff of its course only.
//
// Returns EFORBIDDEN, ENOTFOUND (also when the grade was never to be
// posted), ECONFLICT while a post of it is in flight, EUNPROCESSABLE when
// posting is off.
func (s *Service) Repost(ctx context.Context, who Identity, id string) (*PostTask, error) {
	sub, err := s.staffSubmission(ctx, who, id, "post grades")
	if err != nil {
		return nil, err
	}
	if s.cfg.Poster == nil {
		return nil, Errorf(EUNPROCESSABLE, "Posting grades to edX is off in this service (POST_GRADE).")
	}
	t, err := s.store.Repost(ctx, sub.Assignment, sub.User, s.now().UTC())
	if err != nil {
		return nil, err
	}
	s.wakePosts()
	s.audit(ctx, who, sub, fmt.Sprintf("asked for the grade to be posted to edX again (%.4g, of submission %s)", t.Want.Grade, t.Want.SubmissionID), "")
	return t, nil
}

// AuditLog returns what course staff did in course over the last days,
// newest first, at most MaxListLimit entries. Course staff of course only.
func (s *Service) AuditLog(ctx context.Context, who Identity, course string, days int) ([]LogEntry, error) {
	if !who.StaffOf(course) {
		return nil, errNotStaff("read the audit log")
	}
	return s.store.AuditLog(ctx, course, s.now().Add(-time.Duration(days)*24*time.Hour), MaxListLimit)
}
