// Package courseconfig reads a course's course-config.json, the file course
// staff keep in their materials repository:
//
//	{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022",
//	              "subpath_to_zips": "materials/x22/lab/1",
//	              "assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8"}}}}
//
// course → section → the edX course id, the folder holding the autograder zips,
// and assignment name → edX LTI block id. The autograder for an assignment is
// {subpath_to_zips}/{assignment}-autograder.zip.
//
// Names in the file end up in repository paths, so Parse rejects any that could
// leave the repository. Fetching the file is the job of subpackages named for
// their technology (courseconfig/git).
package courseconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode"
)

// FileName is the name of the configuration file at a repository's root.
const FileName = "course-config.json"

// Config is a parsed course-config.json: course → section → Section.
type Config map[string]map[string]Section

// Section is one course section's entry.
type Section struct {
	CourseID      string            `json:"course_id"`
	SubpathToZips string            `json:"subpath_to_zips"`
	Assignments   map[string]string `json:"assignments"` // assignment name → edX LTI block id
}

// Assignment is what a submission's course, section and assignment resolve to.
type Assignment struct {
	CourseID     string // the edX course id, e.g. BerkeleyX+Data8.1x+3T2022
	AssignmentID string // the edX LTI block id
	ZipPath      string // slash-separated path of the autograder zip in the repository
}

// UnknownError says which of course, section or assignment a configuration
// does not know.
type UnknownError struct {
	What string // "course", "section" or "assignment"
	Name string
	In   string // for a section or assignment: where it was looked for
}

func (e *UnknownError) Error() string {
	if e.In == "" {
		return fmt.Sprintf("unknown %s %q", e.What, e.Name)
	}
	return fmt.Sprintf("unknown %s %q in %s", e.What, e.Name, e.In)
}

// Parse decodes and validates a course-config.json. It reports every problem
// it finds, not only the first.
func Parse(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s is not valid: %w", FileName, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s is not valid: trailing data after the top-level object", FileName)
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("%s is not valid: it names no course", FileName)
	}
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for _, course := range sortedKeys(c) {
		if err := CheckName(course); err != nil {
			bad("course %q: %v", course, err)
		}
		sections := c[course]
		if len(sections) == 0 {
			bad("course %q has no sections", course)
		}
		for _, section := range sortedKeys(sections) {
			s := sections[section]
			where := fmt.Sprintf("course %q section %q", course, section)
			if err := CheckName(section); err != nil {
				bad("%s: %v", where, err)
			}
			if strings.TrimSpace(s.CourseID) == "" {
				bad("%s: course_id is missing", where)
			} else if strings.ContainsAny(s.CourseID, "/?#% \t\r\n") {
				bad("%s: course_id %q contains a character that cannot appear in an edX URL", where, s.CourseID)
			}
			if err := CheckPath(s.SubpathToZips); err != nil {
				bad("%s: subpath_to_zips: %v", where, err)
			}
			if len(s.Assignments) == 0 {
				bad("%s has no assignments", where)
			}
			for _, name := range sortedKeys(s.Assignments) {
				if err := CheckName(name); err != nil {
					bad("%s assignment %q: %v", where, name, err)
				}
				if id := s.Assignments[name]; strings.TrimSpace(id) == "" || strings.ContainsAny(id, "/?#%+@: \t\r\n") {
					bad("%s assignment %q: LTI block id %q is empty or contains a character that cannot appear in an edX URL", where, name, id)
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s is not valid: %w", FileName, errors.Join(problems...))
	}
	return c, nil
}

// Lookup resolves a course, section and assignment. It returns an
// *UnknownError naming the first of them that the configuration lacks.
func (c Config) Lookup(course, section, assignment string) (Assignment, error) {
	sections, ok := c[course]
	if !ok {
		return Assignment{}, &UnknownError{What: "course", Name: course}
	}
	s, ok := sections[section]
	if !ok {
		return Assignment{}, &UnknownError{What: "section", Name: section, In: fmt.Sprintf("course %q", course)}
	}
	id, ok := s.Assignments[assignment]
	if !ok {
		return Assignment{}, &UnknownError{What: "assignment", Name: assignment, In: fmt.Sprintf("course %q section %q", course, section)}
	}
	return Assignment{
		CourseID:     s.CourseID,
		AssignmentID: id,
		ZipPath:      path.Join(s.SubpathToZips, assignment+"-autograder.zip"),
	}, nil
}

// CheckName reports whether s can be used as a course, section or assignment
// name: non-empty, at most 128 bytes, no path separators, no "." or "..", no
// control or space characters.
func CheckName(s string) error {
	switch {
	case s == "":
		return errors.New("name is empty")
	case len(s) > 128:
		return errors.New("name is longer than 128 characters")
	case s == "." || s == "..":
		return fmt.Errorf("name %q is not allowed", s)
	case strings.ContainsAny(s, `/\`):
		return errors.New("name contains a path separator")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return errors.New("name contains a control, space or invalid character")
		}
	}
	return nil
}

// CheckPath reports whether p is a relative, clean, slash-separated path that
// stays inside a repository: no leading "/", no "..", no "." or empty
// components, no backslashes, no control characters. "" (the repository root)
// is allowed.
func CheckPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is absolute", p)
	}
	if strings.Contains(p, `\`) {
		return fmt.Errorf("path %q contains a backslash", p)
	}
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "":
			return fmt.Errorf("path %q has an empty component", p)
		case ".", "..":
			return fmt.Errorf("path %q has a %q component", p, part)
		}
		for _, r := range part {
			if unicode.IsControl(r) {
				return fmt.Errorf("path %q contains a control character", p)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
