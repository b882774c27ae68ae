package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength bounds course, section and assignment names.
const MaxNameLength = 128

// notebookFields are the parts of a request body we look at. The body is
// either the Submit button's {"nb": <notebook>} or a bare notebook.
type notebookFields struct {
	NB       json.RawMessage `json:"nb"`
	NBFormat json.RawMessage `json:"nbformat"`
	Cells    json.RawMessage `json:"cells"`
	Metadata struct {
		OtterService json.RawMessage `json:"otter_service"`
	} `json:"metadata"`
}

// ParseSubmission reads a submission body: the Submit button's
// {"nb": <notebook>} (the notebook may also be a JSON string), or a bare
// notebook. It returns the notebook's bytes and the assignment named in its
// metadata.otter_service.
//
// Returns EINVALID if body is not JSON, and EUNPROCESSABLE if it is not an
// nbformat 4 notebook with string course, section and assignment.
func ParseSubmission(body []byte) (notebook []byte, a Assignment, err error) {
	var f notebookFields
	if err := decodeObject(body, &f); err != nil {
		return nil, a, err
	}
	notebook = body
	if f.NB != nil {
		notebook = bytes.TrimSpace(f.NB)
		if len(notebook) > 0 && notebook[0] == '"' { // a notebook sent as a string
			var s string
			if err := json.Unmarshal(notebook, &s); err != nil {
				return nil, a, Errorf(EINVALID, "The \"nb\" field is not valid JSON.")
			}
			notebook = []byte(s)
		}
		f = notebookFields{}
		if err := decodeObject(notebook, &f); err != nil {
			return nil, a, err
		}
	}
	a, err = checkNotebook(&f)
	return notebook, a, err
}

func decodeObject(b []byte, f *notebookFields) error {
	if err := json.Unmarshal(b, f); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Errorf(EINVALID, "The submission is not valid JSON (%s at byte %d).", syn.Error(), syn.Offset)
		case errors.As(err, &typ) && typ.Field == "":
			return Errorf(EUNPROCESSABLE, "The submission must be a JSON object holding a Jupyter notebook, not a JSON %s.", typ.Value)
		case errors.As(err, &typ):
			return Errorf(EUNPROCESSABLE, "The notebook's %q field has the wrong type (%s).", typ.Field, typ.Value)
		default:
			return Errorf(EINVALID, "The submission is not valid JSON.")
		}
	}
	return nil
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
	var cells []json.RawMessage
	if f.Cells == nil || json.Unmarshal(f.Cells, &cells) != nil {
		return a, Errorf(EUNPROCESSABLE, "This is not a Jupyter notebook: it has no list of \"cells\".")
	}
	if f.Metadata.OtterService == nil || string(f.Metadata.OtterService) == "null" {
		return a, Errorf(EUNPROCESSABLE, "The notebook has no otter_service metadata, so we cannot tell which assignment it is. Submit the notebook you downloaded for the assignment.")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.Metadata.OtterService, &raw); err != nil {
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
