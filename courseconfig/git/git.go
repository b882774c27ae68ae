// Package git serves course configurations and autograder zips from the
// courses' git repositories through go-git.
//
// Each repository has a shallow, single-branch, bare clone in its own
// directory under the cache directory, which survives restarts. A Source
// starts from the cached copy at once and fetches in the background, every
// Interval, and on demand (at most once per MinRefresh, all waiting
// submissions sharing one fetch) when a submission names an assignment the
// copy does not know. A lookup of a known assignment does no network I/O.
//
// Every fetched commit is validated (courseconfig.Load) before it replaces
// the one in use; a bad commit is logged with its id and the previous one
// stays. When the remote cannot be reached, grading goes on from the last
// good copy; Status reports the trouble. Credentials (Auth) never appear in
// errors or logs.
package git

import "strings"

// Repo says where a course's materials live and how to fetch them.
type Repo struct {
	URL    string // https://, http://, ssh://, user@host:path, file:// or a local path
	Branch string // "" for the remote's default branch
	Auth   Auth   // nil for none
}

// redact removes credentials from a URL for messages.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if j := strings.LastIndex(rest[:end], "@"); j >= 0 {
			return u[:i+3] + "…@" + rest[j+1:]
		}
	}
	return u
}
