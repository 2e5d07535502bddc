package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/nn"
)

// TestPredictJSON checks answers to JSON requests against the model's
// forward pass of each input alone, for flat and nested instances, and
// that the trained model gets the toy task right through the server.
func TestPredictJSON(t *testing.T) {
	model, dev := trained(t)
	s := startServer(t, model, dev, BatcherConfig{MaxBatch: 8, MaxDelay: time.Millisecond}, HandlerConfig{})
	rng := rand.New(rand.NewPCG(3, 4))
	var x []float32
	var labels []int
	for i := range 20 {
		labels = append(labels, i%classes)
		x = append(x, sample(rng, i%classes)...)
	}
	want := reference(t, model, dev, x)
	code, body := post(t, s.url+"/v1/predict", "application/json", instancesJSON(x, 2))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	a := decodeAnswer(t, body)
	if len(a.Predictions) != 20 {
		t.Fatalf("%d predictions, want 20", len(a.Predictions))
	}
	correct := 0
	for i, p := range a.Predictions {
		if p.Name != nil || p.Inverted != nil {
			t.Errorf("prediction %d of a JSON input has a name or inverted flag", i)
		}
		checkTop(t, fmt.Sprint("input ", i), p.Top, want[i*classes:(i+1)*classes], 2)
		if p.Top[0].Class == labels[i] {
			correct++
		}
	}
	if correct < 18 {
		t.Errorf("the served model got %d of 20 toy inputs right, want at least 18", correct)
	}

	// The same input as [height][width] and [channels][height][width],
	// with top_k from the query.
	var rows [][]float32
	for y := range side {
		rows = append(rows, x[y*side:(y+1)*side])
	}
	for _, inst := range []any{rows, [][][]float32{rows}} {
		b := mustJSON(map[string]any{"instances": []any{inst}})
		code, body := post(t, s.url+"/v1/predict?top_k=4", "application/json; charset=utf-8", b)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		checkTop(t, "nested input", decodeAnswer(t, body).Predictions[0].Top, want[:classes], 4)
	}
}

// TestPredictImages checks PNG, JPEG and multipart bodies: a PNG gives the
// same answer as its pixels sent as JSON, an inverted image says so, and
// multipart answers name each part.
func TestPredictImages(t *testing.T) {
	model, dev := trained(t)
	s := startServer(t, model, dev, BatcherConfig{MaxBatch: 4}, HandlerConfig{})
	rng := rand.New(rand.NewPCG(5, 6))
	x := sample(rng, 2)
	want := reference(t, model, dev, x)

	code, body := post(t, s.url+"/v1/predict", "image/png", pngOf(t, x, false))
	if code != http.StatusOK {
		t.Fatalf("PNG: status %d: %s", code, body)
	}
	p := decodeAnswer(t, body).Predictions[0]
	if p.Inverted == nil || *p.Inverted || p.Name == nil || *p.Name != "" {
		t.Errorf("PNG: name %v inverted %v, want \"\" and false", p.Name, p.Inverted)
	}
	checkTop(t, "PNG", p.Top, want, 3)

	// curl --data-binary sends a form content type; the body is sniffed.
	code, body = post(t, s.url+"/v1/predict", "application/x-www-form-urlencoded", pngOf(t, x, true))
	if code != http.StatusOK {
		t.Fatalf("inverted PNG: status %d: %s", code, body)
	}
	p = decodeAnswer(t, body).Predictions[0]
	if p.Inverted == nil || !*p.Inverted {
		t.Errorf("inverted PNG: inverted %v, want true", p.Inverted)
	}
	checkTop(t, "inverted PNG", p.Top, want, 3)

	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, grayOf(x), &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	code, body = post(t, s.url+"/v1/predict", "image/jpeg", jb.Bytes())
	if code != http.StatusOK {
		t.Fatalf("JPEG: status %d: %s", code, body)
	}
	if c := decodeAnswer(t, body).Predictions[0].Top[0].Class; c != 2 {
		t.Errorf("JPEG: class %d, want 2", c)
	}

	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	var all []float32
	for i := range 3 {
		xi := sample(rng, i)
		all = append(all, xi...)
		fw, err := mw.CreateFormFile("image", fmt.Sprintf("digit%d.png", i))
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(pngOf(t, xi, false))
	}
	mw.Close()
	want = reference(t, model, dev, all)
	code, body = post(t, s.url+"/v1/predict?top_k=1", mw.FormDataContentType(), mb.Bytes())
	if code != http.StatusOK {
		t.Fatalf("multipart: status %d: %s", code, body)
	}
	a := decodeAnswer(t, body)
	if len(a.Predictions) != 3 {
		t.Fatalf("multipart: %d predictions, want 3", len(a.Predictions))
	}
	for i, p := range a.Predictions {
		if p.Name == nil || *p.Name != fmt.Sprintf("digit%d.png", i) {
			t.Errorf("multipart part %d: name %v", i, p.Name)
		}
		checkTop(t, fmt.Sprint("part ", i), p.Top, want[i*classes:(i+1)*classes], 1)
	}
}

