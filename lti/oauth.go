// This file is the OAuth 1.0a signer: RFC 5849 section 3 with the HMAC-SHA1
// method, plus the body hash extension (draft-eaton-oauth-bodyhash-00), as
// LTI 1.1 requires for outcome requests.

package lti

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Credentials are an LTI consumer key and secret (LTI_CONSUMER_KEY and
// LTI_CONSUMER_SECRET). Their String, GoString and slog forms show the key
// and never the secret.
type Credentials struct {
	Key    string
	Secret string
}

// String returns the key with the secret redacted.
func (c Credentials) String() string {
	return fmt.Sprintf("lti.Credentials{Key: %q, Secret: %s}", c.Key, c.redacted())
}

// GoString is String, so that %#v does not print the secret either.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps the secret out of structured logs.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", c.Key), slog.String("secret", c.redacted()))
}

func (c Credentials) redacted() string {
	if c.Secret == "" {
		return "(empty)"
	}
	return "(redacted)"
}

// redact removes the secret from a message that may have quoted it (an
// answer echoing a request, an error from a lower layer).
func (c Credentials) redact(msg string) string {
	if c.Secret == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, c.Secret, "(redacted)")
	if enc := PercentEncode(c.Secret); enc != c.Secret {
		msg = strings.ReplaceAll(msg, enc, "(redacted)")
	}
	return msg
}

// Param is one name/value pair of a signature base string.
type Param struct {
	Key, Value string
}

// Signer signs requests for one consumer. Now and Nonce may be set for
// deterministic tests; nil means the clock and 96 random bits in 24 hex
// digits (oauthlib, which edX uses, accepts nonces of 20 to 30 characters
// by default).
type Signer struct {
	Credentials Credentials
	Now         func() time.Time
	Nonce       func() string
}

// Signature is the result of signing one request.
type Signature struct {
	// BodyHash is oauth_body_hash: base64 of the SHA-1 of the body.
	BodyHash string
	// Params are the protocol parameters, oauth_signature last.
	Params []Param
	// BaseString is the signature base string (RFC 5849 3.4.1).
	BaseString string
	// Value is oauth_signature, base64 of the HMAC-SHA1 of BaseString.
	Value string
	// Authorization is the Authorization header (RFC 5849 3.5.1).
	Authorization string
}

// Sign signs a request to rawURL with the given method and body. The URL is
// used as it will be sent: its query parameters are signed, and its path
// enters the base string as it appears on the wire.
func (s *Signer) Sign(method, rawURL string, body []byte) (Signature, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Signature{}, fmt.Errorf("lti: cannot sign a request to %q: %v", rawURL, err)
	}
	return s.sign(method, u, body)
}

