package jupyterhub

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/otter-service/otter-service/service"
)

// loginTTL bounds how long a browser may take through the Hub's sign-in.
const loginTTL = 10 * time.Minute

// oauthState is what the OAuth state parameter carries, sealed.
type oauthState struct {
	ID      string `json:"i"`           // the flow's id, also in a cookie of the browser that began it
	Next    string `json:"n"`           // where to go afterwards: a path under the prefix
	Held    string `json:"h,omitempty"` // a submission held until the browser is signed in
	Expires int64  `json:"e"`           // unix seconds
}

// session is what the session cookie carries, sealed.
type session struct {
	Token   string `json:"t"` // the Hub OAuth token, resolved like any other token
	Expires int64  `json:"e"` // unix seconds
}

// StartLogin begins the Hub's OAuth code flow for the browser behind r and
// returns the URL to send it to (the Hub's authorize endpoint). It sets a
// short-lived cookie that binds the flow to this browser, so a state taken
// from one browser is worthless in another. next is where to come back to
// afterwards (a path under the prefix; anything else becomes the prefix);
// held is the key of a submission held until sign-in, or "".
func (a *Auth) StartLogin(w http.ResponseWriter, r *http.Request, next, held string) (string, error) {
	id := randomID()
	st := oauthState{ID: id, Next: a.local(next), Held: held, Expires: a.cfg.Now().Add(loginTTL).Unix()}
	sealed, err := seal(a.stateKey, st)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookie + id[:12], Value: id, Path: a.cfg.Prefix, MaxAge: int(loginTTL / time.Second),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
	q := url.Values{
		"client_id":     {a.cfg.ClientID},
		"redirect_uri":  {a.cfg.CallbackURL},
		"response_type": {"code"},
		"state":         {sealed},
	}
	return a.publicOrigin + strings.TrimSuffix(a.cfg.BaseURL, "/") + "/hub/api/oauth2/authorize?" + q.Encode(), nil
}

// local returns next if it is a path under the service's prefix, else the
// prefix: the flow never redirects anywhere else.
func (a *Auth) local(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, a.cfg.Prefix) || strings.Contains(u.Path, "..") {
		return a.cfg.Prefix
	}
	return u.RequestURI()
}

// FinishLogin completes the flow at the callback: it checks the state and
// the browser's flow cookie, exchanges the code for a Hub token, resolves
// the user and sets the session cookie. It returns who signed in, where to
// go next, and the held submission's key ("" if none).
//
// Returns EINVALID for a missing, expired or forged state (or one begun in
// another browser), EUNAUTHORIZED if the Hub refuses the code, EFORBIDDEN
// for a user without access, EUNAVAILABLE when the Hub cannot be reached.
func (a *Auth) FinishLogin(w http.ResponseWriter, r *http.Request) (service.Identity, string, string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return service.Identity{}, "", "", service.Errorf(service.EUNAUTHORIZED, "JupyterHub did not sign you in (%s); open the grading service again.", e)
	}
	var st oauthState
	if err := open(a.stateKey, q.Get("state"), &st); err != nil || st.ID == "" {
		return service.Identity{}, "", "", service.Errorf(service.EINVALID, "This sign-in link is not valid; open the grading service again.")
	}
	if a.cfg.Now().Unix() > st.Expires {
		return service.Identity{}, "", "", service.Errorf(service.EINVALID, "This sign-in took too long; open the grading service again.")
	}
	c, err := r.Cookie(stateCookie + st.ID[:min(12, len(st.ID))])
	if err != nil || c.Value != st.ID {
		return service.Identity{}, "", "", service.Errorf(service.EINVALID, "This sign-in was started in another browser; open the grading service again.")
	}
	http.SetCookie(w, &http.Cookie{Name: c.Name, Path: a.cfg.Prefix, MaxAge: -1, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	code := q.Get("code")
	if code == "" {
		return service.Identity{}, "", "", service.Errorf(service.EINVALID, "JupyterHub's answer has no authorization code; open the grading service again.")
	}
	token, err := a.exchange(r, code)
	if err != nil {
		return service.Identity{}, "", "", err
	}
	who, err := a.resolve(r.Context(), token)
	if err != nil {
		return service.Identity{}, "", "", err
	}
	exp := a.cfg.Now().Add(a.cfg.SessionTTL)
	value, err := seal(a.sessionKey, session{Token: token, Expires: exp.Unix()})
	if err != nil {
		return service.Identity{}, "", "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: value, Path: a.cfg.Prefix, Expires: exp,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
	return who, a.local(st.Next), st.Held, nil
}

// exchange trades an authorization code for a Hub token.
func (a *Auth) exchange(r *http.Request, code string) (string, error) {
	form := url.Values{
		"client_id":     {a.cfg.ClientID},
		"client_secret": {a.cfg.APIToken},
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {a.cfg.CallbackURL},
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, a.apiURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return "", unavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", unavailable(err)
	}
	if resp.StatusCode >= 500 {
		return "", unavailable(errors.New("POST oauth2/token: HTTP " + resp.Status))
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &t) != nil || t.AccessToken == "" {
		return "", service.Errorf(service.EUNAUTHORIZED, "JupyterHub refused this sign-in (it may have been used already); open the grading service again.")
	}
	return t.AccessToken, nil
}

// session returns the Hub token in r's session cookie, if it has a valid one.
func (a *Auth) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", false
	}
	var s session
	if err := open(a.sessionKey, c.Value, &s); err != nil || s.Token == "" || a.cfg.Now().Unix() > s.Expires {
		return "", false
	}
	return s.Token, true
}

// seal encrypts and authenticates v (AES-256-GCM) into URL-safe text.
func seal(key []byte, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, nil)), nil
}

// open reverses seal; any tampering is an error.
func open(key []byte, text string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	if len(raw) < aead.NonceSize() {
		return errors.New("sealed value too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, v)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func randomID() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
