// Package httpapi is the service's HTTP interface, on gin: the submission
// endpoint the JupyterLab Submit button posts to, and the status of a
// submission. Handlers return errors; one table maps the service's error
// codes to HTTP statuses, and every error reaches the client as
// {"error": {"code": ..., "message": ...}}.
package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otter-service/otter-service/service"
)

// Authenticator tells who sent a request.
type Authenticator interface {
	// Authenticate returns the request's user.
	// Returns EUNAUTHORIZED without credentials, EFORBIDDEN if the user may
	// not use the service, EUNAVAILABLE if the identity provider is down.
	Authenticate(r *http.Request) (service.Identity, error)
}

// Login is what an Authenticator that signs browsers in offers besides
// Authenticate (the JupyterHub OAuth flow).
type Login interface {
	// StartLogin sends the browser behind r through sign-in: it returns the
	// URL to redirect it to. next is where to come back to; held is the key
	// of a submission held until sign-in, or "".
	StartLogin(w http.ResponseWriter, r *http.Request, next, held string) (string, error)
	// FinishLogin completes sign-in at the callback and returns who signed
	// in, where to go next, and the held submission's key ("" if none).
	FinishLogin(w http.ResponseWriter, r *http.Request) (who service.Identity, next, held string, err error)
	// CheckSameOriginJSON returns EFORBIDDEN unless r is provably a JSON
	// request from a page of the service's own origin.
	CheckSameOriginJSON(r *http.Request) error
	// CallbackPath is the path of the sign-in callback.
	CallbackPath() string
}

// Config configures the API.
type Config struct {
	Prefix      string // e.g. /services/otter_grade/
	MaxBodySize int64  // bytes; larger submissions get 413
	// BodyBytesInFlight bounds the submission bytes held at once across
	// requests (see byteBudget); beyond it submissions get 503 with
	// Retry-After. Requests not signed in may hold a quarter of it, and
	// those of one client half of that. 0: no bound.
	BodyBytesInFlight int64
	// TrustedProxies are the addresses or CIDR ranges of the proxies in
	// front of the service (JupyterHub's configurable-http-proxy), whose
	// X-Forwarded-For names the client; nil: none, a client is the
	// address it connects from.
	TrustedProxies []string
	// HubURL is where the pages' "Back to JupyterHub" leads; "": no link.
	HubURL string

	// Ready runs the readiness checks and returns the problems by check
	// name (empty: ready). nil: always ready.
	Ready func(ctx context.Context) map[string]string
	// Metrics is served at /metrics; nil: not served.
	Metrics http.Handler
	// Monitor is told about submissions and requests; nil: nobody.
	Monitor Monitor
}

// Monitor is told what the API does, for metrics.
type Monitor interface {
	Accepted()
	Refused(reason string)
	HTTP(route string, status int, d time.Duration)
}

type nopMonitor struct{}

func (nopMonitor) Accepted()                       {}
func (nopMonitor) Refused(string)                  {}
func (nopMonitor) HTTP(string, int, time.Duration) {}

