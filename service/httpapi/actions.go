package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otter-service/otter-service/service"
)

// Course staff's actions: POSTs, from the pages' forms (answered with a
// redirect to what changed) or as JSON (under {prefix}api/). With a
// browser's session cookie they must come from the service's own pages:
// the same origin, and the form's token, bound to the session (see
// ActionAuth). Each is written to the audit log by the service.

// ActionAuth is what an Authenticator that keeps browser sessions offers for
// actions, so that no other site can make a signed-in browser act.
type ActionAuth interface {
	// ActionToken returns the token the pages of r's session put in their
	// forms; "" without a session.
	ActionToken(r *http.Request) string
	// AuthenticateAction is Authenticate for an action: with a session
	// cookie, r must come from the service's own origin and carry token,
	// the session's ActionToken.
	AuthenticateAction(r *http.Request, token string) (service.Identity, error)
}

// TokenField is the form field (and TokenHeader the header) an action's
// token comes in.
const (
	TokenField  = "token"
	TokenHeader = "X-Otter-Token"
)

// maxActionBody bounds an action's body: a form or a small JSON object.
const maxActionBody = 64 << 10

// actionToken returns the token to put in r's pages' forms.
func (a *api) actionToken(r *http.Request) string {
	if aa, ok := a.auth.(ActionAuth); ok {
		return aa.ActionToken(r)
	}
	return ""
}

// action adapts an action's handler: it reads the parameters (the query,
// and a form or a JSON object of strings in the body), authenticates the
// request as an action, and answers a form with a redirect to the page
// the handler names (or, failing, with an error page).
func (a *api) action(h func(c *gin.Context, who service.Identity, p url.Values) (status int, body any, page string, err error)) gin.HandlerFunc {
	return a.handle(func(c *gin.Context) error {
		form := a.pageRequest(c.Request)
		c.Set(formKey, form)
		p, err := actionParams(c.Request)
		if err != nil {
			return err
		}
		token := p.Get(TokenField)
		if token == "" {
			token = c.GetHeader(TokenHeader)
		}
		p.Del(TokenField)
		var who service.Identity
		if aa, ok := a.auth.(ActionAuth); ok {
			who, err = aa.AuthenticateAction(c.Request, token)
		} else {
			who, err = a.auth.Authenticate(c.Request)
		}
		if err != nil {
			return err
		}
		status, body, page, err := h(c, who, p)
		if err != nil {
			return err
		}
		if form && page != "" {
			c.Redirect(http.StatusSeeOther, page)
			return nil
		}
		c.JSON(status, body)
		return nil
	})
}

// formKey marks, in a request's context, an action sent by a page's form:
// its errors are answered as a page.
const formKey = "otter-form"

// actionParams returns an action's parameters.
func actionParams(r *http.Request) (url.Values, error) {
	p := r.URL.Query()
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxActionBody))
	if err != nil {
		return nil, service.Errorf(service.ETOOLARGE, "An action's parameters must be under %d KiB.", maxActionBody>>10)
	}
	if len(body) == 0 {
		return p, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, service.Errorf(service.EINVALID, "The form cannot be read: %v.", err)
		}
		for k, vs := range form {
			p[k] = vs
		}
	case "application/json":
		var obj map[string]string
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, service.Errorf(service.EINVALID, "The body must be a JSON object of strings: %v.", err)
		}
		for k, v := range obj {
			p.Set(k, v)
		}
	default:
		return nil, service.Errorf(service.EUNSUPPORTED, "An action's body must be a form (application/x-www-form-urlencoded) or JSON, not %q.", mt)
	}
	return p, nil
}

// only refuses parameters other than names.
func only(p url.Values, names ...string) error {
	for k := range p {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return service.Errorf(service.EINVALID, "Unknown parameter %q: this takes %v.", k, names)
		}
	}
	return nil
}

