package tensor_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// Tolerances for results computed by a different but exact-in-float64
// reference: one rounding to float32 plus the device's own rounding.
const (
	atol = 1e-6
	rtol = 2e-5
)

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// unravel returns the row-major multi-index of flat index i in shape.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for j := len(shape) - 1; j >= 0; j-- {
		idx[j] = i % shape[j]
		i /= shape[j]
	}
	return idx
}

// at reads data, contiguous of shape, at the multi-index idx of a shape
// that shape broadcasts to (right-aligned, size-1 axes read at 0).
func at(data []float32, shape, idx []int) float32 {
	off, stride := 0, 1
	for j := len(shape) - 1; j >= 0; j-- {
		if i := idx[len(idx)-len(shape)+j]; shape[j] != 1 {
			off += i * stride
		}
		stride *= shape[j]
	}
	return data[off]
}

// randT returns a tensor of values uniform in [lo, hi) and its host copy.
func randT(d device.Device, r *rand.Rand, lo, hi float32, shape ...int) (*tensor.Tensor, []float32) {
	v := testutil.RandSlice(r, numel(shape), lo, hi)
	return tensor.FromSlice(d, v, shape...), v
}

// mustFail runs fn, which must panic with a *tensor.Error wrapping want,
// and returns that error.
func mustFail(t *testing.T, what string, want error, fn func()) error {
	t.Helper()
	err := tensor.Catch(fn)
	if err == nil {
		t.Fatalf("%s: no panic", what)
	}
	var te *tensor.Error
	if !errors.As(err, &te) {
		t.Fatalf("%s: error %v is a %T, not a *tensor.Error", what, err, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %q does not wrap %q", what, err, want)
	}
	return err
}

func checkShape(t *testing.T, name string, x *tensor.Tensor, want ...int) {
	t.Helper()
	if got := x.Shape(); !slices.Equal(got, want) {
		t.Fatalf("%s: shape %v, want %v", name, got, want)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b9)) }

func TestConstructors(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, shape := range [][]int{{}, {1}, {7}, {3, 5}, {2, 3, 5}, {0, 3}} {
			name := fmt.Sprint(shape)
			n := numel(shape)
			for _, c := range []struct {
				name string
				x    *tensor.Tensor
				v    float32
			}{
				{"zeros", tensor.Zeros(d, shape...), 0},
				{"ones", tensor.Ones(d, shape...), 1},
				{"full", tensor.Full(d, -2.5, shape...), -2.5},
			} {
				checkShape(t, c.name+name, c.x, shape...)
				want := make([]float32, n)
				for i := range want {
					want[i] = c.v
				}
				testutil.AllClose(t, c.name+name, c.x.Data(), want, 0, 0)
				if c.x.Len() != n || c.x.Dims() != len(shape) || c.x.Device() != d {
					t.Errorf("%s%s: Len %d Dims %d Device %v", c.name, name, c.x.Len(), c.x.Dims(), c.x.Device())
				}
				c.x.Free()
			}
		}
		s := tensor.Scalar(d, 4.25)
		checkShape(t, "scalar", s)
		if s.Item() != 4.25 || s.Len() != 1 || s.Dims() != 0 {
			t.Errorf("scalar: Item %v Len %d Dims %d", s.Item(), s.Len(), s.Dims())
		}

		r := newRand(1)
		v := testutil.RandSlice(r, 15, -1, 1)
		x := tensor.FromSlice(d, v, 3, 5)
		checkShape(t, "from slice", x, 3, 5)
		testutil.AllClose(t, "from slice", x.Data(), v, 0, 0)
		v[0] = 99 // the tensor holds a copy
		if x.Data()[0] == 99 {
			t.Error("FromSlice aliases its argument")
		}
		checkShape(t, "from slice vector", tensor.FromSlice(d, v), 15)
		if x.Dim(0) != 3 || x.Dim(1) != 5 || x.Dim(-1) != 5 || x.Dim(-2) != 3 {
			t.Errorf("Dim: %d %d %d %d", x.Dim(0), x.Dim(1), x.Dim(-1), x.Dim(-2))
		}
		sh := x.Shape()
		sh[0] = 100 // Shape returns a copy
		checkShape(t, "shape copy", x, 3, 5)

		mustFail(t, "from slice count", tensor.ErrShape, func() { tensor.FromSlice(d, v, 4, 4) })
		mustFail(t, "negative dimension", tensor.ErrShape, func() { tensor.Zeros(d, 2, -1) })
		mustFail(t, "dim out of range", tensor.ErrShape, func() { x.Dim(2) })
		mustFail(t, "dim out of range", tensor.ErrShape, func() { x.Dim(-3) })
	})
}

func meanStd(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func TestRandN(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		const n, std = 20000, 1.5
		x := tensor.RandN(d, newRand(7), std, 100, 200)
		checkShape(t, "randn", x, 100, 200)
		v := x.Data()
		// The standard errors are std/sqrt(n) ≈ 0.011 for the mean and
		// std/sqrt(2n) ≈ 0.0075 for the deviation: allow about 6 of them.
		if m, s := meanStd(v); math.Abs(m) > 0.07 || math.Abs(s-std) > 0.05 {
			t.Errorf("randn: mean %.4f, std %.4f; want 0, %v", m, s, std)
		}
		if again := tensor.RandN(d, newRand(7), std, 100, 200).Data(); !slices.Equal(v, again) {
			t.Error("randn: the same seed gives different values")
		}
		if other := tensor.RandN(d, newRand(8), std, 100, 200).Data(); slices.Equal(v, other) {
			t.Error("randn: different seeds give the same values")
		}
		checkShape(t, "randn scalar", tensor.RandN(d, newRand(8), std))
		checkShape(t, "randu scalar", tensor.RandU(d, newRand(8), 0, 1))
	})
}

func TestRandU(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		const lo, hi = -1.5, 2.5
		x := tensor.RandU(d, newRand(3), lo, hi, 7, 1001)
		checkShape(t, "randu", x, 7, 1001)
		v := x.Data()
		least, most := slices.Min(v), slices.Max(v)
		if least < lo || most >= hi || least > lo+0.01 || most < hi-0.01 {
			t.Errorf("randu: values span [%v, %v], want to fill [%v, %v)", least, most, lo, hi)
		}
		// The standard error of the mean is 4/sqrt(12*7007) ≈ 0.014.
		if m, _ := meanStd(v); math.Abs(m-0.5) > 0.08 {
			t.Errorf("randu: mean %.4f, want 0.5", m)
		}
		if again := tensor.RandU(d, newRand(3), lo, hi, 7, 1001).Data(); !slices.Equal(v, again) {
			t.Error("randu: the same seed gives different values")
		}
	})
}

