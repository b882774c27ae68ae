package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/otter-service/otter-service/courseconfig"
	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/grading/local"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/jupyterhub"
)

// config is everything the service reads from its environment, parsed once.
// Where a package has a configuration of its own, the values go straight
// into it: serve adds only what is made at run time (the logger, the course
// source, the poster's courses, metrics, readiness).
type config struct {
	Environment  string             // ENVIRONMENT: prefix of the cloud store's collections
	GCPProjectID string             // GCP_PROJECT_ID: use Cloud Firestore
	TestUser     string             // TEST_USER: development identity, unauthenticated
	Hub          *jupyterhub.Config // JUPYTERHUB_API_URL and the rest: authenticate through JupyterHub (hubconfig.go)
	Listen       string             // OTTER_LISTEN: address to serve on
	DataDir      string             // OTTER_DATA_DIR: database, job directories and the courses' clones
	Database     string             // OTTER_DATABASE: the embedded store's file
	DrainDelay   time.Duration      // OTTER_DRAIN_DELAY: on SIGTERM, how long readiness fails before intake stops
	// OTTER_SHUTDOWN_TIMEOUT: on SIGTERM, the longest the whole shutdown
	// takes (below the orchestrator's grace before it kills)
	ShutdownTimeout time.Duration

	// HTTP: Prefix is JUPYTERHUB_SERVICE_PREFIX, MaxBodySize
	// OTTER_MAX_BODY_BYTES, BodyBytesInFlight OTTER_BODY_BYTES_IN_FLIGHT,
	// TrustedProxies OTTER_TRUSTED_PROXIES.
	// serve adds Ready, Metrics and Monitor.
	HTTP httpapi.Config
	// Service: OTTER_WORKERS, OTTER_LEASE, OTTER_MAX_ATTEMPTS,
	// OTTER_SHUTDOWN_GRACE, VERBOSE_LOGGING (also the log's level),
	// OTTER_MAX_QUEUE, OTTER_MAX_IN_FLIGHT_PER_USER (MaxPerUser),
	// OTTER_MAX_HELD, OTTER_MAX_HELD_BYTES, OTTER_MAX_HELD_PER_CLIENT,
	// OTTER_MAX_HELD_BYTES_PER_CLIENT,
	// OTTER_UNAVAILABLE_RETRY, and grade posting's OTTER_POST_RETRY_PERIOD,
	// OTTER_POST_BACKOFF (PostBackoffBase), OTTER_POST_TIMEOUT and
	// OTTER_POST_POLICY. serve adds Poster and Observer.
	Service service.Config
	// Git: Courses is OTTER_COURSE_REPOS with each repository's credentials,
	// Interval OTTER_REPO_REFRESH, MinRefresh OTTER_REPO_MIN_REFRESH;
	// CacheDir is the data directory's courses/. serve adds Log.
	Git git.Options

	Runner string       // OTTER_RUNNER: docker or local
	Local  local.Runner // the local runner: Otter is OTTER_COMMAND, Timeout OTTER_GRADING_TIMEOUT, MaxOutput OTTER_MAX_OUTPUT_BYTES; WorkDir is the data directory's jobs/
	Docker dockerRunner // the Docker runner

	Posting posting // POST_GRADE and posting to edX (lticonfig.go)
}

// dockerRunner is what docker.New is given, but for the number of containers
// kept warm: one per worker (Service.Workers).
type dockerRunner struct {
	Image    string        // OTTER_GRADING_IMAGE: the grading image
	Instance string        // OTTER_INSTANCE: labels this instance's containers
	Limits   docker.Limits // OTTER_GRADING_MEMORY_BYTES, OTTER_GRADING_CPUS, OTTER_GRADING_PROCESSES, OTTER_GRADING_DISK_BYTES; Output and Timeout are the local runner's
	Builds   docker.Builds // OTTER_ASSIGNMENT_IMAGES (Enabled), OTTER_BUILD_NETWORK, OTTER_BUILD_PIP_CONF, OTTER_BUILD_CA_CERT
	Warm     bool          // OTTER_WARM_GRADERS: graders started ahead in the spare containers
}

// loadConfig reads the configuration from getenv and reports every problem
// at once.
// shutdownMargin is what a shutdown needs beyond the drain and the grace:
// stopping intake, and one bounded store write per unfinished grading.
const shutdownMargin = 15 * time.Second

