package main

import (
	"fmt"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// evalBatch is the number of images evaluated at once; evalConvBatch for
// a network with convolutions, whose activations are larger.
const (
	evalBatch     = 1000
	evalConvBatch = 250
)

// evalRows is the number of images model evaluates at once.
func evalRows(model nn.Module) int {
	if s, ok := model.(*nn.Sequential); ok {
		for _, m := range s.Modules {
			if _, conv := m.(*nn.Conv2d); conv {
				return evalConvBatch
			}
		}
	}
	return evalBatch
}

// forEachBatch runs model in evaluation mode over the rows of x, a [n, dim]
// tensor on the model's device, evalRows(model) rows at a time and without
// recording gradients. fn gets the first row of each batch and the model's
// output, which is freed when fn returns.
func forEachBatch(model nn.Module, x *tensor.Tensor, fn func(lo int, out *tensor.Tensor)) {
	model.SetTraining(false)
	defer model.SetTraining(true)
	n, dim := x.Dim(0), x.Dim(1)
	dev := x.Device()
	tape := autograd.NewTape()
	var idx, xb *tensor.Tensor
	defer func() {
		idx.Free()
		xb.Free()
	}()
	rows := evalRows(model)
	host := make([]float32, rows)
	for lo := 0; lo < n; lo += rows {
		m := min(rows, n-lo)
		if idx == nil || idx.Len() != m {
			idx.Free()
			xb.Free()
			idx, xb = tensor.New(dev, m), tensor.New(dev, m, dim)
		}
		for i := range m {
			host[i] = float32(lo + i)
		}
		idx.CopyFrom(host[:m])
		tensor.GatherInto(xb, x, idx)
		tape.NoGrad(func() { fn(lo, model.Forward(tape.Var(xb, false)).Value) })
		tape.Free()
	}
}

// predictAll returns the class model predicts for each row of x.
func predictAll(model nn.Module, x *tensor.Tensor) []int {
	pred := make([]int, x.Dim(0))
	forEachBatch(model, x, func(lo int, out *tensor.Tensor) {
		am := tensor.ArgMax(out, 1)
		defer am.Free()
		for i, v := range am.Data() {
			pred[lo+i] = int(v)
		}
	})
	return pred
}

// accuracy is the fraction of pred equal to labels.
func accuracy(pred []int, labels []uint8) float64 {
	correct := 0
	for i, p := range pred {
		if p == int(labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(len(pred))
}

const evalExamples = `  gograd eval -model runs/mnist/model.safetensors
  gograd eval -model runs/mnist/model.safetensors -data ~/mnist -device cuda
`

func evalCommand(args []string, e *env) (err error) {
	fs := newCommand("eval", "eval -model FILE [flags]", evalExamples, e)
	modelPath := fs.String("model", "", "model `file` written by train or a PyTorch state_dict of Linear layers in safetensors (required), e.g. runs/mnist/model.safetensors")
	dataDir := fs.String("data", "", "test data: `mnist|fashion-mnist|DIR`, a directory of IDX files or an image folder (default: the data the model was trained on, else MNIST)")
	dev := newChoice("cpu", "cpu", "cuda", "auto")
	fs.Var(dev, "device", "where to run: `cpu|cuda|auto`")
	act := newChoice("", activations...)
	fs.Var(act, "activation", "hidden activation `relu|sigmoid|tanh` of a model file that does not name it, such as a PyTorch state_dict")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.usagef("unexpected argument %q (eval takes only flags)", fs.Arg(0))
	}
	if *modelPath == "" {
		return fs.usagef("-model FILE is required")
	}
	d, err := openDevice(dev.value)
	if err != nil {
		return err
	}
	defer closeDevice(d, &err)
	model, a, md, err := loadModel(*modelPath, d, act.value)
	if err != nil {
		return err
	}
	test, dir, err := evalData(*dataDir, a, e.stderr, md)
	if err != nil {
		return err
	}
	var pred []int
	err = tensor.Catch(func() {
		x := tensor.FromSlice(d, test.Images, test.N, test.Dim())
		defer x.Free()
		pred = predictAll(model, x)
	})
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "model: %s (%s, %d parameters)\n", *modelPath, a, nn.NumParams(model))
	fmt.Fprintf(w, "device: %s\n", deviceName(d))
	fmt.Fprintf(w, "data: %s: %d test images\n", dir, test.N)
	writeReport(w, confusion(a.In.Classes, pred, test.Labels), a.classNames())
	return nil
}