func TestReshape(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(2)
		x, v := randT(d, r, -1, 1, 2, 3, 5)
		cases := []struct {
			in, want []int
		}{
			{[]int{30}, []int{30}},
			{[]int{6, 5}, []int{6, 5}},
			{[]int{-1, 5}, []int{6, 5}},
			{[]int{3, -1}, []int{3, 10}},
			{[]int{1, -1, 1}, []int{1, 30, 1}},
			{[]int{5, 1, 3, 2}, []int{5, 1, 3, 2}},
		}
		for _, c := range cases {
			y := x.Reshape(c.in...)
			checkShape(t, fmt.Sprint("reshape ", c.in), y, c.want...)
			testutil.AllClose(t, fmt.Sprint("reshape ", c.in), y.Data(), v, 0, 0)
			y.Free()
		}
		one := tensor.FromSlice(d, []float32{3}, 1, 1)
		checkShape(t, "reshape to scalar", one.Reshape(), []int{}...)
		if s := one.Reshape(); s.Item() != 3 {
			t.Errorf("reshape to scalar: %v", s.Item())
		}

		// A view shares storage with the tensor it came from.
		y := x.Reshape(-1, 6)
		w := testutil.RandSlice(r, 30, 2, 3)
		y.CopyFrom(w)
		testutil.AllClose(t, "write through a view", x.Data(), w, 0, 0)
		// Freeing one keeps the other alive, even while new tensors of the
		// same size are allocated and filled.
		x.Free()
		for range 3 {
			tensor.Full(d, -7, 30)
		}
		testutil.AllClose(t, "view after its origin is freed", y.Data(), w, 0, 0)
		z := y.Reshape(30)
		y.Free()
		tensor.Full(d, -7, 30)
		testutil.AllClose(t, "view of a view", z.Data(), w, 0, 0)
		mustFail(t, "data of a freed origin", tensor.ErrFreed, func() { x.Data() })
		mustFail(t, "reshape of a freed tensor", tensor.ErrFreed, func() { y.Reshape(30) })
		z.Free()

		a := tensor.Zeros(d, 4, 6)
		empty := tensor.Zeros(d, 0, 3)
		checkShape(t, "reshape empty", empty.Reshape(3, -1, 1), 3, 0, 1)
		mustFail(t, "reshape empty to (-1, 0)", tensor.ErrShape, func() { empty.Reshape(-1, 0) })
		for _, bad := range [][]int{{5, 5}, {25}, {-1, -1}, {-2, 12}, {7, -1}, {0, -1}} {
			err := mustFail(t, fmt.Sprint("reshape to ", bad), tensor.ErrShape, func() { a.Reshape(bad...) })
			if !strings.Contains(err.Error(), "reshape") || !strings.Contains(err.Error(), "[4 6]") {
				t.Errorf("reshape to %v: error %q does not name the op and the shape", bad, err)
			}
		}
	})
}

// permutations returns every permutation of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// transposeRef permutes the axes of data, contiguous of shape.
func transposeRef(data []float32, shape, perm []int) ([]float32, []int) {
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = shape[p]
	}
	res := make([]float32, len(data))
	src := make([]int, len(shape))
	for i := range res {
		idx := unravel(i, out)
		for j, p := range perm {
			src[p] = idx[j]
		}
		res[i] = at(data, shape, src)
	}
	return res, out
}

func TestTranspose(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(4)
		shape := []int{2, 3, 5}
		x, v := randT(d, r, -1, 1, shape...)
		perms := permutations(3)
		if len(perms) != 6 {
			t.Fatalf("%d permutations of 3", len(perms))
		}
		for _, p := range perms {
			want, ws := transposeRef(v, shape, p)
			y := tensor.Transpose(x, p...)
			checkShape(t, fmt.Sprint("transpose ", p), y, ws...)
			testutil.AllClose(t, fmt.Sprint("transpose ", p), y.Data(), want, 0, 0)
			// Negative axes name the same permutation.
			neg := []int{p[0] - 3, p[1], p[2] - 3}
			testutil.AllClose(t, fmt.Sprint("transpose ", neg), tensor.Transpose(x, neg...).Data(), want, 0, 0)
		}

		want, ws := transposeRef(v, shape, []int{2, 1, 0})
		rev := tensor.Transpose(x)
		checkShape(t, "reverse", rev, ws...)
		testutil.AllClose(t, "reverse", rev.Data(), want, 0, 0)

		want, ws = transposeRef(v, shape, []int{0, 2, 1})
		tt := tensor.T(x)
		checkShape(t, "T", tt, ws...)
		testutil.AllClose(t, "T", tt.Data(), want, 0, 0)

		m, mv := randT(d, r, -1, 1, 7, 3)
		want, _ = transposeRef(mv, []int{7, 3}, []int{1, 0})
		testutil.AllClose(t, "T of a matrix", tensor.T(m).Data(), want, 0, 0)
		testutil.AllClose(t, "T twice", tensor.T(tensor.T(m)).Data(), mv, 0, 0)

		// Rank 4 with no axes to merge, and rank 5 with a size-1 axis.
		x4, v4 := randT(d, r, -1, 1, 2, 3, 4, 5)
		want, _ = transposeRef(v4, []int{2, 3, 4, 5}, []int{3, 1, 0, 2})
		testutil.AllClose(t, "rank 4", tensor.Transpose(x4, 3, 1, 0, 2).Data(), want, 0, 0)
		x5, v5 := randT(d, r, -1, 1, 2, 1, 3, 4, 3)
		want, ws = transposeRef(v5, []int{2, 1, 3, 4, 3}, []int{4, 2, 1, 0, 3})
		y5 := tensor.Transpose(x5, 4, 2, 1, 0, 3)
		checkShape(t, "rank 5", y5, ws...)
		testutil.AllClose(t, "rank 5", y5.Data(), want, 0, 0)

		mustFail(t, "too few axes", tensor.ErrShape, func() { tensor.Transpose(x, 0, 1) })
		mustFail(t, "repeated axis", tensor.ErrShape, func() { tensor.Transpose(x, 0, 1, 1) })
		mustFail(t, "axis out of range", tensor.ErrShape, func() { tensor.Transpose(x, 0, 1, 3) })
		mustFail(t, "T of a vector", tensor.ErrShape, func() { tensor.T(tensor.Zeros(d, 3)) })
	})
}

