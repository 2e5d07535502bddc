// Command ddp trains on MNIST data-parallel, the MLP 784-512-256-10 or
// (-model cnn) the CNN of `gograd train -model cnn`: each rank trains on
// its shard of every batch and the ranks average their gradients with
// dist.DataParallel (SGD, lr 0.05, momentum 0.9). Rank 0 prints each
// epoch's loss and samples/s, the time of a step (its computation: gather,
// forward, backward and optimizer step; and its wait for the all-reduces),
// the test accuracy, and how much of the all-reduce time Backward hid;
// every rank prints a hash of its weights, which must agree.
//
//	go build -tags mpi -o ddp ./examples/ddp
//	mpirun -np 2 --allow-run-as-root ./ddp -dist mpi -threads 1 -batch 64
//	./ddp -dist none -threads 1 -batch 64    # one process, for comparison
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

type config struct {
	backend, dev, dir  string
	model              string
	threads, batch     int
	epochs, steps, lim int
	seed               uint64
	timeout            time.Duration
	measure            int
	test               bool
}

func main() {
	var c config
	flag.StringVar(&c.backend, "dist", "none", "communicator: mpi, nccl or none")
	flag.StringVar(&c.dev, "device", "cpu", "cpu or cuda (with -dist nccl: the GPU of the rank's local rank)")
	flag.StringVar(&c.model, "model", "mlp", "mlp (784-512-256-10) or cnn (gograd train -model cnn's network)")
	flag.StringVar(&c.dir, "data", "", "directory with the four MNIST IDX files (default: the GoMNIST module)")
	flag.IntVar(&c.threads, "threads", 1, "CPU threads per rank (0: all)")
	flag.IntVar(&c.batch, "batch", 64, "batch size per rank")
	flag.IntVar(&c.epochs, "epochs", 1, "epochs")
	flag.IntVar(&c.steps, "steps", 0, "stop each epoch after this many steps (0: the whole epoch)")
	flag.IntVar(&c.lim, "limit", 0, "use only the first N training images (0: all)")
	flag.Uint64Var(&c.seed, "seed", 1, "initialisation and batch order")
	flag.DurationVar(&c.timeout, "timeout", dist.DefaultTimeout, "how long a collective waits for the other ranks")
	flag.BoolVar(&c.test, "test", true, "evaluate the test accuracy after training")
	flag.IntVar(&c.measure, "measure", 50, "after training, time this many all-reduces of the buckets alone (0: none)")
	flag.Parse()
	comm, err := dist.OpenConfig(dist.Config{Backend: c.backend, Timeout: c.timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddp:", err)
		os.Exit(1)
	}
	if err := run(comm, c); err != nil {
		fmt.Fprintf(os.Stderr, "ddp: rank %d: %v\n", comm.Rank(), err)
		comm.Close() // after a failed collective this aborts the whole job
		os.Exit(1)
	}
	if err := comm.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "ddp:", err)
		os.Exit(1)
	}
}

