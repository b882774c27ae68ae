// This file is the LTI 1.1 Basic Outcomes client: it sends one
// replaceResultRequest and classifies the answer.

package lti

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Namespace is the XML namespace of LTI 1.1 outcome messages.
const Namespace = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"

// DefaultTimeout bounds one request when Client.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxResponse bounds the answer read from the outcome service.
const maxResponse = 1 << 20

// Client posts scores to an LTI 1.1 outcome service. The zero value is
// usable; the fields are for tests and tuning.
type Client struct {
	// HTTP sends the requests; nil means http.DefaultClient. Redirects are
	// never followed (the signature covers the URL).
	HTTP *http.Client
	// Timeout bounds each request, answer included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Now and Nonce are passed to the Signer; MessageID makes the
	// imsx_messageIdentifier. nil means the clock and random values.
	Now       func() time.Time
	Nonce     func() string
	MessageID func() string
}

// Error is a failed post. Permanent tells whether retrying the same request
// could succeed: it is false for network errors, timeouts, 5xx, 408 and 429
// answers, and true when edX refused the request (imsx_codeMajor "failure"
// or "unsupported", 4xx answers, redirects, answers that are not an outcome
// response) or the request could not be made (bad URL, score out of range).
// Its message never holds the consumer secret.
type Error struct {
	Permanent bool
	// StatusCode is the HTTP status of the answer, 0 if there was none.
	StatusCode int
	// CodeMajor and Description are imsx_codeMajor and imsx_description
	// when the answer was an outcome response.
	CodeMajor   string
	Description string
	// Unanswered is true when the request was sent whole but no answer came
	// (a timeout, a connection that broke), or a success status came whose
	// answer broke off: the outcome service may have applied it.
	Unanswered bool
	msg        string
	err        error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the underlying error (a network error, a context error),
// if any.
func (e *Error) Unwrap() error { return e.err }

// IsUnanswered reports whether err is an *Error of a request that was sent
// but got no (whole) answer: the outcome service may have applied it.
func IsUnanswered(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Unanswered
}

// IsPermanent reports whether err is an *Error that retrying cannot fix.
// Errors of other types are not permanent.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// ReplaceResult sets the score of sourcedID at the outcome service
// serviceURL (from OutcomeURL), signing with creds. The URL is the one both
// signed and requested. score must be in [0, 1].
//
// Returns nil only when the service answered imsx_codeMajor "success".
// Otherwise returns an *Error; IsPermanent tells whether to retry. ctx
// cancels the request; Client.Timeout bounds it too.
func (c *Client) ReplaceResult(ctx context.Context, creds Credentials, serviceURL, sourcedID string, score float64) error {
	newID := c.MessageID
	if newID == nil {
		newID = func() string { return randomHex(16) }
	}
	messageID := newID()
	body, err := ReplaceResultBody(messageID, sourcedID, score)
	if err != nil {
		return &Error{Permanent: true, msg: err.Error(), err: err}
	}
	signer := Signer{Credentials: creds, Now: c.Now, Nonce: c.Nonce}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serviceURL, bytes.NewReader(body))
	if err != nil {
		return &Error{Permanent: true, msg: creds.redact(fmt.Sprintf("lti: bad outcome service URL: %v", err))}
	}
	req.Header.Set("Content-Type", "application/xml")
	if err := signer.SignRequest(req, body); err != nil {
		return &Error{Permanent: true, msg: creds.redact(err.Error())}
	}
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}))
	resp, err := c.httpClient().Do(req)
	if err != nil {
		msg := fmt.Sprintf("lti: posting the score: %v", err)
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			msg = fmt.Sprintf("lti: posting to %s: no answer within %v", req.URL.Redacted(), timeout)
		}
		return &Error{msg: creds.redact(msg), err: err, Unanswered: wrote.Load()}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	err = classify(resp, data, readErr, creds)
	if e, ok := err.(*Error); ok && readErr != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		e.Unanswered = true
	}
	return err
}