func TestExpand(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(5)
		cases := []struct{ in, out []int }{
			{[]int{3, 1}, []int{2, 3, 4}},
			{[]int{1}, []int{5}},
			{[]int{}, []int{2, 3}},
			{[]int{4}, []int{3, 4}},
			{[]int{2, 1, 3}, []int{2, 5, 3}},
			{[]int{2, 3}, []int{2, 3}},
			{[]int{1, 3, 1, 2}, []int{2, 2, 3, 5, 2}},
		}
		for _, c := range cases {
			name := fmt.Sprint(c.in, "->", c.out)
			x, v := randT(d, r, -1, 1, c.in...)
			y := tensor.Expand(x, c.out...)
			checkShape(t, name, y, c.out...)
			want := make([]float32, numel(c.out))
			for i := range want {
				want[i] = at(v, c.in, unravel(i, c.out))
			}
			testutil.AllClose(t, name, y.Data(), want, 0, 0)
		}
		for _, c := range []struct{ in, out []int }{
			{[]int{2}, []int{3}},
			{[]int{3, 2}, []int{3, 4}},
			{[]int{2, 3}, []int{3}},
		} {
			x := tensor.Zeros(d, c.in...)
			mustFail(t, fmt.Sprint("expand ", c.in, " to ", c.out), tensor.ErrShape, func() { tensor.Expand(x, c.out...) })
		}
	})
}

// binaryOp is an elementwise operation with its float64 reference and the
// range its inputs are drawn from.
type binaryOp struct {
	name   string
	fn     func(a, b *tensor.Tensor) *tensor.Tensor
	ref    func(a, b float64) float64
	lo, hi float32
}

func binaryOps() []binaryOp {
	b := func(op device.BinaryOp) func(a, b *tensor.Tensor) *tensor.Tensor {
		return func(x, y *tensor.Tensor) *tensor.Tensor { return tensor.Binary(op, x, y) }
	}
	bool01 := func(c bool) float64 {
		if c {
			return 1
		}
		return 0
	}
	return []binaryOp{
		{"add", tensor.Add, func(a, b float64) float64 { return a + b }, -2, 2},
		{"sub", tensor.Sub, func(a, b float64) float64 { return a - b }, -2, 2},
		{"mul", tensor.Mul, func(a, b float64) float64 { return a * b }, -2, 2},
		{"div", tensor.Div, func(a, b float64) float64 { return a / b }, 0.5, 2},
		{"pow", tensor.Pow, math.Pow, 0.5, 2},
		{"maximum", tensor.Maximum, math.Max, -2, 2},
		{"greater_eq", b(device.GreaterEq), func(a, b float64) float64 { return bool01(a >= b) }, -2, 2},
		{"relu_grad", b(device.ReluGrad), func(a, b float64) float64 { return b * bool01(a > 0) }, -2, 2},
		{"sigmoid_grad", b(device.SigmoidGrad), func(a, b float64) float64 { return b * a * (1 - a) }, -2, 2},
		{"tanh_grad", b(device.TanhGrad), func(a, b float64) float64 { return b * (1 - a*a) }, -2, 2},
	}
}

// broadcastCases are operand shapes and the shape NumPy broadcasts them to.
var broadcastCases = []struct {
	name      string
	a, b, out []int
}{
	{"same", []int{3, 5}, []int{3, 5}, []int{3, 5}},
	{"row", []int{4, 5}, []int{5}, []int{4, 5}},
	{"row left", []int{5}, []int{4, 5}, []int{4, 5}},
	{"column", []int{4, 5}, []int{4, 1}, []int{4, 5}},
	{"scalar", []int{3, 5}, []int{}, []int{3, 5}},
	{"scalar left", []int{}, []int{3, 5}, []int{3, 5}},
	{"scalars", []int{}, []int{}, []int{}},
	{"vectors", []int{7}, []int{7}, []int{7}},
	{"both sides", []int{2, 1, 3}, []int{1, 4, 1}, []int{2, 4, 3}},
	{"outer", []int{5, 1}, []int{1, 3}, []int{5, 3}},
	{"rank 5 same", []int{2, 3, 1, 4, 3}, []int{2, 3, 1, 4, 3}, []int{2, 3, 1, 4, 3}},
	{"rank 5 row", []int{2, 3, 2, 2, 3}, []int{3}, []int{2, 3, 2, 2, 3}},
	{"rank 5 inner", []int{2, 3, 4, 5, 3}, []int{4, 1, 1}, []int{2, 3, 4, 5, 3}},
	{"rank 5 mixed", []int{2, 3, 1, 4, 5}, []int{1, 3, 1, 1, 5}, []int{2, 3, 1, 4, 5}},
	{"rank 5 both", []int{1, 1, 3, 1, 5}, []int{2, 3, 3, 4, 5}, []int{2, 3, 3, 4, 5}},
}

func TestBinaryBroadcast(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(6)
		for _, op := range binaryOps() {
			for _, c := range broadcastCases {
				name := op.name + " " + c.name
				a, av := randT(d, r, op.lo, op.hi, c.a...)
				b, bv := randT(d, r, op.lo, op.hi, c.b...)
				y := op.fn(a, b)
				checkShape(t, name, y, c.out...)
				want := make([]float32, numel(c.out))
				for i := range want {
					idx := unravel(i, c.out)
					want[i] = float32(op.ref(float64(at(av, c.a, idx)), float64(at(bv, c.b, idx))))
				}
				testutil.AllClose(t, name, y.Data(), want, atol, rtol)
				y.Free()
				a.Free()
				b.Free()
			}
		}
	})
}

func TestBinaryShapeErrors(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, c := range []struct{ a, b []int }{
			{[]int{2, 3}, []int{4}},
			{[]int{2, 3}, []int{3, 2}},
			{[]int{2, 1, 3}, []int{4, 2}},
			{[]int{5}, []int{4, 3}},
		} {
			a, b := tensor.Zeros(d, c.a...), tensor.Zeros(d, c.b...)
			for _, op := range binaryOps() {
				err := mustFail(t, op.name, tensor.ErrShape, func() { op.fn(a, b) })
				var te *tensor.Error
				errors.As(err, &te)
				if !strings.HasPrefix(op.name, te.Op) || len(te.Shapes) != 2 ||
					!slices.Equal(te.Shapes[0], c.a) || !slices.Equal(te.Shapes[1], c.b) {
					t.Errorf("%s %v %v: error %+v", op.name, c.a, c.b, te)
				}
			}
		}
	})
}

