package httpapi

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/otter-service/otter-service/service"
)

// export answers GET {prefix}api/export/grades.csv (one row per student
// and assignment: the grade the posting policy selects, the best and the
// latest) and GET {prefix}api/export/submissions.csv (one row per
// submission), for the submissions the query selects (as the list's, but
// all of them). Course staff only. Columns are named for spreadsheets;
// times are UTC, in a form spreadsheets read.
func (a *api) export(c *gin.Context) error {
	who, err := a.auth.Authenticate(c.Request)
	if err != nil {
		return err
	}
	file := c.Param("file")
	if file != "grades.csv" && file != "submissions.csv" {
		return service.Errorf(service.ENOTFOUND, "There is no export %q: there are grades.csv and submissions.csv.", file)
	}
	f, err := parseFilter(c.Request.URL.Query(), false)
	if err != nil {
		return err
	}
	subs, students, err := a.svc.Export(c, who, f)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if file == "grades.csv" {
		w.Write([]string{"Student", "Course", "Section", "Assignment", "Grade (" + string(a.svc.Policy()) + ")",
			"Best grade", "Latest grade", "Submissions", "Graded submission", "Graded submission received (UTC)"})
		for _, g := range students {
			w.Write(cells(g.User, g.Course, g.Section, g.Assignment.Assignment, gradeCell(g.Selected), gradeCell(g.Best),
				gradeCell(g.Latest), strconv.Itoa(g.Submissions), g.Selected.SubmissionID, timeCell(g.Selected.ReceivedAt)))
		}
	} else {
		w.Write([]string{"Submission", "Student", "Course", "Section", "Assignment", "Notebook", "Status", "Grade",
			"Received (UTC)", "Finished (UTC)", "Attempts", "Failure", "edX post", "Posted to edX (UTC)"})
		for _, s := range subs {
			grade, failure := "", ""
			if s.Status == service.StatusGraded {
				grade = strconv.FormatFloat(s.Grade, 'f', -1, 64)
			}
			if s.Failure != nil {
				failure = s.Failure.Code
			}
			w.Write(cells(s.ID, s.User, s.Course, s.Section, s.Assignment.Assignment, s.GradingName(), string(s.Status), grade,
				timeCell(s.ReceivedAt), timeCell(s.FinishedAt), strconv.Itoa(s.Attempts), failure, string(s.Post.Status),
				timeCell(s.Post.PostedAt)))
		}
	}
	w.Flush()
	name := "otter-" + strings.TrimSuffix(file, ".csv")
	for _, part := range []string{f.Course, f.Section, f.Assignment, f.User} {
		if part != "" {
			name += "-" + safeName(part)
		}
	}
	a.log.Info("export", "by", who.Name, "file", file, "course", f.Course, "section", f.Section, "assignment", f.Assignment,
		"user", f.User, "rows", max(len(students), len(subs)))
	c.Header("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
	return nil
}

// cells makes values safe for spreadsheets: one that begins with what a
// spreadsheet would take for a formula (=, +, -, @, tab, return) is
// prefixed with an apostrophe, which spreadsheets show as text.
func cells(values ...string) []string {
	for i, v := range values {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			values[i] = "'" + v
		}
	}
	return values
}

func gradeCell(g service.PostedGrade) string {
	if g.SubmissionID == "" {
		return ""
	}
	return strconv.FormatFloat(g.Grade, 'f', -1, 64)
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// safeName keeps the letters, digits, dots, dashes and underscores of s,
// for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
