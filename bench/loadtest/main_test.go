package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRawPoster checks the load test's HTTP client against net/http's
// server: answers and statuses, a body of each request intact, the
// connection kept alive, a new one after the server closes it, and a
// clear error for an answer without a Content-Length.
func TestRawPoster(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/chunked":
			w.Write([]byte("part"))
			w.(http.Flusher).Flush()
			w.Write([]byte("more"))
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
		}
		fmt.Fprintf(w, `{"predictions":[{"top":[{"class":%d,"probability":1}]}],"len":%d}`, len(body)%10, len(body))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	p := newRawPoster(srv.URL + "/v1/predict")
	defer p.close()
	for i := range 5 {
		body := strings.Repeat("x", 1000*i+3)
		code, answer, err := p.post("application/json", []byte(body))
		if err != nil || code != 200 {
			t.Fatalf("request %d: %d %q %v", i, code, answer, err)
		}
		if got, want := topClass(answer), len(body)%10; got != want {
			t.Errorf("request %d: top class %d in %q, want %d", i, got, answer, want)
		}
		if !strings.Contains(string(answer), fmt.Sprintf(`"len":%d}`, len(body))) {
			t.Errorf("request %d: answer %q for a body of %d bytes", i, answer, len(body))
		}
	}
	if code, _, err := p.post("text/plain", []byte("a")); err != nil || code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d, %v; want 415", code, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections for 6 requests, want 1 kept alive", conns.Load())
	}

	c := newRawPoster(srv.URL + "/close")
	defer c.close()
	for i := range 2 {
		if code, _, err := c.post("application/json", []byte("{}")); err != nil || code != 200 {
			t.Fatalf("request %d to /close: %d, %v", i, code, err)
		}
	}
	if conns.Load() != 3 {
		t.Errorf("%d connections after two requests answered with Connection: close, want 3", conns.Load())
	}

	ch := newRawPoster(srv.URL + "/chunked")
	defer ch.close()
	if _, _, err := ch.post("application/json", nil); err == nil || !strings.Contains(err.Error(), "Transfer-Encoding") {
		t.Errorf("a chunked answer gave error %v", err)
	}
}

func TestTopClass(t *testing.T) {
	for s, want := range map[string]int{
		`{"predictions":[{"top":[{"class":7,"probability":0.9},{"class":1}]}]}`: 7,
		`{"predictions":[{"name":"a","top":[{"class":12,"probability":1}]}]}`:   12,
		`{"error":{"code":"bad_image"}}`:                                        -1,
		`{"class":}`:                                                            -1,
	} {
		if got := topClass([]byte(s)); got != want {
			t.Errorf("topClass(%s) = %d, want %d", s, got, want)
		}
	}
}

// TestFloorServer checks the floor: it reads the whole body, answers as
// long an answer as gograd serve's for one input, naming floorClass, and
// keeps the connection alive.
func TestFloorServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := floorServer()
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	p := newRawPoster(url + "/v1/predict")
	defer p.close()
	for _, n := range []int{0, 7, 4096, 70000} {
		body := []byte(strings.Repeat("1", n))
		code, answer, err := p.post("application/json", body)
		if err != nil || code != 200 {
			t.Fatalf("a body of %d bytes: %d %q %v", n, code, answer, err)
		}
		if got := topClass(answer); got != n%10 {
			t.Errorf("a body of %d bytes: class %d in %q, want %d", n, got, answer, n%10)
		}
		// gograd serve's answer for one input, with its newline.
		if len(answer) != 138 {
			t.Errorf("answer of %d bytes, want 138: %q", len(answer), answer)
		}
	}
	resp, err := http.Get(url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}
