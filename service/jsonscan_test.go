package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func scanValid(data []byte) bool {
	s := &jsonScanner{data: data}
	if _, _, err := s.value(); err != nil {
		return false
	}
	return s.end() == nil
}

var scannerSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5e+10`, `1e`, `1E-3`, `.5`, `true`, `tru`, `nul`, `null `,
	`{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{1:2}`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"a` + "\x01" + `"`, `"tab\there"`,
	`{"nb": {"nbformat": 4, "cells": [], "metadata": {"otter_service": {"course": "8x"}}}}`, `"\ud800"`, "\"\xff\"",
	`[[[[]]]]`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`, ` {"a" : [ true , false ] } `, `{} {}`, `[`, `{"a":`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"a":1},"b":{"a":2}}`, `[{"x":1},{"x":1}]`, "\"caf\xc3\xa9\"", "\"\xc3\"",
	"\"\xed\xa0\x80\"", "\"\xf0\x9f\x98\x80 ok\"", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k3":3}`,
}

// pythonValid is what the scanner must accept: JSON that Python reads as
// this service does (see parityError): valid, UTF-8, no key twice in an
// object, nested at most maxDepth deep.
func pythonValid(data []byte) bool {
	if !json.Valid(data) || !utf8.Valid(data) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // the end: json.Valid said the rest is fine
		}
		top := func() *frame {
			if len(stack) == 0 {
				return nil
			}
			return stack[len(stack)-1]
		}()
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: v == '{', keys: map[string]bool{}, key: v == '{'})
				if len(stack) > maxDepth {
					return false
				}
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.key {
				if top.keys[v] {
					return false
				}
				top.keys[v] = true
				top.key = false
				continue
			}
			if top != nil && top.object {
				top.key = true
			}
		default:
			if top != nil && top.object {
				top.key = true
			}
		}
	}
}

func TestScannerAgreesWithPythonsReading(t *testing.T) {
	for _, in := range scannerSeeds {
		if got, want := scanValid([]byte(in)), pythonValid([]byte(in)); got != want {
			t.Errorf("%q: scanner says valid=%v, want %v", in, got, want)
		}
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if scanValid([]byte(deep)) {
		t.Error("accepted nesting deeper than the limit")
	}
}

func TestKeyIs(t *testing.T) {
	for raw, want := range map[string]bool{`"nb"`: true, `"n\u0062"`: true, `"nbx"`: false, `"n\\b"`: false} {
		if keyIs([]byte(raw), "nb") != want {
			t.Errorf("keyIs(%s, nb) != %v", raw, want)
		}
	}
}

// FuzzScanner checks that the scanner accepts exactly what pythonValid
// accepts, and that JSON encoding/json refuses is refused as invalid.
func FuzzScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if got, want := scanValid(data), pythonValid(data); got != want {
			t.Fatalf("%q: scanner valid=%v, want %v", data, got, want)
		}
		_, _, err := ParseSubmission(data)
		if !json.Valid(data) && ErrorCode(err) != EINVALID && !strings.Contains(ErrorMessage(err), "nesting deeper") {
			t.Fatalf("%q: invalid JSON gave %v", data, err)
		}
	})
}

// BenchmarkParseSubmission reads a 300 KB notebook: code and prose with
// some non-ASCII text, and a base64 image.
func BenchmarkParseSubmission(b *testing.B) {
	var cells []string
	for i := 0; i < 200; i++ {
		cells = append(cells, fmt.Sprintf(`{"cell_type": "markdown", "metadata": {}, "source": ["## Question %d — café, naïve, 数据\n", "Explain the résumé of the distribution.\n"]}`, i),
			fmt.Sprintf(`{"cell_type": "code", "execution_count": %d, "metadata": {"tags": ["q%d"]}, "outputs": [{"output_type": "stream", "name": "stdout", "text": ["%s"]}], "source": ["import numpy as np\n", "x = np.arange(%d)\n"]}`, i, i, strings.Repeat("0.123 ", 100), i))
	}
	img := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 4000)
	nb := fmt.Sprintf(`{"nb": {"nbformat": 4, "nbformat_minor": 5, "metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "lab01"}}, "cells": [%s, {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": [], "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/png": "%s"}}]}]}}`, strings.Join(cells, ","), img)
	b.SetBytes(int64(len(nb)))
	for i := 0; i < b.N; i++ {
		if _, _, err := ParseSubmission([]byte(nb)); err != nil {
			b.Fatal(err)
		}
	}
}
