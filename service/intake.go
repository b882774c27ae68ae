package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/otter-service/otter-service/grading"
)

// Identity is an authenticated user.
type Identity struct {
	Name  string
	Admin bool // staff of every course: may see every submission
	// Courses are the courses whose staff the user is (per-course staff
	// groups): they may see those courses' submissions.
	Courses []string
}

// StaffOf reports whether who is staff of course.
func (who Identity) StaffOf(course string) bool {
	return who.Admin || course != "" && slices.Contains(who.Courses, course)
}

// Staff reports whether who is staff of any course.
func (who Identity) Staff() bool { return who.Admin || len(who.Courses) > 0 }

// errNotStaff refuses what only course staff may do.
func errNotStaff(what string) error {
	return Errorf(EFORBIDDEN, "Only course staff may %s (staff of one course: name it, course=...).", what)
}

// Service accepts submissions and grades them. Build it with New; Run starts
// the workers.
type Service struct {
	store    Store
	courses  Courses
	runner   grading.Runner
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	wake     chan struct{}
	postWake chan struct{}
	qc       queueCache
	times    gradingTimes // of recent gradings, for estimates
}

// Config tunes the service. Zero values take the defaults noted.
type Config struct {
	Workers               int           // concurrent gradings; default 1
	Lease                 time.Duration // how long a claim lasts without renewal; default 1m
	MaxAttempts           int           // claims before an interrupted submission fails; default 3
	PollInterval          time.Duration // how often idle workers look for work; default 2s
	ShutdownGrace         time.Duration // how long running gradings may finish after Run's context ends; default 30s
	VerboseLogging        bool          // also write info entries to the store's log
	Poster                Poster        // posts grades to the gradebook; nil: posting is disabled
	Observer              Observer      // told what happens, for metrics; nil: nobody
	MaxQueue              int           // queued submissions beyond which intake refuses (EUNAVAILABLE); 0: no bound
	MaxPerUser            int           // one user's submissions queued or grading beyond which intake refuses (ELIMIT); 0: no bound
	UnavailableRetry      time.Duration // how long a submission whose course materials cannot be read steps aside; default 30s
	PostRetryPeriod       time.Duration // how long a post is retried after grading; default 6h
	PostBackoffBase       time.Duration // the first retry's delay; default 30s
	PostBackoffMax        time.Duration // the longest delay between retries; default 30m
	MaxHeld               int           // bodies held for sign-in beyond which more are refused (EUNAVAILABLE); 0: 1000
	MaxHeldBytes          int64         // their bytes beyond which more are refused; 0: 1 GiB
	MaxHeldPerClient      int           // bodies held for one client beyond which its next is refused (ELIMIT); 0: 100
	MaxHeldBytesPerClient int64         // their bytes beyond which its next is refused; 0: MaxHeldBytes/4
	HeldSweep             time.Duration // how often expired held bodies are deleted; default 1m
	PostTimeout           time.Duration // how long one post may wait for edX's answer; default 30s
	PostPolicy            PostPolicy    // which of a student's grades edX keeps; default PostLatest
	Now                   func() time.Time
}