// classify turns an answer into nil or an *Error.
func classify(resp *http.Response, data []byte, readErr error, creds Credentials) error {
	e := &Error{StatusCode: resp.StatusCode}
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode)
	}
	fail := func(permanent bool, format string, args ...any) error {
		e.Permanent = permanent
		e.msg = creds.redact(fmt.Sprintf(format, args...))
		return e
	}
	code := resp.StatusCode
	transientStatus := code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
	if readErr != nil {
		e.err = readErr
		return fail(code < 200 || code >= 300 && !transientStatus,
			"lti: outcome service answered %s, then the answer broke off: %v", status, readErr)
	}
	env, parseErr := parseResponse(data)
	if parseErr == nil {
		e.CodeMajor, e.Description = env.codeMajor(), creds.redact(env.description())
	}
	switch {
	case transientStatus:
		if parseErr == nil {
			return fail(false, "lti: outcome service answered %s: %s: %s", status, e.CodeMajor, e.Description)
		}
		return fail(false, "lti: outcome service answered %s", status)
	case code >= 300 && code < 400:
		return fail(true, "lti: outcome service answered %s (redirect to %q not followed)", status, resp.Header.Get("Location"))
	case code < 200 || code >= 300:
		if parseErr == nil {
			return fail(true, "lti: outcome service answered %s: %s: %s", status, e.CodeMajor, e.Description)
		}
		return fail(true, "lti: outcome service answered %s: %s", status, snippet(data))
	case parseErr != nil:
		return fail(true, "lti: outcome service answered %s with no outcome response (%v): %s", status, parseErr, snippet(data))
	case e.CodeMajor == "success":
		return nil
	case e.CodeMajor == "":
		return fail(true, "lti: outcome service answered without imsx_codeMajor")
	default:
		return fail(true, "lti: outcome service answered %s: %s", e.CodeMajor, e.Description)
	}
}

func (c *Client) httpClient() *http.Client {
	hc := http.DefaultClient
	if c.HTTP != nil {
		hc = c.HTTP
	}
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// snippet quotes the start of an answer for an error message.
func snippet(data []byte) string {
	const n = 200
	s := strings.TrimSpace(string(data))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// FormatScore writes a score as LTI 1.1 wants it: a decimal in [0, 1], with
// no exponent. Returns an error for NaN and anything out of range.
func FormatScore(score float64) (string, error) {
	if math.IsNaN(score) || score < 0 || score > 1 {
		return "", fmt.Errorf("lti: score %v is not in [0, 1]", score)
	}
	if score == 0 {
		score = 0 // not "-0"
	}
	return strconv.FormatFloat(score, 'f', -1, 64), nil
}

// ReplaceResultBody returns the imsx_POXEnvelopeRequest that sets the score
// of sourcedID, with text escaped as XML.
func ReplaceResultBody(messageID, sourcedID string, score float64) ([]byte, error) {
	text, err := FormatScore(score)
	if err != nil {
		return nil, err
	}
	for name, v := range map[string]string{"message identifier": messageID, "sourcedId": sourcedID} {
		if !xmlText(v) {
			return nil, fmt.Errorf("lti: %s %q is empty or cannot be written in XML", name, v)
		}
	}
	env := requestEnvelope{
		Header: requestHeader{Version: "V1.0", MessageID: messageID},
	}
	env.Body.Request.SourcedID = sourcedID
	env.Body.Request.Language = "en"
	env.Body.Request.Score = text
	out, err := xml.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("lti: %v", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// xmlText reports whether s is non-empty valid UTF-8 made of characters
// XML 1.0 allows (encoding/xml would replace the others silently).
func xmlText(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF || 0xD800 <= r && r <= 0xDFFF {
			return false
		}
	}
	return true
}

type requestEnvelope struct {
	XMLName xml.Name      `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_POXEnvelopeRequest"`
	Header  requestHeader `xml:"imsx_POXHeader>imsx_POXRequestHeaderInfo"`
	Body    struct {
		Request struct {
			SourcedID string `xml:"resultRecord>sourcedGUID>sourcedId"`
			Language  string `xml:"resultRecord>result>resultScore>language"`
			Score     string `xml:"resultRecord>result>resultScore>textString"`
		} `xml:"replaceResultRequest"`
	} `xml:"imsx_POXBody"`
}

type requestHeader struct {
	Version   string `xml:"imsx_version"`
	MessageID string `xml:"imsx_messageIdentifier"`
}

// The answer, matched by namespace at every level.
type responseEnvelope struct {
	XMLName xml.Name `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_POXEnvelopeResponse"`
	Header  *struct {
		Info *struct {
			Status *struct {
				CodeMajor   string `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_codeMajor"`
				Description string `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_description"`
			} `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_statusInfo"`
		} `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_POXResponseHeaderInfo"`
	} `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_POXHeader"`
}

func (r *responseEnvelope) codeMajor() string {
	return strings.TrimSpace(r.Header.Info.Status.CodeMajor)
}

func (r *responseEnvelope) description() string {
	return strings.Join(strings.Fields(r.Header.Info.Status.Description), " ")
}

func parseResponse(data []byte) (*responseEnvelope, error) {
	var env responseEnvelope
	if err := xml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("not an imsx_POXEnvelopeResponse in namespace %s: %v", Namespace, err)
	}
	if env.Header == nil || env.Header.Info == nil || env.Header.Info.Status == nil {
		return nil, errors.New("no imsx_POXHeader/imsx_POXResponseHeaderInfo/imsx_statusInfo")
	}
	return &env, nil
}
