package service

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A notebook is graded under the file name the student's copy had: otter
// notebooks open themselves by name (otter.Notebook("lab01.ipynb")), and
// under another name their checks record nothing. The name comes, in order,
// from what the request says (the Submit button's X-Otter-Notebook-Path, an
// upload's file name), from the notebook's own otter.Notebook(...) call, and
// otherwise is the assignment's name (Submission.GradingName). Every
// candidate is untrusted; one that is not a plain notebook file name is
// skipped.

// MaxNotebookNameLength bounds a notebook's file name, in bytes (what most
// file systems allow).
const MaxNotebookNameLength = 255

// CleanNotebookName returns the base name of candidate (split on both / and
// \), and whether it is a usable notebook file name: it ends in ".ipynb", is
// at most MaxNotebookNameLength bytes of valid UTF-8 without control
// characters or line separators, and does not start with a dot. Case,
// spaces and other characters are kept as they are.
func CleanNotebookName(candidate string) (string, bool) {
	name := candidate
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > MaxNotebookNameLength || !strings.HasSuffix(name, ".ipynb") || strings.HasPrefix(name, ".") || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", false
		}
	}
	return name, true
}

// NotebookNameFromPath is CleanNotebookName of a path a request gives (the
// Submit button's X-Otter-Notebook-Path, an upload's file name), which may be
// URL-encoded: it is decoded once first, unless it is not valid
// URL-encoding ("50% done.ipynb"), which is taken as it is.
func NotebookNameFromPath(p string) (string, bool) {
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	return CleanNotebookName(p)
}

// GradingName is the file name the submission is graded under: the name
// chosen at intake, or, for a submission none was chosen for (none was
// found, or it predates the choice), the assignment's name.
func (s *Submission) GradingName() string {
	if s.NotebookName != "" {
		return s.NotebookName
	}
	return s.Assignment.Assignment + ".ipynb"
}

// chooseNotebookName returns the name to grade a notebook under: given (what
// the request said) if usable, else the name its code cells pass to
// otter.Notebook if usable, else "" (the assignment's name, at grading).
func chooseNotebookName(given string, cells []byte) string {
	if name, ok := CleanNotebookName(given); ok {
		return name
	}
	if name, ok := CleanNotebookName(notebookNameInCells(cells)); ok {
		return name
	}
	return ""
}

var notebookWord = []byte("Notebook")

// notebookNameInCells returns the first string literal that a code cell of
// the notebook's cells (a JSON array, already validated) passes to
// otter.Notebook, as its first argument or as nb_path=; "" if there is none.
// The sources are read as Python tokens, not run: a call in a comment or a
// string, in a markdown cell, or with an argument that is not a plain string
// literal does not count.
func notebookNameInCells(cells []byte) string {
	if !bytes.Contains(cells, notebookWord) {
		return "" // the usual case for notebooks that do not use otter
	}
	s := &jsonScanner{data: cells}
	s.ws()
	if s.pos >= len(cells) || cells[s.pos] != '[' {
		return ""
	}
	s.pos++
	for {
		s.ws()
		if s.pos >= len(cells) || cells[s.pos] == ']' {
			return ""
		}
		var cellType, source []byte
		if cells[s.pos] == '{' {
			err := s.object(func(key []byte) error {
				start, end, err := s.value()
				switch {
				case keyIs(key, "cell_type"):
					cellType = cells[start:end]
				case keyIs(key, "source"):
					source = cells[start:end]
				}
				return err
			})
			if err != nil {
				return ""
			}
		} else if _, _, err := s.value(); err != nil {
			return ""
		}
		if string(cellType) == `"code"` && bytes.Contains(source, notebookWord) {
			if name := notebookCall(cellSource(source)); name != "" {
				return name
			}
		}
		s.ws()
		if s.pos >= len(cells) || cells[s.pos] != ',' {
			return ""
		}
		s.pos++
	}
}

// cellSource decodes a cell's source: a string, or (nbformat's other form) a
// list of strings, its lines.
func cellSource(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '[':
		var lines []string
		if json.Unmarshal(raw, &lines) == nil {
			return strings.Join(lines, "")
		}
	}
	return ""
}

// notebookCall returns the first string literal passed to otter.Notebook in
// the Python source src (see notebookNameInCells), or "".
func notebookCall(src string) string {
	t := pyTokens{src: src}
	var prev [3]pyToken // the three tokens before the current one
	for {
		tok := t.next()
		if tok.kind == pyEOF {
			return ""
		}
		if tok.is(pyOp, "(") && prev[0].is(pyName, "otter") && prev[1].is(pyOp, ".") && prev[2].is(pyName, "Notebook") {
			if name := t.notebookArgument(); name != "" {
				return name
			}
			prev = [3]pyToken{}
			continue
		}
		prev = [3]pyToken{prev[1], prev[2], tok}
	}
}