// New returns a Service.
func New(store Store, courses Courses, runner grading.Runner, cfg Config, log *slog.Logger) *Service {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.UnavailableRetry <= 0 {
		cfg.UnavailableRetry = 30 * time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.HeldSweep <= 0 {
		cfg.HeldSweep = time.Minute
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = 1000
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = 1 << 30
	}
	if cfg.MaxHeldPerClient <= 0 {
		cfg.MaxHeldPerClient = 100
	}
	if cfg.MaxHeldBytesPerClient <= 0 {
		cfg.MaxHeldBytesPerClient = cfg.MaxHeldBytes / 4
	}
	if cfg.PostTimeout <= 0 {
		cfg.PostTimeout = 30 * time.Second
	}
	if cfg.PostPolicy == "" {
		cfg.PostPolicy = PostLatest
	}
	if cfg.PostRetryPeriod <= 0 {
		cfg.PostRetryPeriod = 6 * time.Hour
	}
	if cfg.PostBackoffBase <= 0 {
		cfg.PostBackoffBase = 30 * time.Second
	}
	if cfg.PostBackoffMax <= 0 {
		cfg.PostBackoffMax = 30 * time.Minute
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, courses: courses, runner: runner, cfg: cfg, log: log, now: now, wake: make(chan struct{}, 1), postWake: make(chan struct{}, 1)}
}

// Submit validates a submission body (the Submit button's {"nb": ...} or a
// bare notebook), checks that its course knows the assignment, and durably
// queues it for grading. name is the notebook's file name as the request
// gave it (the Submit button's notebook path, an upload's file name; ""
// for none): the notebook is graded under it if it is usable (see
// CleanNotebookName), else under the name its otter.Notebook(...) call
// names, else under the assignment's name.
//
// Returns EINVALID for a body that is not JSON, EUNPROCESSABLE for one that is
// not a gradable notebook or names an assignment the course does not know,
// and EUNAVAILABLE when the course materials or the store cannot be reached.
func (s *Service) Submit(ctx context.Context, who Identity, body []byte, name string) (*Submission, error) {
	notebook, a, name, err := s.check(ctx, who, body, name)
	if err != nil {
		return nil, err
	}
	if err := s.admit(ctx, who); err != nil {
		if code := ErrorCode(err); code == ELIMIT || errors.Is(err, errQueueFull) {
			s.refused(ctx, who, a, err) // not when the store itself cannot be reached
		}
		return nil, err
	}
	return s.queue(ctx, NewID(), who, a, name, notebook)
}

// check parses a submission body and resolves its assignment, logging a
// refusal, and chooses the notebook's file name (given: what the request
// said).
func (s *Service) check(ctx context.Context, who Identity, body []byte, given string) (notebook []byte, a Assignment, name string, err error) {
	notebook, cells, a, err := parseSubmission(body)
	if err != nil {
		s.refused(ctx, who, a, err)
		return nil, a, "", err
	}
	if _, err := s.courses.Resolve(ctx, a); err != nil {
		s.refused(ctx, who, a, err)
		return nil, a, "", err
	}
	return notebook, a, chooseNotebookName(given, cells), nil
}

func (s *Service) queue(ctx context.Context, id string, who Identity, a Assignment, name string, notebook []byte) (*Submission, error) {
	sub := &Submission{
		ID:           id,
		Assignment:   a,
		NotebookName: name,
		User:         who.Name,
		Status:       StatusQueued,
		ReceivedAt:   s.now().UTC(),
	}
	if err := s.store.CreateSubmission(ctx, sub, notebook); err != nil {
		return nil, err
	}
	s.queuedOne()
	s.wakeWorkers()
	s.logger(sub).Info("submission accepted", "bytes", len(notebook), "notebook", sub.GradingName())
	s.record(ctx, sub, LogInfo, "submission accepted", "")
	return sub, nil
}

// HoldTTL is how long a held submission waits for its sender to sign in.
const HoldTTL = 15 * time.Minute

// errHeldFull refuses a body to hold when the bodies waiting for sign-in
// are at their bound.
var errHeldFull = Errorf(EUNAVAILABLE, "Too many notebooks are waiting for their senders to sign in right now. Please sign in to the grading service first (open it from the Hub's Services menu), or submit again in a few minutes.")

// errClientHeldFull refuses a body to hold when its client (its address)
// already has as many waiting as one client may.
var errClientHeldFull = Errorf(ELIMIT, "Too many notebooks from your address are waiting for their senders to sign in. Please sign in to the grading service first (open it from the Hub's Services menu), or submit again in a few minutes.")

// sweepHeld deletes held bodies as they expire, until ctx ends.
func (s *Service) sweepHeld(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeldSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := storeContext(ctx)
		if err := s.store.DropHeld(sctx, "", s.now()); err != nil {
			s.log.Warn("cannot delete expired held submission bodies; will try again", "err", err)
		}
		cancel()
	}
}

// Hold keeps the body of a submission whose sender is not signed in yet,
// with the notebook's file name chosen as Submit chooses it (from name, the
// request's), after the checks Submit makes (so a notebook that would be
// refused is refused now), and returns the key it is held under. Nothing is
// queued: SubmitHeld queues it once the sender is known. client is an
// opaque key of the sender's address (see HeldSubmission.Client).
//
// Returns the errors of Submit, EUNAVAILABLE when as many bodies as may be
// are held, and ELIMIT when as many as may be are held for client.
func (s *Service) Hold(ctx context.Context, body []byte, name, client string) (string, error) {
	_, _, name, err := s.check(ctx, Identity{}, body, name)
	if err != nil {
		return "", err
	}
	if err := s.admit(ctx, Identity{}); err != nil {
		return "", err
	}
	// Held bodies are nobody's yet: bounded in number and bytes (and
	// counted in the queue's bound by admit), swept when they expire.
	u, err := s.store.HeldUsage(ctx, s.now(), client)
	if err != nil {
		return "", err
	}
	size := int64(len(body))
	if client != "" && (u.ClientCount >= s.cfg.MaxHeldPerClient || u.ClientBytes+size > s.cfg.MaxHeldBytesPerClient) {
		return "", errClientHeldFull
	}
	if u.Count >= s.cfg.MaxHeld || u.Bytes+size > s.cfg.MaxHeldBytes {
		return "", errHeldFull
	}
	key := NewID()
	if err := s.store.Hold(ctx, key, HeldSubmission{Body: body, NotebookName: name, Client: client}, s.now().Add(HoldTTL)); err != nil {
		return "", err
	}
	return key, nil
}

