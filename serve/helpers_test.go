package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// The toy task of the tests: an 8x8 image with a bright 4x4 square in one
// of its four quadrants; the class is the quadrant.
const (
	side    = 8
	inputs  = side * side
	classes = 4
)

var testShape = Shape{Channels: 1, Height: side, Width: side}

// sample draws an input of class c: noise in [0, 0.3) with a square of
// values in [0.8, 1] in quadrant c, quantised to 1/255 so that a PNG of it
// gives the same values.
func sample(rng *rand.Rand, c int) []float32 {
	x := make([]float32, inputs)
	for i := range x {
		v := 0.3 * rng.Float64()
		if y, xx := i/side, i%side; (y >= 4) == (c >= 2) && (xx >= 4) == (c%2 == 1) {
			v = 0.8 + 0.2*rng.Float64()
		}
		x[i] = float32(math.Round(v*255)) / 255
	}
	return x
}

// trainModel trains an MLP on the toy task for a few steps.
func trainModel(t testing.TB, dev device.Device) nn.Module {
	t.Helper()
	model, err := nn.NewMLP(dev, nn.MLPConfig{In: inputs, Hidden: []int{16}, Out: classes, Activation: "relu", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewSGD(nn.Vars(model.Parameters()), optim.SGDConfig{LR: 0.2, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 32
	tape := autograd.NewTape()
	defer tape.Free()
	err = tensor.Catch(func() {
		for range 150 {
			var xs, ys []float32
			for range batch {
				c := rng.IntN(classes)
				xs = append(xs, sample(rng, c)...)
				ys = append(ys, float32(c))
			}
			x := tensor.FromSlice(dev, xs, batch, inputs)
			y := tensor.FromSlice(dev, ys, batch)
			nn.ZeroGrad(model)
			loss := nn.CrossEntropyLoss(model.Forward(tape.Var(x, false)), y)
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			loss.Value.Free()
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
			x.Free()
			y.Free()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return model
}

// reference is the model's softmax on x, one row at a time.
func reference(t testing.TB, model nn.Module, dev device.Device, x []float32) []float32 {
	t.Helper()
	model.SetTraining(false)
	var out []float32
	for lo := 0; lo < len(x); lo += inputs {
		err := tensor.Catch(func() {
			tape := autograd.NewTape()
			defer tape.Free()
			in := tensor.FromSlice(dev, x[lo:lo+inputs], 1, inputs)
			defer in.Free()
			tape.NoGrad(func() {
				p := tensor.Softmax(model.Forward(tape.Var(in, false)).Value, 1)
				out = append(out, p.Data()...)
				p.Free()
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// server is a Handler served on a loopback port.
type server struct {
	url     string
	h       *Handler
	b       *Batcher
	reg     *prometheus.Registry
	model   nn.Module
	dev     device.Device
	stop    context.CancelFunc
	stopped chan error
}

// fixture is one trained model shared by the tests that do not wrap it.
var fixture struct {
	dev   device.Device
	model nn.Module
}

func trained(t testing.TB) (nn.Module, device.Device) {
	if fixture.model == nil {
		fixture.dev = device.NewCPU(0)
		fixture.model = trainModel(t, fixture.dev)
	}
	return fixture.model, fixture.dev
}

// startServer serves model with the given configurations on 127.0.0.1:0
// and waits until it is ready.
func startServer(t *testing.T, model nn.Module, dev device.Device, bc BatcherConfig, hc HandlerConfig) *server {
	t.Helper()
	s := newServer(t, model, dev, bc, hc)
	deadline := time.Now().Add(10 * time.Second)
	for !s.h.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not become ready in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// newServer starts serving model on 127.0.0.1:0; it warms up meanwhile.
// The test's cleanup shuts it down and checks that Serve returned nil.
func newServer(t *testing.T, model nn.Module, dev device.Device, bc BatcherConfig, hc HandlerConfig) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, max(bc.MaxBatch, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	bc.Model, bc.Device, bc.Inputs, bc.Classes, bc.Metrics, bc.Logger = model, dev, inputs, classes, m, log
	b, err := NewBatcher(bc)
	if err != nil {
		t.Fatal(err)
	}
	hc.Shape, hc.Metrics, hc.Gatherer, hc.Logger = testShape, m, reg, log
	h, err := NewHandler(b, hc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{url: "http://" + ln.Addr().String(), h: h, b: b, reg: reg, model: model, dev: dev, stop: cancel, stopped: make(chan error, 1)}
	go func() { s.stopped <- Serve(ctx, ln, h, 20*time.Second) }()
	t.Cleanup(func() {
		// Connections the client dialed but never used would hold up the
		// shutdown for 5s (net/http treats them as busy until then).
		http.DefaultClient.CloseIdleConnections()
		cancel()
		if err := <-s.stopped; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// answer is the JSON of a successful prediction.
type answer struct {
	Predictions []struct {
		Name     *string `json:"name"`
		Inverted *bool   `json:"inverted"`
		Top      []struct {
			Class       int     `json:"class"`
			Probability float32 `json:"probability"`
		} `json:"top"`
	} `json:"predictions"`
}

// apiError is the JSON of an error.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// post sends body with the content type and returns the status and body.
func post(t *testing.T, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (body %s)", ct, b)
	}
	return resp.StatusCode, b
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func decodeAnswer(t *testing.T, b []byte) answer {
	t.Helper()
	var a answer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return a
}

// instancesJSON is a JSON request of the flat inputs x.
func instancesJSON(x []float32, topK int) []byte {
	var rows [][]float32
	for lo := 0; lo < len(x); lo += inputs {
		rows = append(rows, x[lo:lo+inputs])
	}
	req := map[string]any{"instances": rows}
	if topK > 0 {
		req["top_k"] = topK
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// pngOf encodes the flat 8x8 input x as a PNG, inverted if asked.
func pngOf(t testing.TB, x []float32, invert bool) []byte {
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i, v := range x {
		if invert {
			v = 1 - v
		}
		img.SetGray(i%side, i/side, color.Gray{Y: uint8(math.Round(float64(v) * 255))})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkTop checks that the top list of an answer gives the k classes of
// the largest probabilities of want, to float32 rounding.
func checkTop(t *testing.T, what string, top []struct {
	Class       int     `json:"class"`
	Probability float32 `json:"probability"`
}, want []float32, k int) {
	t.Helper()
	if len(top) != k {
		t.Fatalf("%s: %d classes, want %d", what, len(top), k)
	}
	order := topK(make([]int, k), want)
	for j, e := range top {
		if e.Class != order[j] || math.Abs(float64(e.Probability-want[e.Class])) > 1e-5 {
			t.Errorf("%s: top %d is class %d (p %v), want class %d (p %v)", what, j, e.Class, e.Probability, order[j], want[order[j]])
		}
	}
}

func errorCode(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body %q is not {\"error\": {\"code\", \"message\"}} (%v)", b, err)
	}
	return e
}

// metricValue returns the value of the sample line of the text exposition
// that starts with name (including labels), or an error.
func metricValue(text, name string) (float64, error) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			_, err := fmt.Sscan(strings.TrimSpace(rest), &v)
			return v, err
		}
	}
	return 0, errors.New("no sample " + name)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
