package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// settingNames returns the name of every environment variable the service
// reads, found by loading a configuration that exercises every branch and
// recording what it asks for. A course's own variant of a variable is shown
// with the suffix _<COURSE>.
func settingNames() []string {
	sample := map[string]string{
		"OTTER_COURSE_REPOS":      "a8x=https://git.invalid/a,t8x=https://git.invalid/t,s8x=git@git.invalid:s,g8x=git@git.invalid:g",
		"OTTER_GITHUB_APP_ID_A8X": "1",
		"OTTER_GIT_TOKEN_T8X":     "x",
		"OTTER_GIT_SSH_KEY_S8X":   "x",
		"POST_GRADE":              "true",
		"JUPYTERHUB_API_URL":      "http://127.0.0.1:8081/hub/api",
		"OTTER_RUNNER":            "docker",
	}
	seen := map[string]bool{}
	loadConfig(func(name string) string {
		generic := name
		for _, c := range []string{"_A8X", "_T8X", "_S8X", "_G8X"} {
			generic = strings.Replace(generic, c, "_<COURSE>", 1)
		}
		seen[generic] = true
		return sample[name]
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// printSettings is the settings command: every variable, one per line.
func printSettings(w io.Writer) error {
	for _, n := range settingNames() {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}
