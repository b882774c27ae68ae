// Package metrics exposes the service's Prometheus metrics, with the
// standard Go client: what intake accepts and refuses, the queue, gradings
// and their durations, grade posts, course repositories and HTTP requests.
// Gauges that describe shared state (the queue, pending posts) are read from
// the store when scraped, so every replica reports the same truth.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otter-service/otter-service/service"
)

// RepoStatus is what the metrics need of a course repository.
type RepoStatus struct {
	Course      string
	Available   bool
	LastSuccess time.Time
	Refreshes   int
	Failures    int
}

// Sources are where scraped gauges come from.
type Sources struct {
	Counts func(ctx context.Context) (service.Counts, error) // the store's counts
	Repos  func() []RepoStatus                               // the course repositories; nil if none
	Now    func() time.Time
}

// Metrics records the service's metrics. It implements service.Observer.
type Metrics struct {
	reg            *prometheus.Registry
	accepted       prometheus.Counter
	refused        *prometheus.CounterVec
	gradings       *prometheus.CounterVec
	gradingSeconds prometheus.Histogram
	waitSeconds    prometheus.Histogram
	posts          *prometheus.CounterVec
	httpSeconds    *prometheus.HistogramVec
}

var _ service.Observer = (*Metrics)(nil)

// New registers the metrics.
func New(src Sources) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otter_submissions_accepted_total", Help: "Submissions accepted (answered 202).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otter_submissions_refused_total", Help: "Submissions refused, by reason (the error code of the answer).",
		}, []string{"reason"}),
		gradings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otter_gradings_total", Help: "Gradings ended, by outcome: graded, a failure code, or requeued.",
		}, []string{"outcome"}),
		gradingSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "otter_grading_duration_seconds", Help: "How long one grading ran.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		waitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "otter_submission_to_grade_seconds", Help: "Time from a submission's arrival to its recorded outcome.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otter_lti_posts_total", Help: "Attempts to post a grade to edX, by outcome: applied, unanswered (may have been applied; posted again), retry, refused; and interrupted: posts found in flight after their worker stopped.",
		}, []string{"outcome"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otter_http_request_duration_seconds", Help: "HTTP requests, by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "status"}),
	}
	m.reg.MustRegister(m.accepted, m.refused, m.gradings, m.gradingSeconds, m.waitSeconds, m.posts, m.httpSeconds,
		&scraped{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Accepted counts an accepted submission.
func (m *Metrics) Accepted() { m.accepted.Inc() }

// Refused counts a refused submission by the code of its answer.
func (m *Metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Graded implements service.Observer.
func (m *Metrics) Graded(outcome string, grading, sinceReceived time.Duration) {
	m.gradings.WithLabelValues(outcome).Inc()
	if grading > 0 {
		m.gradingSeconds.Observe(grading.Seconds())
	}
	if sinceReceived > 0 {
		m.waitSeconds.Observe(sinceReceived.Seconds())
	}
}

// Posted implements service.Observer.
func (m *Metrics) Posted(outcome service.PostOutcome) { m.posts.WithLabelValues(string(outcome)).Inc() }

// HTTP records one request.
func (m *Metrics) HTTP(route string, status int, d time.Duration) {
	m.httpSeconds.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

var (
	queueDesc     = prometheus.NewDesc("otter_queue_depth", "Submissions queued for grading (all replicas).", nil, nil)
	gradingDesc   = prometheus.NewDesc("otter_gradings_in_progress", "Submissions being graded (all replicas).", nil, nil)
	pendingDesc   = prometheus.NewDesc("otter_lti_posts_pending", "Grades waiting to be posted to edX (all replicas).", nil, nil)
	storeUpDesc   = prometheus.NewDesc("otter_store_up", "1 if the store answered the last scrape's counts.", nil, nil)
	repoAgeDesc   = prometheus.NewDesc("otter_course_repo_age_seconds", "Time since the course repository was last fetched (or loaded) successfully.", []string{"course"}, nil)
	repoUpDesc    = prometheus.NewDesc("otter_course_repo_available", "1 if the course has a good copy of its materials to grade from.", []string{"course"}, nil)
	repoFetchDesc = prometheus.NewDesc("otter_course_repo_refreshes_total", "Fetches of the course repository, by result.", []string{"course", "result"}, nil)
)

// scraped reads shared state when scraped.
type scraped struct{ src Sources }

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDesc, gradingDesc, pendingDesc, storeUpDesc, repoAgeDesc, repoUpDesc, repoFetchDesc} {
		ch <- d
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	if s.src.Counts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := s.src.Counts(ctx)
		cancel()
		if err == nil {
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(c.Queued))
			ch <- prometheus.MustNewConstMetric(gradingDesc, prometheus.GaugeValue, float64(c.Grading))
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(c.PostsPending))
		}
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, boolValue(err == nil))
	}
	if s.src.Repos == nil {
		return
	}
	now := s.src.Now()
	for _, r := range s.src.Repos() {
		ch <- prometheus.MustNewConstMetric(repoUpDesc, prometheus.GaugeValue, boolValue(r.Available), r.Course)
		if !r.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(repoAgeDesc, prometheus.GaugeValue, now.Sub(r.LastSuccess).Seconds(), r.Course)
		}
		ch <- prometheus.MustNewConstMetric(repoFetchDesc, prometheus.CounterValue, float64(r.Refreshes), r.Course, "ok")
		ch <- prometheus.MustNewConstMetric(repoFetchDesc, prometheus.CounterValue, float64(r.Failures), r.Course, "error")
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