// notebookArgument reads the arguments of a call up to its closing
// parenthesis and returns the first positional argument or the nb_path
// keyword argument, if it is one plain string literal.
func (t *pyTokens) notebookArgument() string {
	var arg []pyToken
	index, depth := 0, 0
	for {
		tok := t.next()
		end := tok.kind == pyEOF
		if tok.kind == pyOp {
			switch tok.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					end = true
				}
				depth--
			case ",":
				if depth == 0 {
					end = true
				}
			}
		}
		if !end {
			if len(arg) < 4 { // more cannot be one literal or nb_path=literal
				arg = append(arg, tok)
			}
			continue
		}
		switch {
		case index == 0 && len(arg) == 1 && arg[0].kind == pyString:
			return arg[0].text
		case len(arg) == 3 && arg[0].is(pyName, "nb_path") && arg[1].is(pyOp, "=") && arg[2].kind == pyString:
			return arg[2].text
		}
		if tok.kind != pyOp || tok.text != "," {
			return "" // the call (or the source) ended
		}
		arg, index = arg[:0], index+1
	}
}

// pyTokens splits Python source into the tokens notebookCall looks at:
// names, string literals, and single-character operators; white space and
// comments are skipped.
type pyTokens struct {
	src string
	pos int
}

type pyKind byte

const (
	pyEOF         pyKind = iota
	pyName               // an identifier or keyword (or a number)
	pyString             // a string literal whose value is text
	pyOtherString        // a string literal whose value is not known (f-string, bytes, an escape)
	pyOp                 // one character of punctuation
)

type pyToken struct {
	kind pyKind
	text string
}

func (t pyToken) is(kind pyKind, text string) bool { return t.kind == kind && t.text == text }

func isPyNameByte(c byte) bool {
	return c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func (t *pyTokens) next() pyToken {
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\\':
			t.pos++
		case c == '#':
			if i := strings.IndexByte(t.src[t.pos:], '\n'); i >= 0 {
				t.pos += i
			} else {
				t.pos = len(t.src)
			}
		case c == '"' || c == '\'':
			return t.str("")
		case isPyNameByte(c):
			start := t.pos
			for t.pos < len(t.src) && isPyNameByte(t.src[t.pos]) {
				t.pos++
			}
			word := t.src[start:t.pos]
			if t.pos < len(t.src) && (t.src[t.pos] == '"' || t.src[t.pos] == '\'') && isStringPrefix(word) {
				return t.str(strings.ToLower(word))
			}
			return pyToken{kind: pyName, text: word}
		default:
			t.pos++
			return pyToken{kind: pyOp, text: string(c)}
		}
	}
	return pyToken{kind: pyEOF}
}

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "f", "t", "br", "rb", "fr", "rf", "tr", "rt":
		return true
	}
	return false
}

// str reads a string literal (at its opening quote) with the given prefix.
func (t *pyTokens) str(prefix string) pyToken {
	q := t.src[t.pos]
	delim := t.src[t.pos : t.pos+1]
	if strings.HasPrefix(t.src[t.pos:], strings.Repeat(delim, 3)) {
		delim = strings.Repeat(delim, 3)
	}
	t.pos += len(delim)
	start := t.pos
	escaped := false
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch {
		case c == '\\':
			escaped = true
			t.pos += 2 // a backslash keeps the next character in the string, even in raw strings
			continue
		case c == '\n' && len(delim) == 1:
			return pyToken{kind: pyOtherString} // unterminated
		case c == q && strings.HasPrefix(t.src[t.pos:], delim):
			body := t.src[start:t.pos]
			t.pos += len(delim)
			switch {
			case strings.ContainsAny(prefix, "bft"):
				return pyToken{kind: pyOtherString}
			case escaped && !strings.Contains(prefix, "r"):
				if s, ok := unescapePy(body); ok {
					return pyToken{kind: pyString, text: s}
				}
				return pyToken{kind: pyOtherString}
			}
			return pyToken{kind: pyString, text: body}
		}
		t.pos++
	}
	t.pos = len(t.src)
	return pyToken{kind: pyOtherString} // unterminated
}

// unescapePy decodes the escapes a file name could reasonably hold (\\, \',
// \"); any other makes the value unknown.
func unescapePy(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '\\', '\'', '"':
			b.WriteByte(s[i+1])
			i++
		default:
			return "", false
		}
	}
	return b.String(), true
}
