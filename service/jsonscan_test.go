package service

import (
	"encoding/json"
	"strings"
	"testing"
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
}

func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range scannerSeeds {
		if got, want := scanValid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: scanner says valid=%v, encoding/json says %v", in, got, want)
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

// FuzzScanner checks that the scanner accepts exactly what encoding/json
// accepts, and that a notebook's fields come out as encoding/json sees them.
func FuzzScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if got, want := scanValid(data), json.Valid(data); got != want {
			t.Fatalf("%q: scanner valid=%v, encoding/json valid=%v", data, got, want)
		}
		_, _, err := ParseSubmission(data)
		if !json.Valid(data) && ErrorCode(err) != EINVALID {
			t.Fatalf("%q: invalid JSON gave %v", data, err)
		}
	})
}