// batchResponse is what a regrade put back in the queue.
type batchResponse struct {
	Batch       string    `json:"batch"`
	Course      string    `json:"course"`
	Section     string    `json:"section"`
	Assignment  string    `json:"assignment"`
	Which       string    `json:"which,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
	Requeued    int       `json:"requeued"`
	Skipped     int       `json:"skipped"`
	ProgressURL string    `json:"progress_url"`
}

func (a *api) batchResponse(b *service.Batch) batchResponse {
	return batchResponse{Batch: b.ID, Course: b.Course, Section: b.Section, Assignment: b.Assignment.Assignment, Which: b.Which,
		Commit: b.Commit, By: b.By, At: b.At, Requeued: b.Requeued, Skipped: b.Skipped, ProgressURL: a.progressURL(b.Course, b.ID, false)}
}

func (a *api) progressURL(course, batch string, api bool) string {
	p := a.cfg.Prefix + "regrades/"
	if api {
		p = a.cfg.Prefix + "api/regrades/"
	}
	return p + url.PathEscape(batch) + "?" + url.Values{"course": {course}}.Encode()
}

// regrade answers POST {prefix}[api/]submissions/{id}/regrade.
func (a *api) regrade(c *gin.Context, who service.Identity, p url.Values) (int, any, string, error) {
	if err := only(p); err != nil {
		return 0, nil, "", err
	}
	b, err := a.svc.Regrade(c, who, c.Param("id"))
	if err != nil {
		return 0, nil, "", err
	}
	return http.StatusAccepted, a.batchResponse(b), a.cfg.Prefix + "submissions/" + c.Param("id"), nil
}

// regradeAssignment answers POST {prefix}[api/]regrades: course, section
// (optional), assignment and which ("latest" or "failed").
func (a *api) regradeAssignment(c *gin.Context, who service.Identity, p url.Values) (int, any, string, error) {
	if err := only(p, "course", "section", "assignment", "which"); err != nil {
		return 0, nil, "", err
	}
	as := service.Assignment{Course: p.Get("course"), Section: p.Get("section"), Assignment: p.Get("assignment")}
	if as.Course == "" {
		return 0, nil, "", service.Errorf(service.EINVALID, "Name the course (course=...).")
	}
	b, err := a.svc.RegradeAssignment(c, who, as, p.Get("which"))
	if err != nil {
		return 0, nil, "", err
	}
	return http.StatusAccepted, a.batchResponse(b), a.progressURL(b.Course, b.ID, false), nil
}

// repost answers POST {prefix}[api/]submissions/{id}/repost.
func (a *api) repost(c *gin.Context, who service.Identity, p url.Values) (int, any, string, error) {
	if err := only(p); err != nil {
		return 0, nil, "", err
	}
	t, err := a.svc.Repost(c, who, c.Param("id"))
	if err != nil {
		return 0, nil, "", err
	}
	body := gin.H{"status": t.Status, "submission": t.Want.SubmissionID, "grade": t.Want.Grade, "next_attempt_at": t.NextAt}
	return http.StatusOK, body, a.cfg.Prefix + "submissions/" + c.Param("id"), nil
}

// review answers POST {prefix}[api/]submissions/{id}/review: decision
// "accept" or "reject".
func (a *api) review(c *gin.Context, who service.Identity, p url.Values) (int, any, string, error) {
	if err := only(p, "decision"); err != nil {
		return 0, nil, "", err
	}
	var accept bool
	switch d := p.Get("decision"); d {
	case "accept":
		accept = true
	case "reject":
	default:
		return 0, nil, "", service.Errorf(service.EINVALID, "decision must be \"accept\" or \"reject\", not %q.", d)
	}
	sub, err := a.svc.Review(c, who, c.Param("id"), accept)
	if err != nil {
		return 0, nil, "", err
	}
	return http.StatusOK, a.statusOf(&service.SubmissionStatus{Submission: sub}, who), a.cfg.Prefix + "submissions/" + sub.ID, nil
}

// progressResponse is GET {prefix}api/regrades/{batch}.
type progressResponse struct {
	Batch       string                 `json:"batch"`
	Course      string                 `json:"course"`
	Total       int                    `json:"total"`
	Done        int                    `json:"done"`
	ByStatus    map[service.Status]int `json:"by_status"`
	Submissions []statusResponse       `json:"submissions"`
}

// progress answers GET {prefix}[api/]regrades/{batch}?course=...
func (a *api) progress(c *gin.Context, who service.Identity) error {
	q := c.Request.URL.Query()
	if err := only(q, "course"); err != nil {
		return err
	}
	course := staffCourse(who, q.Get("course"))
	p, err := a.svc.Progress(c, who, course, c.Param("batch"))
	if err != nil {
		return err
	}
	resp := progressResponse{Batch: p.ID, Course: p.Course, Total: p.Total, Done: p.Done, ByStatus: p.ByStatus}
	for _, sub := range p.Submissions {
		resp.Submissions = append(resp.Submissions, a.statusOf(&service.SubmissionStatus{Submission: sub}, who))
	}
	if !a.pageRequest(c.Request) {
		c.JSON(http.StatusOK, resp)
		return nil
	}
	data := struct {
		pageData
		P       progressResponse
		Percent int
		Rows    []row
	}{pageData: a.page(c.Request, who, "regrade", "Regrade progress"), P: resp, Percent: 100 * p.Done / max(p.Total, 1)}
	for _, st := range resp.Submissions {
		data.Rows = append(data.Rows, a.rowOf(st))
	}
	data.Live = p.Done < p.Total
	data.Summary = fmt.Sprintf("%d of %d regraded.", p.Done, p.Total)
	if data.Live {
		data.Summary += " This page updates itself."
	}
	return a.render(c, http.StatusOK, "regrade.html", data)
}

// auditDays is how far back the audit log goes by default.
const auditDays = 30

// auditEntry is one action in GET {prefix}api/audit.
type auditEntry struct {
	At         time.Time `json:"at"`
	By         string    `json:"by"`
	Action     string    `json:"action"`
	Submission string    `json:"submission,omitempty"`
	User       string    `json:"user,omitempty"`
	Course     string    `json:"course"`
	Section    string    `json:"section"`
	Assignment string    `json:"assignment"`
	Detail     string    `json:"detail,omitempty"`
	Batch      string    `json:"batch,omitempty"`
}

// audit answers GET {prefix}[api/]audit?course=...&days=...: what course
// staff did, newest first.
func (a *api) audit(c *gin.Context, who service.Identity) error {
	q := c.Request.URL.Query()
	if err := only(q, "course", "days"); err != nil {
		return err
	}
	course := staffCourse(who, q.Get("course"))
	if course == "" {
		return service.Errorf(service.EINVALID, "Name the course (course=...).")
	}
	days := auditDays
	if v := q.Get("days"); v != "" {
		var err error
		if days, err = strconv.Atoi(v); err != nil || days < 1 || days > 366 {
			return service.Errorf(service.EINVALID, "days must be a number from 1 to 366, not %q.", v)
		}
	}
	entries, err := a.svc.AuditLog(c, who, course, days)
	if err != nil {
		return err
	}
	resp := struct {
		Course  string       `json:"course"`
		Entries []auditEntry `json:"entries"`
	}{Course: course, Entries: []auditEntry{}}
	for _, e := range entries {
		ae := auditEntry{At: e.Timestamp, By: e.Actor, Action: e.Message, Submission: e.SubmissionID, User: e.User,
			Course: e.Course, Section: e.Section, Assignment: e.Assignment.Assignment, Detail: e.Trace}
		if batch, ok := strings.CutPrefix(e.Trace, "batch="); ok {
			ae.Batch, ae.Detail = batch, ""
		}
		resp.Entries = append(resp.Entries, ae)
	}
	if !a.pageRequest(c.Request) {
		c.JSON(http.StatusOK, resp)
		return nil
	}
	data := struct {
		pageData
		Course  string
		Days    int
		Entries []auditEntry
	}{pageData: a.page(c.Request, who, "audit", "What course staff did · "+course), Course: course, Days: days, Entries: resp.Entries}
	data.Summary = fmt.Sprintf("%d %s in the last %d days, newest first.", len(resp.Entries), plural(len(resp.Entries), "action", "actions"), days)
	return a.render(c, http.StatusOK, "audit.html", data)
}
