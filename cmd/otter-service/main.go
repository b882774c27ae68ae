// Command otter-service grades Jupyter notebooks submitted from JupyterHub
// with otter-grader.
//
//	otter-service [serve]                     run the service (configured by environment variables; see README.md)
//	otter-service check-course <repo or dir>  check a course repository's course-config.json and autograders
//	otter-service settings                    list every environment variable the service reads
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/grading"
	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/jupyterhub"
	"github.com/otter-service/otter-service/service/metrics"
	"github.com/otter-service/otter-service/service/sqlite"
)

var execLookPath = exec.LookPath

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "otter-service:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stderr)
	case "check-course":
		return checkCourse(ctx, args[1:], getenv, os.Stdout, stderr)
	case "settings":
		return printSettings(os.Stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stderr, "usage: otter-service [serve | check-course <repository URL or directory>]\n\nserve         run the grading service (configuration: environment variables, see README.md)\ncheck-course  check a course repository's course-config.json and autograder zips\nsettings      list every environment variable the service reads")
		return nil
	default:
		return fmt.Errorf("unknown command %q (try: otter-service help)", cmd)
	}
}

func serve(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.Service.VerboseLogging {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	jobs := cfg.Local.WorkDir
	// Job directories left by a crash are garbage: nothing reads them again.
	if err := os.RemoveAll(jobs); err != nil {
		return fmt.Errorf("cleaning %s: %w", jobs, err)
	}
	if err := os.MkdirAll(jobs, 0o700); err != nil {
		return err
	}
	var store service.Store
	if cfg.GCPProjectID != "" {
		// Cloud Firestore (or the emulator FIRESTORE_EMULATOR_HOST names),
		// with application default credentials.
		fs, err := firestore.New(ctx, cfg.GCPProjectID, cfg.Environment)
		if err != nil {
			return err
		}
		store = fs
		log.Info("store: Firestore", "project", cfg.GCPProjectID, "collections", cfg.Environment+"-*")
	} else {
		db, err := sqlite.Open(cfg.Database)
		if err != nil {
			return err
		}
		store = db
	}
	defer store.Close()

	var auth httpapi.Authenticator = httpapi.NoIdentity{}
	if cfg.Hub != nil {
		hub, err := jupyterhub.New(*cfg.Hub)
		if err != nil {
			return err
		}
		auth = hub
		log.Info("authentication: JupyterHub", "api", cfg.Hub.APIURL, "service", cfg.Hub.ServiceName, "staff_group", cfg.Hub.StaffGroup)
	} else if cfg.TestUser != "" {
		auth = httpapi.DevIdentity{User: cfg.TestUser}
		log.Warn("UNAUTHENTICATED DEVELOPMENT MODE: every request is attributed to TEST_USER; never let students reach this service",
			"test_user", cfg.TestUser)
	} else {
		log.Warn("no authentication is configured and TEST_USER is not set: every submission will be refused with 401")
	}

	// Course materials: cached clones under the data directory, used at once
	// and fetched in the background until ctx ends.
	cfg.Git.Log = log
	courses := git.New(cfg.Git)
	courses.Start(ctx)
	defer courses.Wait()
	for _, st := range courses.Status() {
		if st.Available {
			log.Info("course materials from the cache", "course", st.Course, "commit", st.Commit)
		}
	}
	var runner grading.Runner = &cfg.Local
	if cfg.Runner == "docker" {
		cfg.Docker.Builds.Logger = log // image builds log as the service does
		var opts []docker.Option
		if !cfg.Docker.Warm {
			opts = append(opts, docker.ColdGraders())
		}
		dr, err := docker.New(cfg.Docker.Image, cfg.Docker.Instance, cfg.Docker.Limits, cfg.Service.Workers, cfg.Docker.Builds, opts...)
		if err != nil {
			return err
		}
		defer dr.Close()
		// Submissions are accepted whatever the engine's state; grading waits for it.
		if err := dr.Check(ctx); err != nil {
			log.Error("the Docker runner is not ready; submissions wait in the queue until it is", "err", err)
		}
		if n, err := dr.RemoveOrphans(ctx); err != nil {
			log.Error("cannot remove grading containers left by an earlier run", "err", err)
		} else if n > 0 {
			log.Warn("removed grading containers left by an earlier run; their submissions are graded again", "containers", n)
		}
		dr.StartSpares()
		runner = dr
	}
	if cfg.Posting.Enabled {
		cfg.Posting.EdX.Courses = courses
		cfg.Service.Poster = &cfg.Posting.EdX
		log.Info("grades are posted to edX", "edx_url", cfg.Posting.EdX.EdXURL, "retry_period", cfg.Service.PostRetryPeriod, "policy", cfg.Service.PostPolicy)
	} else {
		log.Info("POST_GRADE is false: grades are recorded, not posted to edX")
	}
	mx := metrics.New(metrics.Sources{Counts: store.Counts, Repos: func() []metrics.RepoStatus {
		var out []metrics.RepoStatus
		for _, st := range courses.Status() {
			out = append(out, metrics.RepoStatus{Course: st.Course, Available: st.Available, LastSuccess: st.LastSuccess,
				Refreshes: st.Refreshes, Failures: st.Failures})
		}
		return out
	}})
	cfg.Service.Observer = mx
	svc := service.New(store, courses, runner, cfg.Service, log)

	var draining atomic.Bool
	checker, _ := runner.(interface{ Check(context.Context) error })
	cfg.HTTP.Ready = func(ctx context.Context) map[string]string {
		return readiness(ctx, &draining, store, checker, courses.Status())
	}
	cfg.HTTP.Metrics, cfg.HTTP.Monitor = mx.Handler(), mx

	var buildFailures func() []docker.BuildFailure
	if b, ok := runner.(interface{ BuildFailures() []docker.BuildFailure }); ok {
		buildFailures = b.BuildFailures
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           withDiagnostics(httpapi.Handler(svc, auth, cfg.HTTP, log), buildFailures),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "prefix", cfg.HTTP.Prefix, "workers", cfg.Service.Workers,
		"runner", cfg.Runner, "database", cfg.Database, "courses", len(cfg.Git.Courses))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	graded := make(chan error, 1)
	go func() { graded <- svc.Run(ctx) }()
	go returnIdleMemory(ctx, idleMemoryEvery, idleMemoryLimit, memoryStats, freeMemory)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	}
	// Every wait from here on ends by the shutdown's deadline, so the
	// process exits before the orchestrator's grace runs out, whatever is
	// down (what is not recorded is taken up again when its lease expires).
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	// Readiness fails first, so the orchestrator stops sending requests;
	// submissions that still arrive meanwhile are taken as usual.
	draining.Store(true)
	if cfg.DrainDelay > 0 {
		log.Info("shutting down: not ready; intake continues while traffic drains", "drain_delay", cfg.DrainDelay)
		select {
		case <-time.After(cfg.DrainDelay):
		case err := <-served:
			return fmt.Errorf("serving: %w", err)
		}
	}
	// Then stop intake; requests in flight finish (an accepted submission is
	// on disk before it is acknowledged). Then the workers get their grace.
	log.Info("shutting down: no new submissions; running gradings get a grace period", "grace", cfg.Service.ShutdownGrace,
		"shutdown_timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(-cfg.Service.ShutdownGrace-shutdownMargin+5*time.Second))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP shutdown", "err", err)
	}
	select {
	case err = <-graded:
	case <-time.After(time.Until(deadline)):
		log.Error("shutting down: the shutdown timeout passed; exiting, leaving unfinished work to its leases", "shutdown_timeout", cfg.ShutdownTimeout)
		err = nil
	}
	log.Info("stopped")
	return err
}
