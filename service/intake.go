package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/otter-service/otter-service/grading"
)

// Identity is an authenticated user.
type Identity struct {
	Name  string
	Admin bool // may see every submission
}

// Service accepts submissions and grades them. Build it with New; Run starts
// the workers.
type Service struct {
	store   Store
	courses Courses
	runner  grading.Runner
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	wake    chan struct{}
}

// Config tunes the service. Zero values take the defaults noted.
type Config struct {
	Workers        int           // concurrent gradings; default 1
	Lease          time.Duration // how long a claim lasts without renewal; default 1m
	MaxAttempts    int           // claims before an interrupted submission fails; default 3
	PollInterval   time.Duration // how often idle workers look for work; default 2s
	ShutdownGrace  time.Duration // how long running gradings may finish after Run's context ends; default 30s
	VerboseLogging bool          // also write info entries to the store's log
	Now            func() time.Time
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
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, courses: courses, runner: runner, cfg: cfg, log: log, now: now, wake: make(chan struct{}, 1)}
}

// Submit validates a submission body (the Submit button's {"nb": ...} or a
// bare notebook), checks that its course knows the assignment, and durably
// queues it for grading.
//
// Returns EINVALID for a body that is not JSON, EUNPROCESSABLE for one that is
// not a gradable notebook or names an assignment the course does not know,
// and EUNAVAILABLE when the course materials or the store cannot be reached.
func (s *Service) Submit(ctx context.Context, who Identity, body []byte) (*Submission, error) {
	notebook, a, err := ParseSubmission(body)
	if err != nil {
		s.refused(ctx, who, a, err)
		return nil, err
	}
	if _, err := s.courses.Resolve(ctx, a); err != nil {
		s.refused(ctx, who, a, err)
		return nil, err
	}
	sub := &Submission{
		ID:         NewID(),
		Assignment: a,
		User:       who.Name,
		Status:     StatusQueued,
		ReceivedAt: s.now().UTC(),
	}
	if err := s.store.CreateSubmission(ctx, sub, notebook); err != nil {
		return nil, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.logger(sub).Info("submission accepted", "bytes", len(notebook))
	s.record(ctx, sub, LogInfo, "submission accepted", "")
	return sub, nil
}

// SubmissionStatus is a submission as its owner sees it.
type SubmissionStatus struct {
	*Submission
	QueuePosition int // 1 for the next to be graded; 0 unless queued
}

// Status returns a submission for who. Students see only their own.
// Returns ENOTFOUND if there is no such submission or it is someone else's.
func (s *Service) Status(ctx context.Context, who Identity, id string) (*SubmissionStatus, error) {
	sub, err := s.store.Submission(ctx, id)
	if err != nil {
		return nil, err
	}
	if sub.User != who.Name && !who.Admin {
		return nil, Errorf(ENOTFOUND, "There is no submission %q.", id)
	}
	st := &SubmissionStatus{Submission: sub}
	if sub.Status == StatusQueued {
		pos, err := s.store.QueuePosition(ctx, id)
		switch ErrorCode(err) {
		case "":
			st.QueuePosition = pos
		case ENOTFOUND: // claimed meanwhile
		default:
			return nil, err
		}
	}
	return st, nil
}

// refused logs a refused submission, as the old service did, for course
// staff to see: an error entry with no submission id.
func (s *Service) refused(ctx context.Context, who Identity, a Assignment, err error) {
	s.log.Info("submission refused", "user", who.Name, "course", a.Course, "section", a.Section,
		"assignment", a.Assignment, "code", ErrorCode(err), "reason", ErrorMessage(err))
	s.record(ctx, &Submission{User: who.Name, Assignment: a}, LogError, "submission refused: "+ErrorMessage(err), "")
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
		Message: message, Trace: trace, Type: typ, Timestamp: s.now().UTC(),
	})
	if err != nil {
		s.logger(sub).Warn("cannot write log entry to the store", "err", err)
	}
}
