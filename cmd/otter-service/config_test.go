package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// TestConfigFillsPackageConfigs checks that each variable lands in the
// package configuration serve hands on as it is, with nothing copied
// between them in serve.
func TestConfigFillsPackageConfigs(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "lti.json")
	os.WriteFile(creds, []byte(`{"9x": {"key": "k9", "secret": "s9"}}`), 0o600)
	c, err := loadWith(map[string]string{"OTTER_COMMAND": "/bin/true", "OTTER_COURSE_REPOS": "8x=" + dir + ",9x=" + dir}, map[string]string{
		"OTTER_DATA_DIR":               dir,
		"JUPYTERHUB_SERVICE_PREFIX":    "/services/g/",
		"OTTER_MAX_BODY_BYTES":         "2048",
		"OTTER_WORKERS":                "3",
		"OTTER_LEASE":                  "20s",
		"OTTER_MAX_ATTEMPTS":           "4",
		"OTTER_SHUTDOWN_GRACE":         "7s",
		"VERBOSE_LOGGING":              "true",
		"OTTER_MAX_QUEUE":              "50",
		"OTTER_MAX_IN_FLIGHT_PER_USER": "2",
		"OTTER_UNAVAILABLE_RETRY":      "9s",
		"OTTER_POST_RETRY_PERIOD":      "2h",
		"OTTER_POST_BACKOFF":           "11s",
		"OTTER_POST_TIMEOUT":           "12s",
		"OTTER_POST_POLICY":            "best",
		"OTTER_REPO_REFRESH":           "5m",
		"OTTER_REPO_MIN_REFRESH":       "3s",
		"OTTER_GRADING_TIMEOUT":        "4m",
		"OTTER_MAX_OUTPUT_BYTES":       "4096",
		"OTTER_GRADING_IMAGE":          "grader:test",
		"OTTER_INSTANCE":               "i1",
		"OTTER_GRADING_MEMORY_BYTES":   "134217728",
		"OTTER_GRADING_CPUS":           "2.5",
		"OTTER_GRADING_PROCESSES":      "64",
		"OTTER_GRADING_DISK_BYTES":     "33554432",
		"OTTER_ASSIGNMENT_IMAGES":      "false",
		"OTTER_WARM_GRADERS":           "false",
		"OTTER_BUILD_NETWORK":          "host",
		"POST_GRADE":                   "true",
		"EDX_URL":                      "edge.edx.org",
		"LTI_CONSUMER_KEY":             "k",
		"LTI_CONSUMER_SECRET":          "s",
		"OTTER_LTI_CREDENTIALS_FILE":   creds,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Prefix != "/services/g/" || c.HTTP.MaxBodySize != 2048 {
		t.Errorf("HTTP = %+v", c.HTTP)
	}
	s := c.Service
	if s.Workers != 3 || s.Lease != 20*time.Second || s.MaxAttempts != 4 || s.ShutdownGrace != 7*time.Second || !s.VerboseLogging ||
		s.MaxQueue != 50 || s.MaxPerUser != 2 || s.UnavailableRetry != 9*time.Second || s.PostRetryPeriod != 2*time.Hour ||
		s.PostBackoffBase != 11*time.Second || s.PostTimeout != 12*time.Second || s.PostPolicy != service.PostBest ||
		s.Poster != nil || s.Observer != nil {
		t.Errorf("Service = %+v", s)
	}
	if g := c.Git; len(g.Courses) != 2 || g.Interval != 5*time.Minute || g.MinRefresh != 3*time.Second || g.CacheDir != filepath.Join(dir, "courses") {
		t.Errorf("Git = %+v", g)
	}
	if l := c.Local; l.Otter != "/bin/true" || l.Timeout != 4*time.Minute || l.MaxOutput != 4096 || l.WorkDir != filepath.Join(dir, "jobs") {
		t.Errorf("Local = %+v", l)
	}
	if c.Database != filepath.Join(dir, "otter.db") {
		t.Errorf("Database = %q", c.Database)
	}
	d := c.Docker
	if d.Image != "grader:test" || d.Instance != "i1" || d.Limits.Memory != 128<<20 || d.Limits.CPUs != 2.5 || d.Limits.Processes != 64 ||
		d.Limits.Disk != 32<<20 || d.Limits.Timeout != 4*time.Minute || d.Limits.Output != 4096 || d.Builds.Enabled || d.Builds.Network != "host" || d.Warm {
		t.Errorf("Docker = %+v", d)
	}
	if !c.Posting.Enabled || c.Posting.EdX.EdXURL != "edge.edx.org" || c.Posting.EdX.Client == nil || c.Posting.EdX.Client.Timeout != 12*time.Second {
		t.Errorf("Posting = %+v", c.Posting)
	}
	for course, want := range map[string]string{"8x": "k", "9x": "k9"} {
		if cr, err := c.Posting.EdX.Credentials(course); err != nil || cr.Key != want {
			t.Errorf("credentials of %s: %+v, %v; want key %s", course, cr, err, want)
		}
	}
}

// TestConfigDefaults checks the defaults the README lists.
func TestConfigDefaults(t *testing.T) {
	c, err := loadWith(map[string]string{"OTTER_COMMAND": "/bin/true", "OTTER_COURSE_REPOS": "8x=/srv/8x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Service
	if c.HTTP.Prefix != "/services/otter_grade/" || c.HTTP.MaxBodySize != 10<<20 || c.Listen != ":10101" || c.Environment != "dev" ||
		c.Database != filepath.Join("var", "otter.db") || c.Runner != "local" || c.DrainDelay != 5*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if s.Lease != time.Minute || s.MaxAttempts != 3 || s.ShutdownGrace != 30*time.Second || s.MaxQueue != 10000 || s.MaxPerUser != 5 ||
		s.UnavailableRetry != 30*time.Second || s.PostRetryPeriod != 6*time.Hour || s.PostBackoffBase != 30*time.Second ||
		s.PostTimeout != 30*time.Second || s.PostPolicy != service.PostLatest || s.VerboseLogging {
		t.Errorf("Service defaults: %+v", s)
	}
	if c.Local.Timeout != 10*time.Minute || c.Local.MaxOutput != 1<<20 || c.Docker.Limits.Timeout != c.Local.Timeout || c.Docker.Limits.Output != c.Local.MaxOutput {
		t.Errorf("grading defaults: %+v, %+v", c.Local, c.Docker.Limits)
	}
	if l := c.Docker.Limits; l.Memory != 1<<30 || l.CPUs != 1 || l.Processes != 256 || l.Disk != 512<<20 || !c.Docker.Builds.Enabled ||
		c.Docker.Image != "otter-service-grader:local" || !c.Docker.Warm {
		t.Errorf("Docker defaults: %+v", c.Docker)
	}
	if c.Posting.Enabled || c.Hub != nil {
		t.Errorf("posting or the Hub on by default: %+v, %+v", c.Posting, c.Hub)
	}
}