// Handler returns the API's http.Handler.
func Handler(svc *service.Service, auth Authenticator, cfg Config, log *slog.Logger) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if cfg.Monitor == nil {
		cfg.Monitor = nopMonitor{}
	}
	a := &api{svc: svc, auth: auth, cfg: cfg, log: log}
	if cfg.BodyBytesInFlight > 0 {
		a.budget = newByteBudget(cfg.BodyBytesInFlight, cfg.MaxBodySize)
	}
	// A client is known by its address, or, behind the trusted proxies
	// (the Hub's proxy), by the one their X-Forwarded-For names. Nothing
	// else a client says about its address counts.
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		log.Error("ignoring the trusted proxies", "err", err)
		r.SetTrustedProxies(nil)
	}
	a.login, _ = auth.(Login)
	r.Use(a.logRequests, a.recover)
	prefix := "/" + strings.Trim(cfg.Prefix, "/") + "/"
	if prefix == "//" {
		prefix = "/"
	}
	a.cfg.Prefix = prefix
	// Outside the prefix: for the orchestrator and the monitoring.
	// HEAD answers as GET does (without the body): probes and load
	// balancers use either.
	healthz := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "alive"}) }
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	r.GET("/readyz", a.readyz)
	r.HEAD("/readyz", a.readyz)
	if cfg.Metrics != nil {
		r.GET("/metrics", gin.WrapH(cfg.Metrics))
	}
	g := r.Group(prefix)
	g.POST("", a.handle(a.submit))
	g.GET("", a.handle(a.signedIn(a.home)))
	g.GET("static/:file", a.static)
	g.GET("submissions/:id", a.handle(a.signedIn(a.status)))
	g.GET("api/submissions", a.handle(a.signedIn(a.list)))
	g.GET("api/submissions/:id", a.handle(a.signedIn(a.status)))
	g.GET("api/submissions/:id/notebook", a.handle(a.signedIn(a.notebook)))
	g.GET("api/export/:file", a.handle(a.export))
	g.GET("api/overview", a.handle(a.signedIn(a.overview)))
	g.GET("staff", a.handle(a.signedIn(a.overview)))
	// Course staff's actions (actions.go): forms at the pages' paths,
	// JSON under api/.
	for _, base := range []string{"", "api/"} {
		g.POST(base+"submissions/:id/regrade", a.action(a.regrade))
		g.POST(base+"submissions/:id/repost", a.action(a.repost))
		g.POST(base+"submissions/:id/review", a.action(a.review))
		g.POST(base+"regrades", a.action(a.regradeAssignment))
		g.GET(base+"regrades/:batch", a.handle(a.signedIn(a.progress)))
		g.GET(base+"audit", a.handle(a.signedIn(a.audit)))
	}
	if a.login != nil {
		r.GET(a.login.CallbackPath(), a.handle(a.callback))
	}
	r.NoRoute(func(c *gin.Context) {
		a.writeError(c, service.Errorf(service.ENOTFOUND, "There is nothing at %s.", c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		a.writeError(c, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			message: "This address does not accept " + c.Request.Method + " requests."})
	})
	return r
}

type api struct {
	budget *byteBudget // nil: no bound
	svc    *service.Service
	auth   Authenticator
	login  Login // nil if auth cannot sign browsers in
	cfg    Config
	log    *slog.Logger
}

// handle adapts a handler that returns an error.
func (a *api) handle(h func(*gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			a.writeError(c, err)
		}
	}
}

// httpError is an error with an HTTP status of its own, for the few that the
// service's codes do not cover.
type httpError struct {
	status        int
	code, message string
}

func (e *httpError) Error() string { return e.message }

// statuses maps the service's error codes to HTTP statuses.
var statuses = map[string]int{
	service.EINVALID:       http.StatusBadRequest,
	service.EUNAUTHORIZED:  http.StatusUnauthorized,
	service.EFORBIDDEN:     http.StatusForbidden,
	service.ENOTFOUND:      http.StatusNotFound,
	service.ECONFLICT:      http.StatusConflict,
	service.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	service.EUNSUPPORTED:   http.StatusUnsupportedMediaType,
	service.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	service.EUNAVAILABLE:   http.StatusServiceUnavailable,
	service.ELIMIT:         http.StatusTooManyRequests,
	service.EINTERNAL:      http.StatusInternalServerError,
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (a *api) writeError(c *gin.Context, err error) {
	var body errorBody
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status, body.Error.Code, body.Error.Message = he.status, he.code, he.message
	} else {
		body.Error.Code = service.ErrorCode(err)
		body.Error.Message = service.ErrorMessage(err)
		if s, ok := statuses[body.Error.Code]; ok {
			status = s
		}
	}
	if status >= 500 {
		a.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		c.Header("Retry-After", "60")
	}
	if (c.Request.Method == http.MethodGet || c.GetBool(formKey)) && a.pageRequest(c.Request) {
		a.errorPage(c, status, body.Error.Message)
		c.Abort()
		return
	}
	c.AbortWithStatusJSON(status, body)
}

// pageRequest reports whether r asks for a page: a browser's, to a path
// not under {prefix}api/ (always JSON).
func (a *api) pageRequest(r *http.Request) bool {
	return wantsHTML(r) && !strings.HasPrefix(r.URL.Path, a.cfg.Prefix+"api/")
}

func (a *api) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.Error("panic while handling a request", "path", c.Request.URL.Path, "panic", p)
			a.writeError(c, errors.New("panic"))
		}
	}()
	c.Next()
}