func loadConfig(getenv func(string) string) (*config, error) {
	p := &envParser{getenv: getenv}
	c := &config{
		Environment:     p.str("ENVIRONMENT", "dev"),
		GCPProjectID:    p.str("GCP_PROJECT_ID", ""),
		TestUser:        p.str("TEST_USER", ""),
		Listen:          p.str("OTTER_LISTEN", ":10101"),
		DataDir:         p.str("OTTER_DATA_DIR", "var"),
		DrainDelay:      p.duration("OTTER_DRAIN_DELAY", 5*time.Second),
		ShutdownTimeout: p.duration("OTTER_SHUTDOWN_TIMEOUT", 55*time.Second),
		HTTP: httpapi.Config{
			Prefix:            p.str("JUPYTERHUB_SERVICE_PREFIX", "/services/otter_grade/"),
			MaxBodySize:       int64(p.integer("OTTER_MAX_BODY_BYTES", 10<<20, 1<<10, 1<<30)),
			BodyBytesInFlight: int64(p.integer("OTTER_BODY_BYTES_IN_FLIGHT", int(httpapi.DefaultBodyBytesInFlight()), 1<<20, 1<<40)),
			TrustedProxies:    p.addresses("OTTER_TRUSTED_PROXIES", "127.0.0.1,::1"),
		},
		Service: service.Config{
			Workers:          p.integer("OTTER_WORKERS", runtime.NumCPU(), 1, 256),
			Lease:            p.duration("OTTER_LEASE", time.Minute),
			MaxAttempts:      p.integer("OTTER_MAX_ATTEMPTS", 3, 1, 100),
			ShutdownGrace:    p.duration("OTTER_SHUTDOWN_GRACE", 30*time.Second),
			VerboseLogging:   p.boolean("VERBOSE_LOGGING", false),
			MaxQueue:         p.integer("OTTER_MAX_QUEUE", 10000, 1, 10_000_000),
			MaxHeld:          p.integer("OTTER_MAX_HELD", 1000, 1, 1_000_000),
			MaxHeldBytes:     int64(p.integer("OTTER_MAX_HELD_BYTES", 1<<30, 1<<20, 1<<40)),
			MaxHeldPerClient: p.integer("OTTER_MAX_HELD_PER_CLIENT", 100, 1, 1_000_000),
			MaxPerUser:       p.integer("OTTER_MAX_IN_FLIGHT_PER_USER", 5, 1, 10_000),
			UnavailableRetry: p.duration("OTTER_UNAVAILABLE_RETRY", 30*time.Second),
			PostRetryPeriod:  p.duration("OTTER_POST_RETRY_PERIOD", 6*time.Hour),
			PostBackoffBase:  p.duration("OTTER_POST_BACKOFF", 30*time.Second),
			PostTimeout:      p.duration("OTTER_POST_TIMEOUT", 30*time.Second),
			PostPolicy:       service.PostPolicy(p.str("OTTER_POST_POLICY", string(service.PostLatest))),
		},
		Git: git.Options{
			Interval:   p.duration("OTTER_REPO_REFRESH", git.DefaultInterval),
			MinRefresh: p.duration("OTTER_REPO_MIN_REFRESH", git.DefaultMinRefresh),
		},
		Runner: p.str("OTTER_RUNNER", "local"),
		Local: local.Runner{
			Otter:     p.str("OTTER_COMMAND", defaultOtter()),
			Timeout:   p.duration("OTTER_GRADING_TIMEOUT", 10*time.Minute),
			MaxOutput: p.integer("OTTER_MAX_OUTPUT_BYTES", 1<<20, 1<<10, 1<<30),
		},
		Docker: dockerRunner{
			Image:    p.str("OTTER_GRADING_IMAGE", "otter-service-grader:local"),
			Instance: p.str("OTTER_INSTANCE", hostname()),
			Limits: docker.Limits{
				Memory:    int64(p.integer("OTTER_GRADING_MEMORY_BYTES", 1<<30, 64<<20, 1<<40)),
				CPUs:      p.float("OTTER_GRADING_CPUS", 1, 0.1, 256),
				Processes: int64(p.integer("OTTER_GRADING_PROCESSES", 256, 16, 1<<20)),
				Disk:      int64(p.integer("OTTER_GRADING_DISK_BYTES", 512<<20, 16<<20, 1<<40)),
			},
			Warm: p.boolean("OTTER_WARM_GRADERS", true),
			Builds: docker.Builds{
				Enabled:   p.boolean("OTTER_ASSIGNMENT_IMAGES", true),
				Network:   p.str("OTTER_BUILD_NETWORK", ""),
				PipConfig: p.str("OTTER_BUILD_PIP_CONF", ""),
				CACert:    p.str("OTTER_BUILD_CA_CERT", ""),
			},
		},
	}
	// What follows from a value already read: the data directory's files,
	// and the one grading timeout and output limit, whichever the runner.
	c.Database = p.str("OTTER_DATABASE", filepath.Join(c.DataDir, "otter.db"))
	c.Local.WorkDir = filepath.Join(c.DataDir, "jobs")
	c.Git.CacheDir = filepath.Join(c.DataDir, "courses")
	c.Docker.Limits.Timeout, c.Docker.Limits.Output = c.Local.Timeout, c.Local.MaxOutput
	c.Git.Courses = p.courses("OTTER_COURSE_REPOS")
	c.Hub = p.hub(c.HTTP.Prefix, c.TestUser, c.Git.Courses)
	if c.Hub != nil {
		c.HTTP.HubURL = strings.TrimSuffix(c.Hub.BaseURL, "/") + "/hub/home"
	}

	if !strings.HasPrefix(c.HTTP.Prefix, "/") {
		p.fail("JUPYTERHUB_SERVICE_PREFIX must start with /, got %q", c.HTTP.Prefix)
	}
	if c.Runner != "local" && c.Runner != "docker" {
		p.fail("OTTER_RUNNER must be \"docker\" or \"local\", got %q", c.Runner)
	}
	if c.Runner == "local" && c.Local.Otter == "" {
		p.fail("OTTER_COMMAND is not set and no otter executable was found in .venv/bin or PATH (run scripts/python-env.sh)")
	}
	c.Posting = p.posting(c)
	for name, f := range map[string]string{"OTTER_BUILD_PIP_CONF": c.Docker.Builds.PipConfig, "OTTER_BUILD_CA_CERT": c.Docker.Builds.CACert} {
		if _, err := os.Stat(f); f != "" && err != nil {
			p.fail("%s: %v", name, err)
		}
	}
	if c.Service.Lease < 3*time.Second {
		p.fail("OTTER_LEASE must be at least 3s, got %s", c.Service.Lease)
	}
	if c.Git.Interval < time.Second {
		p.fail("OTTER_REPO_REFRESH must be at least 1s, got %s", c.Git.Interval)
	}
	if c.Local.Timeout <= 0 {
		p.fail("OTTER_GRADING_TIMEOUT must be positive, got %s", c.Local.Timeout)
	}
	c.Service.MaxHeldBytesPerClient = int64(p.integer("OTTER_MAX_HELD_BYTES_PER_CLIENT", int(c.Service.MaxHeldBytes/4), 1<<20, 1<<40))
	if c.HTTP.BodyBytesInFlight < 2*c.HTTP.MaxBodySize {
		p.fail("OTTER_BODY_BYTES_IN_FLIGHT (%d) must be at least twice OTTER_MAX_BODY_BYTES (%d)", c.HTTP.BodyBytesInFlight, c.HTTP.MaxBodySize)
	}
	// What the shutdown waits for, and the writes after it (returning
	// unfinished gradings to the queue, 10s at most), must fit.
	if need := c.DrainDelay + c.Service.ShutdownGrace + shutdownMargin; c.ShutdownTimeout < need {
		p.fail("OTTER_SHUTDOWN_TIMEOUT (%s) must be at least OTTER_DRAIN_DELAY + OTTER_SHUTDOWN_GRACE + %s (%s)", c.ShutdownTimeout, shutdownMargin, need)
	}
	if len(p.problems) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %w", errors.Join(p.problems...))
	}
	return c, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "otter-service"
	}
	return h
}

