// Package grading defines how a notebook is graded: the Runner interface that
// the local and Docker back ends implement, the Error a grading that ended
// badly returns, and the parsing of otter-grader's results.json, which is
// treated as untrusted, student-influenced data.
package grading

import (
	"context"
	"errors"
	"fmt"
)

// Job is one notebook to grade with one autograder.
type Job struct {
	ID           string // the submission id, for labels and logs
	NotebookName string // file name to give the notebook, e.g. "lab01.ipynb"
	Notebook     []byte
	Autograder   []byte // the autograder zip made by otter assign
}

// Runner grades notebooks.
type Runner interface {
	// Run grades job and returns its result. A grading that ended badly
	// because of what was submitted (timed out, printed too much, ran out of
	// memory, killed its kernel, broke the autograder) returns an *Error.
	// Any other error is the runner's own trouble (the engine is down, the
	// disk is full, ctx was cancelled): the caller may try the job again.
	Run(ctx context.Context, job Job) (*Result, error)
}

// Kinds of *Error.
const (
	KindAutograder = "autograder_error" // otter ran but gave no usable result
	KindTimeout    = "timeout"          // the wall-clock limit passed
	KindOutput     = "output_limit"     // more output than allowed
	KindMemory     = "out_of_memory"    // the memory limit was hit
	KindKernel     = "kernel_died"      // the notebook's kernel died
	// The assignment's autograder is one this service cannot grade with
	// (an R assignment, packages that cannot be installed): course staff's
	// to fix, never the notebook's fault.
	KindUnsupported = "unsupported_autograder"
)

// Error is a grading that ended badly because of the submission. Message is
// for the student and the operator; Log is the tail of otter's output, for
// the operator only.
type Error struct {
	Kind    string
	Message string
	Log     string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Kind, e.Message) }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
