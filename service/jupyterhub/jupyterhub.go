// Package jupyterhub authenticates the service's users through JupyterHub,
// as a Hub service (managed, or external behind the Hub's proxy).
//
// A request is authenticated by a Hub token (`Authorization: token <t>` or
// `Bearer <t>`), or by the service's session cookie, which holds the Hub
// OAuth token the browser was given at the end of the Hub's authorization
// code flow. Either way the token is resolved with the Hub's `GET /user`, and
// the user is allowed only if the token's scopes grant access to this
// service. Answers are cached briefly under a hash of the token; a Hub that
// cannot be reached gives EUNAVAILABLE, never a guess.
//
// Nothing is kept in the process: the session cookie and the OAuth state are
// signed with keys derived from the service's Hub API token, which every
// replica shares, so a login started on one replica finishes on another and
// survives restarts. A cookie-authenticated request that changes anything
// must come from the Hub's own origin (Sec-Fetch-Site or Origin) with a JSON
// body, so another site cannot submit for a student.
package jupyterhub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otter-service/otter-service/service"
)

// Config is what the Hub tells a service through its environment.
type Config struct {
	APIURL       string   // JUPYTERHUB_API_URL, e.g. http://127.0.0.1:8081/hub/api
	APIToken     string   // JUPYTERHUB_API_TOKEN: the service's own token (also its OAuth client secret)
	ServiceName  string   // JUPYTERHUB_SERVICE_NAME, e.g. otter_grade
	Prefix       string   // JUPYTERHUB_SERVICE_PREFIX, e.g. /services/otter_grade/
	ClientID     string   // JUPYTERHUB_CLIENT_ID; default service-{ServiceName}
	CallbackURL  string   // JUPYTERHUB_OAUTH_CALLBACK_URL; default {Prefix}oauth_callback
	PublicURL    string   // JUPYTERHUB_PUBLIC_URL: the Hub's public URL, if known
	BaseURL      string   // JUPYTERHUB_BASE_URL; default /
	AccessScopes []string // JUPYTERHUB_OAUTH_ACCESS_SCOPES; default derived from ServiceName
	StaffGroup   string   // members see every submission, like Hub admins
	// CourseStaffGroups names, by course, a group whose members are that
	// course's staff: they see its submissions.
	CourseStaffGroups map[string]string

	CacheTTL         time.Duration // how long a good token is trusted; default 1m
	NegativeCacheTTL time.Duration // how long a refused token stays refused; default 10s
	SessionTTL       time.Duration // the session cookie's lifetime; default 8h
	Client           *http.Client  // default: 10s timeout
	Now              func() time.Time
}

// Cookie names, scoped to the service's prefix.
const (
	SessionCookie = "otter-service-session"
	stateCookie   = "otter-service-oauth-" // + the flow's id
)

// Auth authenticates requests through the Hub.
type Auth struct {
	cfg          Config
	apiURL       string
	sessionKey   []byte
	stateKey     []byte
	actionKey    []byte // HMAC key of the action tokens
	publicOrigin string // scheme://host of PublicURL, or ""
	secure       bool   // cookies are Secure: the public URL is https
	callbackPath string

	mu    sync.Mutex
	cache map[string]cached // by hex(sha256(token))
}

type cached struct {
	who     service.Identity
	err     error // EUNAUTHORIZED or EFORBIDDEN, or nil
	expires time.Time
}

// maxCache bounds the token cache; past it, expired entries are dropped, and
// if none are, the whole cache.
const maxCache = 100_000