// defaultOtter finds otter in the project's virtualenv or on PATH.
func defaultOtter() string {
	if abs, err := filepath.Abs(".venv/bin/otter"); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs
		}
	}
	if p, err := execLookPath("otter"); err == nil {
		return p
	}
	return ""
}

type envParser struct {
	getenv   func(string) string
	problems []error
}

func (p *envParser) fail(format string, args ...any) {
	p.problems = append(p.problems, fmt.Errorf(format, args...))
}

// secret reads a secret from the variable name, or from the file that
// name_FILE names (a mounted Kubernetes secret); setting both is a problem.
// Problems name the variables, never the value.
func (p *envParser) secret(name string) string {
	v, f := strings.TrimSpace(p.getenv(name)), strings.TrimSpace(p.getenv(name+"_FILE"))
	switch {
	case v != "" && f != "":
		p.fail("%s and %s_FILE are both set; set one", name, name)
	case f != "":
		b, err := os.ReadFile(f)
		if err != nil {
			p.fail("%s_FILE: cannot read %s: %v", name, f, err)
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return v
}

// addresses reads a comma-separated list of IP addresses and CIDR ranges
// ("none": no address).
func (p *envParser) addresses(name, def string) []string {
	v := p.str(name, def)
	if v == "none" {
		return nil
	}
	var list []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		_, _, cidrErr := net.ParseCIDR(a)
		if net.ParseIP(a) == nil && cidrErr != nil {
			p.fail("%s: %q is neither an IP address nor a CIDR range", name, a)
			continue
		}
		list = append(list, a)
	}
	return list
}

func (p *envParser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *envParser) boolean(name string, def bool) bool {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		p.fail("%s must be true or false, got %q", name, v)
	}
	return b
}