func run(comm dist.Communicator, c config) (err error) {
	defer func() {
		if e := tensor.Catch(func() {}); e != nil {
			err = e
		}
	}()
	var dev device.Device
	switch c.dev {
	case "cpu":
		dev = device.NewCPU(c.threads)
	case "cuda":
		if dev, err = device.NewCUDA(comm.LocalRank()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown device %q", c.dev)
	}
	if c.dir == "" {
		if c.dir, err = data.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	train, test, err := data.LoadMNIST(c.dir)
	if err != nil {
		return err
	}
	n := train.N
	if c.lim > 0 {
		n = min(n, c.lim)
	}
	model, err := newModel(dev, c.model, c.seed)
	if err != nil {
		return err
	}
	params := nn.Vars(model.Parameters())
	opt, err := optim.NewSGD(params, optim.SGDConfig{LR: 0.05, Momentum: 0.9})
	if err != nil {
		return err
	}
	dp, err := dist.NewDataParallel(comm, params, dist.DataParallelConfig{})
	if err != nil {
		return err
	}
	defer dp.Close()
	sampler, err := dist.NewSampler(n, comm.Rank(), comm.Size(), dist.SamplerConfig{Shuffle: true, Seed: c.seed})
	if err != nil {
		return err
	}
	labels := make([]float32, n)
	for i := range labels {
		labels[i] = float32(train.Labels[i])
	}
	images := tensor.FromSlice(dev, train.Images[:n*784], n, 784)
	targets := tensor.FromSlice(dev, labels, n)
	xb, yb, idx := tensor.New(dev, c.batch, 784), tensor.New(dev, c.batch), tensor.New(dev, c.batch)
	order := make([]float32, c.batch)
	tape := autograd.NewTape()
	if comm.Rank() == 0 {
		fmt.Printf("ddp: %s, %d ranks, %s (%d threads each), %s of %d parameters, batch %d per rank (%d in all), %d steps per epoch\n",
			comm.Backend(), comm.Size(), dev.Name(), c.threads, c.model, nn.NumParams(model), c.batch, c.batch*comm.Size(), len(sampler.Batches(0, c.batch)))
	}
	var trainTime time.Duration
	var computeTimes, waitTimes, stepTimes []float64 // ms, after the first epoch
	steps := 0
	for epoch := range c.epochs {
		batches := sampler.Batches(epoch, c.batch)
		if c.steps > 0 {
			batches = batches[:min(c.steps, len(batches))]
		}
		if err := comm.Barrier(); err != nil {
			return err
		}
		start, cpu0, wait0 := time.Now(), cpuTime(), dp.Stats().WaitTime
		var sum float64
		for _, b := range batches {
			t0 := time.Now()
			for i, j := range b {
				order[i] = float32(j)
			}
			idx.CopyFrom(order)
			tensor.GatherInto(xb, images, idx)
			tensor.GatherInto(yb, targets, idx)
			loss := nn.CrossEntropyLoss(model.Forward(tape.Var(xb, false)), yb)
			if err := loss.Backward(); err != nil {
				return err
			}
			sum += float64(loss.Item())
			loss.Value.Free()
			t1 := time.Now()
			if err := dp.Wait(); err != nil {
				return err
			}
			t2 := time.Now()
			if err := opt.Step(); err != nil {
				return err
			}
			nn.ZeroGrad(model)
			if epoch > 0 || c.epochs == 1 {
				t3 := time.Now()
				computeTimes = append(computeTimes, ms(t1.Sub(t0)+t3.Sub(t2)))
				waitTimes = append(waitTimes, ms(t2.Sub(t1)))
				stepTimes = append(stepTimes, ms(t3.Sub(t0)))
			}
		}
		if err := comm.Barrier(); err != nil {
			return err
		}
		took, cpu := time.Since(start), cpuTime()-cpu0
		trainTime += took
		steps += len(batches)
		if comm.Rank() == 0 {
			waited := dp.Stats().WaitTime - wait0
			n := float64(len(batches))
			fmt.Printf("epoch %d: loss %.4f  %.0f samples/s  %.3f ms per step, %.3f ms of it waiting for the all-reduce; %.3f ms of CPU per step (this process)\n",
				epoch+1, sum/n, n*float64(c.batch*comm.Size())/took.Seconds(), ms(took)/n, ms(waited)/n, ms(cpu)/n)
		}
	}
	if comm.Rank() == 0 {
		fmt.Printf("training: %d steps, %.0f samples/s\n", steps, float64(steps*c.batch*comm.Size())/trainTime.Seconds())
		// The quartiles of the steps' times resist what other jobs on the
		// machine take now and then better than the epochs' rates do.
		q := func(v []float64) string {
			v = slices.Clone(v)
			slices.Sort(v)
			at := func(f float64) float64 { return v[min(len(v)-1, int(f*float64(len(v))))] }
			return fmt.Sprintf("%.3f / %.3f / %.3f", at(0.25), at(0.5), at(0.75))
		}
		if len(stepTimes) > 0 {
			fmt.Printf("step (quartiles, ms): %s; computing %s; waiting for the all-reduce %s\n", q(stepTimes), q(computeTimes), q(waitTimes))
		}
		if c.test {
			acc := accuracy(model, tape, dev, test)
			fmt.Printf("test accuracy %.2f%%\n", 100*acc)
		}
	}
	h := fnv.New64a()
	for _, p := range params {
		for _, v := range p.Value.Data() {
			fmt.Fprint(h, math.Float32bits(v), ",")
		}
	}
	fmt.Printf("rank %d: weights fnv64 %016x\n", comm.Rank(), h.Sum64())
	if c.measure > 0 && comm.Size() > 1 {
		return measure(comm, dp, params, c.measure, median(waitTimes))
	}
	return nil
}

// median returns the median of v, 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// measure times the buckets' all-reduces without any computation, as
// DataParallel issues them, and compares the median with waited, the
// median time a step of training waited for them (ms).
func measure(comm dist.Communicator, dp *dist.DataParallel, params []*autograd.Var, reps int, waited float64) error {
	var groups [][]*tensor.Tensor
	var sizes []string
	values := 0
	for _, b := range dp.Buckets() {
		var g []*tensor.Tensor
		n := 0
		for _, i := range b {
			g = append(g, params[i].Value.Clone())
			n += params[i].Value.Len()
		}
		groups = append(groups, g)
		sizes = append(sizes, fmt.Sprintf("%.2f MB", float64(4*n)/1e6))
		values += n
	}
	if err := comm.Barrier(); err != nil {
		return err
	}
	var times []float64
	for range reps {
		start := time.Now()
		reqs := make([]dist.Request, len(groups))
		for k, g := range groups {
			r, err := comm.StartAllReduce(dist.Mean, g...)
			if err != nil {
				return err
			}
			reqs[k] = r
		}
		for _, r := range reqs {
			if err := r.Wait(); err != nil {
				return err
			}
		}
		times = append(times, ms(time.Since(start)))
	}
	alone := median(times)
	if comm.Rank() == 0 {
		hidden := 1 - waited/alone
		fmt.Printf("all-reduce: %d buckets %v, %d values, median %.3f ms per step alone, %.3f ms waited in training: %.0f%% hidden behind backward\n",
			len(groups), sizes, values, alone, waited, 100*max(hidden, 0))
	}
	return nil
}

// newModel returns the network named: the MLP 784-512-256-10, or the CNN
// that `gograd train -model cnn` trains (conv32k3p1,bn,relu,
// conv32k3p1,bn,relu,pool2, the same twice with 64 channels, flatten,
// fc128,relu,fc).
func newModel(dev device.Device, name string, seed uint64) (m nn.Module, err error) {
	switch name {
	case "mlp":
		return nn.NewMLP(dev, nn.MLPConfig{In: 784, Hidden: []int{512, 256}, Out: 10, Seed: seed})
	case "cnn":
	default:
		return nil, fmt.Errorf("unknown model %q (want mlp or cnn)", name)
	}
	err = tensor.Catch(func() {
		rng := rand.New(rand.NewPCG(seed, 0x6772616400))
		mods := []nn.Module{image{}}
		in := 1
		for _, out := range []int{32, 32, 0, 64, 64, 0} {
			if out == 0 {
				mods = append(mods, nn.NewMaxPool2d(2, 2, 0))
				continue
			}
			mods = append(mods, nn.NewConv2d(dev, in, out, 3, nn.ConvOptions{Padding: 1}, rng), nn.NewBatchNorm2d(dev, out), nn.ReLU{})
			in = out
		}
		mods = append(mods, nn.Flatten{}, nn.NewLinear(dev, 64*7*7, 128, true, rng).WithActivation(device.ActRelu),
			nn.NewLinear(dev, 128, 10, true, rng))
		m = nn.NewSequential(mods...)
	})
	return m, err
}

// image reshapes a batch of rows of 784 pixels into [N, 1, 28, 28].
type image struct{}

func (image) Forward(x *autograd.Var) *autograd.Var {
	return autograd.Reshape(x, x.Value.Dim(0), 1, 28, 28)
}
func (image) Parameters() []nn.Param { return nil }
func (image) SetTraining(bool)       {}

// accuracy evaluates the model on the test set, 1000 images at a time.
func accuracy(model nn.Module, tape *autograd.Tape, dev device.Device, test *data.Set) float64 {
	model.SetTraining(false)
	defer model.SetTraining(true)
	correct := 0
	for lo := 0; lo < test.N; lo += 1000 {
		hi := min(lo+1000, test.N)
		x := tensor.FromSlice(dev, test.Images[lo*784:hi*784], hi-lo, 784)
		tape.NoGrad(func() {
			pred := tensor.ArgMax(model.Forward(tape.Var(x, false)).Value, 1)
			for i, p := range pred.Data() {
				if int(p) == int(test.Labels[lo+i]) {
					correct++
				}
			}
		})
		tape.Free()
		x.Free()
	}
	return float64(correct) / float64(test.N)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
