// Package edx posts grades to edX: it implements service.Poster with the lti
// package, naming the outcome service and the student exactly as the service
// this one replaces did (EDX_URL, the course's course_id and the
// assignment's LTI block id from course-config.json, the JupyterHub user).
package edx

import (
	"context"
	"fmt"

	"github.com/otter-service/otter-service/lti"
	"github.com/otter-service/otter-service/service"
)

// Poster posts grades over LTI 1.1 Basic Outcomes.
type Poster struct {
	EdXURL  string          // EDX_URL: edX's host name (https), or a URL with an explicit scheme
	Courses service.Courses // resolves an assignment to its course id and block id
	// Credentials returns the LTI consumer key and secret for a course.
	Credentials func(course string) (lti.Credentials, error)
	Client      *lti.Client
}

var _ service.Poster = (*Poster)(nil)

// Post implements service.Poster.
func (p *Poster) Post(ctx context.Context, sub service.PostRequest) error {
	a, err := p.Courses.Resolve(ctx, sub.Assignment)
	if err != nil {
		return err // EUNAVAILABLE while the course's materials cannot be read: retried
	}
	url, err := lti.OutcomeURL(p.EdXURL, a.CourseID, a.AssignmentID)
	if err != nil {
		return service.Errorf(service.EUNPROCESSABLE, "The grade cannot be posted: %v.", err)
	}
	sourcedID, err := lti.SourcedID(p.EdXURL, a.CourseID, a.AssignmentID, sub.User)
	if err != nil {
		return service.Errorf(service.EUNPROCESSABLE, "The grade cannot be posted: %v.", err)
	}
	creds, err := p.Credentials(sub.Course)
	if err != nil {
		return service.Errorf(service.EUNPROCESSABLE, "The grade cannot be posted: %v.", err)
	}
	switch err := p.Client.ReplaceResult(ctx, creds, url, sourcedID, sub.Grade); {
	case err == nil:
		return nil
	case lti.IsPermanent(err):
		return service.Errorf(service.EUNPROCESSABLE, "edX refused the grade: %v", err)
	case lti.IsUnanswered(err):
		return fmt.Errorf("%w: %w", service.Errorf(service.EUNAVAILABLE, "edX did not answer: %v", err), service.ErrNoAnswer)
	default:
		return service.Errorf(service.EUNAVAILABLE, "edX could not be reached: %v", err)
	}
}

// StaticCredentials returns a Credentials function: the course's own pair
// if perCourse has one, else the default; an error naming the course if
// neither is set.
func StaticCredentials(def lti.Credentials, perCourse map[string]lti.Credentials) func(string) (lti.Credentials, error) {
	return func(course string) (lti.Credentials, error) {
		if c, ok := perCourse[course]; ok {
			return c, nil
		}
		if def.Key == "" {
			return lti.Credentials{}, fmt.Errorf("no LTI consumer key is configured for course %q", course)
		}
		return def, nil
	}
}