func (p *envParser) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail("%s must be a whole number from %d to %d, got %q", name, lo, hi, v)
	}
	return n
}

func (p *envParser) float(name string, def, lo, hi float64) float64 {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		p.fail("%s must be a number from %g to %g, got %q", name, lo, hi, v)
	}
	return f
}

func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail("%s must be a duration such as 90s or 10m, got %q", name, v)
	}
	return d
}

// courses parses "course=repository[#branch],..." where repository is a
// local path, a file://, https:// (http:// on loopback only when a secret
// would be sent) or ssh:// URL, or an scp-like user@host:path, and gives
// each repository its credentials (see credentials).
func (p *envParser) courses(name string) map[string]git.Repo {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		p.fail("%s must name at least one course's repository, e.g. 8x=/srv/materials-8x", name)
		return nil
	}
	out := map[string]git.Repo{}
	apps := map[string]*git.GitHubApp{}
	for _, item := range strings.Split(v, ",") {
		course, repo, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || repo == "" {
			p.fail("%s: %q is not course=repository", name, redactItem(item))
			continue
		}
		if err := courseconfig.CheckName(course); err != nil {
			p.fail("%s: course %q: %v", name, course, err)
			continue
		}
		rawURL, branch, _ := strings.Cut(repo, "#")
		kind := repoKind(rawURL)
		switch kind {
		case "local":
			if !filepath.IsAbs(rawURL) {
				abs, err := filepath.Abs(rawURL)
				if err != nil {
					p.fail("%s: course %q: %v", name, course, err)
					continue
				}
				rawURL = abs
			}
		case "http", "https", "ssh":
			if u, err := url.Parse(rawURL); err == nil && u.User != nil {
				if _, hasPassword := u.User.Password(); hasPassword {
					p.fail("%s: course %q: the URL holds a password; give credentials with OTTER_GIT_TOKEN_FILE and the like instead", name, course)
					continue
				}
			}
		}
		if _, dup := out[course]; dup {
			p.fail("%s: course %q is listed twice", name, course)
		}
		r := git.Repo{URL: rawURL, Branch: branch}
		r.Auth = p.credentials(course, kind, rawURL, apps)
		out[course] = r
	}
	return out
}

// repoKind tells how a repository is reached: local, http, https or ssh.
func repoKind(u string) string {
	switch {
	case strings.HasPrefix(u, "file://"):
		return "local"
	case strings.HasPrefix(u, "https://"):
		return "https"
	case strings.HasPrefix(u, "http://"):
		return "http"
	case strings.HasPrefix(u, "ssh://"), strings.HasPrefix(u, "git+ssh://"):
		return "ssh"
	case !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, ".") && strings.Contains(u, "@") && strings.Contains(u, ":"):
		return "ssh" // user@host:path
	}
	return "local"
}