func (a *api) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	a.cfg.Monitor.HTTP(route, c.Writer.Status(), d)
	a.log.Debug("request", "method", c.Request.Method, "route", route, "status", c.Writer.Status(),
		"seconds", d.Seconds())
}

// submitResponse is the answer to an accepted submission. Older Submit
// buttons show the whole response text in an alert, so Message is a sentence
// for the student.
type submitResponse struct {
	ID        string         `json:"id"`
	Status    service.Status `json:"status"`
	StatusURL string         `json:"status_url"`
	Message   string         `json:"message"`
}

func (a *api) submit(c *gin.Context) error {
	err := a.submitOrHold(c)
	switch {
	case err != nil:
		a.cfg.Monitor.Refused(errorCode(err))
	case c.Writer.Status() == http.StatusAccepted:
		a.cfg.Monitor.Accepted()
	}
	return err
}

func errorCode(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return he.code
	}
	return service.ErrorCode(err)
}

func (a *api) submitOrHold(c *gin.Context) error {
	who, err := a.auth.Authenticate(c.Request)
	if err != nil {
		if a.anonymousBrowser(c.Request, err) && a.login.CheckSameOriginJSON(c.Request) == nil {
			return a.hold(c)
		}
		return err
	}
	body, upload, release, err := a.readNotebook(c, false)
	if err != nil {
		return err
	}
	sub, err := a.svc.Submit(c, who, body, a.notebookName(c.Request, upload))
	release() // the store has its own copy now
	if err != nil {
		return err
	}
	a.accepted(c, sub)
	return nil
}

func (a *api) accepted(c *gin.Context, sub *service.Submission) {
	c.JSON(http.StatusAccepted, submitResponse{
		ID:        sub.ID,
		Status:    sub.Status,
		StatusURL: a.cfg.Prefix + "submissions/" + sub.ID,
		Message: "Your notebook for " + sub.Assignment.Assignment + " was received and will be graded shortly. " +
			"Your grade will be recorded when grading finishes; there is no need to submit again.",
	})
}

// anonymousBrowser reports whether a request refused for want of
// credentials came from a browser that can be sent through sign-in: it
// carries no Authorization header (an API client's token is never
// second-guessed).
func (a *api) anonymousBrowser(r *http.Request, err error) bool {
	return a.login != nil && service.ErrorCode(err) == service.EUNAUTHORIZED && r.Header.Get("Authorization") == ""
}

// hold answers the Submit button of a student who has no session with the
// service yet: the notebook is checked and held, and the browser's fetch is
// sent (303) through the Hub's sign-in, which it follows on the Hub's own
// origin with the Hub's cookies. The callback queues the held notebook for
// the user the Hub names, and its 202 is the fetch's final answer. Nothing
// the browser says about who it is counts.
func (a *api) hold(c *gin.Context) error {
	body, upload, release, err := a.readNotebook(c, true)
	if err != nil {
		return err
	}
	key, err := a.svc.Hold(c, body, a.notebookName(c.Request, upload), clientKey(c))
	release()
	if err != nil {
		return err
	}
	loc, err := a.login.StartLogin(c.Writer, c.Request, a.cfg.Prefix, key)
	if err != nil {
		return err
	}
	c.Header("Location", loc)
	c.JSON(http.StatusSeeOther, gin.H{"message": "Signing you in through JupyterHub to finish your submission.", "location": loc})
	return nil
}

// signIn redirects a browser navigation refused for want of credentials
// through sign-in, coming back to the page it asked for; it reports whether
// it did.
func (a *api) signIn(c *gin.Context, err error) bool {
	r := c.Request
	if !a.anonymousBrowser(r, err) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Mode") != "navigate" && !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	loc, lerr := a.login.StartLogin(c.Writer, r, r.URL.RequestURI(), "")
	if lerr != nil {
		return false
	}
	c.Redirect(http.StatusFound, loc)
	return true
}