func grayOf(x []float32) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i, v := range x {
		img.SetGray(i%side, i/side, color.Gray{Y: uint8(v*255 + 0.5)})
	}
	return img
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// pngBomb is a valid PNG header announcing w x h pixels, with no pixel data.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString(pngSignature)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grayscale
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// TestBadInput checks that every kind of bad request gets its 4xx status
// and a JSON error, and that the server answers good requests afterwards.
func TestBadInput(t *testing.T) {
	model, dev := trained(t)
	s := startServer(t, model, dev, BatcherConfig{MaxBatch: 4}, HandlerConfig{MaxBody: 4096, MaxPixels: 1000, MaxInputs: 3})
	rng := rand.New(rand.NewPCG(7, 8))
	good := sample(rng, 1)
	var gifBody bytes.Buffer
	gif.Encode(&gifBody, grayOf(good), nil)
	flat := func(n int) string { return strings.TrimSuffix(strings.Repeat("0.5,", n), ",") }
	threeChannels := "[" + strings.TrimSuffix(strings.Repeat("["+strings.TrimSuffix(strings.Repeat("["+flat(side)+"],", side), ",")+"],", 3), ",") + "]"
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	fw, _ := mw.CreateFormFile("image", "notes.txt")
	fw.Write([]byte("hello"))
	mw.Close()
	pngBody := pngOf(t, good, false)

	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		code                   string
	}{
		{"body over max-body", "POST", "/v1/predict", "image/png", append(pngBody, make([]byte, 5000)...), 413, "body_too_large"},
		{"pixels over max-pixels", "POST", "/v1/predict", "image/png", pngBomb(100000, 100000), 413, "too_many_pixels"},
		{"gif", "POST", "/v1/predict", "image/gif", gifBody.Bytes(), 415, "unsupported_format"},
		{"text", "POST", "/v1/predict", "text/plain", []byte("seven"), 415, "unsupported_format"},
		{"empty body", "POST", "/v1/predict", "", nil, 415, "unsupported_format"},
		{"corrupt png", "POST", "/v1/predict", "image/png", pngBody[:len(pngBody)-20], 400, "bad_image"},
		{"multipart of text", "POST", "/v1/predict", mw.FormDataContentType(), mb.Bytes(), 415, "unsupported_format"},
		{"multipart without boundary", "POST", "/v1/predict", "multipart/form-data", mb.Bytes(), 400, "malformed_multipart"},
		{"malformed json", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[1, 2,]]}`), 400, "malformed_json"},
		{"json not an object", "POST", "/v1/predict", "application/json", []byte(`[1, 2]`), 400, "malformed_json"},
		{"json unknown field", "POST", "/v1/predict", "application/json", []byte(`{"inputs": [[1]]}`), 400, "malformed_json"},
		{"json no instances", "POST", "/v1/predict", "application/json", []byte(`{"instances": []}`), 400, "malformed_json"},
		{"json wrong length", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[` + flat(inputs-1) + `]]}`), 400, "wrong_shape"},
		{"json too long", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[` + flat(inputs+1) + `]]}`), 400, "wrong_shape"},
		{"json ragged", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[[1, 2], 3]]}`), 400, "wrong_shape"},
		{"json three channels", "POST", "/v1/predict", "application/json", []byte(`{"instances": [` + threeChannels + `]}`), 400, "wrong_channels"},
		{"json string value", "POST", "/v1/predict", "application/json", []byte(`{"instances": [["0.5"]]}`), 400, "malformed_json"},
		{"json huge number", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[1e39]]}`), 400, "malformed_json"},
		{"json bad top_k", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[` + flat(inputs) + `]], "top_k": 1.5}`), 400, "malformed_json"},
		{"too many inputs", "POST", "/v1/predict", "application/json", []byte(`{"instances": [[` + flat(inputs) + `],[` + flat(inputs) + `],[` + flat(inputs) + `],[` + flat(inputs) + `]]}`), 413, "too_many_inputs"},
		{"bad top_k query", "POST", "/v1/predict?top_k=zero", "image/png", pngBody, 400, "bad_top_k"},
		{"GET predict", "GET", "/v1/predict", "", nil, 405, "method_not_allowed"},
		{"unknown path", "GET", "/v2/predict", "", nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.url+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b.Bytes())
			}
			if e := errorCode(t, b.Bytes()); e.Error.Code != tc.code {
				t.Errorf("error code %q, want %q (%s)", e.Error.Code, tc.code, e.Error.Message)
			}
		})
	}
	if code, body := post(t, s.url+"/v1/predict", "image/png", pngBody); code != 200 {
		t.Errorf("a good request after the bad ones: status %d: %s", code, body)
	}
	_, text := get(t, s.url+"/metrics")
	for code, n := range map[string]float64{"413": 3, "415": 4, "400": 14, "405": 1, "404": 1, "200": 1} {
		if v, err := metricValue(text, `gograd_serve_requests_total{code="`+code+`"}`); err != nil || v != n {
			t.Errorf("requests_total{code=%s} = %v (%v), want %v", code, v, err, n)
		}
	}
	// Bad requests never reach the model: only the warm-up and the good
	// request ran.
	if v, err := metricValue(text, "gograd_serve_batch_size_count"); err != nil || v != 3 {
		t.Errorf("batch_size_count = %v (%v), want 3 (two warm-up passes and one request)", v, err)
	}
}

