package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/otter-service/otter-service/lti"
	"github.com/otter-service/otter-service/service"
)

// posting is how grades are posted to edX when POST_GRADE is true.
type posting struct {
	Default     lti.Credentials            // LTI_CONSUMER_KEY[_FILE], LTI_CONSUMER_SECRET[_FILE]
	PerCourse   map[string]lti.Credentials // OTTER_LTI_CREDENTIALS_FILE: {"course": {"key": ..., "secret": ...}}
	RetryPeriod time.Duration              // OTTER_POST_RETRY_PERIOD: how long a post is retried
	BackoffBase time.Duration              // OTTER_POST_BACKOFF: the first retry's delay
	Timeout     time.Duration              // OTTER_POST_TIMEOUT: one request to edX
	Policy      service.PostPolicy         // OTTER_POST_POLICY: which of a student's grades edX keeps
}

// posting reads the settings of grade posting. Secrets are read from the
// environment or from files, and never appear in a problem reported.
func (p *envParser) posting(c *config) *posting {
	out := &posting{
		Default:     lti.Credentials{Key: c.LTIConsumerKey, Secret: c.LTIConsumerSecret},
		RetryPeriod: p.duration("OTTER_POST_RETRY_PERIOD", 6*time.Hour),
		BackoffBase: p.duration("OTTER_POST_BACKOFF", 30*time.Second),
		Timeout:     p.duration("OTTER_POST_TIMEOUT", 30*time.Second),
		Policy:      service.PostPolicy(p.str("OTTER_POST_POLICY", string(service.PostLatest))),
	}
	if out.Policy != service.PostLatest && out.Policy != service.PostBest {
		p.fail("OTTER_POST_POLICY must be %q (the newest graded submission's grade) or %q (the highest grade), got %q", service.PostLatest, service.PostBest, out.Policy)
	}
	if f := p.str("OTTER_LTI_CREDENTIALS_FILE", ""); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			p.fail("OTTER_LTI_CREDENTIALS_FILE: cannot read %s: %v", f, err)
		} else {
			var raw map[string]struct{ Key, Secret string }
			if json.Unmarshal(b, &raw) != nil {
				p.fail("OTTER_LTI_CREDENTIALS_FILE: %s is not a JSON object of course: {\"key\": ..., \"secret\": ...}", f)
			}
			out.PerCourse = map[string]lti.Credentials{}
			for course, cr := range raw {
				if cr.Key == "" || cr.Secret == "" {
					p.fail("OTTER_LTI_CREDENTIALS_FILE: course %q needs both a key and a secret", course)
				}
				out.PerCourse[course] = lti.Credentials{Key: cr.Key, Secret: cr.Secret}
			}
		}
	}
	if !c.PostGrade {
		return out
	}
	if c.EdXURL == "" {
		p.fail("POST_GRADE=true needs EDX_URL (edX's host name, e.g. edge.edx.org)")
	}
	if out.Default.Key == "" && len(out.PerCourse) == 0 {
		p.fail("POST_GRADE=true needs LTI_CONSUMER_KEY and LTI_CONSUMER_SECRET (or OTTER_LTI_CREDENTIALS_FILE)")
	}
	if out.Default.Key != "" && out.Default.Secret == "" {
		p.fail("LTI_CONSUMER_KEY is set but LTI_CONSUMER_SECRET (or LTI_CONSUMER_SECRET_FILE) is not")
	}
	for course := range c.Courses {
		if _, ok := out.PerCourse[course]; !ok && out.Default.Key == "" {
			p.fail("POST_GRADE=true: course %q has no LTI credentials (set LTI_CONSUMER_KEY and LTI_CONSUMER_SECRET, or add it to OTTER_LTI_CREDENTIALS_FILE)", course)
		}
	}
	if out.RetryPeriod < time.Minute {
		p.fail("OTTER_POST_RETRY_PERIOD must be at least 1m, got %s", out.RetryPeriod)
	}
	if out.BackoffBase <= 0 {
		p.fail("OTTER_POST_BACKOFF must be positive, got %s", out.BackoffBase)
	}
	return out
}