// callback finishes sign-in: the held submission, if any, is queued for the
// user the Hub named (202, the Submit button's answer); otherwise the browser
// goes back where it was going.
func (a *api) callback(c *gin.Context) error {
	who, next, held, err := a.login.FinishLogin(c.Writer, c.Request)
	if err != nil {
		return err
	}
	if held == "" {
		c.Redirect(http.StatusFound, next)
		return nil
	}
	sub, err := a.svc.SubmitHeld(c, who, held)
	if err != nil {
		a.cfg.Monitor.Refused(errorCode(err))
		return err
	}
	a.accepted(c, sub)
	a.cfg.Monitor.Accepted()
	return nil
}

// readyz runs the readiness checks: 200 when every one passes, else 503
// naming what is not ready.
func (a *api) readyz(c *gin.Context) {
	var problems map[string]string
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c, 5*time.Second)
		problems = a.cfg.Ready(ctx)
		cancel()
	}
	if len(problems) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"ready": false, "not_ready": problems})
		return
	}
	c.JSON(http.StatusOK, gin.H{"ready": true})
}

// whoami tells a signed-in user who the service takes them for.
// home is GET {prefix}: for a browser the list of one's submissions, else
// who the service takes the user for.
func (a *api) home(c *gin.Context, who service.Identity) error {
	if a.pageRequest(c.Request) {
		return a.list(c, who)
	}
	return a.whoami(c, who)
}

// signedIn runs h for the signed-in user; a browser's navigation without
// credentials is sent through sign-in instead (see signIn).
func (a *api) signedIn(h func(*gin.Context, service.Identity) error) func(*gin.Context) error {
	return func(c *gin.Context) error {
		who, err := a.auth.Authenticate(c.Request)
		if err != nil {
			if a.signIn(c, err) {
				return nil
			}
			return err
		}
		return h(c, who)
	}
}

func (a *api) whoami(c *gin.Context, who service.Identity) error {
	resp := gin.H{"user": who.Name, "admin": who.Admin}
	if len(who.Courses) > 0 {
		resp["staff_of"] = who.Courses
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

// NotebookPathHeader is where the Submit button (otter-submit) sends the
// notebook's path in the student's server, e.g. "work/lab01/lab01.ipynb".
const NotebookPathHeader = "X-Otter-Notebook-Path"

// notebookName returns the notebook's file name as the request gives it:
// the base name of the Submit button's notebook path, else of the upload's
// file name (upload), else "" (the service looks in the notebook). An
// unusable one is skipped.
func (a *api) notebookName(r *http.Request, upload string) string {
	if p := r.Header.Get(NotebookPathHeader); p != "" {
		if name, ok := service.NotebookNameFromPath(p); ok {
			return name
		}
		if len(p) > 300 {
			p = p[:300] + "…"
		}
		a.log.Debug("ignoring an unusable "+NotebookPathHeader, "value", p)
	}
	if upload != "" {
		if name, ok := service.NotebookNameFromPath(upload); ok {
			return name
		}
	}
	return ""
}

// clientKey is the key of the client's address for the bounds on what
// clients not signed in may hold: a hash, so that no address is stored.
func clientKey(c *gin.Context) string {
	sum := sha256.Sum256([]byte("otter-service client " + c.ClientIP()))
	return hex.EncodeToString(sum[:16])
}

// bodies recycles request buffers: at hundreds of submissions a second, a
// fresh buffer per request would keep the garbage collector busy.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// readNotebook reads the submission body: JSON (the Submit button's
// {"nb": ...} or a bare notebook) or a multipart upload with the notebook as
// a file, whose file name (as the client gave it) it returns as upload. The
// caller calls release when it no longer needs the body.
func (a *api) readNotebook(c *gin.Context, anonymous bool) (body []byte, upload string, release func(), err error) {
	r := c.Request
	if r.ContentLength > a.cfg.MaxBodySize {
		return nil, "", nil, a.tooLarge()
	}
	// Reserve the body's bytes before reading one (unknown lengths as the
	// largest allowed: io.ReadAll may hold twice what it reads).
	need := r.ContentLength
	if need <= 0 {
		need = 2 * a.cfg.MaxBodySize
	}
	giveBack, ok := a.budget.reserve(need, anonymous, clientKey(c))
	if !ok {
		// The body is not read: the connection is closed after the answer,
		// without waiting for the rest of what the client sends.
		c.Header("Connection", "close")
		http.NewResponseController(c.Writer).SetReadDeadline(time.Now())
		return nil, "", nil, service.Errorf(service.EUNAVAILABLE, "The grading service is receiving many notebooks at once right now; please submit again in a minute.")
	}
	defer func() {
		if err != nil {
			giveBack()
		}
	}()
	noop := giveBack
	if r.ContentLength > 0 && isJSON(r.Header.Get("Content-Type")) {
		// The usual case: read into a recycled buffer of the right size.
		r.Body = http.MaxBytesReader(c.Writer, r.Body, a.cfg.MaxBodySize)
		bp := bodies.Get().(*[]byte)
		if int64(cap(*bp)) < r.ContentLength {
			*bp = make([]byte, r.ContentLength)
		}
		b := (*bp)[:r.ContentLength]
		if _, err := io.ReadFull(r.Body, b); err != nil {
			bodies.Put(bp)
			return nil, "", nil, service.Errorf(service.EINVALID, "The submission could not be read completely.")
		}
		return b, "", func() { bodies.Put(bp); giveBack() }, nil
	}
	body, upload, err = a.readOther(c)
	return body, upload, noop, err
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "application/json" || mediaType == "application/x-ipynb+json")
}

// readOther reads a body of unknown length, or a multipart upload (and its
// file name).
func (a *api) readOther(c *gin.Context) ([]byte, string, error) {
	r := c.Request
	r.Body = http.MaxBytesReader(c.Writer, r.Body, a.cfg.MaxBodySize)
	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mediaType = ""
	}
	switch mediaType {
	case "application/json", "application/x-ipynb+json":
		body, err := a.readAll(r.Body)
		return body, "", err
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, "", service.Errorf(service.EINVALID, "The multipart upload could not be read: %v.", err)
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil, "", service.Errorf(service.EUNPROCESSABLE, "The upload has no notebook: send it as a file, e.g. curl -F file=@lab01.ipynb.")
			}
			if err != nil {
				if isTooLarge(err) {
					return nil, "", a.tooLarge()
				}
				return nil, "", service.Errorf(service.EINVALID, "The multipart upload could not be read: %v.", err)
			}
			if name := part.FileName(); name != "" || part.FormName() == "file" || part.FormName() == "nb" {
				body, err := a.readAll(part)
				return body, name, err
			}
		}
	default:
		return nil, "", service.Errorf(service.EUNSUPPORTED, "Content type %q is not accepted: send the notebook as application/json (the Submit button's {\"nb\": ...} or the .ipynb itself) or as a multipart file upload.", ct)
	}
}

