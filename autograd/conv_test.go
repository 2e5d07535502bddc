package autograd_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// walksOnly hides a device's native im2col and col2im, so that the
// convolutions and poolings run on its strided copies instead.
type walksOnly struct{ device.Device }

// forEachConvDevice runs fn on every device of the build, and on the CPU
// without its native im2col.
func forEachConvDevice(t *testing.T, fn func(t *testing.T, d device.Device)) {
	testutil.ForEachDevice(t, fn)
	t.Run("cpu-walks", func(t *testing.T) { fn(t, walksOnly{device.NewCPU(0)}) })
}

// distinct returns a tensor of shape whose values are a random
// permutation of a grid 0.05 apart, so that no two are within a
// finite-difference step of each other (max pooling's ties).
func distinct(d device.Device, r *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float32, n)
	for i, p := range r.Perm(n) {
		v[i] = float32(p-n/2) * 0.05
	}
	return tensor.FromSlice(d, v, shape...)
}

func TestGradCheckConvPool(t *testing.T) {
	type convCase struct {
		x, w []int
		bias bool
		opt  autograd.ConvOptions
	}
	convs := []convCase{
		{[]int{2, 3, 7, 5}, []int{4, 3, 3, 3}, true, autograd.ConvOptions{Stride: 2, Padding: 1}},
		{[]int{1, 2, 6, 7}, []int{3, 2, 3, 3}, true, autograd.ConvOptions{Dilation: 2, Padding: 2}},
		{[]int{1, 1, 5, 4}, []int{2, 1, 2, 2}, false, autograd.ConvOptions{}},
		{[]int{2, 4, 5, 6}, []int{6, 2, 3, 3}, true, autograd.ConvOptions{Padding: 1, Groups: 2}},
		{[]int{3, 2, 4, 3}, []int{5, 2, 1, 1}, true, autograd.ConvOptions{Stride: 3}},
		{[]int{1, 3, 9, 8}, []int{2, 3, 5, 5}, true, autograd.ConvOptions{Stride: 2, Padding: 2, Dilation: 1}},
	}
	type poolCase struct {
		x                       []int
		kernel, stride, padding int
	}
	pools := []poolCase{
		{[]int{2, 3, 7, 5}, 3, 2, 1}, {[]int{1, 2, 6, 6}, 2, 0, 0}, {[]int{1, 2, 5, 7}, 3, 1, 1},
		{[]int{2, 1, 4, 9}, 2, 3, 1}, {[]int{1, 3, 1, 4}, 1, 1, 0},
	}
	adaptive := []struct {
		x    []int
		size int
	}{{[]int{2, 3, 6, 4}, 2}, {[]int{1, 2, 5, 7}, 3}, {[]int{2, 2, 3, 5}, 1}}
	forEachConvDevice(t, func(t *testing.T, d device.Device) {
		for i, c := range convs {
			r := rand.New(rand.NewPCG(uint64(i), 12))
			in := []*tensor.Tensor{away(d, r, c.x...), away(d, r, c.w...)}
			if c.bias {
				in = append(in, away(d, r, c.w[0]))
			}
			f := func(v []*autograd.Var) *autograd.Var {
				var b *autograd.Var
				if c.bias {
					b = v[2]
				}
				return autograd.Conv2d(v[0], v[1], b, c.opt)
			}
			// The convolution is linear in each input, so a large step
			// has no truncation error and keeps float32 rounding small.
			if err := autograd.GradCheck(f, in, autograd.GradCheckOptions{Eps: 0.25}); err != nil {
				t.Errorf("conv2d x %v w %v %+v: %v", c.x, c.w, c.opt, err)
			}
		}
		for i, c := range pools {
			r := rand.New(rand.NewPCG(uint64(i), 13))
			x := distinct(d, r, c.x...)
			if err := autograd.GradCheck(func(v []*autograd.Var) *autograd.Var {
				return autograd.MaxPool2d(v[0], c.kernel, c.stride, c.padding)
			}, []*tensor.Tensor{x}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("max_pool2d %v k%d s%d p%d: %v", c.x, c.kernel, c.stride, c.padding, err)
			}
			if err := autograd.GradCheck(func(v []*autograd.Var) *autograd.Var {
				return autograd.AvgPool2d(v[0], c.kernel, c.stride, c.padding)
			}, []*tensor.Tensor{x}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("avg_pool2d %v k%d s%d p%d: %v", c.x, c.kernel, c.stride, c.padding, err)
			}
		}
		for i, c := range adaptive {
			r := rand.New(rand.NewPCG(uint64(i), 14))
			if err := autograd.GradCheck(func(v []*autograd.Var) *autograd.Var {
				return autograd.AdaptiveAvgPool2d(v[0], c.size)
			}, []*tensor.Tensor{away(d, r, c.x...)}, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("adaptive_avg_pool2d %v to %d: %v", c.x, c.size, err)
			}
		}
	})
}

// TestMaxPoolTies checks PyTorch's rule for equal values in a window: the
// gradient goes to the first in row-major order, and a window that
// overlaps another sends each its own share.
func TestMaxPoolTies(t *testing.T) {
	forEachConvDevice(t, func(t *testing.T, d device.Device) {
		tp := autograd.NewTape()
		defer tp.Free()
		x := tp.Var(tensor.FromSlice(d, []float32{
			1, 1, 0,
			1, 1, 2,
			0, 2, 2}, 1, 1, 3, 3), true)
		y := autograd.MaxPool2d(x, 2, 1, 0)
		testutil.AllClose(t, "max_pool2d ties", y.Value.Data(), []float32{1, 2, 2, 2}, 0, 0)
		if err := autograd.SumAll(y).BackwardRetain(); err != nil {
			t.Fatal(err)
		}
		testutil.AllClose(t, "max_pool2d ties grad", x.Grad.Data(), []float32{1, 0, 0, 0, 0, 2, 0, 1, 0}, 0, 0)
	})
}

