package jupyterhub

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
)

// fakeHub answers GET /user and POST /oauth2/token the way JupyterHub does,
// for the unit tests; the pytest suite runs the same flows against a real
// Hub.
type fakeHub struct {
	users  map[string]hubUser // by token
	codes  map[string]string  // authorization code → token
	asks   atomic.Int32
	down   atomic.Bool
	server *httptest.Server
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{
		users: map[string]hubUser{
			"tok-alice":  {Kind: "user", Name: "alice", Scopes: []string{"access:services!service=otter_grade", "read:users:name!user=alice"}},
			"tok-bob":    {Kind: "user", Name: "bob", Scopes: []string{"access:services"}},
			"tok-eve":    {Kind: "user", Name: "eve", Scopes: []string{"access:services!service=other"}},
			"tok-staff":  {Kind: "user", Name: "ta", Groups: []string{"staff"}, Scopes: []string{"access:services!service=otter_grade"}},
			"tok-admin":  {Kind: "user", Name: "root", Admin: true, Scopes: []string{"access:services"}},
			"tok-8x-ta":  {Kind: "user", Name: "gsi", Groups: []string{"students", "8x-staff"}, Scopes: []string{"access:services"}},
			"tok-server": {Kind: "service", Name: "cron", Scopes: []string{"access:services"}},
		},
		codes: map[string]string{"code-alice": "tok-alice", "code-eve": "tok-eve"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hub/api/user", func(w http.ResponseWriter, r *http.Request) {
		h.asks.Add(1)
		if h.down.Load() {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		u, ok := h.users[strings.TrimPrefix(r.Header.Get("Authorization"), "token ")]
		if !ok {
			http.Error(w, `{"status": 403, "message": "Forbidden"}`, http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(u)
	})
	mux.HandleFunc("POST /hub/api/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		tok, ok := h.codes[r.PostForm.Get("code")]
		if !ok || r.PostForm.Get("client_secret") != "service-secret" || r.PostForm.Get("client_id") != "service-otter_grade" ||
			r.PostForm.Get("redirect_uri") != "/services/otter_grade/oauth_callback" || r.PostForm.Get("grant_type") != "authorization_code" {
			http.Error(w, `{"error": "invalid_grant"}`, http.StatusBadRequest)
			return
		}
		delete(h.codes, r.PostForm.Get("code")) // codes are single-use
		json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "Bearer"})
	})
	h.server = httptest.NewServer(mux)
	t.Cleanup(h.server.Close)
	return h
}

