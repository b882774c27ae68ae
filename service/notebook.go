package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength bounds course, section and assignment names.
const MaxNameLength = 128

// notebookFields are the raw values of the parts of a notebook we look at.
type notebookFields struct {
	NB           []byte // the Submit button's wrapper: {"nb": <notebook>}
	NBFormat     []byte
	Cells        []byte
	Metadata     []byte // set only when metadata is not an object
	OtterService []byte
	inner        *notebookFields // the fields of NB, when it is an object
}

// ParseSubmission reads a submission body: the Submit button's
// {"nb": <notebook>} (the notebook may also be a JSON string), or a bare
// notebook. It returns the notebook's bytes and the assignment named in its
// metadata.otter_service.
//
// Returns EINVALID if body is not JSON, and EUNPROCESSABLE if it is not an
// nbformat 4 notebook with string course, section and assignment.
func ParseSubmission(body []byte) (notebook []byte, a Assignment, err error) {
	notebook, _, a, err = parseSubmission(body)
	return notebook, a, err
}

// parseSubmission is ParseSubmission that also returns the notebook's cells
// (the raw JSON array).
func parseSubmission(body []byte) (notebook, cells []byte, a Assignment, err error) {
	f, err := scanNotebook(body, true)
	if err != nil {
		return nil, nil, a, err
	}
	notebook = body
	if f.NB != nil {
		notebook = f.NB
		switch {
		case f.inner != nil: // the usual case, read in the same pass
			f = *f.inner
		case notebook[0] == '"': // a notebook sent as a string
			var s string
			if err := json.Unmarshal(notebook, &s); err != nil {
				return nil, nil, a, Errorf(EINVALID, "The \"nb\" field is not valid JSON.")
			}
			notebook = []byte(s)
			if f, err = scanNotebook(notebook, false); err != nil {
				return nil, nil, a, err
			}
		default:
			return nil, nil, a, Errorf(EUNPROCESSABLE, "The \"nb\" field must hold a Jupyter notebook, not a JSON %s.", jsonKind(notebook[0]))
		}
	}
	a, err = checkNotebook(&f)
	return notebook, f.Cells, a, err
}

// scanNotebook validates data as JSON and picks out the notebook's fields
// (and, if wrapper is set, those of a notebook in the Submit button's "nb").
func scanNotebook(data []byte, wrapper bool) (notebookFields, error) {
	var f notebookFields
	s := &jsonScanner{data: data}
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' {
		start, _, err := s.value()
		if err == nil {
			err = s.end()
		}
		var pe *parityError
		if errors.As(err, &pe) {
			return f, Errorf(EUNPROCESSABLE, "The notebook cannot be graded as sent: %v.", pe)
		}
		if err != nil {
			return f, Errorf(EINVALID, "The submission is not valid JSON (%v).", err)
		}
		return f, Errorf(EUNPROCESSABLE, "The submission must be a JSON object holding a Jupyter notebook, not a JSON %s.", jsonKind(data[start]))
	}
	err := s.notebookObject(&f, wrapper)
	if err == nil {
		err = s.end()
	}
	var pe *parityError
	switch {
	case errors.As(err, &pe):
		return f, Errorf(EUNPROCESSABLE, "The notebook cannot be graded as sent: %v. The grader (Python) would not read it as this service does; save the notebook again in Jupyter and submit it again.", pe)
	case err != nil:
		return f, Errorf(EINVALID, "The submission is not valid JSON (%v).", err)
	}
	return f, nil
}

// notebookObject walks the object at the scanner's position, noting the
// notebook's fields in f.
func (s *jsonScanner) notebookObject(f *notebookFields, wrapper bool) error {
	span := func(dst *[]byte) error {
		start, end, err := s.value()
		*dst = s.data[start:end]
		return err
	}
	return s.object(func(key []byte) error {
		switch {
		case wrapper && keyIs(key, "nb"):
			s.ws()
			if s.pos < len(s.data) && s.data[s.pos] == '{' {
				start := s.pos
				f.inner = &notebookFields{}
				err := s.notebookObject(f.inner, false)
				f.NB = s.data[start:s.pos]
				return err
			}
			f.inner = nil
			return span(&f.NB)
		case keyIs(key, "nbformat"):
			return span(&f.NBFormat)
		case keyIs(key, "cells"):
			return span(&f.Cells)
		case keyIs(key, "metadata"):
			s.ws()
			if s.pos < len(s.data) && s.data[s.pos] == '{' {
				f.Metadata = nil
				return s.object(func(key []byte) error {
					if keyIs(key, "otter_service") {
						return span(&f.OtterService)
					}
					_, _, err := s.value()
					return err
				})
			}
			return span(&f.Metadata)
		default:
			_, _, err := s.value()
			return err
		}
	})
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func checkNotebook(f *notebookFields) (Assignment, error) {
	var a Assignment
	var format int
	if f.NBFormat == nil {
		return a, Errorf(EUNPROCESSABLE, "This is not a Jupyter notebook: it has no \"nbformat\" field.")
	}
	if err := json.Unmarshal(f.NBFormat, &format); err != nil || format != 4 {
		return a, Errorf(EUNPROCESSABLE, "Only Jupyter notebooks in format 4 can be graded; this one has nbformat %s.", truncate(string(f.NBFormat), 20))
	}
	if f.Metadata != nil {
		return a, Errorf(EUNPROCESSABLE, "The notebook's \"metadata\" must be an object.")
	}
	if len(f.Cells) == 0 || f.Cells[0] != '[' {
		return a, Errorf(EUNPROCESSABLE, "This is not a Jupyter notebook: it has no list of \"cells\".")
	}
	if f.OtterService == nil || string(f.OtterService) == "null" {
		return a, Errorf(EUNPROCESSABLE, "The notebook has no otter_service metadata, so we cannot tell which assignment it is. Submit the notebook you downloaded for the assignment.")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.OtterService, &raw); err != nil {
		return a, Errorf(EUNPROCESSABLE, "The notebook's otter_service metadata must be an object with course, section and assignment.")
	}
	var problems []string
	get := func(key string, dst *string) {
		v, ok := raw[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("%q is missing", key))
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			problems = append(problems, fmt.Sprintf("%q must be a string", key))
			return
		}
		if msg := checkName(*dst); msg != "" {
			problems = append(problems, fmt.Sprintf("%q %s", key, msg))
		}
	}
	get("course", &a.Course)
	get("section", &a.Section)
	get("assignment", &a.Assignment)
	if len(problems) > 0 {
		return Assignment{}, Errorf(EUNPROCESSABLE, "The notebook's otter_service metadata is not usable: %s.", joinProblems(problems))
	}
	return a, nil
}

// checkName returns what is wrong with a course, section or assignment name,
// or "" if it is acceptable as a lookup key. Whether it may appear in a path
// is courseconfig's concern.
func checkName(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > MaxNameLength:
		return fmt.Sprintf("is longer than %d characters", MaxNameLength)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	return ""
}

func joinProblems(p []string) string {
	switch len(p) {
	case 1:
		return p[0]
	case 2:
		return p[0] + " and " + p[1]
	}
	s := ""
	for i, x := range p {
		switch {
		case i == len(p)-1:
			s += ", and " + x
		case i > 0:
			s += ", " + x
		default:
			s = x
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