func TestErrorMessages(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		cases := []struct {
			name    string
			fn      func()
			mention []string
		}{
			{"add", func() { tensor.Add(tensor.Zeros(d, 2, 3), tensor.Zeros(d, 4)) }, []string{"add", "[2 3]", "[4]"}},
			{"mul", func() { tensor.Mul(tensor.Zeros(d, 5), tensor.Zeros(d, 2, 3)) }, []string{"mul", "[5]", "[2 3]"}},
			{"matmul", func() { tensor.MatMul(tensor.Zeros(d, 2, 3), tensor.Zeros(d, 4, 5), false, false) }, []string{"matmul", "[2 3]", "[4 5]"}},
			{"add in place", func() { tensor.Zeros(d, 2, 3).AddInPlace(tensor.Zeros(d, 2)) }, []string{"add in place", "[2 3]", "[2]"}},
			{"expand", func() { tensor.Expand(tensor.Zeros(d, 3), 4) }, []string{"expand", "[3]", "[4]"}},
			{"sum to", func() { tensor.SumTo(tensor.Zeros(d, 2, 3), []int{2}) }, []string{"sum to", "[2 3]", "[2]"}},
			{"gather", func() { tensor.Gather(tensor.Zeros(d, 4, 3), tensor.Zeros(d, 2, 2)) }, []string{"gather", "[4 3]", "[2 2]"}},
		}
		for _, c := range cases {
			err := mustFail(t, c.name, tensor.ErrShape, c.fn)
			msg := err.Error()
			if !strings.HasPrefix(msg, "tensor: ") {
				t.Errorf("%s: %q lacks the package prefix", c.name, msg)
			}
			for _, m := range c.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("%s: %q does not mention %q", c.name, msg, m)
				}
			}
		}
		// A panic that is not a *tensor.Error passes through Catch.
		func() {
			defer func() {
				if r := recover(); r != "other" {
					t.Errorf("Catch swallowed or changed a foreign panic: %v", r)
				}
			}()
			tensor.Catch(func() { panic("other") })
		}()
		if err := tensor.Catch(func() {}); err != nil {
			t.Errorf("Catch without a panic: %v", err)
		}
	})
}

func TestDifferentDevices(t *testing.T) {
	a := tensor.Zeros(device.NewCPU(1), 3)
	b := tensor.Zeros(device.NewCPU(1), 3)
	err := tensor.Catch(func() { tensor.Add(a, b) })
	if err == nil || !strings.Contains(err.Error(), "different devices") {
		t.Errorf("add across devices: %v", err)
	}
}

func TestAddInPlace(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(8)
		for _, c := range []struct{ dst, src []int }{
			{[]int{4, 5}, []int{4, 5}},
			{[]int{4, 5}, []int{5}},
			{[]int{4, 5}, []int{4, 1}},
			{[]int{4, 5}, []int{}},
			{[]int{2, 3, 4}, []int{3, 1}},
			{[]int{2, 3, 1, 4, 3}, []int{3, 1, 1, 3}},
			{[]int{}, []int{}},
		} {
			name := fmt.Sprint(c.dst, "+=", c.src)
			x, xv := randT(d, r, -1, 1, c.dst...)
			s, sv := randT(d, r, -1, 1, c.src...)
			x.AddInPlace(s)
			checkShape(t, name, x, c.dst...)
			want := make([]float32, len(xv))
			for i := range want {
				want[i] = xv[i] + at(sv, c.src, unravel(i, c.dst))
			}
			testutil.AllClose(t, name, x.Data(), want, atol, rtol)
		}
		for _, c := range []struct{ dst, src []int }{
			{[]int{4, 5}, []int{4}},
			{[]int{5}, []int{4, 5}},
			{[]int{4, 1}, []int{4, 5}},
		} {
			x, s := tensor.Zeros(d, c.dst...), tensor.Zeros(d, c.src...)
			mustFail(t, fmt.Sprint(c.dst, "+=", c.src), tensor.ErrShape, func() { x.AddInPlace(s) })
		}
	})
}

func TestUnary(t *testing.T) {
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	cases := []struct {
		name   string
		fn     func(x *tensor.Tensor) *tensor.Tensor
		ref    func(x float64) float64
		lo, hi float32
	}{
		{"neg", tensor.Neg, func(x float64) float64 { return -x }, -3, 3},
		{"exp", tensor.Exp, math.Exp, -3, 3},
		{"log", tensor.Log, math.Log, 0.01, 5},
		{"relu", tensor.Relu, func(x float64) float64 { return math.Max(x, 0) }, -3, 3},
		{"sigmoid", tensor.Sigmoid, sigmoid, -8, 8},
		{"tanh", tensor.Tanh, math.Tanh, -4, 4},
		{"sqrt", tensor.Sqrt, math.Sqrt, 0, 5},
		{"add scalar", func(x *tensor.Tensor) *tensor.Tensor { return tensor.AddScalar(x, 1.25) }, func(x float64) float64 { return x + 1.25 }, -3, 3},
		{"mul scalar", func(x *tensor.Tensor) *tensor.Tensor { return tensor.MulScalar(x, -0.75) }, func(x float64) float64 { return x * -0.75 }, -3, 3},
		{"pow scalar", func(x *tensor.Tensor) *tensor.Tensor { return tensor.PowScalar(x, 2.5) }, func(x float64) float64 { return math.Pow(x, 2.5) }, 0.1, 3},
		{"square", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Unary(device.Square, x, 0) }, func(x float64) float64 { return x * x }, -3, 3},
		{"clone", func(x *tensor.Tensor) *tensor.Tensor { return x.Clone() }, func(x float64) float64 { return x }, -3, 3},
		{"scale in place", func(x *tensor.Tensor) *tensor.Tensor { y := x.Clone(); y.ScaleInPlace(3); return y }, func(x float64) float64 { return 3 * x }, -3, 3},
		{"fill", func(x *tensor.Tensor) *tensor.Tensor { y := x.Clone(); y.Fill(0.5); return y }, func(float64) float64 { return 0.5 }, -3, 3},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(9)
		for _, c := range cases {
			for _, shape := range [][]int{{}, {7}, {3, 11}, {2, 3, 1, 5, 2}} {
				name := fmt.Sprint(c.name, shape)
				x, v := randT(d, r, c.lo, c.hi, shape...)
				y := c.fn(x)
				checkShape(t, name, y, shape...)
				want := make([]float32, len(v))
				for i := range v {
					want[i] = float32(c.ref(float64(v[i])))
				}
				testutil.AllClose(t, name, y.Data(), want, atol, rtol)
				testutil.AllClose(t, name+" input", x.Data(), v, 0, 0)
			}
		}
	})
}

// matmulRef computes op(a)·op(b) with a stored [m,k] (or [k,m] when ta)
// and b stored [k,n] (or [n,k] when tb).
func matmulRef(a, b []float32, m, k, n int, ta, tb bool) []float32 {
	out := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				ai, bi := i*k+p, p*n+j
				if ta {
					ai = p*m + i
				}
				if tb {
					bi = j*k + p
				}
				s += float64(a[ai]) * float64(b[bi])
			}
			out[i*n+j] = float32(s)
		}
	}
	return out
}

