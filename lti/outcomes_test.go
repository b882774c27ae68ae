package lti_test

import (
	"context"
	"crypto/hmac"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/lti"
)

const testSecret = "s3cr&t=/+%"

var testCreds = lti.Credentials{Key: "key with spaces&=+", Secret: testSecret}

// outcomeRequest is what a test server reads from a replaceResultRequest.
type outcomeRequest struct {
	XMLName   xml.Name `xml:"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0 imsx_POXEnvelopeRequest"`
	Version   string   `xml:"imsx_POXHeader>imsx_POXRequestHeaderInfo>imsx_version"`
	MessageID string   `xml:"imsx_POXHeader>imsx_POXRequestHeaderInfo>imsx_messageIdentifier"`
	SourcedID string   `xml:"imsx_POXBody>replaceResultRequest>resultRecord>sourcedGUID>sourcedId"`
	Language  string   `xml:"imsx_POXBody>replaceResultRequest>resultRecord>result>resultScore>language"`
	Score     string   `xml:"imsx_POXBody>replaceResultRequest>resultRecord>result>resultScore>textString"`
}

func edxAnswer(codeMajor, description string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
    <imsx_POXHeader>
        <imsx_POXResponseHeaderInfo>
            <imsx_version>V1.0</imsx_version>
            <imsx_messageIdentifier>1</imsx_messageIdentifier>
            <imsx_statusInfo>
                <imsx_codeMajor>` + codeMajor + `</imsx_codeMajor>
                <imsx_severity>status</imsx_severity>
                <imsx_description>` + description + `</imsx_description>
                <imsx_messageRefIdentifier>
                </imsx_messageRefIdentifier>
            </imsx_statusInfo>
        </imsx_POXResponseHeaderInfo>
    </imsx_POXHeader>
    <imsx_POXBody><replaceResultResponse/></imsx_POXBody>
</imsx_POXEnvelopeResponse>`
}

// fakeEdX checks each request's signature and body hash (with this
// package's signer: the independent check is the pytest suite's consumer)
// and the wiring of the request, then lets the test answer.
type fakeEdX struct {
	t        *testing.T
	mu       sync.Mutex
	received []outcomeRequest
	answer   func(w http.ResponseWriter, r *http.Request, req outcomeRequest)
}

func (f *fakeEdX) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := checkSigned(r, body); err != nil {
		f.t.Errorf("request refused: %v", err)
		io.WriteString(w, edxAnswer("failure", "OAuth verification failed"))
		return
	}
	var req outcomeRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		f.t.Errorf("request body: %v\n%s", err, body)
	}
	f.mu.Lock()
	f.received = append(f.received, req)
	f.mu.Unlock()
	f.answer(w, r, req)
}

func checkSigned(r *http.Request, body []byte) error {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/xml" {
		return fmt.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	params := map[string]string{}
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "OAuth ")
	if !ok {
		return fmt.Errorf("Authorization %q", r.Header.Get("Authorization"))
	}
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.PathUnescape(k)
		v, _ = url.PathUnescape(strings.Trim(v, `"`))
		params[k] = v
	}
	if params["oauth_body_hash"] != lti.BodyHash(body) {
		return errors.New("body hash")
	}
	if params["oauth_consumer_key"] != testCreds.Key {
		return fmt.Errorf("consumer key %q", params["oauth_consumer_key"])
	}
	var signed []lti.Param
	for k, v := range params {
		if k != "realm" {
			signed = append(signed, lti.Param{Key: k, Value: v})
		}
	}
	u, err := url.Parse("http://" + r.Host + r.RequestURI)
	if err != nil {
		return err
	}
	base, err := lti.BaseString(r.Method, u, signed)
	if err != nil {
		return err
	}
	if want := lti.HMACSHA1(base, testSecret, ""); !hmac.Equal([]byte(want), []byte(params["oauth_signature"])) {
		return errors.New("signature")
	}
	return nil
}

