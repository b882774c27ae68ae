// This file builds the two edX-specific names a grade is posted under,
// exactly as the service this one replaces built them (edX accepts nothing
// else): the outcome service URL of an assignment's LTI block, and the
// sourcedId that names the student.

package lti

import (
	"fmt"
	"net/url"
	"strings"
)

// OutcomeURL returns the outcome service URL of an edX LTI consumer block:
//
//	https://{edxHost}/courses/course-v1:{courseID}/xblock/block-v1:{courseID}+type@lti_consumer+block@{blockID}/handler_noauth/outcome_service_handler
//
// edxHost is EDX_URL (a host name, optionally with a scheme), courseID the
// course's course_id (e.g. BerkeleyX+Data8.1x+3T2022) and blockID the
// assignment's LTI block id from course-config.json. The ":", "+" and "@"
// stay as they are: edX routes on them, and the OAuth signature is computed
// over the URL exactly as written here.
//
// The scheme is https, as edX serves nothing else, unless EDX_URL itself
// starts with "http://": then it is kept, so that a consumer on loopback
// (tests, a local edX) can be reached.
func OutcomeURL(edxHost, courseID, blockID string) (string, error) {
	host, err := hostOf(edxHost)
	if err != nil {
		return "", err
	}
	scheme := "https"
	if s := strings.ToLower(strings.TrimSpace(edxHost)); strings.HasPrefix(s, "http://") {
		scheme = "http"
	}
	for name, v := range map[string]string{"course id": courseID, "LTI block id": blockID} {
		if v == "" || strings.ContainsAny(v, "/?#% \t\r\n") {
			return "", fmt.Errorf("edX %s %q is empty or has a character that cannot appear in the URL", name, v)
		}
	}
	return fmt.Sprintf("%s://%s/courses/course-v1:%s/xblock/block-v1:%s+type@lti_consumer+block@%s/handler_noauth/outcome_service_handler",
		scheme, host, courseID, courseID, blockID), nil
}

// SourcedID returns the lis_result_sourcedid edX expects for a user:
//
//	course-v1%3A{courseID}:{edxHost}-{blockID}:{user}
//
// edX reads only the part after the last ":" as the user, so a user name
// containing ":" would be read wrongly and is refused.
func SourcedID(edxHost, courseID, blockID, user string) (string, error) {
	host, err := hostOf(edxHost)
	if err != nil {
		return "", err
	}
	if user == "" || strings.Contains(user, ":") {
		return "", fmt.Errorf("user %q cannot be named in an edX sourcedId", user)
	}
	return fmt.Sprintf("course-v1%%3A%s:%s-%s:%s", courseID, host, blockID, user), nil
}

// hostOf accepts EDX_URL as a bare host ("courses.edx.org") or a URL
// ("https://courses.edx.org/") and returns the host.
func hostOf(edx string) (string, error) {
	s := strings.TrimSpace(edx)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") ||
			u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("EDX_URL %q is not a host name or URL", edx)
		}
		s = u.Host
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" || strings.ContainsAny(s, "/?#@: \t") && !isHostPort(s) {
		return "", fmt.Errorf("EDX_URL %q is not a host name", edx)
	}
	return s, nil
}

func isHostPort(s string) bool {
	host, port, ok := strings.Cut(s, ":")
	return ok && host != "" && port != "" && !strings.ContainsAny(host+port, "/?#@ \t:")
}
