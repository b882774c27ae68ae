package lti_test

import (
	"testing"

	"github.com/otter-service/otter-service/lti"
)

func TestOutcomeURL(t *testing.T) {
	const want = "https://courses.edx.org/courses/course-v1:BerkeleyX+Data8.1x+3T2022/xblock/block-v1:BerkeleyX+Data8.1x+3T2022+type@lti_consumer+block@6333e19d6b4d46f88df671ba50f616d8/handler_noauth/outcome_service_handler"
	for _, host := range []string{"courses.edx.org", "https://courses.edx.org/", " courses.edx.org "} {
		got, err := lti.OutcomeURL(host, "BerkeleyX+Data8.1x+3T2022", "6333e19d6b4d46f88df671ba50f616d8")
		if err != nil || got != want {
			t.Errorf("OutcomeURL(%q) = %q, %v\nwant %q", host, got, err, want)
		}
	}
	for _, bad := range [][3]string{
		{"", "X+Y+Z", "abc"},
		{"courses.edx.org/evil", "X+Y+Z", "abc"},
		{"courses.edx.org", "X/Y", "abc"},
		{"courses.edx.org", "X+Y+Z", "a?b"},
		{"courses.edx.org", "X+Y+Z", ""},
	} {
		if got, err := lti.OutcomeURL(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("OutcomeURL(%q, %q, %q) = %q; want an error", bad[0], bad[1], bad[2], got)
		}
	}
	if got, err := lti.OutcomeURL("localhost:8000", "X+Y+Z", "abc"); err != nil || got[:30] != "https://localhost:8000/courses" {
		t.Errorf("host with port: %q, %v", got, err)
	}
}

func TestSourcedID(t *testing.T) {
	got, err := lti.SourcedID("courses.edx.org", "BerkeleyX+Data8.1x+3T2022", "6333e19d6b4d46f88df671ba50f616d8", "a1b2c3")
	const want = "course-v1%3ABerkeleyX+Data8.1x+3T2022:courses.edx.org-6333e19d6b4d46f88df671ba50f616d8:a1b2c3"
	if err != nil || got != want {
		t.Errorf("SourcedID = %q, %v; want %q", got, err, want)
	}
	for _, user := range []string{"", "eve:admin"} {
		if _, err := lti.SourcedID("courses.edx.org", "X+Y+Z", "abc", user); err == nil {
			t.Errorf("SourcedID accepted user %q", user)
		}
	}
}

func TestOutcomeURLScheme(t *testing.T) {
	const path = "/courses/course-v1:X+Y+Z/xblock/block-v1:X+Y+Z+type@lti_consumer+block@abc/handler_noauth/outcome_service_handler"
	for host, want := range map[string]string{
		"courses.edx.org":          "https://courses.edx.org" + path,
		"localhost:8000":           "https://localhost:8000" + path,
		"https://courses.edx.org":  "https://courses.edx.org" + path,
		"http://127.0.0.1:8765":    "http://127.0.0.1:8765" + path,
		"http://127.0.0.1:8765/":   "http://127.0.0.1:8765" + path,
		" HTTP://Edx.Local:80 ":    "http://Edx.Local:80" + path,
		"HTTPS://courses.edx.org/": "https://courses.edx.org" + path,
	} {
		got, err := lti.OutcomeURL(host, "X+Y+Z", "abc")
		if err != nil || got != want {
			t.Errorf("OutcomeURL(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://courses.edx.org", "https://courses.edx.org/lms", "https://u:p@courses.edx.org", "https://courses.edx.org/?q=1", "http://"} {
		if got, err := lti.OutcomeURL(bad, "X+Y+Z", "abc"); err == nil {
			t.Errorf("OutcomeURL(%q) = %q; want an error", bad, got)
		}
	}
	// The sourcedId names the host only, whatever the scheme.
	got, err := lti.SourcedID("http://127.0.0.1:8765", "X+Y+Z", "abc", "u1")
	if want := "course-v1%3AX+Y+Z:127.0.0.1:8765-abc:u1"; err != nil || got != want {
		t.Errorf("SourcedID = %q, %v; want %q", got, err, want)
	}
}
