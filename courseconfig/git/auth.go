package git

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Auth gives the credentials for fetching a repository. The implementations
// are Token, *GitHubApp and *SSHKey. Their secrets never appear in the
// errors the Source reports or logs.
type Auth interface {
	// method returns the go-git transport credentials to use now.
	method(ctx context.Context) (transport.AuthMethod, error)
	// secrets returns the strings that must not appear in any message.
	secrets() []string
}

// Token authenticates over HTTPS with a personal access token or deploy
// token, sent as the password of HTTP Basic authentication (as GitHub and
// GitLab accept it).
type Token struct {
	Username string // "" for "x-access-token"; GitLab deploy tokens need theirs
	Token    string
}

func (t Token) method(context.Context) (transport.AuthMethod, error) {
	user := t.Username
	if user == "" {
		user = "x-access-token"
	}
	return &githttp.BasicAuth{Username: user, Password: t.Token}, nil
}

func (t Token) secrets() []string { return []string{t.Token} }

// GitHubApp authenticates as an installation of a GitHub App, the way the
// old service did: a JWT signed with the App's private key (RS256) is
// exchanged at the GitHub API for an installation token, which lasts an hour
// and is renewed a few minutes before it expires.
type GitHubApp struct {
	AppID          string // the App's id (or its client id)
	InstallationID string
	PrivateKey     *rsa.PrivateKey
	APIURL         string       // "" for https://api.github.com; GitHub Enterprise: https://HOST/api/v3
	Client         *http.Client // nil for one with a 30-second timeout
	Now            func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// DefaultGitHubAPI is the GitHub API's base URL.
const DefaultGitHubAPI = "https://api.github.com"

// renewBefore is how long before its expiry an installation token is renewed.
const renewBefore = 5 * time.Minute

// ParseRSAPrivateKey reads a PEM RSA private key, PKCS#1 (as GitHub issues
// them) or PKCS#8. Its errors never quote the key.
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the private key is not PEM-encoded (expected -----BEGIN RSA PRIVATE KEY-----)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the private key (PEM block %q) is neither PKCS#1 nor PKCS#8 RSA", block.Type)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not an RSA key")
	}
	return rk, nil
}

func (a *GitHubApp) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// JWT returns the App's JSON Web Token at now: RS256, issued a minute in the
// past (for clock drift), valid for nine minutes (GitHub allows ten).
func (a *GitHubApp) JWT(now time.Time) (string, error) {
	if a.PrivateKey == nil {
		return "", errors.New("GitHub App: no private key")
	}
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": a.AppID,
	})
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.PrivateKey, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("GitHub App: signing the JWT: %v", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// InstallationToken returns a valid installation token, asking the GitHub
// API for a new one when there is none or the one held expires within five
// minutes.
func (a *GitHubApp) InstallationToken(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.token != "" && now.Before(a.expires.Add(-renewBefore)) {
		return a.token, nil
	}
	jwt, err := a.JWT(now)
	if err != nil {
		return "", err
	}
	base := strings.TrimSuffix(a.APIURL, "/")
	if base == "" {
		base = DefaultGitHubAPI
	}
	endpoint := base + "/app/installations/" + url.PathEscape(a.InstallationID) + "/access_tokens"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return "", fmt.Errorf("GitHub App: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	client := a.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("GitHub App: requesting an installation token from %s: %v", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		Message   string    `json:"message"`
	}
	jerr := json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		msg := out.Message
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return "", fmt.Errorf("GitHub App: the API refused an installation token for app %s, installation %s: %s %q", a.AppID, a.InstallationID, resp.Status, msg)
	}
	if jerr != nil || out.Token == "" {
		return "", fmt.Errorf("GitHub App: the API's answer has no installation token")
	}
	if out.ExpiresAt.IsZero() {
		out.ExpiresAt = now.Add(time.Hour)
	}
	a.token, a.expires = out.Token, out.ExpiresAt
	return a.token, nil
}

func (a *GitHubApp) method(ctx context.Context) (transport.AuthMethod, error) {
	tok, err := a.InstallationToken(ctx)
	if err != nil {
		return nil, err
	}
	return &githttp.BasicAuth{Username: "x-access-token", Password: tok}, nil
}

func (a *GitHubApp) secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return []string{a.token}
}

// SSHKey authenticates over SSH with a deploy key. The server's host key is
// checked against known_hosts files.
type SSHKey struct {
	keys *gitssh.PublicKeys
	raw  string
}

// NewSSHKey reads a PEM or OpenSSH private key, decrypting it with
// passphrase if it is encrypted. The server's key is checked against the
// knownHosts files, or if none are given, $SSH_KNOWN_HOSTS or
// ~/.ssh/known_hosts. user is the SSH user ("" for "git"). Its errors never
// quote the key.
func NewSSHKey(user string, key []byte, passphrase string, knownHosts ...string) (*SSHKey, error) {
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("the SSH deploy key cannot be read: %v", scrubString(err.Error(), []string{string(key), passphrase}))
	}
	if len(knownHosts) > 0 {
		cb, err := gitssh.NewKnownHostsCallback(knownHosts...)
		if err != nil {
			return nil, fmt.Errorf("known hosts: %v", err)
		}
		keys.HostKeyCallback = cb
	}
	return &SSHKey{keys: keys, raw: string(bytes.TrimSpace(key))}, nil
}

// PublicKey returns the public half of the key in authorized_keys format,
// the form to register as a deploy key.
func (k *SSHKey) PublicKey() string {
	pk := k.keys.Signer.PublicKey()
	return pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal())
}

func (k *SSHKey) method(context.Context) (transport.AuthMethod, error) { return k.keys, nil }

func (k *SSHKey) secrets() []string { return []string{k.raw} }

// scrubString replaces every secret (of at least 4 bytes) in s.
func scrubString(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
			// Also as it would appear in a URL.
			if esc := url.QueryEscape(sec); esc != sec {
				s = strings.ReplaceAll(s, esc, "[REDACTED]")
			}
		}
	}
	return s
}

// scrub returns err with every secret removed from its message.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrubString(msg, secrets)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