func newAuth(t *testing.T, h *fakeHub, now *time.Time) *Auth {
	t.Helper()
	a, err := New(Config{
		APIURL: h.server.URL + "/hub/api", APIToken: "service-secret", ServiceName: "otter_grade",
		Prefix: "/services/otter_grade/", StaffGroup: "staff", Now: func() time.Time { return *now },
		CourseStaffGroups: map[string]string{"8x": "8x-staff", "88e": "88e-staff"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(method, header string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, "http://hub.example:8000/services/otter_grade/", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := service.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestTokens(t *testing.T) {
	h := newFakeHub(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, h, &now)
	for _, tt := range []struct {
		header, user string
		admin        bool
		code         string
	}{
		{"token tok-alice", "alice", false, ""},
		{"Bearer tok-alice", "alice", false, ""},
		{"bearer tok-bob", "bob", false, ""},         // access:services covers every service
		{"token tok-staff", "ta", true, ""},          // the staff group sees everything
		{"token tok-admin", "root", true, ""},        // so do Hub admins
		{"token tok-eve", "", false, "forbidden"},    // access to another service only
		{"token tok-server", "", false, "forbidden"}, // a service's token is not a student
		{"token nonsense", "", false, "unauthenticated"},
		{"Basic YWxpY2U6eA==", "", false, "unauthenticated"},
		{"", "", false, "unauthenticated"},
	} {
		who, err := a.Authenticate(request(http.MethodPost, tt.header))
		if service.ErrorCode(err) != tt.code || who.Name != tt.user || who.Admin != tt.admin {
			t.Errorf("%q: %+v, %v; want user %q admin %v code %q", tt.header, who, err, tt.user, tt.admin, tt.code)
		}
	}
	// A course's staff group: staff of that course only.
	who, err := a.Authenticate(request(http.MethodPost, "token tok-8x-ta"))
	if err != nil || who.Admin || !slices.Equal(who.Courses, []string{"8x"}) || !who.StaffOf("8x") || who.StaffOf("88e") {
		t.Errorf("a member of 8x's staff group: %+v, %v; want staff of 8x only", who, err)
	}
}

// TestNoAccessScopesNeverMeansEveryone: without configured access scopes the
// service's own are derived from its name.
func TestNoAccessScopesNeverMeansEveryone(t *testing.T) {
	h := newFakeHub(t)
	h.users["tok-none"] = hubUser{Kind: "user", Name: "nobody", Scopes: nil}
	now := time.Now()
	a := newAuth(t, h, &now)
	_, err := a.Authenticate(request(http.MethodGet, "token tok-none"))
	wantCode(t, "a user with no scopes", err, service.EFORBIDDEN)
}

func TestCache(t *testing.T) {
	h := newFakeHub(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, h, &now)
	for range 5 {
		if _, err := a.Authenticate(request(http.MethodGet, "token tok-alice")); err != nil {
			t.Fatal(err)
		}
		a.Authenticate(request(http.MethodGet, "token nonsense"))
	}
	if n := h.asks.Load(); n != 2 {
		t.Fatalf("the Hub was asked %d times for 2 tokens; answers are not cached", n)
	}
	// A token the Hub revoked stops working once the entry expires.
	delete(h.users, "tok-alice")
	now = now.Add(time.Minute + time.Second)
	_, err := a.Authenticate(request(http.MethodGet, "token tok-alice"))
	wantCode(t, "a revoked token after the cache expired", err, service.EUNAUTHORIZED)
	// And one the Hub learned of is accepted once the refusal expires.
	h.users["nonsense"] = hubUser{Kind: "user", Name: "new", Scopes: []string{"access:services"}}
	now = now.Add(11 * time.Second)
	if who, err := a.Authenticate(request(http.MethodGet, "token nonsense")); err != nil || who.Name != "new" {
		t.Fatalf("a token the Hub now knows: %+v, %v", who, err)
	}
}

func TestHubDown(t *testing.T) {
	h := newFakeHub(t)
	now := time.Now()
	a := newAuth(t, h, &now)
	h.down.Store(true)
	_, err := a.Authenticate(request(http.MethodGet, "token tok-alice"))
	wantCode(t, "with the Hub answering 502", err, service.EUNAVAILABLE)
	h.down.Store(false)
	// Outages are not cached.
	if who, err := a.Authenticate(request(http.MethodGet, "token tok-alice")); err != nil || who.Name != "alice" {
		t.Fatalf("after the Hub came back: %+v, %v", who, err)
	}
	h.server.Close()
	_, err = a.Authenticate(request(http.MethodGet, "token tok-bob"))
	wantCode(t, "with the Hub unreachable", err, service.EUNAVAILABLE)
	if strings.Contains(service.ErrorMessage(err), "tok-bob") {
		t.Fatalf("the message shows the token: %v", err)
	}
}

// login runs the OAuth flow against the fake Hub and returns the cookies the
// browser holds afterwards, the redirect target and the held key.
func login(t *testing.T, a *Auth, code, next, held string) ([]*http.Cookie, string, string, error) {
	t.Helper()
	start := httptest.NewRecorder()
	loc, err := a.StartLogin(start, request(http.MethodGet, ""), next, held)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Path != "/hub/api/oauth2/authorize" {
		t.Fatalf("authorize URL %q", loc)
	}
	q := u.Query()
	if q.Get("client_id") != "service-otter_grade" || q.Get("redirect_uri") != "/services/otter_grade/oauth_callback" || q.Get("response_type") != "code" {
		t.Fatalf("authorize URL %q", loc)
	}
	cb := request(http.MethodGet, "")
	cb.URL, _ = url.Parse("/services/otter_grade/oauth_callback?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode())
	for _, c := range start.Result().Cookies() {
		cb.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	_, gotNext, gotHeld, err := a.FinishLogin(rec, cb)
	return rec.Result().Cookies(), gotNext, gotHeld, err
}

func sessionCookie(cookies []*http.Cookie) *http.Cookie {
	for _, c := range cookies {
		if c.Name == SessionCookie && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

func TestOAuthFlow(t *testing.T) {
	h := newFakeHub(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, h, &now)
	cookies, next, held, err := login(t, a, "code-alice", "/services/otter_grade/submissions/x?y=1", "held-1")
	if err != nil || next != "/services/otter_grade/submissions/x?y=1" || held != "held-1" {
		t.Fatalf("FinishLogin: next %q held %q, %v", next, held, err)
	}
	c := sessionCookie(cookies)
	if c == nil || !c.HttpOnly || c.Path != "/services/otter_grade/" || strings.Contains(c.Value, "tok-alice") {
		t.Fatalf("session cookie %+v", c)
	}

	// The cookie authenticates reads, and same-origin JSON writes only.
	get := request(http.MethodGet, "")
	get.AddCookie(c)
	if who, err := a.Authenticate(get); err != nil || who.Name != "alice" {
		t.Fatalf("GET with the session cookie: %+v, %v", who, err)
	}
	for _, tt := range []struct {
		name string
		kv   []string
		code string
	}{
		{"same-origin Origin", []string{"Origin", "http://hub.example:8000", "Content-Type", "application/json"}, ""},
		{"Sec-Fetch-Site same-origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://hub.example:8000", "Content-Type", "application/json; charset=utf-8"}, ""},
		{"foreign Origin", []string{"Origin", "https://evil.example", "Content-Type", "application/json"}, "forbidden"},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://hub.example:8000", "Content-Type", "application/json"}, "forbidden"},
		{"same-site but other origin", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://other.hub.example:8000", "Content-Type", "application/json"}, "forbidden"},
		{"no Origin", []string{"Content-Type", "application/json"}, "forbidden"},
		{"form post", []string{"Origin", "http://hub.example:8000", "Content-Type", "text/plain"}, "forbidden"},
		{"forged Referer", []string{"Referer", "http://hub.example:8000/user/bob/lab", "Content-Type", "application/json"}, "forbidden"},
	} {
		r := request(http.MethodPost, "", tt.kv...)
		r.AddCookie(c)
		who, err := a.Authenticate(r)
		if service.ErrorCode(err) != tt.code || (tt.code == "" && who.Name != "alice") {
			t.Errorf("POST, %s: %+v, %v; want code %q", tt.name, who, err, tt.code)
		}
	}

	// A tampered cookie is no session; an expired one neither.
	bad := *c
	bad.Value = c.Value[:len(c.Value)-2] + "AA"
	r := request(http.MethodGet, "")
	r.AddCookie(&bad)
	_, err = a.Authenticate(r)
	wantCode(t, "a tampered session cookie", err, service.EUNAUTHORIZED)
	now = now.Add(9 * time.Hour)
	_, err = a.Authenticate(get)
	wantCode(t, "an expired session cookie", err, service.EUNAUTHORIZED)
}

// TestSessionAcrossReplicas: a cookie made by one instance is good on another
// sharing the Hub token (another replica, or the same one restarted), and
// worthless to an instance with another token.
func TestSessionAcrossReplicas(t *testing.T) {
	h := newFakeHub(t)
	now := time.Now()
	cookies, _, _, err := login(t, newAuth(t, h, &now), "code-alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	r := request(http.MethodGet, "")
	r.AddCookie(sessionCookie(cookies))
	if who, err := newAuth(t, h, &now).Authenticate(r); err != nil || who.Name != "alice" {
		t.Fatalf("on another replica: %+v, %v", who, err)
	}
	other, err := New(Config{APIURL: h.server.URL + "/hub/api", APIToken: "another-secret", ServiceName: "otter_grade", Prefix: "/services/otter_grade/"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Authenticate(r)
	wantCode(t, "with another service token", err, service.EUNAUTHORIZED)
}

func TestOAuthRefusals(t *testing.T) {
	h := newFakeHub(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, h, &now)

	// A user without access to the service gets no session.
	cookies, _, _, err := login(t, a, "code-eve", "", "")
	wantCode(t, "sign-in of a user without access", err, service.EFORBIDDEN)
	if sessionCookie(cookies) != nil {
		t.Fatal("a user without access got a session cookie")
	}
	// A code the Hub does not know (or one used already).
	_, _, _, err = login(t, a, "code-mallory", "", "")
	wantCode(t, "an unknown code", err, service.EUNAUTHORIZED)

	// Open redirects are not possible: next stays under the prefix.
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/hub/admin", "/services/otter_grade/../../hub/admin"} {
		h.codes["code-next"] = "tok-alice"
		_, got, _, err := login(t, a, "code-next", next, "")
		if err != nil || got != "/services/otter_grade/" {
			t.Errorf("next %q: came back to %q, %v", next, got, err)
		}
	}

	// A state begun in another browser (no flow cookie), a forged state, and
	// an expired one are refused.
	rec := httptest.NewRecorder()
	loc, _ := a.StartLogin(rec, request(http.MethodGet, ""), "", "held-2")
	u, _ := url.Parse(loc)
	state := u.Query().Get("state")
	finish := func(state string, cookies []*http.Cookie) error {
		h.codes["code-x"] = "tok-alice"
		r := request(http.MethodGet, "")
		r.URL, _ = url.Parse("/services/otter_grade/oauth_callback?" + url.Values{"code": {"code-x"}, "state": {state}}.Encode())
		for _, c := range cookies {
			r.AddCookie(c)
		}
		_, _, _, err := a.FinishLogin(httptest.NewRecorder(), r)
		return err
	}
	wantCode(t, "a state without its browser's cookie", finish(state, nil), service.EINVALID)
	wantCode(t, "a forged state", finish(state[:len(state)-3]+"abc", rec.Result().Cookies()), service.EINVALID)
	now = now.Add(11 * time.Minute)
	wantCode(t, "an expired state", finish(state, rec.Result().Cookies()), service.EINVALID)
	now = now.Add(-11 * time.Minute)
	if err := finish(state, rec.Result().Cookies()); err != nil {
		t.Fatalf("the same flow in its own browser, in time: %v", err)
	}
}

func TestConfig(t *testing.T) {
	_, err := New(Config{})
	for _, want := range []string{"JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_NAME", "JUPYTERHUB_SERVICE_PREFIX"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with nothing set: %v; want it to name %s", err, want)
		}
	}
	_, err = New(Config{APIURL: "http://127.0.0.1:8081/hub/api", APIToken: "x", ServiceName: "s", Prefix: "/services/s/", CallbackURL: "/elsewhere/oauth_callback"})
	if err == nil || !strings.Contains(err.Error(), "JUPYTERHUB_OAUTH_CALLBACK_URL") {
		t.Errorf("a callback outside the prefix: %v", err)
	}
	a, err := New(Config{APIURL: "http://127.0.0.1:8081/hub/api", APIToken: "x", ServiceName: "s", Prefix: "/services/s/",
		CallbackURL: "https://hub.example/services/s/oauth_callback", PublicURL: "https://hub.example/"})
	if err != nil || a.CallbackPath() != "/services/s/oauth_callback" || !a.secure {
		t.Fatalf("absolute callback and https public URL: %v %+v", err, a)
	}
	loc, _ := a.StartLogin(httptest.NewRecorder(), request(http.MethodGet, ""), "", "")
	if !strings.HasPrefix(loc, "https://hub.example/hub/api/oauth2/authorize?") {
		t.Errorf("authorize URL with a public URL: %q", loc)
	}
}

// TestActionTokens: an action (a staff's form) with the session cookie
// needs the same origin and the token of that very session; a second
// sign-in makes another token; a Hub token in Authorization needs neither.
func TestActionTokens(t *testing.T) {
	h := newFakeHub(t)
	h.codes["code-staff"], h.codes["code-staff-2"] = "tok-staff", "tok-staff"
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, h, &now)
	cookies, _, _, err := login(t, a, "code-staff", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := sessionCookie(cookies)
	get := request(http.MethodGet, "")
	get.AddCookie(c)
	token := a.ActionToken(get)
	if len(token) != 32 {
		t.Fatalf("ActionToken = %q", token)
	}
	if got := a.ActionToken(request(http.MethodGet, "")); got != "" {
		t.Errorf("ActionToken without a session = %q", got)
	}
	cookies2, _, _, err := login(t, a, "code-staff-2", "", "")
	if err != nil {
		t.Fatal(err)
	}
	other := request(http.MethodGet, "")
	other.AddCookie(sessionCookie(cookies2))
	if a.ActionToken(other) == token {
		t.Fatal("two sign-ins have the same action token")
	}
	same := []string{"Origin", "http://hub.example:8000", "Content-Type", "application/x-www-form-urlencoded"}
	for _, tt := range []struct {
		name   string
		cookie *http.Cookie
		auth   string
		kv     []string
		token  string
		code   string
	}{
		{"same origin, its token", c, "", same, token, ""},
		{"Sec-Fetch-Site same-origin, its token", c, "", []string{"Sec-Fetch-Site", "same-origin"}, token, ""},
		{"no token", c, "", same, "", service.EFORBIDDEN},
		{"another session's token", c, "", same, a.ActionToken(other), service.EFORBIDDEN},
		{"a token for another session's cookie", sessionCookie(cookies2), "", same, token, service.EFORBIDDEN},
		{"cross-site form with its token", c, "", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, token, service.EFORBIDDEN},
		{"foreign Origin with its token", c, "", []string{"Origin", "https://evil.example"}, token, service.EFORBIDDEN},
		{"no Origin with its token", c, "", nil, token, service.EFORBIDDEN},
		{"no session", nil, "", same, token, service.EUNAUTHORIZED},
		{"a Hub token", nil, "token tok-staff", nil, "", ""},
	} {
		r := request(http.MethodPost, tt.auth, tt.kv...)
		if tt.cookie != nil {
			r.AddCookie(tt.cookie)
		}
		who, err := a.AuthenticateAction(r, tt.token)
		if service.ErrorCode(err) != tt.code || tt.code == "" && (who.Name != "ta" || !who.Staff()) {
			t.Errorf("%s: %+v, %v; want code %q", tt.name, who, err, tt.code)
		}
	}
}
