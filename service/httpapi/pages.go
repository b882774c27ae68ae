package httpapi

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otter-service/otter-service/service"
)

// The pages for people, served by the binary itself: the same data as the
// JSON answers, as HTML, when a browser asks for HTML (Accept: text/html).
// They work without JavaScript (a reload brings them up to date); with
// it, static/live.js keeps a page current while something on it is still
// being graded.

//go:embed pages
var pageFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"when": func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
}).ParseFS(pageFiles, "pages/*.html"))

// liveEvery is how often, in seconds, a page with a submission still
// queued or grading looks again.
const liveEvery = 3

// wantsHTML reports whether r is a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// pageData is what every page shows around its content.
type pageData struct {
	Page, Title, Summary string
	Prefix, HubURL       string
	User                 string
	Staff                bool
	Live                 bool
	LiveEvery            int
	Token                string // for the forms of actions (see ActionAuth)
}

// row is one submission as the pages show it.
type row struct {
	ID, URL                           string
	User, Course, Section, Assignment string
	Notebook                          string
	Received                          time.Time
	Status                            service.Status
	StatusWords, Grade, Post, Message string
	questions                         []service.QuestionView
	feedback                          []service.FeedbackView
	failure                           string
}

func (a *api) page(r *http.Request, who service.Identity, name, title string) pageData {
	d := pageData{Page: name, Title: title, Prefix: a.cfg.Prefix, HubURL: a.cfg.HubURL, User: who.Name, Staff: who.Staff(),
		LiveEvery: liveEvery}
	if d.Staff {
		d.Token = a.actionToken(r)
	}
	return d
}

func (a *api) render(c *gin.Context, status int, name string, data any) error {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
	return nil
}

// rowOf is a status as the pages say it.
func (a *api) rowOf(st statusResponse) row {
	r := row{ID: st.ID, URL: st.StatusURL, User: st.User, Course: st.Course, Section: st.Section, Assignment: st.Assignment,
		Notebook: st.Notebook, Received: st.ReceivedAt, Status: st.Status, Message: st.Message,
		questions: st.Questions, feedback: st.Feedback}
	switch st.Status {
	case service.StatusQueued:
		r.StatusWords = "Waiting to be graded"
		if st.QueuePosition > 0 {
			r.StatusWords += fmt.Sprintf(" (number %d in line%s)", st.QueuePosition, aboutWait(st.EstimatedWait))
		}
	case service.StatusGrading:
		r.StatusWords = "Being graded"
	case service.StatusGraded:
		r.StatusWords = "Graded"
	case service.StatusFailed:
		r.StatusWords = "Could not be graded"
		if st.Error != nil {
			r.failure = st.Error.Message
		}
	case service.StatusNeedsReview:
		r.StatusWords = "Needs review by course staff"
	}
	if st.Grade != nil {
		r.Grade = percent(*st.Grade)
	}
	if p := st.Post; p != nil {
		at := ""
		if p.PostedAt != nil {
			at = " at " + p.PostedAt.UTC().Format("15:04 UTC on 2 Jan")
		}
		switch p.Status {
		case service.PostDisabled:
			r.Post = "Not sent to edX (posting is off)"
		case service.PostPending:
			r.Post = "Being sent to edX"
		case service.PostPosted:
			r.Post = "Sent to edX" + at
		case service.PostFailed:
			r.Post = "edX did not take it: " + p.LastError
		case service.PostSuperseded:
			r.Post = "Not sent: a newer submission's grade is sent instead"
		case service.PostReplaced:
			r.Post = "Sent to edX" + at + ", since replaced by another submission's grade"
		}
	}
	return r
}

// percent is a grade as a percentage, to a tenth.
func percent(g float64) string {
	return strconv.FormatFloat(math.Round(g*1000)/10, 'f', -1, 64) + "%"
}

