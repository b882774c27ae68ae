package service_test

import (
	"strings"
	"testing"

	"github.com/otter-service/otter-service/service"
)

const goodNB = `{"nbformat": 4, "nbformat_minor": 5, "cells": [],
 "metadata": {"otter_service": {"course": "8x", "section": "1", "assignment": "lab01"}}}`

func TestParseSubmission(t *testing.T) {
	want := service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}
	tests := []struct {
		name     string
		body     string
		code     string // "" for success
		contains string // in the error message
	}{
		{"submit button", `{"nb": ` + goodNB + `}`, "", ""},
		{"bare notebook", goodNB, "", ""},
		{"notebook as a string", `{"nb": ` + quote(goodNB) + `}`, "", ""},
		{"extra metadata is fine", strings.Replace(goodNB, `"lab01"}`, `"lab01", "extra": 1}`, 1), "", ""},
		{"not json", `{"nb": {`, service.EINVALID, "not valid JSON"},
		{"empty body", ``, service.EINVALID, "not valid JSON"},
		{"trailing garbage", goodNB + `}`, service.EINVALID, "not valid JSON"},
		{"json array", `[1, 2]`, service.EUNPROCESSABLE, "JSON object"},
		{"json string", `"hello"`, service.EUNPROCESSABLE, "JSON object"},
		{"nb is a bad string", `{"nb": "{not json"}`, service.EINVALID, "not valid JSON"},
		{"no nbformat", `{"cells": [], "metadata": {}}`, service.EUNPROCESSABLE, "nbformat"},
		{"nbformat 3", strings.Replace(goodNB, `"nbformat": 4`, `"nbformat": 3`, 1), service.EUNPROCESSABLE, "format 4"},
		{"nbformat string", strings.Replace(goodNB, `"nbformat": 4`, `"nbformat": "4"`, 1), service.EUNPROCESSABLE, "format 4"},
		{"cells not a list", strings.Replace(goodNB, `"cells": []`, `"cells": {}`, 1), service.EUNPROCESSABLE, "cells"},
		{"no cells", strings.Replace(goodNB, `"cells": [],`, ``, 1), service.EUNPROCESSABLE, "cells"},
		{"no otter_service", `{"nbformat": 4, "cells": [], "metadata": {}}`, service.EUNPROCESSABLE, "otter_service"},
		{"otter_service null", `{"nbformat": 4, "cells": [], "metadata": {"otter_service": null}}`, service.EUNPROCESSABLE, "otter_service"},
		{"metadata not an object", `{"nbformat": 4, "cells": [], "metadata": []}`, service.EUNPROCESSABLE, "metadata"},
		{"otter_service not an object", `{"nbformat": 4, "cells": [], "metadata": {"otter_service": "8x"}}`, service.EUNPROCESSABLE, "must be an object"},
		{"missing assignment", strings.Replace(goodNB, `, "assignment": "lab01"`, ``, 1), service.EUNPROCESSABLE, `"assignment" is missing`},
		{"section is a number", strings.Replace(goodNB, `"section": "1"`, `"section": 1`, 1), service.EUNPROCESSABLE, `"section" must be a string`},
		{"every problem named", `{"nbformat": 4, "cells": [], "metadata": {"otter_service": {"course": 8}}}`, service.EUNPROCESSABLE,
			`"course" must be a string, "section" is missing, and "assignment" is missing`},
		{"empty course", strings.Replace(goodNB, `"course": "8x"`, `"course": ""`, 1), service.EUNPROCESSABLE, `"course" is empty`},
		{"control character", strings.Replace(goodNB, `"lab01"`, `"lab\u000001"`, 1), service.EUNPROCESSABLE, "control character"},
		{"very long name", strings.Replace(goodNB, `"lab01"`, `"`+strings.Repeat("x", 200)+`"`, 1), service.EUNPROCESSABLE, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb, a, err := service.ParseSubmission([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if a != want {
					t.Errorf("assignment = %+v, want %+v", a, want)
				}
				if _, _, err := service.ParseSubmission(nb); err != nil {
					t.Errorf("the returned notebook does not parse on its own: %v", err)
				}
				return
			}
			if got := service.ErrorCode(err); got != tt.code {
				t.Fatalf("error code = %q (%v), want %q", got, err, tt.code)
			}
			if msg := service.ErrorMessage(err); !strings.Contains(msg, tt.contains) {
				t.Errorf("message %q does not contain %q", msg, tt.contains)
			}
		})
	}
}

func TestParseSubmissionReturnsNotebookOnly(t *testing.T) {
	nb, _, err := service.ParseSubmission([]byte(`{"nb": ` + goodNB + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(nb), `"nb"`) || !strings.HasPrefix(string(nb), `{"nbformat"`) {
		t.Errorf("notebook = %.60s…; want the notebook without the wrapper", nb)
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