// SignRequest sets the Authorization header of req, whose body is body.
func (s *Signer) SignRequest(req *http.Request, body []byte) error {
	sig, err := s.sign(req.Method, req.URL, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", sig.Authorization)
	return nil
}

func (s *Signer) sign(method string, u *url.URL, body []byte) (Signature, error) {
	if method == "" {
		method = http.MethodGet
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	nonce := ""
	if s.Nonce != nil {
		nonce = s.Nonce()
	} else {
		nonce = randomHex(12)
	}
	if nonce == "" {
		return Signature{}, errors.New("lti: empty OAuth nonce")
	}
	sig := Signature{BodyHash: BodyHash(body)}
	sig.Params = []Param{
		{"oauth_body_hash", sig.BodyHash},
		{"oauth_consumer_key", s.Credentials.Key},
		{"oauth_nonce", nonce},
		{"oauth_signature_method", "HMAC-SHA1"},
		{"oauth_timestamp", strconv.FormatInt(now().Unix(), 10)},
		{"oauth_version", "1.0"},
	}
	base, err := BaseString(method, u, sig.Params)
	if err != nil {
		return Signature{}, err
	}
	sig.BaseString = base
	sig.Value = HMACSHA1(base, s.Credentials.Secret, "")
	sig.Params = append(sig.Params, Param{"oauth_signature", sig.Value})
	sig.Authorization = AuthorizationHeader("", sig.Params)
	return sig, nil
}

// BodyHash returns the oauth_body_hash of body: base64 of its SHA-1.
func BodyHash(body []byte) string {
	sum := sha1.Sum(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// HMACSHA1 returns the HMAC-SHA1 signature of a base string (RFC 5849
// 3.4.2): the key is the encoded consumer secret, "&", and the encoded token
// secret (empty for LTI).
func HMACSHA1(baseString, consumerSecret, tokenSecret string) string {
	mac := hmac.New(sha1.New, []byte(PercentEncode(consumerSecret)+"&"+PercentEncode(tokenSecret)))
	mac.Write([]byte(baseString))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// BaseString returns the signature base string (RFC 5849 3.4.1.1): the
// upper-case method, the encoded base string URI and the encoded normalized
// parameters, joined by "&". The parameters are oauthParams (any
// oauth_signature among them is left out) and those of u's query. A request
// with an application/x-www-form-urlencoded body would add the body's
// parameters too; LTI outcome requests have none.
func BaseString(method string, u *url.URL, oauthParams []Param) (string, error) {
	uri, err := BaseStringURI(u)
	if err != nil {
		return "", err
	}
	query, err := queryParams(u.RawQuery)
	if err != nil {
		return "", err
	}
	params := make([]Param, 0, len(oauthParams)+len(query))
	for _, p := range oauthParams {
		if p.Key != "oauth_signature" {
			params = append(params, p)
		}
	}
	params = append(params, query...)
	return PercentEncode(strings.ToUpper(method)) + "&" + PercentEncode(uri) + "&" + PercentEncode(NormalizeParams(params)), nil
}

// BaseStringURI returns the base string URI of u (RFC 5849 3.4.1.2): scheme
// and host in lower case, the port only if it is not the scheme's default,
// the path as sent ("/" if empty), and no query or fragment.
func BaseStringURI(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("lti: cannot sign a request to a %q URL", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("lti: cannot sign a request to a URL without a host")
	}
	port := u.Port()
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	} else {
		host = net.JoinHostPort(host, port)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// NormalizeParams returns the normalized parameter string (RFC 5849
// 3.4.1.3.2): names and values encoded, sorted by name then value, each
// pair joined by "=" and the pairs by "&".
func NormalizeParams(params []Param) string {
	enc := make([]Param, len(params))
	for i, p := range params {
		enc[i] = Param{PercentEncode(p.Key), PercentEncode(p.Value)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].Key != enc[j].Key {
			return enc[i].Key < enc[j].Key
		}
		return enc[i].Value < enc[j].Value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.Key)
		b.WriteByte('=')
		b.WriteString(p.Value)
	}
	return b.String()
}

// queryParams decodes a query as application/x-www-form-urlencoded, as RFC
// 5849 3.4.1.3.1 says: "+" is a space, a name without "=" has an empty
// value, and repeated names are kept.
func queryParams(rawQuery string) ([]Param, error) {
	var params []Param
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("lti: cannot sign a URL whose query has %q: %v", part, err)
		}
		params = append(params, Param{key, value})
	}
	return params, nil
}

// AuthorizationHeader returns an "OAuth" Authorization header (RFC 5849
// 3.5.1) with the given realm first and the parameters in the given order,
// names and values encoded.
func AuthorizationHeader(realm string, params []Param) string {
	var b strings.Builder
	b.WriteString(`OAuth realm="`)
	b.WriteString(PercentEncode(realm))
	b.WriteByte('"')
	for _, p := range params {
		b.WriteByte(',')
		b.WriteString(PercentEncode(p.Key))
		b.WriteString(`="`)
		b.WriteString(PercentEncode(p.Value))
		b.WriteByte('"')
	}
	return b.String()
}

// PercentEncode encodes s as RFC 5849 3.6 says: the UTF-8 bytes of s, each
// one outside the unreserved set of RFC 3986 (ALPHA, DIGIT, "-", ".", "_",
// "~") as "%" and two upper-case hex digits.
func PercentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}
