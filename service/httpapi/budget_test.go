package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
)

// slowUpload is a POST whose headers announce a body of n bytes, of which
// it sends all but the last byte, holding the connection open.
type slowUpload struct {
	conn net.Conn
	body []byte
	resp chan *http.Response
}

func startSlowUpload(t *testing.T, addr string, body []byte, headers ...string) *slowUpload {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	extra := ""
	for _, h := range headers {
		extra += h + "\r\n"
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", prefix, extra, len(body))
	conn.Write(body[:len(body)-1])
	u := &slowUpload{conn: conn, body: body, resp: make(chan *http.Response, 1)}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
			u.resp <- resp
		}
		close(u.resp)
	}()
	return u
}

func (u *slowUpload) finish() { u.conn.Write(u.body[len(u.body)-1:]) }

// TestBodyBytesInFlightAreBounded: with room for three notebooks' bytes at
// once, a fourth upload arriving while three are being received is refused
// at once with 503 and Retry-After, unread; the service answers meanwhile,
// and the three are accepted when their bytes arrive.
func TestBodyBytesInFlightAreBounded(t *testing.T) {
	const size = 256 << 10
	srv := newServerWithAPI(t, &fakeRunner{}, httpapi.DevIdentity{User: "alice"}, service.Config{},
		httpapi.Config{Prefix: prefix, MaxBodySize: size, BodyBytesInFlight: 3 * size})
	nb := notebook("lab01")
	body := []byte(nb + strings.Repeat(" ", size-len(nb)))
	addr := strings.TrimPrefix(srv.URL, "http://")
	var uploads []*slowUpload
	for i := 0; i < 4; i++ {
		uploads = append(uploads, startSlowUpload(t, addr, body))
	}
	// One of the four does not fit: it is answered at once, unread.
	refused := waitRefused(t, uploads)
	refused.conn.Close()
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while the bound is reached: %v %v", resp, err)
	}
	for _, u := range uploads {
		if u == refused {
			continue
		}
		u.finish()
		resp, ok := <-u.resp
		if !ok || resp.StatusCode != http.StatusAccepted {
			t.Errorf("an upload within the bound was answered %v; want 202", resp)
		}
	}
	// The bytes are given back: a new upload fits again.
	if resp, b := post(t, srv.URL+prefix, "application/json", strings.NewReader(string(body))); resp.StatusCode != http.StatusAccepted {
		t.Errorf("after the others were received, an upload was answered %d %s", resp.StatusCode, b)
	}
}

// waitRefused waits for one of the uploads to be answered 503 with
// Retry-After, and returns it.
func waitRefused(t *testing.T, uploads []*slowUpload) *slowUpload {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for _, u := range uploads {
			select {
			case resp, ok := <-u.resp:
				if !ok || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("an upload beyond the bound was answered %v; want 503 with Retry-After", resp)
				}
				return u
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no upload was refused beyond the bound")
		case <-time.After(10 * time.Millisecond): // polling the uploads' answers, with a deadline
		}
	}
}

// TestAnonymousUploadsHaveAShare: uploads from browsers not signed in (held
// for sign-in) may hold only their share of the bytes in flight: beyond it
// they are refused, while a signed-in student's upload is still received.
func TestAnonymousUploadsHaveAShare(t *testing.T) {
	const size = 256 << 10
	srv := newServerWithAPI(t, &fakeRunner{}, stubLogin{}, service.Config{},
		httpapi.Config{Prefix: prefix, MaxBodySize: size, BodyBytesInFlight: 8 * size}) // the anonymous share: 2 notebooks
	nb := notebook("lab01")
	body := []byte(nb + strings.Repeat(" ", size-len(nb)))
	addr := strings.TrimPrefix(srv.URL, "http://")
	var anonymous []*slowUpload
	for i := 0; i < 3; i++ {
		anonymous = append(anonymous, startSlowUpload(t, addr, body, "Origin: http://hub.example"))
	}
	refused := waitRefused(t, anonymous)
	refused.conn.Close()
	signedIn := startSlowUpload(t, addr, body, "Cookie: session=alice")
	signedIn.finish()
	if resp, ok := <-signedIn.resp; !ok || resp.StatusCode != http.StatusAccepted {
		t.Errorf("a signed-in upload while the anonymous share is used: %v; want 202", resp)
	}
	for _, u := range anonymous {
		if u != refused {
			u.finish()
			if resp, ok := <-u.resp; !ok || resp.StatusCode != http.StatusSeeOther {
				t.Errorf("an anonymous upload within its share: %v; want 303 to sign-in", resp)
			}
		}
	}
}

// TestAnonymousClientsHaveAPart: within the anonymous share, one client (by
// its address, or behind a trusted proxy the address its X-Forwarded-For
// names) may hold only half, and only so many bodies held for sign-in;
// another client still may. An X-Forwarded-For from anyone else counts for
// nothing.
func TestAnonymousClientsHaveAPart(t *testing.T) {
	const size = 256 << 10
	nb := notebook("lab01")
	body := []byte(nb + strings.Repeat(" ", size-len(nb)))
	start := func(t *testing.T, trusted []string) string {
		srv := newServerWithAPI(t, &fakeRunner{}, stubLogin{}, service.Config{MaxHeldPerClient: 3}, httpapi.Config{Prefix: prefix,
			MaxBodySize: size, BodyBytesInFlight: 16 * size, TrustedProxies: trusted}) // anonymous: 4 notebooks; one client: 2
		return strings.TrimPrefix(srv.URL, "http://")
	}
	from := func(ip string) []string {
		return []string{"Origin: http://hub.example", "X-Forwarded-For: 203.0.113.9, " + ip}
	}
	finish := func(t *testing.T, what string, u *slowUpload, want int) {
		t.Helper()
		u.finish()
		if resp, ok := <-u.resp; !ok || resp.StatusCode != want {
			t.Errorf("%s: %v; want %d", what, resp, want)
		}
	}

	t.Run("behind a trusted proxy", func(t *testing.T) {
		addr := start(t, []string{"127.0.0.1", "::1"})
		var mallory []*slowUpload
		for i := 0; i < 3; i++ {
			mallory = append(mallory, startSlowUpload(t, addr, body, from("198.51.100.7")...))
		}
		refused := waitRefused(t, mallory)
		refused.conn.Close()
		alice := startSlowUpload(t, addr, body, from("198.51.100.8")...)
		finish(t, "another client's upload while one has its part", alice, http.StatusSeeOther)
		for _, u := range mallory {
			if u != refused {
				finish(t, "an upload within the client's part", u, http.StatusSeeOther)
			}
		}
		// Held for sign-in: Mallory has 2, may have 3.
		finish(t, "the client's third held body", startSlowUpload(t, addr, body, from("198.51.100.7")...), http.StatusSeeOther)
		finish(t, "the client's fourth held body", startSlowUpload(t, addr, body, from("198.51.100.7")...), http.StatusTooManyRequests)
		finish(t, "another client's second held body", startSlowUpload(t, addr, body, from("198.51.100.8")...), http.StatusSeeOther)
	})

	t.Run("X-Forwarded-For from anyone", func(t *testing.T) {
		addr := start(t, nil)
		var uploads []*slowUpload
		for i := 0; i < 3; i++ { // three "clients", all 127.0.0.1
			uploads = append(uploads, startSlowUpload(t, addr, body, from(fmt.Sprintf("198.51.100.%d", 20+i))...))
		}
		waitRefused(t, uploads).conn.Close()
	})
}