func TestMatMul(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(10)
		for _, sz := range [][3]int{{3, 5, 7}, {1, 9, 1}, {13, 1, 6}, {17, 33, 65}} {
			m, k, n := sz[0], sz[1], sz[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					name := fmt.Sprintf("%dx%dx%d ta=%v tb=%v", m, k, n, ta, tb)
					as, bs := []int{m, k}, []int{k, n}
					if ta {
						as = []int{k, m}
					}
					if tb {
						bs = []int{n, k}
					}
					a, av := randT(d, r, -1, 1, as...)
					b, bv := randT(d, r, -1, 1, bs...)
					want := matmulRef(av, bv, m, k, n, ta, tb)
					y := tensor.MatMul(a, b, ta, tb)
					checkShape(t, name, y, m, n)
					testutil.AllClose(t, name, y.Data(), want, 1e-5, 1e-4)

					dst, dv := randT(d, r, -1, 1, m, n)
					tensor.MatMulAcc(dst, a, b, ta, tb)
					for i := range want {
						want[i] += dv[i]
					}
					testutil.AllClose(t, name+" acc", dst.Data(), want, 1e-5, 1e-4)

					// MatMulInto overwrites, even a destination holding NaNs.
					dst.Fill(float32(math.NaN()))
					tensor.MatMulInto(dst, a, b, ta, tb, false)
					testutil.AllClose(t, name+" into", dst.Data(), matmulRef(av, bv, m, k, n, ta, tb), 1e-5, 1e-4)
				}
			}
		}
		a, b := tensor.Zeros(d, 2, 3), tensor.Zeros(d, 4, 5)
		mustFail(t, "inner mismatch", tensor.ErrShape, func() { tensor.MatMul(a, b, false, false) })
		mustFail(t, "inner mismatch transposed", tensor.ErrShape, func() { tensor.MatMul(a, a, false, false) })
		if y := tensor.MatMul(a, a, false, true); !slices.Equal(y.Shape(), []int{2, 2}) {
			t.Errorf("a·aᵀ: shape %v", y.Shape())
		}
		mustFail(t, "vector operand", tensor.ErrShape, func() { tensor.MatMul(tensor.Zeros(d, 3), b, false, false) })
		mustFail(t, "rank-3 operand", tensor.ErrShape, func() { tensor.MatMul(tensor.Zeros(d, 1, 2, 3), a, false, false) })
		mustFail(t, "acc into wrong shape", tensor.ErrShape, func() { tensor.MatMulAcc(tensor.Zeros(d, 3, 3), a, a, false, true) })
	})
}

// reduceRef reduces data, contiguous of shape, along axis.
func reduceRef(op string, data []float32, shape []int, axis int) []float32 {
	outer, n, inner := numel(shape[:axis]), shape[axis], numel(shape[axis+1:])
	out := make([]float32, outer*inner)
	for o := range outer {
		for i := range inner {
			var acc float64
			best := math.Inf(-1)
			arg := 0
			for j := range n {
				x := float64(data[(o*n+j)*inner+i])
				acc += x
				if x > best {
					best, arg = x, j
				}
			}
			switch op {
			case "sum":
				out[o*inner+i] = float32(acc)
			case "mean":
				out[o*inner+i] = float32(acc / float64(n))
			case "max":
				out[o*inner+i] = float32(best)
			case "argmax":
				out[o*inner+i] = float32(arg)
			}
		}
	}
	return out
}

func TestInto(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(21)
		x, xv := randT(d, r, -2, 2, 5, 7)
		row, rv := randT(d, r, -2, 2, 7)
		dst := tensor.Full(d, float32(math.NaN()), 5, 7)
		tensor.UnaryInto(device.Relu, dst, x, 0)
		want := make([]float32, len(xv))
		for i, v := range xv {
			want[i] = max(v, 0)
		}
		testutil.AllClose(t, "relu into", dst.Data(), want, 0, 0)
		tensor.BinaryInto(device.Sub, dst, x, row)
		for i, v := range xv {
			want[i] = v - rv[i%7]
		}
		testutil.AllClose(t, "sub row into", dst.Data(), want, 0, 0)
		tensor.BinaryInto(device.Mul, x, x, x) // in place
		for i, v := range xv {
			want[i] = v * v
		}
		testutil.AllClose(t, "square in place", x.Data(), want, 0, 0)
		mustFail(t, "into a broadcast operand", tensor.ErrShape, func() { tensor.BinaryInto(device.Add, row, x, row) })
		mustFail(t, "unary into a smaller tensor", tensor.ErrShape, func() { tensor.UnaryInto(device.Neg, row, x, 0) })
		mustFail(t, "matmul into a smaller tensor", tensor.ErrShape, func() { tensor.MatMulInto(row, x, x, true, false, false) })
	})
}

// copyOnly hides the optional interfaces of the device it wraps.
type copyOnly struct{ device.Device }

func TestAdopt(t *testing.T) {
	cpu := device.NewCPU(1)
	data := []float32{1, 2, 3, 4, 5, 6}
	x := tensor.Adopt(cpu, data, 2, 3)
	checkShape(t, "adopted", x, 2, 3)
	data[4] = 42 // the CPU tensor is data itself
	testutil.AllClose(t, "adopted on the cpu", x.Data(), []float32{1, 2, 3, 4, 42, 6}, 0, 0)
	other := copyOnly{cpu}
	y := tensor.Adopt(other, data, 3, 2)
	data[0] = -1 // other devices copy
	testutil.AllClose(t, "adopted elsewhere", y.Data(), []float32{1, 2, 3, 4, 42, 6}, 0, 0)
	mustFail(t, "wrong size", tensor.ErrShape, func() { tensor.Adopt(cpu, data, 4, 2) })
	checkShape(t, "empty", tensor.Adopt(cpu, nil, 0, 5), 0, 5)
}