func (a *api) readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if isTooLarge(err) {
		return nil, a.tooLarge()
	}
	if err != nil {
		return nil, service.Errorf(service.EINVALID, "The submission could not be read completely.")
	}
	return b, nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func (a *api) tooLarge() error {
	return service.Errorf(service.ETOOLARGE, "The notebook is larger than %d MiB. Clear large outputs (Kernel → Restart & Clear Output), save, and submit again.", a.cfg.MaxBodySize>>20)
}

// statusResponse is a submission as its owner sees it.
type statusResponse struct {
	ID            string         `json:"id"`
	StatusURL     string         `json:"status_url"`
	Status        service.Status `json:"status"`
	User          string         `json:"user"`
	Course        string         `json:"course"`
	Section       string         `json:"section"`
	Assignment    string         `json:"assignment"`
	Notebook      string         `json:"notebook"` // the file name it is graded under
	QueuePosition int            `json:"queue_position,omitempty"`
	// EstimatedWait is how long, in seconds, it may take until it is
	// graded (queued only, once the service has seen a few gradings).
	EstimatedWait int                    `json:"estimated_wait_seconds,omitempty"`
	ReceivedAt    time.Time              `json:"received_at"`
	StartedAt     *time.Time             `json:"started_at"`
	FinishedAt    *time.Time             `json:"finished_at"`
	Attempts      int                    `json:"attempts"`
	Grade         *float64               `json:"grade"`
	Questions     []service.QuestionView `json:"questions,omitempty"`
	Feedback      []service.FeedbackView `json:"feedback,omitempty"`
	Error         *service.Failure       `json:"error,omitempty"`
	Post          *postResponse          `json:"post,omitempty"`
	Message       string                 `json:"message"`
}

