// Package service holds otter-service's domain: submissions and their
// lifecycle, the Store that keeps them, the intake that accepts notebooks and
// the workers that grade them. It imports no adapter: storage, HTTP, grading
// back ends and course repositories plug in through small interfaces and live
// in packages named for their technology.
package service

import (
	"time"

	"github.com/otter-service/otter-service/grading"
)

// Status is where a submission is in its lifecycle.
type Status string

const (
	StatusQueued  Status = "queued"  // accepted and waiting for a worker
	StatusGrading Status = "grading" // a worker holds a lease on it
	StatusGraded  Status = "graded"  // graded; Grade is set
	StatusFailed  Status = "failed"  // grading could not produce a grade; Failure says why
	// The grader saw the notebook interfere with grading (Failure, of code
	// FailureReview, says what): the grade is recorded for course staff,
	// never posted and never written as a Grade record.
	StatusNeedsReview Status = "needs_review"
)

// Words returns the status in a few plain words, for messages.
func (s Status) Words() string {
	switch s {
	case StatusQueued:
		return "waiting to be graded"
	case StatusGrading:
		return "being graded"
	case StatusNeedsReview:
		return "waiting for course staff's review"
	}
	return string(s)
}

// Assignment names what a notebook claims to be, from its
// metadata.otter_service.
type Assignment struct {
	Course     string `json:"course"`
	Section    string `json:"section"`
	Assignment string `json:"assignment"`
}

// Submission is one notebook submitted by one user.
type Submission struct {
	ID string
	Assignment
	User       string
	Status     Status
	ReceivedAt time.Time
	StartedAt  time.Time // zero until a worker first claims it
	FinishedAt time.Time // zero until graded or failed
	Attempts   int       // how many times a worker has claimed it

	// NotebookName is the file name the notebook is graded under, chosen at
	// intake (see CleanNotebookName); "" when none was found, or for a
	// submission from before it was kept: GradingName falls back to the
	// assignment's name.
	NotebookName string

	// Set when Status is StatusGraded.
	Grade     float64
	Questions []Question
	Feedback  []Feedback // none in records from before it was kept

	// Set when Status is StatusFailed.
	Failure *Failure

	// Posting the grade to the course's gradebook; set once graded.
	Post Post

	// Batch is the id of the course staff's request that last put it back
	// in the queue (Requeue); "" if none did.
	Batch string
}

// PostStatus is where posting a submission's grade to the gradebook is.
type PostStatus string

const (
	PostNone       PostStatus = ""           // not graded (yet)
	PostDisabled   PostStatus = "disabled"   // posting is off (POST_GRADE=false): recorded, not posted
	PostPending    PostStatus = "pending"    // to be posted; retried until the retry period ends
	PostPosted     PostStatus = "posted"     // the gradebook accepted it, and holds it
	PostFailed     PostStatus = "failed"     // the gradebook refused it, or the retry period ended
	PostSuperseded PostStatus = "superseded" // never sent: another submission's grade (By) is posted instead
	PostReplaced   PostStatus = "replaced"   // sent (at PostedAt; zero while on its way), since replaced by another submission's grade (By)
)

// Post is the state of posting one submission's grade, as its status shows
// it (see ViewPost). On the submission's own record, Status is PostPending
// while posting is on (the student's post task tells the rest), PostedAt
// when its grade was last sent and Confirmed whether edX answered.
type Post struct {
	Status    PostStatus
	Attempts  int
	LastError string    // the last attempt's error, for students and staff
	NextAt    time.Time // pending: when the next attempt is due
	PostedAt  time.Time // posted, replaced: when its grade was sent
	Confirmed bool      // posted, replaced: edX answered that it applied it (else it may have)
	By        string    // superseded, replaced: the submission whose grade is selected instead
}

// Question is one test's outcome, recorded in full; what a student may see
// of it follows its Visibility (see ViewQuestions).
type Question struct {
	Name     string  `json:"name"`
	Score    float64 `json:"score"`
	MaxScore float64 `json:"max_score"`
	// Visibility is otter's (one of grading's Visibility* values); "" in
	// records from before it was kept, taken as hidden.
	Visibility string `json:"visibility,omitempty"`
	// Output is otter's report of the test, cleaned and truncated. It can
	// show hidden test cases' code and results.
	Output string `json:"output,omitempty"`
}

// Feedback is one of otter's unscored entries (its "Public Tests" summary,
// its top-level output: see grading.Result.Feedback), recorded in full; it
// never counts toward the grade, and what a student may see of it follows
// its Visibility (see ViewFeedback).
type Feedback struct {
	Name       string `json:"name"`
	Visibility string `json:"visibility,omitempty"` // as Question's
	Output     string `json:"output,omitempty"`
}

// Failure explains why a submission could not be graded.
type Failure struct {
	Code    string `json:"code"`    // one of the Failure* codes
	Message string `json:"message"` // a sentence for the student and the operator
}

// Failure codes.
const (
	FailureAutograder  = grading.KindAutograder  // otter ran but produced no usable result
	FailureTimeout     = grading.KindTimeout     // grading exceeded its wall-clock limit
	FailureOutput      = grading.KindOutput      // grading printed more than allowed
	FailureMemory      = grading.KindMemory      // grading exceeded its memory limit
	FailureKernel      = grading.KindKernel      // the notebook's kernel died
	FailureUnsupported = grading.KindUnsupported // the assignment's autograder cannot be used here
	FailureConfig      = "course_config"         // the assignment's autograder could not be found
	FailureInterrupted = "interrupted"           // grading was interrupted too many times
	FailureStorage     = "storage_error"         // the stored notebook could not be read back
	FailureReview      = "needs_review"          // with StatusNeedsReview: what the grader detected
	FailureRejected    = "rejected"              // course staff reviewed a needs_review submission and rejected its grade
)

// Grade is the record the old service wrote, one per graded submission, kept
// field for field so dashboards keep working.
type Grade struct {
	SubmissionID string
	User         string
	Grade        float64
	Assignment
	Timestamp time.Time
}

// LogEntry is one line of the per-submission log course staff read.
type LogEntry struct {
	SubmissionID string
	User         string
	Assignment
	Message   string
	Trace     string
	Type      string // LogInfo, LogError or LogAudit
	Timestamp time.Time
	// Actor is who acted, for LogAudit: the course staff member.
	Actor string
}

// Log entry types.
const (
	LogInfo  = "info"
	LogError = "error"
	LogAudit = "audit" // something course staff did (Actor)
)
