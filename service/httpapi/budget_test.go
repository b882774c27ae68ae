package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/httpapi"
	"github.com/otter-service/otter-service/service/sqlite"
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
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(store, newFakeCourses(t), &fakeRunner{}, service.Config{}, log)
	const size = 256 << 10
	srv := httptest.NewServer(httpapi.Handler(svc, httpapi.DevIdentity{User: "alice"},
		httpapi.Config{Prefix: prefix, MaxBodySize: size, BodyBytesInFlight: 3 * size}, log))
	defer srv.Close()
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
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "otter.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(store, newFakeCourses(t), &fakeRunner{}, service.Config{}, log)
	const size = 256 << 10
	srv := httptest.NewServer(httpapi.Handler(svc, stubLogin{},
		httpapi.Config{Prefix: prefix, MaxBodySize: size, BodyBytesInFlight: 8 * size}, log)) // the anonymous share: 2 notebooks
	defer srv.Close()
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
