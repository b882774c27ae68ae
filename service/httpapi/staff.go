package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otter-service/otter-service/service"
)

// overviewResponse is GET {prefix}api/overview: what course staff see of
// the submissions the query selects.
type overviewResponse struct {
	Submissions int                        `json:"submissions"`
	ByStatus    map[service.Status]int     `json:"by_status"`
	Students    int                        `json:"students"`
	Histogram   [10]int                    `json:"histogram"` // students by selected grade, in tenths
	TimeToGrade map[string]float64         `json:"time_to_grade_seconds"`
	Failures    []failureGroupResponse     `json:"failures"`
	Posts       map[service.PostStatus]int `json:"posts"`
	PostsToSee  []statusResponse           `json:"posts_to_see"`
	NeedsReview []statusResponse           `json:"needs_review"`
}

type failureGroupResponse struct {
	Code    string `json:"code"`
	Count   int    `json:"count"`
	Example string `json:"example"`
	Latest  string `json:"latest_submission"`
}

// overview answers GET {prefix}staff (the page) and {prefix}api/overview.
// Course staff only.
func (a *api) overview(c *gin.Context, who service.Identity) error {
	if !who.Staff() {
		return service.Errorf(service.EFORBIDDEN, "Only course staff may see the course overview.")
	}
	q := c.Request.URL.Query()
	f, err := parseFilter(q, false)
	if err != nil {
		return err
	}
	if c := staffCourse(who, f.Course); c != f.Course {
		f.Course = c
		q.Set("course", f.Course)
	}
	o, err := a.svc.Overview(c, who, f)
	if err != nil {
		return err
	}
	resp := overviewResponse{Submissions: o.Submissions, ByStatus: o.ByStatus, Students: o.Students, Histogram: o.Histogram,
		Posts: o.Posts, TimeToGrade: map[string]float64{"p50": o.TimeToGrade.P50.Seconds(), "p90": o.TimeToGrade.P90.Seconds(),
			"max": o.TimeToGrade.Max.Seconds()}, Failures: []failureGroupResponse{}, PostsToSee: []statusResponse{}, NeedsReview: []statusResponse{}}
	for _, g := range o.Failures {
		fg := failureGroupResponse{Code: g.Code, Count: g.Count, Example: g.Example}
		if g.Latest != nil {
			fg.Latest = g.Latest.ID
		}
		resp.Failures = append(resp.Failures, fg)
	}
	for _, s := range o.PostsToSee {
		resp.PostsToSee = append(resp.PostsToSee, a.statusOf(&service.SubmissionStatus{Submission: s}, who))
	}
	for _, s := range o.NeedsReview {
		resp.NeedsReview = append(resp.NeedsReview, a.statusOf(&service.SubmissionStatus{Submission: s}, who))
	}
	if !a.pageRequest(c.Request) {
		c.JSON(http.StatusOK, resp)
		return nil
	}
	return a.staffPage(c, who, f, q.Encode(), o, resp)
}

// staffCourse is the course a staff page is about: the one asked for, or,
// for the staff of one course who name none, theirs.
func staffCourse(who service.Identity, course string) string {
	if course == "" && !who.Admin && len(who.Courses) == 1 {
		return who.Courses[0]
	}
	return course
}

// histBar is one bar of the grade histogram.
type histBar struct {
	X, Y, W, H, TextX, CountY int
	N                         int
	Label                     string
}

func (a *api) staffPage(c *gin.Context, who service.Identity, f service.SubmissionFilter, query string, o *service.Overview, resp overviewResponse) error {
	title := "Course overview"
	for _, part := range []string{f.Course, f.Section, f.Assignment} {
		if part != "" {
			title += " · " + part
		}
	}
	type count struct {
		Name string
		N    int
	}
	data := struct {
		pageData
		F                                 service.SubmissionFilter
		O                                 *service.Overview
		GradesURL, SubmissionsURL, Policy string
		P50, P90, Max                     string
		Counts                            []count
		Hist                              struct {
			Width, Height, Base, LabelY int
			Desc                        string
			Bars                        []histBar
		}
		PostRows   []row
		ReviewRows []struct {
			row
			Evidence string
		}
	}{pageData: a.page(c.Request, who, "staff", title), F: f, O: o, GradesURL: a.cfg.Prefix + "api/export/grades.csv?" + query,
		SubmissionsURL: a.cfg.Prefix + "api/export/submissions.csv?" + query, Policy: string(a.svc.Policy()),
		P50: duration(o.TimeToGrade.P50), P90: duration(o.TimeToGrade.P90), Max: duration(o.TimeToGrade.Max)}
	for _, st := range []service.Status{service.StatusQueued, service.StatusGrading, service.StatusGraded, service.StatusFailed, service.StatusNeedsReview} {
		data.Counts = append(data.Counts, count{a.rowOf(statusResponse{Status: st}).StatusWords, o.ByStatus[st]})
	}
	// The histogram: ten bars, scaled to the tallest.
	h := &data.Hist
	h.Width, h.Height, h.Base, h.LabelY = 400, 180, 150, 168
	most := 1
	for _, n := range o.Histogram {
		most = max(most, n)
	}
	desc := "Students by grade:"
	for i, n := range o.Histogram {
		bh := n * 120 / most
		label := fmt.Sprintf("%d–%d%%", i*10, i*10+10)
		h.Bars = append(h.Bars, histBar{X: i*40 + 4, Y: h.Base - bh, W: 32, H: bh, TextX: i*40 + 20, CountY: h.Base - bh - 4, N: n, Label: label})
		desc += fmt.Sprintf(" %s: %d;", label, n)
	}
	h.Desc = desc
	for _, st := range resp.PostsToSee {
		data.PostRows = append(data.PostRows, a.rowOf(st))
	}
	for i, st := range resp.NeedsReview {
		ev := ""
		if f := o.NeedsReview[i].Failure; f != nil {
			ev = f.Message
		}
		data.ReviewRows = append(data.ReviewRows, struct {
			row
			Evidence string
		}{a.rowOf(st), ev})
	}
	return a.render(c, http.StatusOK, "staff.html", data)
}

// duration says a time to grade.
func duration(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.1f min", d.Minutes())
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}