func newFakeEdX(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, req outcomeRequest)) (*fakeEdX, string) {
	f := &fakeEdX{t: t, answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	u, err := lti.OutcomeURL(srv.URL, "BerkeleyX+Data8.1x+3T2022", "6333e19d6b4d46f88df671ba50f616d8")
	if err != nil {
		t.Fatal(err)
	}
	return f, u
}

const sourcedID = "course-v1%3ABerkeleyX+Data8.1x+3T2022:courses.edx.org-6333e19d6b4d46f88df671ba50f616d8:a1b2c3"

func TestReplaceResultSuccess(t *testing.T) {
	f, u := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, req outcomeRequest) {
		if !strings.HasPrefix(r.URL.Path, "/courses/course-v1:BerkeleyX+Data8.1x+3T2022/xblock/block-v1:") {
			t.Errorf("path %q", r.URL.Path)
		}
		io.WriteString(w, edxAnswer("success", "Score for "+req.SourcedID+" is now "+req.Score))
	})
	c := &lti.Client{}
	if err := c.ReplaceResult(context.Background(), testCreds, u, sourcedID, 0.85); err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceResult(context.Background(), testCreds, u, sourcedID, 1); err != nil {
		t.Fatal(err)
	}
	if len(f.received) != 2 {
		t.Fatalf("received %d requests", len(f.received))
	}
	got := f.received[0]
	if got.SourcedID != sourcedID || got.Score != "0.85" || got.Language != "en" || got.Version != "V1.0" {
		t.Errorf("received %+v", got)
	}
	if f.received[1].Score != "1" {
		t.Errorf("score 1 sent as %q", f.received[1].Score)
	}
	if got.MessageID == "" || got.MessageID == f.received[1].MessageID {
		t.Errorf("message identifiers %q and %q are not unique", got.MessageID, f.received[1].MessageID)
	}
}

