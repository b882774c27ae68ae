package courseconfig_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/courseconfig"
)

const example = `{"8x": {"1": {"course_id": "BerkeleyX+Data8.1x+3T2022",
	"subpath_to_zips": "materials/x22/lab/1",
	"assignments": {"lab01": "6333e19d6b4d46f88df671ba50f616d8"}}}}`

func TestParseAndLookup(t *testing.T) {
	c, err := courseconfig.Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup("8x", "1", "lab01")
	if err != nil {
		t.Fatal(err)
	}
	want := courseconfig.Assignment{CourseID: "BerkeleyX+Data8.1x+3T2022", AssignmentID: "6333e19d6b4d46f88df671ba50f616d8",
		ZipPath: "materials/x22/lab/1/lab01-autograder.zip"}
	if got != want {
		t.Errorf("Lookup = %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ course, section, assignment, what, msg string }{
		{"9x", "1", "lab01", "course", `unknown course "9x"`},
		{"8x", "2", "lab01", "section", `unknown section "2" in course "8x"`},
		{"8x", "1", "lab99", "assignment", `unknown assignment "lab99" in course "8x" section "1"`},
	} {
		_, err := c.Lookup(tt.course, tt.section, tt.assignment)
		var u *courseconfig.UnknownError
		if !errors.As(err, &u) || u.What != tt.what || err.Error() != tt.msg {
			t.Errorf("Lookup(%s, %s, %s) = %v; want %s", tt.course, tt.section, tt.assignment, err, tt.msg)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, json string
		contains   []string
	}{
		{"not json", `{`, []string{"not valid"}},
		{"empty", `{}`, []string{"names no course"}},
		{"unknown field", `{"8x": {"1": {"course_id": "X", "subpath_to_zips": "a", "assignments": {"l": "b"}, "zips": 1}}}`, []string{"unknown field"}},
		{"wrong type", `{"8x": {"1": {"course_id": 7, "subpath_to_zips": "a", "assignments": {}}}}`, []string{"course_id"}},
		{"trailing data", example + `{}`, []string{"trailing data"}},
		{"escaping subpath", strings.Replace(example, "materials/x22/lab/1", "../../etc", 1), []string{`".." component`}},
		{"absolute subpath", strings.Replace(example, "materials/x22/lab/1", "/etc", 1), []string{"absolute"}},
		{"backslash subpath", strings.Replace(example, "materials/x22/lab/1", `a\\..\\b`, 1), []string{"backslash"}},
		{"dot component", strings.Replace(example, "materials/x22/lab/1", `a/./b`, 1), []string{`"." component`}},
		{"empty component", strings.Replace(example, "materials/x22/lab/1", `a//b`, 1), []string{"empty component"}},
		{"assignment with slash", strings.Replace(example, `"lab01"`, `"../lab01"`, 1), []string{"path separator"}},
		{"assignment dotdot", strings.Replace(example, `"lab01"`, `".."`, 1), []string{`".." is not allowed`}},
		{"section with space", strings.Replace(example, `"1"`, `"1 2"`, 1), []string{"space"}},
		{"missing course id", strings.Replace(example, "BerkeleyX+Data8.1x+3T2022", "", 1), []string{"course_id is missing"}},
		{"block id with slash", strings.Replace(example, "6333e19d6b4d46f88df671ba50f616d8", "a/b", 1), []string{"LTI block id"}},
		{"no assignments", `{"8x": {"1": {"course_id": "X", "subpath_to_zips": "a", "assignments": {}}}}`, []string{"has no assignments"}},
		{"no sections", `{"8x": {}}`, []string{"has no sections"}},
		{"every problem reported", `{"8x": {"1": {"course_id": "", "subpath_to_zips": "/abs", "assignments": {"a/b": "x"}}}}`,
			[]string{"course_id is missing", "absolute", "path separator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := courseconfig.Parse([]byte(tt.json))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"": true, "a": true, "a/b/c.zip": true, "a..b/c": true,
		"..": false, "a/../b": false, "/a": false, "a/": false, "./a": false, `a\b`: false, "a/\x00": false,
	} {
		if err := courseconfig.CheckPath(p); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}
