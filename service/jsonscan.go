package service

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// A submission is a notebook of hundreds of kilobytes of which we need a few
// fields, so instead of decoding it we validate it in one pass and note where
// those fields are. encoding/json spends most of the accept path's CPU on the
// same job (a full validation pass, then another to skip unwanted values).
// FuzzScanner checks this scanner against encoding/json.

// The notebook we accept must be the notebook otter grades: Python reads it
// (json.load, then nbformat), so what Python would read differently, or
// not at all, is refused here, as a parityError: a key twice in one object
// (Python keeps the last, where a reader keeping the first would see another
// notebook), bytes that are not UTF-8 (Python's reader fails on them), and
// nesting deeper than maxDepth (nbformat fails beyond about 490 levels with
// the interpreter's default recursion limit; notebooks nest a few levels).
const maxDepth = 200

// parityError is JSON that is valid for some readers but would not be read
// as the same notebook (or at all) by the Python that grades it.
type parityError struct {
	msg    string
	offset int
}

func (e *parityError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.offset) }

func (s *jsonScanner) parity(format string, args ...any) error {
	return &parityError{msg: fmt.Sprintf(format, args...), offset: s.pos}
}

// defer notes the first parityError found, to be reported once the rest is
// known to be valid JSON (JSON that is not is reported as such).
func (s *jsonScanner) deferParity(format string, args ...any) {
	if s.deferred == nil {
		s.deferred = s.parity(format, args...)
	}
}

// jsonScanner walks JSON text, validating it.
type jsonScanner struct {
	data     []byte
	pos      int
	depth    int
	deferred error // the first parityError, but for nesting (see end)
}

type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.offset) }

func (s *jsonScanner) fail(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), offset: s.pos}
}

func (s *jsonScanner) unexpected(what string) error {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input, expecting %s", what)
	}
	return s.fail("unexpected character %q, expecting %s", s.data[s.pos], what)
}

func (s *jsonScanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one value (and the white space before it), validating it, and
// returns its span.
func (s *jsonScanner) value() (start, end int, err error) {
	s.ws()
	start = s.pos
	if s.pos >= len(s.data) {
		return start, start, s.unexpected("a value")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		err = s.object(nil)
	case c == '[':
		err = s.array()
	case c == '"':
		err = s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		err = s.number()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = s.unexpected("a value")
	}
	return start, s.pos, err
}

// object walks an object. For each member it calls field with the member's
// raw key (quotes included); field must consume the value (or be nil, to skip
// every value).
func (s *jsonScanner) object(field func(key []byte) error) error {
	if s.depth++; s.depth > maxDepth {
		return s.parity("nesting deeper than %d levels", maxDepth)
	}
	defer func() { s.depth-- }()
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	var keys keySet
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.unexpected("a string for an object key")
		}
		kstart := s.pos
		if err := s.str(); err != nil {
			return err
		}
		key := s.data[kstart:s.pos]
		if keys.addIsDuplicate(key) {
			pos := s.pos
			s.pos = kstart
			s.deferParity("the key %s appears twice in one object", truncate(string(key), 60))
			s.pos = pos
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.unexpected("':' after an object key")
		}
		s.pos++
		var err error
		if field != nil {
			err = field(key)
		} else {
			_, _, err = s.value()
		}
		if err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.unexpected("',' or '}'")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or '}'")
		}
	}
}

func (s *jsonScanner) array() error {
	if s.depth++; s.depth > maxDepth {
		return s.parity("nesting deeper than %d levels", maxDepth)
	}
	defer func() { s.depth-- }()
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if _, _, err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.unexpected("',' or ']'")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or ']'")
		}
	}
}