// postResponse is where posting the grade to edX is.
type postResponse struct {
	Status        service.PostStatus `json:"status"`
	Attempts      int                `json:"attempts"`
	LastError     string             `json:"last_error,omitempty"`
	NextAttemptAt *time.Time         `json:"next_attempt_at,omitempty"`
	PostedAt      *time.Time         `json:"posted_at,omitempty"`
	Confirmed     *bool              `json:"confirmed,omitempty"`   // posted, replaced: whether edX answered that it applied it
	ReplacedBy    string             `json:"replaced_by,omitempty"` // superseded, replaced: the submission whose grade is posted instead
}

func (a *api) status(c *gin.Context, who service.Identity) error {
	st, err := a.svc.Status(c, who, c.Param("id"))
	if err != nil {
		return err
	}
	resp := a.statusOf(st, who)
	if a.pageRequest(c.Request) {
		return a.submissionPage(c, who, resp)
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

// statusOf is a submission's status as who may see it.
func (a *api) statusOf(st *service.SubmissionStatus, who service.Identity) statusResponse {
	resp := statusResponse{StatusURL: a.cfg.Prefix + "submissions/" + st.ID,
		ID: st.ID, Status: st.Status, User: st.User, Course: st.Course, Section: st.Section, Assignment: st.Assignment.Assignment,
		Notebook: st.GradingName(), QueuePosition: st.QueuePosition, ReceivedAt: st.ReceivedAt, StartedAt: timePtr(st.StartedAt),
		FinishedAt: timePtr(st.FinishedAt), Attempts: st.Attempts, Questions: st.Questions, Feedback: st.Feedback, Error: st.Failure,
	}
	resp.EstimatedWait = int(st.EstimatedWait.Round(time.Second) / time.Second)
	switch st.Status {
	case service.StatusQueued:
		resp.Message = "Your notebook is waiting to be graded."
	case service.StatusGrading:
		resp.Message = "Your notebook is being graded."
	case service.StatusGraded:
		g := st.Grade
		resp.Grade = &g
		resp.Message = "Your notebook has been graded."
		if p := st.Post; p.Status != service.PostNone {
			resp.Post = &postResponse{Status: p.Status, Attempts: p.Attempts, LastError: p.LastError, PostedAt: timePtr(p.PostedAt), ReplacedBy: p.By}
			if p.Status == service.PostPending {
				resp.Post.NextAttemptAt = timePtr(p.NextAt)
			}
			if !p.PostedAt.IsZero() {
				confirmed := p.Confirmed
				resp.Post.Confirmed = &confirmed
			}
			switch p.Status {
			case service.PostDisabled:
				resp.Message += " The grade is recorded; it is not posted to edX (posting is disabled)."
			case service.PostPending:
				resp.Message += " The grade will be posted to edX shortly."
			case service.PostPosted:
				resp.Message += " The grade was posted to edX."
			case service.PostFailed:
				resp.Message += " The grade could not be posted to edX: " + p.LastError + " Tell your course staff."
			case service.PostSuperseded:
				resp.Message += " It was not posted to edX: the grade of another submission (" + p.By + ") is the one posted."
			case service.PostReplaced:
				sent := " The grade was sent to edX"
				if !p.PostedAt.IsZero() {
					sent += " at " + p.PostedAt.Format("15:04 UTC on 2 Jan")
				}
				if !p.Confirmed {
					sent += " (edX did not confirm it)"
				}
				resp.Message += sent + ", since replaced by the grade of another submission (" + p.By + ")."
			}
		}
	case service.StatusNeedsReview:
		resp.Message = "Your submission needs review by course staff before it gets a grade: something in the notebook interfered with grading. It is not posted to edX."
		if who.StaffOf(st.Course) { // staff see the grade and what was detected
			g := st.Grade
			resp.Grade = &g
		} else {
			resp.Error, resp.Questions, resp.Feedback = nil, nil, nil
		}
	case service.StatusFailed:
		resp.Message = "Your notebook could not be graded."
		if st.Failure != nil {
			resp.Message += " " + st.Failure.Message
		}
	}
	return resp
}

// listResponse is a page of submissions.
type listResponse struct {
	Submissions []statusResponse `json:"submissions"`
	// On a student's first page: their submissions refused at intake.
	Refused []refusalResponse `json:"refused,omitempty"`
	Next    string            `json:"next,omitempty"`     // the cursor of the next page
	NextURL string            `json:"next_url,omitempty"` // this list's next page
}

// notebook answers GET {prefix}api/submissions/{id}/notebook: the notebook
// as it was submitted, as a download, for course staff.
func (a *api) notebook(c *gin.Context, who service.Identity) error {
	sub, nb, err := a.svc.Notebook(c, who, c.Param("id"))
	if err != nil {
		return err
	}
	name := safeName(sub.User) + "-" + safeName(strings.TrimSuffix(sub.GradingName(), ".ipynb")) + "-" + sub.ID[:min(8, len(sub.ID))] + ".ipynb"
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "application/x-ipynb+json", nb)
	return nil
}

// refusalResponse is a submission refused at intake.
type refusalResponse struct {
	At         time.Time `json:"at"`
	Course     string    `json:"course,omitempty"`
	Section    string    `json:"section,omitempty"`
	Assignment string    `json:"assignment,omitempty"`
	Message    string    `json:"message"` // the sentence the sender was answered
}

// parseFilter reads a list's query: user, course, section, assignment,
// status, since and until (RFC 3339), and with paged, limit and after.
func parseFilter(q url.Values, paged bool) (service.SubmissionFilter, error) {
	known := "user, course, section, assignment, status, since and until"
	if paged {
		known = "user, course, section, assignment, status, since, until, limit and after"
	}
	for name := range q {
		switch name {
		case "user", "course", "section", "assignment", "status", "since", "until":
		case "limit", "after":
			if paged {
				continue
			}
			fallthrough
		default:
			return service.SubmissionFilter{}, service.Errorf(service.EINVALID, "Unknown query parameter %q: this takes %s.", name, known)
		}
	}
	f := service.SubmissionFilter{User: q.Get("user"), Course: q.Get("course"), Section: q.Get("section"),
		Assignment: q.Get("assignment"), Status: service.Status(q.Get("status")), After: q.Get("after")}
	var err error
	for name, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				return f, service.Errorf(service.EINVALID, "%s must be a time as in 2026-12-01T09:00:00Z, not %q.", name, v)
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return f, service.Errorf(service.EINVALID, "limit must be a number from 1 to %d, not %q.", service.MaxListLimit, v)
		}
	}
	return f, nil
}

