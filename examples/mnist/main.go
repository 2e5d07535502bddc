// Command mnist trains the MLP 784-512-256-10 on MNIST for one epoch with
// gograd's library API: SGD with lr 0.05 and momentum 0.9, batches of 128,
// then prints the test accuracy.
//
//	go run ./examples/mnist [-data DIR] [-epochs 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

func main() {
	dir := flag.String("data", "", "directory with the four MNIST IDX files (default: the GoMNIST module)")
	epochs := flag.Int("epochs", 1, "epochs to train")
	seed := flag.Uint64("seed", 1, "seeds the initialisation and the batch order")
	flag.Parse()
	if err := run(*dir, *epochs, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(1)
	}
}

func run(dir string, epochs int, seed uint64) error {
	if dir == "" {
		d, err := data.DefaultMNISTDir()
		if err != nil {
			return err
		}
		dir = d
	}
	train, test, err := data.LoadMNIST(dir)
	if err != nil {
		return err
	}
	dev := device.NewCPU(0)
	start := time.Now()
	acc, err := Train(dev, train, test, Config{Epochs: epochs, Batch: 128, LR: 0.05, Momentum: 0.9, Seed: seed},
		func(epoch int, loss float32) {
			fmt.Printf("epoch %d: train loss %.4f (%.1fs)\n", epoch+1, loss, time.Since(start).Seconds())
		})
	if err != nil {
		return err
	}
	fmt.Printf("test accuracy %.2f%%\n", 100*acc)
	return nil
}

// Config is the training protocol.
type Config struct {
	Epochs, Batch int
	LR, Momentum  float32
	Seed          uint64
}

// Train fits a 784-512-256-10 MLP to train and returns its accuracy on test.
// report, if not nil, gets each epoch's mean training loss.
func Train(dev device.Device, train, test *data.Set, cfg Config, report func(epoch int, loss float32)) (acc float64, err error) {
	err = tensor.Catch(func() { acc, err = fit(dev, train, test, cfg, report) })
	return acc, err
}

func fit(dev device.Device, train, test *data.Set, cfg Config, report func(int, float32)) (float64, error) {
	model, err := nn.NewMLP(dev, nn.MLPConfig{In: train.Dim(), Hidden: []int{512, 256}, Out: 10, Seed: cfg.Seed})
	if err != nil {
		return 0, err
	}
	params := nn.Vars(model.Parameters())
	opt, err := optim.NewSGD(params, optim.SGDConfig{LR: cfg.LR, Momentum: cfg.Momentum})
	if err != nil {
		return 0, err
	}
	batches, err := data.NewBatches(train.N, cfg.Batch, true, cfg.Seed, true)
	if err != nil {
		return 0, err
	}
	// The whole training set goes to the device once; batches are gathered there.
	images := tensor.FromSlice(dev, train.Images, train.N, train.Dim())
	labels := tensor.FromSlice(dev, labelsOf(train), train.N)
	xb := tensor.New(dev, cfg.Batch, train.Dim())
	yb := tensor.New(dev, cfg.Batch)
	idx := tensor.New(dev, cfg.Batch)
	host := make([]float32, cfg.Batch)
	// Each Backward ends a pass on the tape, whose buffers the device pool
	// hands to the next, and x always holds the batch buffer: a step
	// allocates almost nothing. The loss is
	// summed on the device and read once per epoch.
	tape := autograd.NewTape()
	defer tape.Free()
	x := tape.Var(xb, false)
	total := tensor.Zeros(dev)
	defer total.Free()
	for epoch := range cfg.Epochs {
		total.Fill(0)
		order := batches.Epoch(epoch)
		for _, b := range order {
			for i, j := range b {
				host[i] = float32(j)
			}
			idx.CopyFrom(host)
			tensor.GatherInto(xb, images, idx)
			tensor.GatherInto(yb, labels, idx)
			loss := nn.CrossEntropyLoss(model.Forward(x), yb)
			if err := loss.Backward(); err != nil {
				return 0, err
			}
			total.AddInPlace(loss.Value)
			loss.Value.Free()
			if err := opt.Step(); err != nil {
				return 0, err
			}
			nn.ZeroGrad(model)
		}
		if report != nil {
			report(epoch, total.Item()/float32(len(order)))
		}
	}
	return Accuracy(model, test, 1000), nil
}

// Accuracy is the fraction of s that model classifies correctly, evaluated in
// batches without recording gradients.
func Accuracy(model nn.Module, s *data.Set, batch int) float64 {
	model.SetTraining(false)
	defer model.SetTraining(true)
	dev := nn.Vars(model.Parameters())[0].Value.Device()
	correct := 0
	tape := autograd.NewTape()
	for lo := 0; lo < s.N; lo += batch {
		hi := min(lo+batch, s.N)
		x := tensor.FromSlice(dev, s.Images[lo*s.Dim():hi*s.Dim()], hi-lo, s.Dim())
		tape.NoGrad(func() {
			pred := tensor.ArgMax(model.Forward(tape.Var(x, false)).Value, 1)
			for i, p := range pred.Data() {
				if int(p) == int(s.Labels[lo+i]) {
					correct++
				}
			}
			pred.Free()
		})
		tape.Free()
		x.Free()
	}
	return float64(correct) / float64(s.N)
}

func labelsOf(s *data.Set) []float32 {
	y := make([]float32, s.N)
	for i, l := range s.Labels {
		y[i] = float32(l)
	}
	return y
}