func TestReplaceResultFailures(t *testing.T) {
	answer := func(status int, header, body string) func(http.ResponseWriter, *http.Request, outcomeRequest) {
		return func(w http.ResponseWriter, _ *http.Request, _ outcomeRequest) {
			if k, v, ok := strings.Cut(header, ": "); ok {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	wrongNS := strings.ReplaceAll(edxAnswer("success", "ok"), "imsoms_v1p0", "imsoms_v2p0")
	for _, tc := range []struct {
		name      string
		answer    func(http.ResponseWriter, *http.Request, outcomeRequest)
		permanent bool
		codeMajor string
		inMessage string
	}{
		{"failure codeMajor", answer(200, "", edxAnswer("failure", "User not found.")), true, "failure", "User not found."},
		{"unsupported codeMajor", answer(200, "", edxAnswer("unsupported", "Target does not support the requested operation.")), true, "unsupported", "does not support"},
		{"empty codeMajor", answer(200, "", edxAnswer("", "")), true, "", "imsx_codeMajor"},
		{"500", answer(500, "", "Internal Server Error"), false, "", "500"},
		{"502 with an outcome response", answer(502, "", edxAnswer("failure", "upstream")), false, "failure", "upstream"},
		{"503", answer(503, "", "<html>down for maintenance</html>"), false, "", "503"},
		{"408", answer(408, "", ""), false, "", "408"},
		{"429", answer(429, "", ""), false, "", "429"},
		{"400", answer(400, "", "bad request"), true, "", "400"},
		{"401 with an outcome response", answer(401, "", edxAnswer("failure", "OAuth signature verification failed")), true, "failure", "signature verification failed"},
		{"404", answer(404, "", "<html>Page not found</html>"), true, "", "Page not found"},
		{"redirect", answer(302, "Location: /login", ""), true, "", "redirect"},
		{"malformed XML", answer(200, "", "<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader>"), true, "", "no outcome response"},
		{"HTML page", answer(200, "", "<!DOCTYPE html><html><body>Sign in</body></html>"), true, "", "no outcome response"},
		{"wrong namespace", answer(200, "", wrongNS), true, "", "no outcome response"},
		{"no namespace", answer(200, "", strings.ReplaceAll(edxAnswer("success", "ok"), ` xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"`, "")), true, "", "no outcome response"},
		{"answer echoing the secret", answer(200, "", edxAnswer("failure", "bad secret "+strings.ReplaceAll(testSecret, "&", "&amp;"))), true, "failure", "bad secret (redacted)"},
		{"dropped connection", func(w http.ResponseWriter, _ *http.Request, _ outcomeRequest) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}, false, "", "posting the score"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, u := newFakeEdX(t, tc.answer)
			err := (&lti.Client{}).ReplaceResult(context.Background(), testCreds, u, sourcedID, 0.5)
			t.Log(err)
			var e *lti.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T); want *lti.Error", err, err)
			}
			if lti.IsPermanent(err) != tc.permanent || e.Permanent != tc.permanent {
				t.Errorf("permanent = %v; want %v (%v)", e.Permanent, tc.permanent, err)
			}
			if e.CodeMajor != tc.codeMajor {
				t.Errorf("CodeMajor = %q; want %q", e.CodeMajor, tc.codeMajor)
			}
			if !strings.Contains(err.Error(), tc.inMessage) {
				t.Errorf("error %q does not say %q", err, tc.inMessage)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(fmt.Sprintf("%+v %#v", e, e), testSecret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestReplaceResultTimeout(t *testing.T) {
	release := make(chan struct{})
	_, u := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, _ outcomeRequest) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	err := (&lti.Client{Timeout: 200 * time.Millisecond}).ReplaceResult(context.Background(), testCreds, u, sourcedID, 0.5)
	if err == nil || lti.IsPermanent(err) {
		t.Fatalf("err = %v; want a transient error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("err = %v; want a deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}

	// A cancelled caller's context is transient too: the post is retried
	// later (after a restart, say).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = (&lti.Client{}).ReplaceResult(ctx, testCreds, u, sourcedID, 0.5)
	if err == nil || lti.IsPermanent(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v; want transient, context.Canceled", err)
	}
}

func TestReplaceResultRefusesBadInput(t *testing.T) {
	_, u := newFakeEdX(t, func(w http.ResponseWriter, _ *http.Request, _ outcomeRequest) {
		t.Error("a request was sent")
	})
	for _, tc := range []struct {
		url, sid string
		score    float64
	}{
		{u, sourcedID, math.NaN()}, {u, sourcedID, -0.01}, {u, sourcedID, 1.0000001},
		{u, sourcedID, math.Inf(1)}, {u, "", 0.5}, {u, "bad\x00id", 0.5}, {u, "bad\xffid", 0.5},
		{"ftp://example.com/x", sourcedID, 0.5}, {"::", sourcedID, 0.5},
	} {
		err := (&lti.Client{}).ReplaceResult(context.Background(), testCreds, tc.url, tc.sid, tc.score)
		if !lti.IsPermanent(err) {
			t.Errorf("ReplaceResult(%q, %q, %v) = %v; want a permanent error", tc.url, tc.sid, tc.score, err)
		}
	}
}

func TestReplaceResultBody(t *testing.T) {
	const sid = `course-v1%3AX+Y+Z:h-b:<user> & "friends" 'n' ü`
	body, err := lti.ReplaceResultBody("id<&>", sid, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", body)
	}
	var got outcomeRequest
	if err := xml.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if got.MessageID != "id<&>" || got.SourcedID != sid || got.Score != "0.25" || got.Language != "en" || got.Version != "V1.0" {
		t.Errorf("parsed back %+v from\n%s", got, body)
	}
	for score, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", 0.85: "0.85", 1e-7: "0.0000001", 2.0 / 3: "0.6666666666666666",
	} {
		if got, err := lti.FormatScore(score); err != nil || got != want {
			t.Errorf("FormatScore(%v) = %q, %v; want %q", score, got, err, want)
		}
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed = true
		io.WriteString(w, edxAnswer("success", ""))
	}))
	defer target.Close()
	_, u := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, _ outcomeRequest) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	hc := &http.Client{}
	err := (&lti.Client{HTTP: hc}).ReplaceResult(context.Background(), testCreds, u, sourcedID, 0.5)
	if !lti.IsPermanent(err) || followed {
		t.Errorf("err = %v, followed = %v; want a permanent error and no request to the target", err, followed)
	}
	if hc.CheckRedirect != nil {
		t.Error("the caller's http.Client was changed")
	}
}

// A request sent whole that gets no answer, or whose success answer breaks
// off, may have been applied: IsUnanswered. One that never left, or that
// got an answer, was not.
func TestReplaceResultUnanswered(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, hang := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, _ outcomeRequest) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, broken := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, _ outcomeRequest) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("<?xml"))
		panic(http.ErrAbortHandler) // the connection breaks mid-answer
	})
	_, unavailable := newFakeEdX(t, func(w http.ResponseWriter, r *http.Request, _ outcomeRequest) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL, _ := lti.OutcomeURL(closed.URL, "BerkeleyX+Data8.1x+3T2022", "6333e19d6b4d46f88df671ba50f616d8")
	closed.Close() // nothing listens: the request never leaves
	for _, tc := range []struct {
		name, url string
		want      bool
	}{{"no answer", hang, true}, {"a success answer broken off", broken, true}, {"503", unavailable, false}, {"connection refused", closedURL, false}} {
		err := (&lti.Client{Timeout: 300 * time.Millisecond}).ReplaceResult(context.Background(), testCreds, tc.url, sourcedID, 0.5)
		if err == nil || lti.IsPermanent(err) || lti.IsUnanswered(err) != tc.want {
			t.Errorf("%s: err = %v, unanswered %v; want a transient error, unanswered %v", tc.name, err, lti.IsUnanswered(err), tc.want)
		}
	}
}