// plain marks the bytes that may appear in a string unescaped and end
// nothing: ASCII but '"', '\\' and control characters. Others are checked
// as UTF-8.
var plain = func() (t [256]bool) {
	for i := 0x20; i < 0x80; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

// Word-at-a-time tests (SWAR): whether any of the 8 bytes in w is zero, or
// is less than n (n <= 128).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func hasZero(w uint64) bool         { return (w-ones)&^w&highs != 0 }
func hasLess(w uint64, n byte) bool { return (w-ones*uint64(n))&^w&highs != 0 }
func special(w uint64) bool {
	return w&highs != 0 || hasLess(w, 0x20) || hasZero(w^(ones*'"')) || hasZero(w^(ones*'\\'))
}

func (s *jsonScanner) str() error {
	s.pos++ // opening quote
	for {
		i := s.pos
		// Most of a notebook is long strings (sources, outputs, images):
		// skip plain bytes eight at a time.
		for i+8 <= len(s.data) && !special(binary.LittleEndian.Uint64(s.data[i:])) {
			i += 8
		}
		for i < len(s.data) && plain[s.data[i]] {
			i++
		}
		s.pos = i
		if i >= len(s.data) {
			return s.fail("unterminated string")
		}
		switch c := s.data[i]; c {
		case '"':
			s.pos++
			return nil
		case '\\':
			if i+1 >= len(s.data) {
				return s.fail("unterminated string")
			}
			switch s.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos = i + 2
			case 'u':
				if i+6 > len(s.data) || !isHex(s.data[i+2]) || !isHex(s.data[i+3]) || !isHex(s.data[i+4]) || !isHex(s.data[i+5]) {
					return s.fail("invalid \\u escape in string")
				}
				s.pos = i + 6
			default:
				return s.fail("invalid escape \\%c in string", s.data[i+1])
			}
		default:
			if c < 0x80 {
				return s.fail("control character %#02x in string", c)
			}
			// Non-ASCII text: a run of it is checked as UTF-8 at once.
			j := i + 1
			for j < len(s.data) && s.data[j] >= 0x80 {
				j++
			}
			if !utf8.Valid(s.data[i:j]) {
				for k := i; k < j; {
					r, n := utf8.DecodeRune(s.data[k:j])
					if r == utf8.RuneError && n <= 1 {
						s.pos = k
						s.deferParity("bytes that are not UTF-8 in a string")
						break
					}
					k += n
				}
			}
			s.pos = j
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *jsonScanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

func (s *jsonScanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.unexpected("a digit")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.unexpected("a digit after '.'")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.unexpected("a digit in the exponent")
		}
	}
	return nil
}

func (s *jsonScanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return s.unexpected("a value")
	}
	s.pos += len(word)
	return nil
}

// end checks that only white space follows, then reports what Python
// would read differently, if anything.
func (s *jsonScanner) end() error {
	s.ws()
	if s.pos != len(s.data) {
		return s.fail("unexpected data after the top-level value")
	}
	return s.deferred
}

// keySet holds the keys of one object, to find one given twice. Keys are
// compared as Python reads them: decoded when written with escapes.
type keySet struct {
	raw   [keySetSmall][]byte // the first few, as written (no escapes); on the stack
	n     int
	large map[string]struct{} // beyond them, and every key with escapes, decoded
}

const keySetSmall = 16

func (k *keySet) addIsDuplicate(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') < 0 && k.large == nil && k.n < keySetSmall {
		for _, r := range k.raw[:k.n] {
			if string(r) == string(raw) {
				return true
			}
		}
		k.raw[k.n] = raw
		k.n++
		return false
	}
	if k.large == nil {
		k.large = make(map[string]struct{}, 2*keySetSmall)
		for _, r := range k.raw[:k.n] {
			k.large[string(r[1:len(r)-1])] = struct{}{}
		}
	}
	key := string(raw[1 : len(raw)-1])
	if bytes.IndexByte(raw, '\\') >= 0 {
		var d string
		if json.Unmarshal(raw, &d) == nil {
			key = d
		}
	}
	if _, ok := k.large[key]; ok {
		return true
	}
	k.large[key] = struct{}{}
	return false
}

// keyIs reports whether the raw key (with quotes) is name.
func keyIs(raw []byte, name string) bool {
	if len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	var k string // a key written with escapes
	return json.Unmarshal(raw, &k) == nil && k == name
}