// New checks cfg and returns an Auth.
func New(cfg Config) (*Auth, error) {
	var problems []string
	if cfg.APIURL == "" {
		problems = append(problems, "JUPYTERHUB_API_URL is not set")
	} else if u, err := url.Parse(cfg.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("JUPYTERHUB_API_URL %q is not an http(s) URL", cfg.APIURL))
	}
	if cfg.APIToken == "" {
		problems = append(problems, "JUPYTERHUB_API_TOKEN is not set")
	}
	if cfg.ServiceName == "" {
		problems = append(problems, "JUPYTERHUB_SERVICE_NAME is not set")
	}
	if !strings.HasPrefix(cfg.Prefix, "/") {
		problems = append(problems, fmt.Sprintf("JUPYTERHUB_SERVICE_PREFIX %q does not start with /", cfg.Prefix))
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "service-" + cfg.ServiceName
	}
	if cfg.CallbackURL == "" {
		cfg.CallbackURL = strings.TrimSuffix(cfg.Prefix, "/") + "/oauth_callback"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "/"
	}
	if len(cfg.AccessScopes) == 0 {
		cfg.AccessScopes = []string{"access:services!service=" + cfg.ServiceName, "access:services"}
	}
	a := &Auth{cfg: cfg, apiURL: strings.TrimSuffix(cfg.APIURL, "/"), cache: map[string]cached{}}
	cb, err := url.Parse(cfg.CallbackURL)
	if err != nil || !strings.HasPrefix(cb.Path, strings.TrimSuffix(cfg.Prefix, "/")+"/") {
		problems = append(problems, fmt.Sprintf("JUPYTERHUB_OAUTH_CALLBACK_URL %q is not under the service prefix %s", cfg.CallbackURL, cfg.Prefix))
	} else {
		a.callbackPath = cb.Path
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("JUPYTERHUB_PUBLIC_URL %q is not an http(s) URL", cfg.PublicURL))
		} else {
			a.publicOrigin = u.Scheme + "://" + strings.ToLower(u.Host)
			a.secure = u.Scheme == "https"
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if a.cfg.CacheTTL <= 0 {
		a.cfg.CacheTTL = time.Minute
	}
	if a.cfg.NegativeCacheTTL <= 0 {
		a.cfg.NegativeCacheTTL = 10 * time.Second
	}
	if a.cfg.SessionTTL <= 0 {
		a.cfg.SessionTTL = 8 * time.Hour
	}
	if a.cfg.Client == nil {
		a.cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if a.cfg.Now == nil {
		a.cfg.Now = time.Now
	}
	a.sessionKey = derive(cfg.APIToken, "otter-service session cookie")
	a.stateKey = derive(cfg.APIToken, "otter-service oauth state")
	a.actionKey = derive(cfg.APIToken, "otter-service action token")
	return a, nil
}

// CallbackPath is the path of the OAuth callback the service must serve.
func (a *Auth) CallbackPath() string { return a.callbackPath }

func derive(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Authenticate implements httpapi.Authenticator.
//
// Returns EUNAUTHORIZED without credentials or with a token the Hub does not
// know, EFORBIDDEN for a user without access to the service or a
// cookie-authenticated change that is not provably same-origin JSON, and
// EUNAVAILABLE when the Hub cannot be asked.
func (a *Auth) Authenticate(r *http.Request) (service.Identity, error) {
	if token, ok := bearer(r.Header.Get("Authorization")); ok {
		return a.resolve(r.Context(), token)
	}
	if r.Header.Get("Authorization") != "" {
		return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "The Authorization header must be \"token <JupyterHub token>\" or \"Bearer <JupyterHub token>\".")
	}
	token, ok := a.session(r)
	if !ok {
		return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "You are not signed in: open the grading service through JupyterHub and submit again.")
	}
	if !safeMethod(r.Method) {
		if err := a.CheckSameOriginJSON(r); err != nil {
			return service.Identity{}, err
		}
	}
	return a.resolve(r.Context(), token)
}