func TestReuse(t *testing.T) {
	d := device.NewCPU(1)
	x := tensor.Zeros(d, 2, 3)
	if y := tensor.Reuse(x, d, 2, 3); y != x {
		t.Fatal("Reuse of a tensor of the right shape returned another")
	}
	if y := tensor.ReuseLike(x, tensor.Zeros(d, 2, 3)); y != x {
		t.Fatal("ReuseLike of a tensor of the right shape returned another")
	}
	// A view shares the storage: writing x would change it.
	v := x.Reshape(6)
	y := tensor.Reuse(x, d, 2, 3)
	if y == x {
		t.Fatal("Reuse returned a tensor that a view shares")
	}
	checkShape(t, "reused with a view", y, 2, 3)
	testutil.AllClose(t, "view after reuse", v.Data(), make([]float32, 6), 0, 0)
	z := tensor.Reuse(y, d, 3, 2)
	checkShape(t, "reused with another shape", z, 3, 2)
	mustFail(t, "the replaced tensor is freed", tensor.ErrFreed, func() { y.Data() })
	w := tensor.Reuse(nil, d)
	checkShape(t, "from nil", w)
	// A freed tensor is never handed back.
	w.Free()
	if u := tensor.Reuse(w, d); u == w {
		t.Fatal("Reuse returned a freed tensor")
	}
}

// TestNoAllocs checks that the elementwise operations of a training step
// allocate nothing on the CPU once their outputs exist. (Matrix products
// are left to internal/sgemm's own tests.)
func TestNoAllocs(t *testing.T) {
	d := device.NewCPU(1)
	r := newRand(22)
	a, _ := randT(d, r, -1, 1, 16, 8)
	dst := tensor.New(d, 16, 4)
	idx := tensor.FromSlice(d, []float32{3, 1}, 2)
	rows := tensor.New(d, 2, 8)
	scalar := tensor.Scalar(d, 3)
	for name, fn := range map[string]func(){
		"fill":         func() { dst.Fill(0) },
		"add in place": func() { dst.AddInPlace(dst) },
		"gather into":  func() { tensor.GatherInto(rows, a, idx) },
		"reuse":        func() { dst = tensor.Reuse(dst, d, 16, 4) },
		"binary into":  func() { tensor.BinaryInto(device.Mul, dst, dst, scalar) },
		"copy into":    func() { tensor.CopyInto(rows, rows) },
	} {
		if n := testing.AllocsPerRun(10, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

func TestReduce(t *testing.T) {
	ops := []struct {
		name string
		fn   func(x *tensor.Tensor, axis int, keep bool) *tensor.Tensor
		all  func(x *tensor.Tensor) *tensor.Tensor
	}{
		{"sum", tensor.Sum, tensor.SumAll},
		{"mean", tensor.Mean, tensor.MeanAll},
		{"max", tensor.Max, tensor.MaxAll},
		{"argmax", func(x *tensor.Tensor, axis int, keep bool) *tensor.Tensor {
			return tensor.Reduce(device.ArgMax, x, axis, keep)
		}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.ReduceAll(device.ArgMax, x) }},
	}
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(11)
		shape := []int{3, 4, 5}
		x, v := randT(d, r, -2, 2, shape...)
		for _, op := range ops {
			for axis := -3; axis < 3; axis++ {
				a := (axis + 3) % 3
				want := reduceRef(op.name, v, shape, a)
				for _, keep := range []bool{false, true} {
					name := fmt.Sprintf("%s axis %d keep %v", op.name, axis, keep)
					ws := slices.Clone(shape)
					if keep {
						ws[a] = 1
					} else {
						ws = slices.Delete(ws, a, a+1)
					}
					y := op.fn(x, axis, keep)
					checkShape(t, name, y, ws...)
					testutil.AllClose(t, name, y.Data(), want, atol, rtol)
				}
			}
			all := op.all(x)
			checkShape(t, op.name+" all", all)
			testutil.AllClose(t, op.name+" all", all.Data(), reduceRef(op.name, v, []int{len(v)}, 0), atol, rtol)
		}
		am := tensor.ArgMax(x, 1)
		checkShape(t, "ArgMax", am, 3, 5)
		testutil.AllClose(t, "ArgMax", am.Data(), reduceRef("argmax", v, shape, 1), 0, 0)
		// The first of equal maxima wins.
		tie := tensor.FromSlice(d, []float32{1, 3, 3, 2, 5, 5, 5, 0}, 2, 4)
		testutil.AllClose(t, "ArgMax ties", tensor.ArgMax(tie, 1).Data(), []float32{1, 0}, 0, 0)
		// A large vector: float32 accumulation error stays small.
		big, bv := randT(d, r, 0, 1, 100003)
		testutil.AllClose(t, "sum all large", tensor.SumAll(big).Data(), reduceRef("sum", bv, []int{len(bv)}, 0), 0, 1e-5)
		mustFail(t, "axis out of range", tensor.ErrShape, func() { tensor.Sum(x, 3, false) })
		mustFail(t, "negative axis out of range", tensor.ErrShape, func() { tensor.Max(x, -4, true) })
	})
}

// sumToRef sums data, contiguous of shape in, into out, which in broadcasts from.
func sumToRef(data []float32, in, out []int) []float32 {
	acc := make([]float64, numel(out))
	for i, x := range data {
		idx := unravel(i, in)
		off, stride := 0, 1
		for j := len(out) - 1; j >= 0; j-- {
			if out[j] != 1 {
				off += idx[len(in)-len(out)+j] * stride
			}
			stride *= out[j]
		}
		acc[off] += float64(x)
	}
	res := make([]float32, len(acc))
	for i, a := range acc {
		res[i] = float32(a)
	}
	return res
}

func TestSumTo(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(12)
		for _, c := range []struct{ in, out []int }{
			{[]int{2, 3, 4}, []int{2, 3, 4}},
			{[]int{2, 3, 4}, []int{3, 4}},
			{[]int{2, 3, 4}, []int{4}},
			{[]int{2, 3, 4}, []int{1, 4}},
			{[]int{2, 3, 4}, []int{3, 1}},
			{[]int{2, 3, 4}, []int{2, 1, 4}},
			{[]int{2, 3, 4}, []int{1, 1, 1}},
			{[]int{2, 3, 4}, []int{}},
			{[]int{5, 1}, []int{1}},
			{[]int{1, 3}, []int{3}},
			{[]int{3, 1}, []int{3, 1}},
			{[]int{2, 3, 1, 4, 5}, []int{3, 1, 1, 5}},
			{[]int{}, []int{}},
		} {
			name := fmt.Sprint(c.in, "->", c.out)
			x, v := randT(d, r, -1, 1, c.in...)
			y := tensor.SumTo(x, c.out)
			checkShape(t, name, y, c.out...)
			testutil.AllClose(t, name, y.Data(), sumToRef(v, c.in, c.out), atol, rtol)
			testutil.AllClose(t, name+" input", x.Data(), v, 0, 0)
		}

		// SumTo inverts broadcasting: for every broadcast case, summing the
		// broadcast of ones gives the number of copies of each element.
		for _, c := range broadcastCases {
			ones := tensor.Expand(tensor.Ones(d, c.b...), c.out...)
			got := tensor.SumTo(ones, c.b)
			checkShape(t, "inverse "+c.name, got, c.b...)
			want := make([]float32, numel(c.b))
			for i := range want {
				want[i] = float32(numel(c.out) / numel(c.b))
			}
			testutil.AllClose(t, "inverse "+c.name, got.Data(), want, 0, 0)
		}

		for _, c := range []struct{ in, out []int }{
			{[]int{2, 3}, []int{3, 2}},
			{[]int{2, 3}, []int{2}},
			{[]int{1, 3}, []int{3, 1}},
			{[]int{3}, []int{3, 1}},
			{[]int{3}, []int{2, 3}},
		} {
			x := tensor.Zeros(d, c.in...)
			mustFail(t, fmt.Sprint("sum ", c.in, " to ", c.out), tensor.ErrShape, func() { tensor.SumTo(x, c.out) })
		}
	})
}

