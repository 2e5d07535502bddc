package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeTinyModel writes an untrained 784-16-10 model file, as train would
// write it, and returns its path.
func writeTinyModel(t *testing.T) string {
	t.Helper()
	a := arch{In: 784, Hidden: []int{16}, Out: 10, Activation: "relu"}
	model, err := a.mlp(device.NewCPU(1), 7)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), modelFile)
	if err := nn.Save(path, model, a.metadata()); err != nil {
		t.Fatal(err)
	}
	return path
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// waitListening returns the address the serve command logged.
func waitListening(t *testing.T, stderr *lockedBuffer, exited <-chan int) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d before listening:\n%s", code, stderr.String())
		case <-deadline:
			t.Fatalf("serve did not listen in 20s:\n%s", stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestServe runs the serve command in-process, checks that it becomes
// ready, that its answer for a PNG is what predict prints for the same
// file, that a bad body is a 4xx JSON error, and that SIGTERM lets a
// request in flight finish and exits 0.
func TestServe(t *testing.T) {
	modelPath := writeTinyModel(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, 784)
	for i := range px {
		if y, x := i/28, i%28; y > 6 && y < 22 && x > 10 && x < 17 {
			px[i] = float32(0.6 + 0.4*rng.Float64())
		}
	}
	img := writeDigitPNG(t, dir, "digit.png", px, true, 56)
	pred := gograd("predict", "-model", modelPath, img)
	if pred.code != 0 {
		t.Fatalf("predict: %v", pred)
	}

	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	// A long -max-delay keeps a lone request queued while SIGTERM arrives.
	go func() {
		exited <- run([]string{"serve", "-model", modelPath, "-addr", "127.0.0.1:0", "-max-delay", "300ms", "-threads", "1"}, &stdout, &stderr)
	}()
	url := "http://" + waitListening(t, &stderr, exited)
	if log := stderr.String(); !strings.Contains(log, `device="cpu (1 threads)"`) {
		t.Errorf("serve -threads 1 logged another device:\n%s", log)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in 20s:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	body, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	code, answer := postTo(t, url+"/v1/predict", "image/png", body)
	if code != 200 {
		t.Fatalf("predict over HTTP: %d %s", code, answer)
	}
	var a struct {
		Predictions []struct {
			Inverted bool
			Top      []struct {
				Class       int
				Probability float64
			}
		}
	}
	if err := json.Unmarshal(answer, &a); err != nil || len(a.Predictions) != 1 {
		t.Fatalf("answer %s: %v", answer, err)
	}
	// predict prints "path: 3 (12.34%)  5 (11.1%)  ...  (inverted: ...)".
	fields := regexp.MustCompile(`(\d+) \(([0-9.e+-]+)%\)`).FindAllStringSubmatch(pred.stdout, -1)
	p := a.Predictions[0]
	if len(fields) != 3 || len(p.Top) != 3 {
		t.Fatalf("predict printed %q; serve answered %s", pred.stdout, answer)
	}
	for i, f := range fields {
		cls, _ := strconv.Atoi(f[1])
		pct, _ := strconv.ParseFloat(f[2], 64)
		if p.Top[i].Class != cls || math.Abs(100*p.Top[i].Probability-pct) > 5e-4*pct {
			t.Errorf("top %d: serve says class %d (%v), predict %d (%v%%)", i, p.Top[i].Class, p.Top[i].Probability, cls, pct)
		}
	}
	if !p.Inverted || !strings.Contains(pred.stdout, "inverted") {
		t.Errorf("serve inverted %v; predict printed %q", p.Inverted, pred.stdout)
	}

	if code, answer := postTo(t, url+"/v1/predict", "text/plain", []byte("seven")); code != 415 || !json.Valid(answer) {
		t.Errorf("a text body: %d %s, want a 415 JSON error", code, answer)
	}
	if code, metrics := postTo(t, url+"/metrics", "", nil); code != 200 ||
		!strings.Contains(string(metrics), `gograd_serve_requests_total{code="415"} 1`) ||
		!strings.Contains(string(metrics), "process_resident_memory_bytes") {
		t.Errorf("/metrics: %d\n%s", code, metrics)
	}

	// SIGTERM while a request waits in the queue: it is answered, and the
	// command exits 0.
	inFlight := make(chan int, 1)
	go func() {
		code, _ := postTo(t, url+"/v1/predict", "image/png", body)
		inFlight <- code
	}()
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := <-inFlight; code != 200 {
		t.Errorf("the request in flight at SIGTERM got %d, want 200", code)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d after SIGTERM, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM:\n%s", stderr.String())
	}
	for _, want := range []string{"msg=ready", "msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// postTo sends body (a GET when contentType is empty) and returns the
// status and the body of the answer.
func postTo(t *testing.T, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	var resp *http.Response
	var err error
	if contentType == "" {
		resp, err = http.Get(url)
	} else {
		resp, err = http.Post(url, contentType, bytes.NewReader(body))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestServeErrors checks that a model that cannot be loaded, or a port
// that cannot be had, fails at start with exit 1 and a clear message, and
// that bad flags are usage errors.
func TestServeErrors(t *testing.T) {
	notModel := filepath.Join(t.TempDir(), "model.safetensors")
	os.WriteFile(notModel, []byte("this is not a model"), 0o644)
	r := gograd("serve", "-model", notModel, "-addr", "127.0.0.1:0")
	if r.code != exitError || !strings.Contains(r.stderr, notModel) || strings.Contains(r.stderr, "listening") {
		t.Errorf("serve of a corrupt model: %v", r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = gograd("serve", "-model", writeTinyModel(t), "-addr", ln.Addr().String())
	if r.code != exitError || !strings.Contains(r.stderr, "-addr "+ln.Addr().String()) {
		t.Errorf("serve on a port in use: %v", r)
	}
	for _, args := range [][]string{
		{"serve"},
		{"serve", "-model", notModel, "-max-batch", "0"},
		{"serve", "-model", notModel, "-timeout", "0s"},
		{"serve", "-model", notModel, "-workers", "2", "-device", "cuda"},
		{"serve", "-model", notModel, "-threads", "-1"},
		{"serve", "-model", notModel, "-threads", "1", "-device", "cuda"},
		{"serve", "-model", notModel, "extra"},
	} {
		if r := gograd(args...); r.code != exitUsage {
			t.Errorf("%q: %v, want exit %d", args, r, exitUsage)
		}
	}
}

// TestServeCPUProfile checks that -cpuprofile writes a profile when serve
// returns, even with an error (here a port in use), and that a profile
// that cannot be created is an error at start.
func TestServeCPUProfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	prof := filepath.Join(t.TempDir(), "serve.prof")
	r := gograd("serve", "-model", writeTinyModel(t), "-addr", ln.Addr().String(), "-cpuprofile", prof)
	if r.code != exitError {
		t.Errorf("serve on a port in use: %v", r)
	}
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("-cpuprofile wrote %d bytes (%v), want a gzipped profile", len(b), err)
	}
	r = gograd("serve", "-model", writeTinyModel(t), "-addr", "127.0.0.1:0", "-cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "x.prof"))
	if r.code != exitError || !strings.Contains(r.stderr, "-cpuprofile") || strings.Contains(r.stderr, "listening") {
		t.Errorf("serve with an unwritable -cpuprofile: %v", r)
	}
}