// ActionToken implements httpapi.ActionAuth: the token the pages of r's
// session put in their forms, bound to the session (a new sign-in makes a
// new one); "" without a session.
func (a *Auth) ActionToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	if _, ok := a.session(r); !ok {
		return ""
	}
	m := hmac.New(sha256.New, a.actionKey)
	m.Write([]byte(c.Value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// AuthenticateAction implements httpapi.ActionAuth: Authenticate for a
// change course staff make from a page (a form, or JSON). With a JupyterHub
// token in Authorization (which no other site can make a browser send),
// as Authenticate; with the session cookie, r must come from the Hub's own
// origin and carry the session's ActionToken.
func (a *Auth) AuthenticateAction(r *http.Request, token string) (service.Identity, error) {
	if r.Header.Get("Authorization") != "" {
		return a.Authenticate(r)
	}
	session, ok := a.session(r)
	if !ok {
		return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "You are not signed in: open the grading service through JupyterHub and try again.")
	}
	if !a.sameOrigin(r) {
		return service.Identity{}, service.Errorf(service.EFORBIDDEN, "This request did not come from a page of the grading service (its Origin is %q), so it cannot use your JupyterHub sign-in.", r.Header.Get("Origin"))
	}
	want := a.ActionToken(r)
	if token == "" || want == "" || !hmac.Equal([]byte(token), []byte(want)) {
		return service.Identity{}, service.Errorf(service.EFORBIDDEN, "This form was not made for your current sign-in (it is from an older page, or another site): reload the page and try again.")
	}
	return a.resolve(r.Context(), session)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer")) {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// CheckSameOriginJSON returns EFORBIDDEN unless r provably comes from a page
// of the Hub's own origin and carries JSON: browsers set Sec-Fetch-Site and
// Origin themselves, and a cross-site page cannot send application/json
// without a CORS preflight, which this service never grants.
func (a *Auth) CheckSameOriginJSON(r *http.Request) error {
	if !a.sameOrigin(r) {
		return service.Errorf(service.EFORBIDDEN, "This request did not come from a JupyterHub page (its Origin is %q), so it cannot use your JupyterHub sign-in.", r.Header.Get("Origin"))
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return service.Errorf(service.EFORBIDDEN, "A signed-in browser must send submissions as application/json.")
	}
	return nil
}

func (a *Auth) sameOrigin(r *http.Request) bool {
	// Sec-Fetch-Site is set by the browser alone (pages cannot set it);
	// where it is absent (older browsers), Origin must name this origin.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Browsers send Origin with every POST; without it nothing is proven.
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if a.publicOrigin != "" && strings.EqualFold(u.Scheme+"://"+u.Host, a.publicOrigin) {
		return true
	}
	return strings.EqualFold(u.Host, r.Host)
}

// hubUser is the Hub's GET /user answer.
type hubUser struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Admin  bool     `json:"admin"`
	Groups []string `json:"groups"`
	Scopes []string `json:"scopes"`
}

func (a *Auth) resolve(ctx context.Context, token string) (service.Identity, error) {
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:])
	now := a.cfg.Now()
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.who, c.err
	}
	who, err := a.ask(ctx, token)
	switch service.ErrorCode(err) {
	case "":
		a.remember(key, cached{who: who, expires: now.Add(a.cfg.CacheTTL)}, now)
	case service.EUNAUTHORIZED, service.EFORBIDDEN:
		a.remember(key, cached{err: err, expires: now.Add(a.cfg.NegativeCacheTTL)}, now)
	}
	return who, err
}

func (a *Auth) remember(key string, c cached, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCache {
		for k, v := range a.cache {
			if !now.Before(v.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCache {
			clear(a.cache)
		}
	}
	a.cache[key] = c
}

// ask resolves a token with the Hub, uncached.
func (a *Auth) ask(ctx context.Context, token string) (service.Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.apiURL+"/user", nil)
	if err != nil {
		return service.Identity{}, err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return service.Identity{}, unavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return service.Identity{}, unavailable(err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusNotFound:
		return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "JupyterHub does not accept your token: sign in to JupyterHub again.")
	case resp.StatusCode != http.StatusOK:
		return service.Identity{}, unavailable(fmt.Errorf("GET %s/user: HTTP %d", a.apiURL, resp.StatusCode))
	}
	var u hubUser
	if err := json.Unmarshal(body, &u); err != nil || u.Name == "" {
		return service.Identity{}, unavailable(fmt.Errorf("GET %s/user: unreadable answer", a.apiURL))
	}
	if u.Kind != "" && u.Kind != "user" {
		return service.Identity{}, service.Errorf(service.EFORBIDDEN, "Only JupyterHub users can submit; %q is a %s.", u.Name, u.Kind)
	}
	if !slices.ContainsFunc(u.Scopes, func(s string) bool { return slices.Contains(a.cfg.AccessScopes, s) }) {
		return service.Identity{}, service.Errorf(service.EFORBIDDEN, "JupyterHub user %q has no access to the grading service; ask your course staff.", u.Name)
	}
	who := service.Identity{Name: u.Name, Admin: u.Admin || (a.cfg.StaffGroup != "" && slices.Contains(u.Groups, a.cfg.StaffGroup))}
	for course, group := range a.cfg.CourseStaffGroups {
		if slices.Contains(u.Groups, group) {
			who.Courses = append(who.Courses, course)
		}
	}
	slices.Sort(who.Courses)
	return who, nil
}

// hubError keeps the cause of a Hub failure for the logs while students see
// only the service's message.
type hubError struct {
	err   *service.Error
	cause error
}

func (e *hubError) Unwrap() []error { return []error{e.err, e.cause} }
func (e *hubError) Error() string   { return e.err.Error() + ": " + e.cause.Error() }

func unavailable(cause error) error {
	return &hubError{service.Errorf(service.EUNAVAILABLE, "JupyterHub cannot be reached to check who you are; try again in a minute."), cause}
}