// softmaxRef computes the (log-)softmax of data, contiguous of shape,
// along axis, in float64.
func softmaxRef(data []float32, shape []int, axis int, log bool) []float32 {
	outer, n, inner := numel(shape[:axis]), shape[axis], numel(shape[axis+1:])
	out := make([]float32, len(data))
	for o := range outer {
		for i := range inner {
			idx := func(j int) int { return (o*n+j)*inner + i }
			m := math.Inf(-1)
			for j := range n {
				m = math.Max(m, float64(data[idx(j)]))
			}
			var s float64
			for j := range n {
				s += math.Exp(float64(data[idx(j)]) - m)
			}
			for j := range n {
				z := float64(data[idx(j)]) - m
				if log {
					out[idx(j)] = float32(z - math.Log(s))
				} else {
					out[idx(j)] = float32(math.Exp(z) / s)
				}
			}
		}
	}
	return out
}

func TestSoftmax(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(13)
		shape := []int{3, 4, 5}
		for _, shift := range []float32{0, 1000} {
			x, v := randT(d, r, -4+shift, 4+shift, shape...)
			for axis := -3; axis < 3; axis++ {
				a := (axis + 3) % 3
				name := fmt.Sprintf("axis %d shift %v", axis, shift)
				p := tensor.Softmax(x, axis)
				checkShape(t, "softmax "+name, p, shape...)
				testutil.AllClose(t, "softmax "+name, p.Data(), softmaxRef(v, shape, a, false), atol, 1e-4)
				ones := make([]float32, len(v)/shape[a])
				for i := range ones {
					ones[i] = 1
				}
				testutil.AllClose(t, "softmax sums "+name, tensor.Sum(p, axis, false).Data(), ones, 1e-5, 0)

				lp := tensor.LogSoftmax(x, axis)
				checkShape(t, "log softmax "+name, lp, shape...)
				testutil.AllClose(t, "log softmax "+name, lp.Data(), softmaxRef(v, shape, a, true), 1e-5, 1e-4)
			}
			testutil.AllClose(t, "softmax input", x.Data(), v, 0, 0)
		}
		mustFail(t, "axis out of range", tensor.ErrShape, func() { tensor.Softmax(tensor.Zeros(d, 2, 3), 2) })
	})
}

func TestGather(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(14)
		src, sv := randT(d, r, -1, 1, 6, 3, 2)
		rows := []float32{5, 0, 0, 3, 5, 1, 2}
		idx := tensor.FromSlice(d, rows)
		want := make([]float32, 0, len(rows)*6)
		for _, i := range rows {
			want = append(want, sv[int(i)*6:int(i)*6+6]...)
		}
		g := tensor.Gather(src, idx)
		checkShape(t, "gather", g, 7, 3, 2)
		testutil.AllClose(t, "gather", g.Data(), want, 0, 0)

		dst := tensor.Full(d, 9, 7, 3, 2)
		tensor.GatherInto(dst, src, idx)
		testutil.AllClose(t, "gather into", dst.Data(), want, 0, 0)

		vec, vv := randT(d, r, -1, 1, 4)
		gv := tensor.Gather(vec, tensor.FromSlice(d, []float32{3, 1}))
		checkShape(t, "gather from a vector", gv, 2)
		testutil.AllClose(t, "gather from a vector", gv.Data(), []float32{vv[3], vv[1]}, 0, 0)

		mustFail(t, "index matrix", tensor.ErrShape, func() { tensor.Gather(src, tensor.Zeros(d, 2, 2)) })
		mustFail(t, "scalar source", tensor.ErrShape, func() { tensor.Gather(tensor.Scalar(d, 1), idx) })
		mustFail(t, "wrong destination", tensor.ErrShape, func() { tensor.GatherInto(tensor.Zeros(d, 7, 3), src, idx) })
		for _, bad := range []float32{6, -1, 1.5} {
			// A device may report a bad index when it next synchronises.
			err := tensor.Catch(func() { tensor.Gather(src, tensor.FromSlice(d, []float32{0, bad})).Free() })
			if err == nil {
				err = d.Sync()
			}
			if err == nil || !strings.Contains(err.Error(), "gather") {
				t.Errorf("gather of row %v: error %v", bad, err)
			}
		}
	})
}

func TestHostCopies(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(15)
		x, v := randT(d, r, -1, 1, 3, 7)
		got := x.Data()
		testutil.AllClose(t, "data", got, v, 0, 0)
		got[0] = 42 // Data returns a copy
		if x.Data()[0] == 42 {
			t.Error("Data aliases the tensor")
		}
		dst := make([]float32, 21)
		x.CopyTo(dst)
		testutil.AllClose(t, "copy to", dst, v, 0, 0)
		w := testutil.RandSlice(r, 21, 5, 6)
		x.CopyFrom(w)
		testutil.AllClose(t, "copy from", x.Data(), w, 0, 0)
		on := x.To(device.NewCPU(1))
		checkShape(t, "to", on, 3, 7)
		testutil.AllClose(t, "to", on.Data(), w, 0, 0)

		if got := tensor.FromSlice(d, []float32{-3.5}, 1, 1, 1).Item(); got != -3.5 {
			t.Errorf("item: %v", got)
		}
		if s := tensor.Scalar(d, 2).String(); s != "Tensor[][2]" {
			t.Errorf("String: %q", s)
		}
		mustFail(t, "copy to short", tensor.ErrShape, func() { x.CopyTo(make([]float32, 20)) })
		mustFail(t, "copy from long", tensor.ErrShape, func() { x.CopyFrom(make([]float32, 22)) })
		mustFail(t, "item of many", tensor.ErrShape, func() { x.Item() })
		if !tensor.SameShape(x, tensor.Zeros(d, 3, 7)) || tensor.SameShape(x, tensor.Zeros(d, 7, 3)) ||
			!tensor.SameShape(tensor.Scalar(d, 1), tensor.Scalar(d, 2)) {
			t.Error("SameShape is wrong on plain shapes")
		}
		if tensor.SameShape(tensor.Zeros(d, 3), tensor.Zeros(d, 1, 3)) || tensor.SameShape(tensor.Zeros(d, 3, 1), tensor.Zeros(d, 3)) {
			t.Error("SameShape says a vector has the shape of a one-row or one-column matrix")
		}
	})
}

