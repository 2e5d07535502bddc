package serve

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// TestPredictRGBImage serves a model of 3x5x4 inputs: a PNG sent to it is
// resized as data.ImageInput resizes it (as the folder loader and predict
// do), not read as a digit, and the answer is the model's softmax of that.
func TestPredictRGBImage(t *testing.T) {
	const c, h, w, k = 3, 5, 4, 3
	dev := device.NewCPU(1)
	rng := rand.New(rand.NewPCG(7, 8))
	model := nn.NewSequential(nn.NewLinear(dev, c*h*w, k, true, rng))
	b, err := NewBatcher(BatcherConfig{Model: model, Device: dev, Inputs: c * h * w, Classes: k, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hd, err := NewHandler(b, HandlerConfig{Shape: Shape{Channels: c, Height: h, Width: w}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hd.Warmup(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hd)
	defer srv.Close()

	img := image.NewRGBA(image.Rect(0, 0, 2*w+1, 2*h))
	for y := range 2 * h {
		for x := range 2*w + 1 {
			img.Set(x, y, color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	x, err := data.ImageInput(img, c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	var want []float32
	if err := tensor.Catch(func() {
		tape := autograd.NewTape()
		defer tape.Free()
		in := tensor.FromSlice(dev, x, 1, c*h*w)
		tape.NoGrad(func() {
			want = tensor.Softmax(model.Forward(tape.Var(in, false)).Value, 1).Data()
		})
	}); err != nil {
		t.Fatal(err)
	}

	code, body := post(t, srv.URL+"/v1/predict", "image/png", buf.Bytes())
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	checkTop(t, "RGB PNG", decodeAnswer(t, body).Predictions[0].Top, want, k)
}
