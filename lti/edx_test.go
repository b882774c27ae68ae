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