// SubmitHeld queues the submission held under key for who, who has just
// signed in. The held key becomes the submission's id, so finishing one
// sign-in twice queues one submission.
//
// Returns ENOTFOUND if nothing is held under key (it expired, or was
// another user's and already taken), and the errors of Submit.
func (s *Service) SubmitHeld(ctx context.Context, who Identity, key string) (*Submission, error) {
	held, err := s.store.Held(ctx, key, s.now())
	if ErrorCode(err) == ENOTFOUND {
		return s.queuedBefore(ctx, who, key)
	}
	if err != nil {
		return nil, err
	}
	// The name chosen when it was held is chosen again (a body held by an
	// earlier version has none: the notebook's own is looked for).
	notebook, a, name, err := s.check(ctx, who, held.Body, held.NotebookName)
	if err != nil {
		return nil, err
	}
	if err := s.admit(ctx, who); err != nil {
		return nil, err
	}
	sub, err := s.queue(ctx, key, who, a, name, notebook)
	if ErrorCode(err) == ECONFLICT {
		sub, err = s.queuedBefore(ctx, who, key) // the callback was replayed
	}
	if err != nil {
		return nil, err
	}
	if derr := s.store.DropHeld(ctx, key, s.now()); derr != nil {
		s.log.Warn("could not drop a held submission body; it expires by itself", "key", key, "err", derr)
	}
	return sub, nil
}

// queuedBefore returns the submission an earlier finish of the same sign-in
// queued under key, if it is who's.
func (s *Service) queuedBefore(ctx context.Context, who Identity, key string) (*Submission, error) {
	if sub, err := s.store.Submission(ctx, key); err == nil && sub.User == who.Name {
		return sub, nil
	}
	return nil, Errorf(ENOTFOUND, "Your submission waited too long for you to sign in and was not kept; submit again.")
}

// SubmissionStatus is a submission as the user asking sees it.
type SubmissionStatus struct {
	*Submission
	QueuePosition int // 1 for the next to be graded; 0 unless queued
	// EstimatedWait is how long it may take until it is graded, from
	// recent gradings (see estimateWait); 0 when unknown or not queued.
	EstimatedWait time.Duration
	// Questions are the submission's questions as the user may see them
	// (ViewQuestions); they stand in for Submission.Questions, the full
	// record.
	Questions []QuestionView
	// Feedback is the submission's feedback as the user may see it
	// (ViewFeedback), in place of Submission.Feedback.
	Feedback []FeedbackView
}

// Status returns a submission for who. Students see only their own, and of
// its questions and feedback what ViewQuestions and ViewFeedback show them;
// staff (Identity.Admin) see everything. Returns ENOTFOUND if there is no such submission or it is
// someone else's.
func (s *Service) Status(ctx context.Context, who Identity, id string) (*SubmissionStatus, error) {
	sub, err := s.store.Submission(ctx, id)
	if err != nil {
		return nil, err
	}
	if sub.User != who.Name && !who.StaffOf(sub.Course) {
		return nil, Errorf(ENOTFOUND, "There is no submission %q.", id)
	}
	staff := who.StaffOf(sub.Course)
	st := &SubmissionStatus{Submission: sub, Questions: ViewQuestions(sub.Questions, staff),
		Feedback: ViewFeedback(sub.Feedback, staff)}
	if sub.Status == StatusQueued {
		pos, err := s.store.QueuePosition(ctx, id)
		switch ErrorCode(err) {
		case "":
			st.QueuePosition = pos
			st.EstimatedWait = s.estimateWait(pos)
		case ENOTFOUND: // claimed meanwhile
		default:
			return nil, err
		}
	}
	return st, nil
}

