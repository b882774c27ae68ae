package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/otter-service/otter-service/lti"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/edx"
)

// posting is how grades are posted to edX when POST_GRADE is true. How long
// and how often a post is retried, and which grade is sent, are the
// service's (config.Service: OTTER_POST_RETRY_PERIOD, OTTER_POST_BACKOFF,
// OTTER_POST_TIMEOUT, OTTER_POST_POLICY).
type posting struct {
	Enabled bool // POST_GRADE: post grades to edX over LTI
	// EdX: EdXURL is EDX_URL; Credentials are LTI_CONSUMER_KEY[_FILE] and
	// LTI_CONSUMER_SECRET[_FILE], for each course unless
	// OTTER_LTI_CREDENTIALS_FILE ({"course": {"key": ..., "secret": ...}})
	// names its own; Client's timeout is OTTER_POST_TIMEOUT. serve adds
	// Courses.
	EdX edx.Poster
}

// posting reads the settings of grade posting, and checks those the service
// reads for it (c.Service's Post*). Secrets are read from the environment or
// from files, and never appear in a problem reported.
func (p *envParser) posting(c *config) posting {
	enabled := p.boolean("POST_GRADE", false)
	edxURL := p.str("EDX_URL", "")
	def := lti.Credentials{Key: p.secret("LTI_CONSUMER_KEY"), Secret: p.secret("LTI_CONSUMER_SECRET")}
	var perCourse map[string]lti.Credentials
	if policy := c.Service.PostPolicy; policy != service.PostLatest && policy != service.PostBest {
		p.fail("OTTER_POST_POLICY must be %q (the newest graded submission's grade) or %q (the highest grade), got %q", service.PostLatest, service.PostBest, policy)
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
			perCourse = map[string]lti.Credentials{}
			for course, cr := range raw {
				if cr.Key == "" || cr.Secret == "" {
					p.fail("OTTER_LTI_CREDENTIALS_FILE: course %q needs both a key and a secret", course)
				}
				perCourse[course] = lti.Credentials{Key: cr.Key, Secret: cr.Secret}
			}
		}
	}
	out := posting{
		Enabled: enabled,
		EdX: edx.Poster{
			EdXURL:      edxURL,
			Credentials: edx.StaticCredentials(def, perCourse),
			Client:      &lti.Client{Timeout: c.Service.PostTimeout},
		},
	}
	if !enabled {
		return out
	}
	if edxURL == "" {
		p.fail("POST_GRADE=true needs EDX_URL (edX's host name, e.g. edge.edx.org)")
	}
	if def.Key == "" && len(perCourse) == 0 {
		p.fail("POST_GRADE=true needs LTI_CONSUMER_KEY and LTI_CONSUMER_SECRET (or OTTER_LTI_CREDENTIALS_FILE)")
	}
	if def.Key != "" && def.Secret == "" {
		p.fail("LTI_CONSUMER_KEY is set but LTI_CONSUMER_SECRET (or LTI_CONSUMER_SECRET_FILE) is not")
	}
	for course := range c.Git.Courses {
		if _, ok := perCourse[course]; !ok && def.Key == "" {
			p.fail("POST_GRADE=true: course %q has no LTI credentials (set LTI_CONSUMER_KEY and LTI_CONSUMER_SECRET, or add it to OTTER_LTI_CREDENTIALS_FILE)", course)
		}
	}
	if c.Service.PostRetryPeriod < time.Minute {
		p.fail("OTTER_POST_RETRY_PERIOD must be at least 1m, got %s", c.Service.PostRetryPeriod)
	}
	if c.Service.PostBackoffBase <= 0 {
		p.fail("OTTER_POST_BACKOFF must be positive, got %s", c.Service.PostBackoffBase)
	}
	return out
}
