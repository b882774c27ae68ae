package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// stubLogin stands in for the JupyterHub sign-in (tested against a real Hub
// in the pytest suite): a "session" cookie names the user, the "Hub"
// authorize step is a URL carrying the held key, and the callback signs in
// whoever its "user" parameter names.
type stubLogin struct{}

func (stubLogin) Authenticate(r *http.Request) (service.Identity, error) {
	if c, err := r.Cookie("session"); err == nil {
		return service.Identity{Name: c.Value}, nil
	}
	return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "not signed in")
}

func (stubLogin) StartLogin(w http.ResponseWriter, r *http.Request, next, held string) (string, error) {
	return "/hub/authorize?" + url.Values{"next": {next}, "held": {held}}.Encode(), nil
}

func (stubLogin) FinishLogin(w http.ResponseWriter, r *http.Request) (service.Identity, string, string, error) {
	q := r.URL.Query()
	return service.Identity{Name: q.Get("user")}, q.Get("next"), q.Get("held"), nil
}

func (stubLogin) CheckSameOriginJSON(r *http.Request) error {
	if r.Header.Get("Origin") != "http://hub.example" || r.Header.Get("Content-Type") != "application/json" {
		return service.Errorf(service.EFORBIDDEN, "not same-origin JSON")
	}
	return nil
}

func (stubLogin) CallbackPath() string { return prefix + "oauth_callback" }

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestFirstSubmissionIsHeldUntilSignIn: a Submit button whose student has no
// session yet is sent through sign-in, and the notebook is queued for the
// user sign-in names, once, however often the callback is replayed.
func TestFirstSubmissionIsHeldUntilSignIn(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, stubLogin{})
	client := noRedirects()
	buttonPost := func(body, origin string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+prefix, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Referer", "http://hub.example/user/mallory/lab") // never counts
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// Not provably from the Hub's page: refused, nothing held.
	resp, body := buttonPost(`{"nb": `+notebook("lab01")+`}`, "https://evil.example")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("cross-site anonymous POST: %d %s", resp.StatusCode, body)
	}
	// A notebook that would be refused is refused at once, before sign-in.
	resp, body = buttonPost(`{"nb": `+notebook("lab77")+`}`, "http://hub.example")
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("anonymous POST of an unknown assignment: %d %s", resp.StatusCode, body)
	}

	resp, body = buttonPost(`{"nb": `+notebook("lab01")+`}`, "http://hub.example")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("anonymous same-origin POST: %d %s; want 303 to sign-in", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Path != "/hub/authorize" || loc.Query().Get("held") == "" {
		t.Fatalf("sent to %q", loc)
	}
	callback := srv.URL + prefix + "oauth_callback?" + url.Values{"user": {"alice"}, "held": {loc.Query().Get("held")}, "next": {prefix}}.Encode()
	var ids []string
	for range 2 { // the second is a replay
		resp, body = get(t, client, callback)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("callback: %d %s; want 202", resp.StatusCode, body)
		}
		var sub struct{ ID string }
		json.Unmarshal(body, &sub)
		ids = append(ids, sub.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("a replayed callback queued a second submission: %v", ids)
	}
	got, err := srv.store.Submission(t.Context(), ids[0])
	if err != nil || got.User != "alice" || got.Assignment.Assignment != "lab01" {
		t.Fatalf("the held submission: %+v, %v", got, err)
	}
	// Someone else finishing a sign-in with alice's key gets nothing of it.
	resp, body = get(t, client, srv.URL+prefix+"oauth_callback?"+url.Values{"user": {"mallory"}, "held": {ids[0]}}.Encode())
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's callback with alice's held key: %d %s", resp.StatusCode, body)
	}
}

func TestBrowserNavigationSignsIn(t *testing.T) {
	srv := newServer(t, &fakeRunner{}, stubLogin{})
	client := noRedirects()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+prefix+"submissions/abc", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("next") != prefix+"submissions/abc" {
		t.Fatalf("navigation without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An API client gets 401 JSON, not a redirect.
	resp, body := get(t, client, srv.URL+prefix)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthenticated"`) {
		t.Fatalf("API request without credentials: %d %s", resp.StatusCode, body)
	}
	// Coming back from sign-in without a held submission goes where it was going.
	resp, _ = get(t, client, srv.URL+prefix+"oauth_callback?"+url.Values{"user": {"alice"}, "next": {prefix + "submissions/abc"}}.Encode())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != prefix+"submissions/abc" {
		t.Fatalf("callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+prefix, nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: "alice"})
	resp, body = do(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"user":"alice"`) {
		t.Fatalf("GET %s signed in: %d %s", prefix, resp.StatusCode, body)
	}
}

var _ httpapi.Login = stubLogin{}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
