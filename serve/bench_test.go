package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// BenchmarkBatcher is a steady load of concurrent single-row Predict
// calls: after warm-up a call allocates nothing of its own (the model's
// forward pass allocates per pass, shared by the rows of the pass).
func BenchmarkBatcher(b *testing.B) {
	model, dev := trained(b)
	m, passes := counting(model)
	bt := newBatcher(b, BatcherConfig{Model: m, Device: dev, MaxBatch: 32})
	if err := bt.Warmup(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x, probs := make([]float32, inputs), make([]float32, classes)
		for pb.Next() {
			if err := bt.Predict(context.Background(), x, probs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(passes.Load()), "rows/pass")
}

// BenchmarkForward runs the Batcher's forward pass and softmax of the MNIST
// MLP 784-512-256-10, its weights transposed as the Batcher keeps them, on
// 1 and 31 rows, without HTTP or queueing: a lone request and a batched
// pass. bench/torch_forward.py times PyTorch's.
func BenchmarkForward(b *testing.B) {
	dev := device.NewCPU(0)
	model, err := nn.NewMLP(dev, nn.MLPConfig{In: 784, Hidden: []int{512, 256}, Out: 10, Activation: "relu", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	model.SetTraining(false)
	m, owned := forInference(model)
	defer func() {
		for _, t := range owned {
			t.Free()
		}
	}()
	for _, rows := range []int{1, 31} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			tape := autograd.NewTape()
			defer tape.Free()
			x := tensor.FromSlice(dev, make([]float32, rows*784), rows, 784)
			defer x.Free()
			leaf := tape.Var(x, false)
			for b.Loop() {
				tape.NoGrad(func() { tensor.Softmax(m.Forward(leaf).Value, 1).Free() })
				tape.Free()
			}
		})
	}
}

// counting wraps model to count its forward passes.
func counting(model nn.Module) (nn.Module, *atomic.Int64) {
	var n atomic.Int64
	return &hookModel{Module: model, before: func(int) { n.Add(1) }}, &n
}

// discardWriter is a reusable http.ResponseWriter.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// benchHandler runs requests of body through the Handler without the
// network, so that the allocations are the handler's own (net/http adds
// its per-connection and per-request ones).
func benchHandler(b *testing.B, contentType string, body []byte) {
	model, dev := trained(b)
	m, passes := counting(model)
	bt := newBatcher(b, BatcherConfig{Model: m, Device: dev, MaxBatch: 32, MaxDelay: 100 * time.Microsecond})
	h, err := NewHandler(bt, HandlerConfig{Shape: testShape, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Warmup(context.Background()); err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("/v1/predict")
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rd := bytes.NewReader(body)
		req := &http.Request{Method: "POST", URL: u, Header: http.Header{"Content-Type": {contentType}},
			Body: io.NopCloser(rd), ContentLength: int64(len(body))}
		req = req.WithContext(context.Background())
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(passes.Load()), "rows/pass")
}

// BenchmarkHandlerJSON: a JSON request of one input.
func BenchmarkHandlerJSON(b *testing.B) {
	benchHandler(b, "application/json", instancesJSON(make([]float32, inputs), 0))
}

// BenchmarkHandlerPNG: a PNG body of one input; the PNG decoder and the
// image conversion allocate the decoded image.
func BenchmarkHandlerPNG(b *testing.B) {
	benchHandler(b, "image/png", pngOf(b, make([]float32, inputs), false))
}

// BenchmarkParseJSON parses a request of one 28x28 input, most pixels 0
// and the others written as float32 values are, as a client would send a
// drawn digit.
func BenchmarkParseJSON(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"instances": [[`)
	for i := range 784 {
		if i > 0 {
			body.WriteByte(',')
		}
		switch {
		case i%5 == 0:
			body.WriteString("0.5019608")
		case i%7 == 0:
			body.WriteString("1")
		default:
			body.WriteString("0")
		}
	}
	body.WriteString(`]]}`)
	benchParse(b, body.Bytes())
}

// BenchmarkParseJSONFloat64 parses the same input with its pixels written
// as a client writes float64 values (253/255 is 0.9921568627450981), as
// Python's json.dumps and the load test do.
func BenchmarkParseJSONFloat64(b *testing.B) {
	px := make([]float64, 784)
	for i := range px {
		switch {
		case i%5 == 0:
			px[i] = 253.0 / 255
		case i%7 == 0:
			px[i] = float64(100+i%100) / 255
		}
	}
	body, err := json.Marshal(map[string]any{"instances": [][]float64{px}})
	if err != nil {
		b.Fatal(err)
	}
	benchParse(b, body)
}

func benchParse(b *testing.B, body []byte) {
	shape := Shape{Channels: 1, Height: 28, Width: 28}
	var p jsonParser
	var req jsonRequest
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.parse(body, shape, 64, &req); err != nil || req.n != 1 {
			b.Fatal(err)
		}
	}
}