func TestUseAfterFree(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		x := tensor.Ones(d, 2, 3)
		y := tensor.Ones(d, 2, 3)
		x.Free()
		x.Free() // harmless
		if s := x.String(); !strings.Contains(s, "freed") {
			t.Errorf("String of a freed tensor: %q", s)
		}
		cases := map[string]func(){
			"data":      func() { x.Data() },
			"item":      func() { x.Reshape(6).Item() },
			"add":       func() { tensor.Add(x, y) },
			"add right": func() { tensor.Add(y, x) },
			"exp":       func() { tensor.Exp(x) },
			"sum":       func() { tensor.Sum(x, 0, false) },
			"matmul":    func() { tensor.MatMul(x, y, false, true) },
			"transpose": func() { tensor.T(x) },
			"copy from": func() { x.CopyFrom(make([]float32, 6)) },
			"fill":      func() { x.Fill(1) },
			"clone":     func() { x.Clone() },
			"reshape":   func() { x.Reshape(3, 2) },
			"in place":  func() { y.AddInPlace(x) },
			"buffer":    func() { x.Buffer() },
		}
		for name, fn := range cases {
			mustFail(t, name, tensor.ErrFreed, fn)
		}
		var nilT *tensor.Tensor
		nilT.Free() // harmless
	})
}

func TestNpyRoundTrip(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(17)
		for _, shape := range [][]int{{2, 3, 4}, {7}, {1, 3}, {}, {0, 3}, {0}} {
			name := fmt.Sprint(shape)
			v := testutil.RandSlice(r, numel(shape), -1e3, 1e3)
			if len(v) >= 4 {
				v[0], v[1], v[2], v[3] = float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32
			}
			x := tensor.FromSlice(d, v, shape...)
			var buf bytes.Buffer
			if err := x.WriteNpy(&buf); err != nil {
				t.Fatalf("write %s: %v", name, err)
			}
			if !bytes.HasPrefix(buf.Bytes(), []byte("\x93NUMPY\x01\x00")) || (buf.Len()-4*len(v))%16 != 0 {
				t.Errorf("write %s: %d bytes with header %q", name, buf.Len(), buf.Bytes()[:min(buf.Len(), 12)])
			}
			y, err := tensor.ReadNpy(d, &buf)
			if err != nil {
				t.Fatalf("read %s: %v", name, err)
			}
			checkShape(t, "npy "+name, y, shape...)
			for i, g := range y.Data() {
				if math.Float32bits(g) != math.Float32bits(v[i]) {
					t.Errorf("npy %s: [%d] = %v, want %v", name, i, g, v[i])
					break
				}
			}
			if buf.Len() != 0 {
				t.Errorf("npy %s: %d bytes left unread", name, buf.Len())
			}
		}
	})
}

// npyFile returns a version 1.0 .npy file of the given header dictionary and payload.
func npyFile(dict string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	b.Write(payload)
	return b.Bytes()
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestReadNpy(t *testing.T) {
	d := device.NewCPU(1)
	dict := func(descr, order, shape string) string {
		return fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }\n", descr, order, shape)
	}
	good := npyFile(dict("<f4", "False", "(2, 2)"), f32bytes(1, 2, 3, 4))
	x, err := tensor.ReadNpy(d, bytes.NewReader(good))
	if err != nil {
		t.Fatalf("a hand-made file: %v", err)
	}
	checkShape(t, "hand-made", x, 2, 2)
	testutil.AllClose(t, "hand-made", x.Data(), []float32{1, 2, 3, 4}, 0, 0)

	bad := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"magic", append([]byte("\x93NUMPX"), good[6:]...)},
		{"version 2", append([]byte("\x93NUMPY\x02\x00"), good[8:]...)},
		{"version 1.1", append([]byte("\x93NUMPY\x01\x01"), good[8:]...)},
		{"no header length", good[:9]},
		{"short header", good[:20]},
		{"short data", good[:len(good)-1]},
		{"no data", good[:len(good)-16]},
		{"float64", npyFile(dict("<f8", "False", "(2,)"), f32bytes(1, 2, 3, 4))},
		{"int32", npyFile(dict("<i4", "False", "(2,)"), f32bytes(1, 2))},
		{"big endian", npyFile(dict(">f4", "False", "(2,)"), f32bytes(1, 2))},
		{"no byte order", npyFile(dict("f4", "False", "(2,)"), f32bytes(1, 2))},
		{"empty descr", npyFile(dict("", "False", "(2,)"), f32bytes(1, 2))},
		{"fortran", npyFile(dict("<f4", "True", "(2, 2)"), f32bytes(1, 2, 3, 4))},
		{"no descr", npyFile("{'fortran_order': False, 'shape': (2,), }", f32bytes(1, 2))},
		{"no order", npyFile("{'descr': '<f4', 'shape': (2,), }", f32bytes(1, 2))},
		{"no shape", npyFile("{'descr': '<f4', 'fortran_order': False, }", f32bytes(1, 2))},
		{"negative dimension", npyFile(dict("<f4", "False", "(-1,)"), f32bytes(1))},
		{"letter dimension", npyFile(dict("<f4", "False", "(a,)"), f32bytes(1))},
		{"empty dimension", npyFile(dict("<f4", "False", "(1,,2)"), f32bytes(1, 2))},
		{"huge dimension", npyFile(dict("<f4", "False", "(1099511627776,)"), f32bytes(1, 2))},
		{"overflowing shape", npyFile(dict("<f4", "False", "(4294967296, 4294967296, 4294967296)"), f32bytes(1))},
		{"unclosed shape", npyFile(dict("<f4", "False", "(2,"), f32bytes(1, 2))},
	}
	for _, c := range bad {
		var y *tensor.Tensor
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", c.name, r)
				}
			}()
			y, err = tensor.ReadNpy(d, bytes.NewReader(c.in))
		}()
		if err == nil || y != nil {
			t.Errorf("%s: got %v, %v; want an error", c.name, y, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tensor: read npy: ") {
			t.Errorf("%s: error %q lacks the prefix", c.name, err)
		}
	}
}