// TestConvBadArgs checks that bad shapes and options fail with a
// *tensor.Error that names the shapes.
func TestConvBadArgs(t *testing.T) {
	d := device.NewCPU(1)
	v := func(shape ...int) *autograd.Var { return autograd.Const(tensor.Zeros(d, shape...)) }
	cases := []struct {
		name string
		f    func()
		want string
	}{
		{"rank", func() { autograd.Conv2d(v(2, 3, 5), v(4, 3, 3, 3), nil, autograd.ConvOptions{}) }, "[2 3 5]"},
		{"channels", func() { autograd.Conv2d(v(2, 3, 5, 5), v(4, 2, 3, 3), nil, autograd.ConvOptions{}) }, "[4 2 3 3]"},
		{"bias", func() { autograd.Conv2d(v(2, 3, 5, 5), v(4, 3, 3, 3), v(3), autograd.ConvOptions{}) }, "[3]"},
		{"groups", func() { autograd.Conv2d(v(2, 3, 5, 5), v(4, 1, 3, 3), nil, autograd.ConvOptions{Groups: 3}) }, "groups"},
		{"kernel too big", func() { autograd.Conv2d(v(1, 1, 2, 2), v(1, 1, 3, 3), nil, autograd.ConvOptions{}) }, "[1 1 2 2]"},
		{"stride", func() { autograd.Conv2d(v(1, 1, 5, 5), v(1, 1, 3, 3), nil, autograd.ConvOptions{Stride: -1}) }, "stride -1"},
		{"pool rank", func() { autograd.MaxPool2d(v(3, 5, 5), 2, 2, 0) }, "[3 5 5]"},
		{"pool padding", func() { autograd.MaxPool2d(v(1, 1, 5, 5), 2, 2, 2) }, "padding 2"},
		{"pool kernel", func() { autograd.AvgPool2d(v(1, 1, 2, 2), 3, 1, 0) }, "[1 1 2 2]"},
		{"adaptive size", func() { autograd.AdaptiveAvgPool2d(v(1, 1, 4, 4), 0) }, "size 0"},
	}
	for _, c := range cases {
		err := tensor.Catch(c.f)
		var te *tensor.Error
		if !errors.As(err, &te) {
			t.Errorf("%s: got %v, want a *tensor.Error", c.name, err)
			continue
		}
		if msg := err.Error(); !contains(msg, c.want) {
			t.Errorf("%s: %q does not name %q", c.name, msg, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestConvLargeBatch compares the CPU's native convolution, which splits
// a batch into blocks of images across threads, with the strided-copy
// one, at a batch of several blocks, with gradients accumulated over two
// passes (the stored and the added paths).
func TestConvLargeBatch(t *testing.T) {
	run := func(d device.Device) [][]float32 {
		r := rand.New(rand.NewPCG(3, 4))
		x := autograd.Param(away(d, r, 37, 3, 9, 8))
		w := autograd.Param(away(d, r, 5, 3, 3, 3))
		b := autograd.Param(away(d, r, 5))
		wt := autograd.Const(away(d, r, 37, 5, 5, 4))
		var out [][]float32
		for range 2 {
			y := autograd.Conv2d(x, w, b, autograd.ConvOptions{Stride: 2, Padding: 1})
			out = append(out, y.Value.Data())
			if err := autograd.SumAll(autograd.Mul(y, wt)).Backward(); err != nil {
				t.Fatal(err)
			}
		}
		return append(out, x.Grad.Data(), w.Grad.Data(), b.Grad.Data())
	}
	native := run(device.NewCPU(2))
	walks := run(walksOnly{device.NewCPU(2)})
	for i, name := range []string{"y", "y again", "dx", "dw", "db"} {
		testutil.AllClose(t, name, native[i], walks[i], 1e-4, 1e-4)
	}
	again := run(device.NewCPU(2))
	for i := range native {
		testutil.AllClose(t, "rerun", again[i], native[i], 0, 0)
	}
}

// TestPoolLargeBatch compares the CPU's native pooling, split across
// threads by image plane, with the strided-copy one, at a batch large
// enough to split, with gradients accumulated over two passes.
func TestPoolLargeBatch(t *testing.T) {
	run := func(d device.Device) [][]float32 {
		r := rand.New(rand.NewPCG(5, 6))
		x := autograd.Param(distinct(d, r, 37, 3, 9, 8))
		var out [][]float32
		for pass := range 2 {
			m := autograd.MaxPool2d(x, 3, 2, 1)
			a := autograd.AvgPool2d(x, 2, 1, 1)
			out = append(out, m.Value.Data(), a.Value.Data())
			wm := autograd.Const(away(d, r, m.Shape()...))
			wa := autograd.Const(away(d, r, a.Shape()...))
			loss := autograd.Add(autograd.SumAll(autograd.Mul(m, wm)), autograd.SumAll(autograd.Mul(a, wa)))
			if err := loss.Backward(); err != nil {
				t.Fatalf("pass %d: %v", pass, err)
			}
		}
		return append(out, x.Grad.Data())
	}
	native := run(device.NewCPU(2))
	walks := run(walksOnly{device.NewCPU(2)})
	for i, name := range []string{"max", "avg", "max again", "avg again", "dx"} {
		testutil.AllClose(t, name, native[i], walks[i], 1e-5, 1e-5)
	}
}