// redactItem hides what follows the scheme in a malformed entry, which may
// hold a credential.
func redactItem(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// credentials returns a course's repository credentials, from environment
// variables whose names end in _<COURSE> (the course name in upper case,
// other characters than letters and digits as _) for that course alone, or
// without the suffix for every course. Each secret may be given in the
// variable itself or, with _FILE appended, in a file (a Kubernetes secret).
//
//	https://, http://  OTTER_GITHUB_APP_ID + OTTER_GITHUB_APP_INSTALLATION_ID +
//	                   OTTER_GITHUB_APP_PRIVATE_KEY[_FILE] (+ OTTER_GITHUB_API_URL),
//	                   or OTTER_GIT_TOKEN[_FILE] (+ OTTER_GIT_USERNAME), or nothing
//	ssh, user@host:    OTTER_GIT_SSH_KEY[_FILE] (+ OTTER_GIT_SSH_KEY_PASSPHRASE[_FILE],
//	                   OTTER_GIT_SSH_KNOWN_HOSTS, OTTER_GIT_SSH_USER)
//
// Problems are reported by variable name; no secret ever appears in them.
func (p *envParser) credentials(course, kind, rawURL string, apps map[string]*git.GitHubApp) git.Auth {
	suffix := envSuffix(course)
	get := func(base string) (value, from string) {
		for _, n := range []string{base + "_" + suffix, base} {
			if v := strings.TrimSpace(p.getenv(n)); v != "" {
				return v, n
			}
		}
		return "", ""
	}
	secret := func(base string) (value, from string) {
		for _, n := range []string{base + "_" + suffix, base} {
			v, f := p.getenv(n), strings.TrimSpace(p.getenv(n+"_FILE"))
			switch {
			case v != "" && f != "":
				p.fail("%s and %s_FILE are both set; set one", n, n)
				return "", n
			case v != "":
				return v, n
			case f != "":
				data, err := os.ReadFile(f)
				if err != nil {
					p.fail("%s_FILE: %v", n, err)
					return "", n + "_FILE"
				}
				return string(data), n + "_FILE"
			}
		}
		return "", ""
	}
	switch kind {
	case "http", "https":
		appID, appFrom := get("OTTER_GITHUB_APP_ID")
		tok, tokFrom := secret("OTTER_GIT_TOKEN")
		if appID != "" && tok != "" {
			p.fail("course %q: both %s and %s are set; a repository uses one kind of credentials", course, appFrom, tokFrom)
			return nil
		}
		if (appID != "" || tok != "") && kind == "http" && !loopbackURL(rawURL) {
			p.fail("course %q: credentials would be sent in the clear to %s; use https://", course, redactItem(rawURL))
			return nil
		}
		if appID != "" {
			inst, _ := get("OTTER_GITHUB_APP_INSTALLATION_ID")
			keyPEM, keyFrom := secret("OTTER_GITHUB_APP_PRIVATE_KEY")
			api, _ := get("OTTER_GITHUB_API_URL")
			if inst == "" {
				p.fail("course %q: %s is set but OTTER_GITHUB_APP_INSTALLATION_ID is not", course, appFrom)
			}
			if keyPEM == "" && keyFrom == "" {
				p.fail("course %q: %s is set but OTTER_GITHUB_APP_PRIVATE_KEY_FILE is not", course, appFrom)
			}
			if inst == "" || keyPEM == "" {
				return nil
			}
			id := appID + "\x00" + inst + "\x00" + api + "\x00" + keyPEM
			if app, ok := apps[id]; ok {
				return app // one installation token for every course sharing the App
			}
			key, err := git.ParseRSAPrivateKey([]byte(keyPEM))
			if err != nil {
				p.fail("%s: %v", keyFrom, err)
				return nil
			}
			app := &git.GitHubApp{AppID: appID, InstallationID: inst, PrivateKey: key, APIURL: api}
			apps[id] = app
			return app
		}
		if tok != "" {
			user, _ := get("OTTER_GIT_USERNAME")
			return git.Token{Username: user, Token: strings.TrimSpace(tok)}
		}
	case "ssh":
		key, keyFrom := secret("OTTER_GIT_SSH_KEY")
		if key == "" {
			if keyFrom == "" {
				p.fail("course %q: its repository is reached over SSH: set OTTER_GIT_SSH_KEY_FILE (or OTTER_GIT_SSH_KEY_%s_FILE) to a deploy key", course, suffix)
			}
			return nil
		}
		pass, _ := secret("OTTER_GIT_SSH_KEY_PASSPHRASE")
		user, _ := get("OTTER_GIT_SSH_USER")
		var known []string
		if kh, _ := get("OTTER_GIT_SSH_KNOWN_HOSTS"); kh != "" {
			known = []string{kh}
		}
		k, err := git.NewSSHKey(user, []byte(key), strings.TrimRight(pass, "\r\n"), known...)
		if err != nil {
			p.fail("%s: %v", keyFrom, err)
			return nil
		}
		return k
	}
	return nil
}

// envSuffix turns a course name into the suffix of its own variables: upper
// case, with every character other than a letter or digit as _.
func envSuffix(course string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, course)
}

// loopbackURL reports whether an http:// URL points at this machine.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