// TestMetrics checks the Prometheus exposition after concurrent requests:
// requests by status, the latency and batch-size histograms and the queue
// depth, which is back to zero.
func TestMetrics(t *testing.T) {
	model, dev := trained(t)
	s := startServer(t, model, dev, BatcherConfig{MaxBatch: 8, MaxDelay: 5 * time.Millisecond}, HandlerConfig{})
	rng := rand.New(rand.NewPCG(9, 10))
	body := instancesJSON(sample(rng, 3), 0)
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			if code, b := post(t, s.url+"/v1/predict", "application/json", body); code != 200 {
				t.Errorf("status %d: %s", code, b)
			}
		})
	}
	wg.Wait()
	code, text := get(t, s.url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: status %d", code)
	}
	for name, want := range map[string]float64{
		`gograd_serve_requests_total{code="200"}`:       24,
		"gograd_serve_request_duration_seconds_count":   24,
		"gograd_serve_queue_depth":                      0,
		`gograd_serve_batch_size_bucket{le="+Inf"}`:     -1, // any
		`gograd_serve_dropped_total{reason="deadline"}`: 0,
		"gograd_serve_images_total":                     24 + 1 + 8,
	} {
		v, err := metricValue(text, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if want >= 0 && v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	passes, _ := metricValue(text, "gograd_serve_batch_size_count")
	if passes < 2+3 || passes > 2+24 {
		t.Errorf("%v forward passes for 24 requests of batches up to 8 (and 2 warm-up passes)", passes)
	}
}

// hookModel calls before with the number of rows of each forward pass.
type hookModel struct {
	nn.Module
	before func(rows int)
}

func (m *hookModel) Forward(x *autograd.Var) *autograd.Var {
	m.before(x.Value.Dim(0))
	return m.Module.Forward(x)
}

// TestReadinessAndShutdown checks that /readyz and predictions wait for
// the warm-up, and that a shutdown stops reporting ready, lets requests in
// flight finish with their answers and then stops accepting.
func TestReadinessAndShutdown(t *testing.T) {
	model, dev := trained(t)
	gate := make(chan struct{})
	entered := make(chan int, 100)
	m := &hookModel{Module: model, before: func(rows int) {
		entered <- rows
		select { // a failed test's cleanup must not wait for the gate
		case <-gate:
		case <-t.Context().Done():
		}
	}}
	s := newServer(t, m, dev, BatcherConfig{MaxBatch: 4}, HandlerConfig{})
	// The warm-up's first pass is blocked: not ready yet.
	<-entered
	if code, body := get(t, s.url+"/readyz"); code != 503 {
		t.Errorf("/readyz during warm-up: %d %s, want 503", code, body)
	}
	if code, body := get(t, s.url+"/healthz"); code != 200 {
		t.Errorf("/healthz during warm-up: %d %s, want 200", code, body)
	}
	if code, body := post(t, s.url+"/v1/predict", "image/png", pngOf(t, make([]float32, inputs), false)); code != 503 {
		t.Errorf("predict during warm-up: %d %s, want 503", code, body)
	} else if e := errorCode(t, body); e.Error.Code != "not_ready" {
		t.Errorf("predict during warm-up: code %q", e.Error.Code)
	}
	gate <- struct{}{}
	<-entered
	gate <- struct{}{}
	waitFor(t, s.h.Ready)
	if code, _ := get(t, s.url+"/readyz"); code != 200 {
		t.Errorf("/readyz after warm-up: %d, want 200", code)
	}

	// Three requests in flight, the first one in a forward pass.
	rng := rand.New(rand.NewPCG(11, 12))
	const inFlight = 3
	results := make(chan int, inFlight)
	var xs [][]float32
	for i := range inFlight {
		x := sample(rng, i)
		xs = append(xs, x)
		go func() {
			code, body := post(t, s.url+"/v1/predict", "application/json", instancesJSON(x, 0))
			if code == 200 {
				decodeAnswer(t, body)
			}
			results <- code
		}()
		if i == 0 {
			<-entered
		}
	}
	waitFor(t, func() bool {
		_, text := get(t, s.url+"/metrics")
		v, _ := metricValue(text, "gograd_serve_queue_depth")
		return v == inFlight-1
	})
	s.stop()
	waitFor(t, func() bool { return !s.h.Ready() })
	// The shutdown waits for them: release the passes.
	go func() {
		for {
			select {
			case gate <- struct{}{}:
			case <-entered:
			case <-time.After(10 * time.Second):
				return
			}
		}
	}()
	for range inFlight {
		if code := <-results; code != 200 {
			t.Errorf("a request in flight at shutdown got %d, want 200", code)
		}
	}
	select {
	case err := <-s.stopped:
		if err != nil {
			t.Errorf("Serve after shutdown: %v", err)
		}
		s.stopped <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the requests finished")
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
	if err := s.b.Predict(context.Background(), xs[0], make([]float32, classes)); err != ErrClosed {
		t.Errorf("Predict after shutdown: %v, want ErrClosed", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDeadlinesOverHTTP checks that a request still queued at its
// deadline is answered 504 and one whose client went away is dropped,
// both without running, while the model is busy.
func TestDeadlinesOverHTTP(t *testing.T) {
	model, dev := trained(t)
	var block atomic.Bool
	gate, entered := make(chan struct{}), make(chan int, 100)
	m := &hookModel{Module: model, before: func(rows int) {
		if block.Load() {
			entered <- rows
			select { // a failed test's cleanup must not wait for the gate
			case <-gate:
			case <-t.Context().Done():
			}
		}
	}}
	s := startServer(t, m, dev, BatcherConfig{MaxBatch: 4}, HandlerConfig{Timeout: 300 * time.Millisecond})
	block.Store(true)
	body := instancesJSON(make([]float32, inputs), 0)
	first := make(chan int, 1)
	go func() {
		code, _ := post(t, s.url+"/v1/predict", "application/json", body)
		first <- code
	}()
	<-entered // the worker is busy until the gate opens

	code, b := post(t, s.url+"/v1/predict", "application/json", body)
	if code != http.StatusGatewayTimeout || errorCode(t, b).Error.Code != "timeout" {
		t.Errorf("a request queued past its deadline: %d %s, want 504 timeout", code, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/predict", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	gone := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	// The expired request no longer counts as queued: this one does.
	waitFor(t, func() bool {
		_, text := get(t, s.url+"/metrics")
		v, _ := metricValue(text, "gograd_serve_queue_depth")
		return v == 1
	})
	cancel()
	<-gone
	waitFor(t, func() bool {
		_, text := get(t, s.url+"/metrics")
		v, _ := metricValue(text, `gograd_serve_dropped_total{reason="cancelled"}`)
		return v == 1
	})
	block.Store(false)
	gate <- struct{}{}
	if code := <-first; code != 200 {
		t.Errorf("the request that held the model: %d", code)
	}
	_, text := get(t, s.url+"/metrics")
	for name, want := range map[string]float64{
		`gograd_serve_dropped_total{reason="deadline"}`: 1,
		`gograd_serve_requests_total{code="504"}`:       1,
		`gograd_serve_requests_total{code="499"}`:       1,
		"gograd_serve_batch_size_count":                 3, // two warm-up passes and the first request
	} {
		if v, err := metricValue(text, name); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", name, v, err, want)
		}
	}
}