// Notebook returns the notebook of submission id and the submission, for
// course staff (Admin) only.
//
// Returns EFORBIDDEN for anyone else, ENOTFOUND if there is no such
// submission.
func (s *Service) Notebook(ctx context.Context, who Identity, id string) (*Submission, []byte, error) {
	if !who.Staff() {
		return nil, nil, errNotStaff("download submitted notebooks")
	}
	sub, err := s.store.Submission(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !who.StaffOf(sub.Course) {
		return nil, nil, Errorf(ENOTFOUND, "There is no submission %q.", id)
	}
	nb, err := s.store.Notebook(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	s.audit(ctx, who, sub, "downloaded the notebook", "")
	return sub, nb, nil
}

// ListSubmissions returns the submissions f selects that who may see,
// newest first, a page at a time (see Store.ListSubmissions): a student's
// own only (f.User is who's name), course staff anyone's: Admin in any
// course, the staff of a course (Courses) in that course, named by
// f.Course.
//
// Returns EFORBIDDEN when a student asks for another user's, EINVALID for
// a status that does not exist or a cursor the store did not give.
func (s *Service) ListSubmissions(ctx context.Context, who Identity, f SubmissionFilter) ([]*Submission, string, error) {
	if !who.StaffOf(f.Course) {
		if f.User != "" && f.User != who.Name {
			return nil, "", Errorf(EFORBIDDEN, "You may list only your own submissions.")
		}
		f.User = who.Name
	}
	switch f.Status {
	case "", StatusQueued, StatusGrading, StatusGraded, StatusFailed, StatusNeedsReview:
	default:
		return nil, "", Errorf(EINVALID, "There is no status %q: it is one of queued, grading, graded, failed and needs_review.", f.Status)
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return nil, "", Errorf(EINVALID, "A page holds 1 to %d submissions, not %d.", MaxListLimit, f.Limit)
	}
	return s.store.ListSubmissions(ctx, f)
}

// RefusalsShown is how long a refused submission shows in its sender's
// list, and MaxRefusalsShown how many at most.
const (
	RefusalsShown    = 7 * 24 * time.Hour
	MaxRefusalsShown = 20
)

// Refusals returns user's submissions refused at intake in the last
// RefusalsShown (at most MaxRefusalsShown, newest first), each with the
// sentence the sender was answered: who's own, or, for the staff of
// course (all staff when course is ""), anyone's in it. Nothing of the
// notebook is kept.
//
// Returns EFORBIDDEN when a student asks for another user's.
func (s *Service) Refusals(ctx context.Context, who Identity, user, course string) ([]LogEntry, error) {
	if user != who.Name && !who.StaffOf(course) {
		return nil, Errorf(EFORBIDDEN, "You may list only your own submissions.")
	}
	list, err := s.store.Refusals(ctx, user, s.now().Add(-RefusalsShown), MaxRefusalsShown)
	var shown []LogEntry
	for _, e := range list {
		if user != who.Name && !who.Admin && e.Course != course {
			continue // another course's
		}
		e.Message = strings.TrimPrefix(e.Message, refusedPrefix)
		shown = append(shown, e)
	}
	return shown, err
}

// refusedPrefix begins the log message of a refused submission.
const refusedPrefix = "submission refused: "

// refused logs a refused submission, as the old service did, for course
// staff to see: an error entry with no submission id.
func (s *Service) refused(ctx context.Context, who Identity, a Assignment, err error) {
	s.log.Info("submission refused", "user", who.Name, "course", a.Course, "section", a.Section,
		"assignment", a.Assignment, "code", ErrorCode(err), "reason", ErrorMessage(err))
	s.record(ctx, &Submission{User: who.Name, Assignment: a}, LogError, refusedPrefix+ErrorMessage(err), "")
}

// NewID returns a random submission id: 32 lowercase hex digits.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// logger returns the service logger with the submission's identifying fields.
func (s *Service) logger(sub *Submission) *slog.Logger {
	return s.log.With("submission", sub.ID, "user", sub.User, "course", sub.Course, "section", sub.Section, "assignment", sub.Assignment.Assignment)
}

// record writes an entry to the store's log: errors always, info entries only
// with VerboseLogging. A failure to log is itself only logged.
func (s *Service) record(ctx context.Context, sub *Submission, typ, message, trace string) {
	if typ == LogInfo && !s.cfg.VerboseLogging {
		return
	}
	err := s.store.AppendLog(ctx, LogEntry{
		SubmissionID: sub.ID, User: sub.User, Assignment: sub.Assignment,
		Message: EscapeControls(message), Trace: EscapeControls(trace), Type: typ, Timestamp: s.now().UTC(),
	})
	if err != nil {
		s.logger(sub).Warn("cannot write log entry to the store", "err", err)
	}
}

// EscapeControls writes the control characters in s (but newline and tab),
// bidirectional formatting characters and invalid UTF-8 as visible escapes
// (\x1b, \u202e, \xff), so that what a notebook printed cannot move a
// terminal's cursor, hide text or reorder it in the logs staff read.
func EscapeControls(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || unicode.Is(unicode.Bidi_Control, r) || r >= 0x80 && r < 0xa0 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x20 && r != '\n' && r != '\t' || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.Is(unicode.Bidi_Control, r) || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
