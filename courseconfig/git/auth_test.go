package git_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/courseconfig/git/gittest"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// verifyJWT checks an RS256 JWT against pub, independently of the code that
// made it, and returns its claims.
func verifyJWT(t *testing.T, jwt string, pub *rsa.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("a JWT has three parts; got %d", len(parts))
	}
	dec := base64.RawURLEncoding
	var header map[string]any
	h, _ := dec.DecodeString(parts[0])
	if err := json.Unmarshal(h, &header); err != nil || header["alg"] != "RS256" || header["typ"] != "JWT" {
		t.Fatalf("JWT header %s", h)
	}
	sig, err := dec.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the JWT's signature does not verify with the App's public key: %v", err)
	}
	var claims map[string]any
	c, _ := dec.DecodeString(parts[1])
	if err := json.Unmarshal(c, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestGitHubAppJWT(t *testing.T) {
	key := rsaKey(t)
	parsed, err := git.ParseRSAPrivateKey(pkcs1PEM(key))
	if err != nil || !parsed.Equal(key) {
		t.Fatalf("ParseRSAPrivateKey(PKCS#1) = %v", err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if parsed, err := git.ParseRSAPrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil || !parsed.Equal(key) {
		t.Fatalf("ParseRSAPrivateKey(PKCS#8) = %v", err)
	}
	garbage := "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0a2V5bWF0ZXJpYWw=\n-----END RSA PRIVATE KEY-----\n"
	if _, err := git.ParseRSAPrivateKey([]byte(garbage)); err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("a broken key: %v; want an error that does not quote it", err)
	}

	app := &git.GitHubApp{AppID: "12345", InstallationID: "678", PrivateKey: key}
	now := time.Unix(1_700_000_000, 0)
	jwt, err := app.JWT(now)
	if err != nil {
		t.Fatal(err)
	}
	claims := verifyJWT(t, jwt, &key.PublicKey)
	iat, exp := int64(claims["iat"].(float64)), int64(claims["exp"].(float64))
	if claims["iss"] != "12345" || iat > now.Unix() || iat < now.Unix()-120 || exp <= now.Unix() || exp > now.Unix()+600 {
		t.Errorf("claims %v at %d; want iss 12345, iat in the last two minutes, exp within ten", claims, now.Unix())
	}
}

// fakeGitHub plays the GitHub API's installation-token endpoint: it checks
// the JWT with the App's public key and hands out numbered tokens.
type fakeGitHub struct {
	t       *testing.T
	pub     *rsa.PublicKey
	issued  atomic.Int64
	expires time.Time
	onToken func(string)
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/app/installations/678/access_tokens" {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		http.Error(w, `{"message":"A JSON web token could not be decoded"}`, http.StatusUnauthorized)
		return
	}
	parts := strings.Split(jwt, ".")
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig, _ := base64.RawURLEncoding.DecodeString(parts[len(parts)-1])
	if len(parts) != 3 || rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, sum[:], sig) != nil {
		http.Error(w, `{"message":"'Issuer' claim ('iss') must be an Integer"}`, http.StatusUnauthorized)
		return
	}
	claims := verifyJWT(f.t, jwt, f.pub)
	if claims["iss"] != "12345" {
		http.Error(w, `{"message":"Integration not found"}`, http.StatusUnauthorized)
		return
	}
	tok := fmt.Sprintf("ghs_installationToken%d", f.issued.Add(1))
	if f.onToken != nil {
		f.onToken(tok)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_at": f.expires.UTC().Format(time.RFC3339)})
}

// The installation token is obtained with a verified JWT, reused while it is
// fresh, renewed before it expires, and clones from a server that accepts
// only the current token.
func TestGitHubAppInstallationToken(t *testing.T) {
	key := rsaKey(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := gittest.NewServer(t, "not-yet")
	srv.NewRepo("course.git", course(t))
	api := &fakeGitHub{t: t, pub: &key.PublicKey, expires: now.Add(time.Hour), onToken: srv.SetToken}
	gh := httptest.NewServer(api)
	defer gh.Close()

	app := &git.GitHubApp{AppID: "12345", InstallationID: "678", PrivateKey: key, APIURL: gh.URL, Now: clock}
	ctx := context.Background()
	tok, err := app.InstallationToken(ctx)
	if err != nil || tok != "ghs_installationToken1" {
		t.Fatalf("InstallationToken = %q, %v", tok, err)
	}
	mu.Lock()
	now = now.Add(50 * time.Minute) // ten minutes left: reused
	mu.Unlock()
	if tok, _ := app.InstallationToken(ctx); tok != "ghs_installationToken1" || api.issued.Load() != 1 {
		t.Errorf("a fresh token was not reused: %q, %d issued", tok, api.issued.Load())
	}
	mu.Lock()
	now = now.Add(6 * time.Minute) // four minutes left: renewed
	api.expires = now.Add(time.Hour)
	mu.Unlock()
	if tok, _ := app.InstallationToken(ctx); tok != "ghs_installationToken2" {
		t.Errorf("a token about to expire was not renewed: %q", tok)
	}

	// The Source clones with the App's token.
	src := newSource(t, git.Repo{URL: srv.URL() + "/course.git", Auth: app}, git.Options{Now: clock})
	if _, err := src.Autograder(ctx, lab("lab01")); err != nil {
		t.Fatalf("cloning with the installation token: %v", err)
	}

	// A key the API does not know is refused with GitHub's message.
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	bad := &git.GitHubApp{AppID: "12345", InstallationID: "678", PrivateKey: other, APIURL: gh.URL}
	if _, err := bad.InstallationToken(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a JWT signed with the wrong key: %v; want the API's 401", err)
	}
}

func TestSSHKeyLoading(t *testing.T) {
	key := rsaKey(t)
	k, err := git.NewSSHKey("", pkcs1PEM(key), "")
	if err != nil {
		t.Fatalf("NewSSHKey(RSA PEM) = %v", err)
	}
	if !strings.HasPrefix(k.PublicKey(), "ssh-rsa AAAA") {
		t.Errorf("PublicKey = %q", k.PublicKey())
	}
	// An encrypted key needs its passphrase.
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte("open sesame"), x509.PEMCipherAES256) //nolint:staticcheck // legacy PEM encryption is what old deploy keys use
	if err != nil {
		t.Fatal(err)
	}
	enc := pem.EncodeToMemory(block)
	if _, err := git.NewSSHKey("git", enc, "open sesame"); err != nil {
		t.Errorf("an encrypted key with its passphrase: %v", err)
	}
	if _, err := git.NewSSHKey("git", enc, "wrong"); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("an encrypted key with a wrong passphrase: %v", err)
	}
	secret := "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGJ1dCBzZWNyZXQ=\n-----END OPENSSH PRIVATE KEY-----\n"
	if _, err := git.NewSSHKey("git", []byte(secret), ""); err == nil || strings.Contains(err.Error(), "bm90IGEga2V5") {
		t.Errorf("a broken key: %v; want an error that does not quote it", err)
	}
	// Host keys are checked against the known_hosts file given.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte("example.org "+k.PublicKey()+"\n"), 0o600)
	if _, err := git.NewSSHKey("git", pkcs1PEM(key), "", kh); err != nil {
		t.Errorf("with a known_hosts file: %v", err)
	}
	if _, err := git.NewSSHKey("git", pkcs1PEM(key), "", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing known_hosts file was accepted")
	}
}