// list answers GET {prefix}api/submissions: the submissions the query
// selects (user, course, section, assignment, status; since and until as
// RFC 3339 times; limit; after, the cursor of a page's next), newest first:
// a student's own, course staff's of anyone.
func (a *api) list(c *gin.Context, who service.Identity) error {
	q := c.Request.URL.Query()
	f, err := parseFilter(q, true)
	if err != nil {
		return err
	}
	subs, next, err := a.svc.ListSubmissions(c, who, f)
	if err != nil {
		return err
	}
	resp := listResponse{Submissions: make([]statusResponse, 0, len(subs)), Next: next}
	// One student's first page shows what was refused too: the Submit
	// button never showed it.
	if user := cmp.Or(f.User, who.Name); f.After == "" && (!who.StaffOf(f.Course) || f.User != "") {
		refused, err := a.svc.Refusals(c, who, user, f.Course)
		if err != nil {
			return err
		}
		for _, e := range refused {
			if f.Status != "" || f.Course != "" && e.Course != f.Course || f.Section != "" && e.Section != f.Section ||
				f.Assignment != "" && e.Assignment.Assignment != f.Assignment ||
				!f.Since.IsZero() && e.Timestamp.Before(f.Since) || !f.Until.IsZero() && !e.Timestamp.Before(f.Until) {
				continue // not what the query selects
			}
			resp.Refused = append(resp.Refused, refusalResponse{At: e.Timestamp, Course: e.Course, Section: e.Section,
				Assignment: e.Assignment.Assignment, Message: e.Message})
		}
	}
	for _, sub := range subs {
		resp.Submissions = append(resp.Submissions, a.statusOf(&service.SubmissionStatus{Submission: sub}, who))
	}
	if next != "" {
		q.Set("after", next)
		resp.NextURL = a.cfg.Prefix + "api/submissions?" + q.Encode()
	}
	if a.pageRequest(c.Request) {
		return a.listPage(c, who, resp, f)
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
