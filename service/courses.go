package service

import (
	"context"

	"github.com/otter-service/otter-service/courseconfig"
)

// Courses resolves a notebook's course, section and assignment through the
// course's course-config.json.
type Courses interface {
	// Resolve returns what the assignment resolves to.
	// Returns EUNPROCESSABLE, naming the unknown course, section or
	// assignment, if the configuration does not know it; EUNAVAILABLE if the
	// course's materials have never been readable.
	Resolve(ctx context.Context, a Assignment) (courseconfig.Assignment, error)

	// Autograder returns the assignment's autograder zip.
	// Returns the errors of Resolve, and EUNPROCESSABLE if the zip is missing
	// or unreadable.
	Autograder(ctx context.Context, a Assignment) ([]byte, error)
}

// CourseRefresher is what a Courses may offer besides: reading a course's
// materials as they are now, for a regrade after a fix.
type CourseRefresher interface {
	// RefreshCourse fetches course's materials now and returns the commit
	// (or version) grading uses from then on.
	// Returns EUNAVAILABLE if they cannot be read, or their newest version
	// is unusable.
	RefreshCourse(ctx context.Context, course string) (string, error)
}