// listPage is GET {prefix} for a browser: the list of submissions (see
// list), a student's own.
func (a *api) listPage(c *gin.Context, who service.Identity, resp listResponse, f service.SubmissionFilter) error {
	title := "My submissions"
	if who.StaffOf(f.Course) && f.User != "" && f.User != who.Name {
		title = "Submissions of " + f.User
	} else if who.StaffOf(f.Course) && f.User == "" {
		title = "All submissions"
		if f.Course != "" {
			title += " of " + f.Course
		}
	}
	data := struct {
		pageData
		Rows     []row
		Refused  []refusalResponse
		OlderURL string
	}{pageData: a.page(c.Request, who, "list", title), Refused: resp.Refused}
	waiting := 0
	for _, st := range resp.Submissions {
		if st.Status == service.StatusQueued || st.Status == service.StatusGrading {
			waiting++
			if st.Status == service.StatusQueued && len(data.Rows) < 10 { // its place in line
				if full, err := a.svc.Status(c, who, st.ID); err == nil && full.QueuePosition > 0 {
					st.QueuePosition = full.QueuePosition
					st.EstimatedWait = int(full.EstimatedWait / time.Second)
				}
			}
		}
		data.Rows = append(data.Rows, a.rowOf(st))
	}
	if resp.Next != "" {
		q := c.Request.URL.Query()
		q.Set("after", resp.Next)
		data.OlderURL = a.cfg.Prefix + "?" + q.Encode()
	}
	switch n := len(data.Rows); {
	case n == 0:
		data.Summary = "Nothing received yet."
	case waiting > 0:
		data.Summary = fmt.Sprintf("%d of these %s still being graded; this page updates itself.", waiting, plural(waiting, "is", "are"))
		data.Live = true
	default:
		data.Summary = fmt.Sprintf("%d %s, all graded or finished.", n, plural(n, "submission", "submissions"))
	}
	return a.render(c, http.StatusOK, "list.html", data)
}

// submissionPage is GET {prefix}submissions/{id} for a browser.
func (a *api) submissionPage(c *gin.Context, who service.Identity, st statusResponse) error {
	r := a.rowOf(st)
	data := struct {
		pageData
		Row       row
		Failure   string
		Questions []struct {
			Name, Score, Max string
			Shown            bool
		}
		Withheld string
		Outputs  []struct{ Name, Output string }
		Actions  *struct{ Regrade, Review, Repost bool }
	}{pageData: a.page(c.Request, who, "submission", st.Assignment+" · "+st.Notebook), Row: r, Failure: r.failure}
	if who.StaffOf(st.Course) {
		finished := st.Status != service.StatusQueued && st.Status != service.StatusGrading
		data.Actions = &struct{ Regrade, Review, Repost bool }{Regrade: finished, Review: st.Status == service.StatusNeedsReview,
			Repost: st.Status == service.StatusGraded && a.svc.Posting()}
	}
	data.Live = st.Status == service.StatusQueued || st.Status == service.StatusGrading
	withheld := 0
	for _, q := range r.questions {
		v := struct {
			Name, Score, Max string
			Shown            bool
		}{Name: q.Name, Max: number(q.MaxScore), Shown: q.Score != nil}
		if q.Score != nil {
			v.Score = number(*q.Score)
		} else {
			withheld++
		}
		data.Questions = append(data.Questions, v)
		if q.Output != "" {
			data.Outputs = append(data.Outputs, struct{ Name, Output string }{q.Name, q.Output})
		}
	}
	for _, f := range r.feedback {
		if f.Output != "" {
			data.Outputs = append(data.Outputs, struct{ Name, Output string }{f.Name, f.Output})
		}
	}
	if withheld > 0 {
		data.Withheld = fmt.Sprintf("The results of %d %s are withheld: the course shows them later, or not at all (hidden tests). They count in the grade.",
			withheld, plural(withheld, "question", "questions"))
	}
	return a.render(c, http.StatusOK, "submission.html", data)
}

// errorPage answers a browser's request that failed, as a page.
func (a *api) errorPage(c *gin.Context, status int, message string) {
	data := pageData{Page: "error", Title: http.StatusText(status), Summary: message, Prefix: a.cfg.Prefix, HubURL: a.cfg.HubURL}
	if err := a.render(c, status, "error.html", data); err != nil {
		c.String(status, message)
	}
}

// static serves the pages' style sheet and script.
func (a *api) static(c *gin.Context) {
	name := path.Base(c.Param("file"))
	b, err := pageFiles.ReadFile("pages/" + name)
	if err != nil || !(strings.HasSuffix(name, ".css") || strings.HasSuffix(name, ".js")) {
		a.writeError(c, service.Errorf(service.ENOTFOUND, "There is nothing at %s.", c.Request.URL.Path))
		return
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ct, b)
}

// aboutWait says an estimated wait of seconds, after a comma ("" if none).
func aboutWait(seconds int) string {
	switch {
	case seconds <= 0:
		return ""
	case seconds < 60:
		return ", graded in less than a minute"
	case seconds < 90:
		return ", graded in about a minute"
	}
	return fmt.Sprintf(", graded in about %d minutes", (seconds+30)/60)
}

func number(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
