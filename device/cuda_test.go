//go:build cuda

package device_test

// The CUDA backend against the CPU backend: every operation on fresh random
// inputs at odd shapes, compared with testutil.AllClose, whose messages name
// the op, the shape and the first mismatching (flat) indices. The tests
// shared with the CPU (cpu_test.go, through testutil.ForEachDevice) also run
// on the GPU in this build.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// cuShared is the GPU most tests share: one module load for the binary.
var cuShared = sync.OnceValues(func() (*device.CUDA, error) {
	d, err := device.NewCUDA(0)
	if err != nil {
		return nil, err
	}
	return d.(*device.CUDA), nil
})

func cuDevice(t testing.TB) *device.CUDA {
	t.Helper()
	d, err := cuShared()
	if err != nil {
		t.Fatalf("opening the GPU: %v", err)
	}
	return d
}

// cuPair runs each operation on the CPU and on the GPU with the same inputs.
type cuPair struct {
	t   *testing.T
	cpu *device.CPU
	gpu *device.CUDA
}

func newCuPair(t *testing.T) *cuPair {
	return &cuPair{t: t, cpu: device.NewCPU(0), gpu: cuDevice(t)}
}

// bufs uploads each slice to both devices and frees the buffers when the
// test ends.
func (p *cuPair) bufs(vals ...[]float32) (cpu, gpu []device.Buffer) {
	p.t.Helper()
	for _, v := range vals {
		for _, d := range []device.Device{p.cpu, p.gpu} {
			b := testutil.Upload(p.t, d, v)
			p.t.Cleanup(func() { d.Free(b) })
			if d == device.Device(p.cpu) {
				cpu = append(cpu, b)
			} else {
				gpu = append(gpu, b)
			}
		}
	}
	return cpu, gpu
}

// do runs f on the CPU with the CPU buffers and on the GPU with the GPU
// buffers, failing the test if either returns an error.
func (p *cuPair) do(name string, cpu, gpu []device.Buffer, f func(d device.Device, b []device.Buffer) error) {
	p.t.Helper()
	if err := f(p.cpu, cpu); err != nil {
		p.t.Fatalf("%s on the cpu: %v", name, err)
	}
	if err := f(p.gpu, gpu); err != nil {
		p.t.Fatalf("%s on the gpu: %v", name, err)
	}
}

// same compares the first n values of a GPU buffer with its CPU twin.
func (p *cuPair) same(name string, cpu, gpu device.Buffer, n int, atol, rtol float64) bool {
	p.t.Helper()
	want := testutil.Download(p.t, p.cpu, cpu, n)
	got := testutil.Download(p.t, p.gpu, gpu, n)
	return testutil.AllClose(p.t, name, got, want, atol, rtol)
}

// cuRand returns n values in [lo, hi) with magnitude at least 0.05.
func cuRand(r *rand.Rand, n int, lo, hi float32) []float32 {
	s := testutil.RandSlice(r, n, lo, hi)
	for i, v := range s {
		if v > -0.05 && v < 0.05 {
			s[i] = max(lo, 0.05)
		}
	}
	return s
}

// cuJunk is an output buffer's initial contents: a sentinel that shows
// unwritten values.
func cuJunk(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = -12345
	}
	return s
}

// cuSizes are the lengths of the elementwise tests; -test.short (as under
// compute-sanitizer, where kernels run far slower) leaves out 2^20.
func cuSizes() []int {
	if testing.Short() {
		return []int{1, 7, 129, 1000, 4097}
	}
	return []int{1, 7, 129, 1000, 4097, 1 << 20}
}

func TestCUDAImplementsEverything(t *testing.T) {
	var d device.Device = cuDevice(t)
	if d.Name() != "cuda" {
		t.Errorf("Name() = %q", d.Name())
	}
	if _, ok := d.(device.SoftmaxCE); !ok {
		t.Error("no SoftmaxCE")
	}
	if _, ok := d.(device.BiasAct); !ok {
		t.Error("no BiasAct")
	}
	if _, ok := d.(device.BiasActGrad); !ok {
		t.Error("no BiasActGrad")
	}
	if _, ok := d.(device.Optimizers); !ok {
		t.Error("no Optimizers")
	}
	if _, ok := d.(device.MultiOptimizers); !ok {
		t.Error("no MultiOptimizers")
	}
	t.Logf("GPU: %s", cuDevice(t).GPU())
	// Every op value the enums name runs on the device (none falls back to
	// the host, there is no host path), and the first value past them fails.
	const n = 37
	r := rand.New(rand.NewPCG(1, 2))
	b := testutil.Upload(t, d, cuRand(r, n, 0.1, 2))
	out := testutil.Upload(t, d, cuJunk(n))
	defer d.Free(b)
	defer d.Free(out)
	ops := 0
	for op := device.UnaryOp(0); !strings.HasPrefix(op.String(), "UnaryOp("); op++ {
		if err := d.Unary(op, out, b, n, 0.5, 0); err != nil {
			t.Errorf("unary %v: %v", op, err)
		}
		ops++
	}
	table := 0
	for _, o := range device.Ops() {
		if o.Kind == device.KindUnary {
			table++
		}
	}
	if ops != table {
		t.Errorf("%d unary ops, the op table has %d", ops, table)
	}
	if err := d.Unary(device.UnaryOp(ops), out, b, n, 0, 0); err == nil {
		t.Errorf("unary op %d: no error", ops)
	}
	ops = 0
	for op := device.BinaryOp(0); !strings.HasPrefix(op.String(), "BinaryOp("); op++ {
		if err := d.Binary(op, out, b, b, device.Contiguous(n), 0, 0); err != nil {
			t.Errorf("binary %v: %v", op, err)
		}
		ops++
	}
	if err := d.Binary(device.BinaryOp(ops), out, b, b, device.Contiguous(n), 0, 0); err == nil {
		t.Errorf("binary op %d: no error", ops)
	}
	ops = 0
	for op := device.ReduceOp(0); !strings.HasPrefix(op.String(), "ReduceOp("); op++ {
		if err := d.Reduce(op, out, b, 1, n, 1); err != nil {
			t.Errorf("reduce %v: %v", op, err)
		}
		ops++
	}
	if err := d.Reduce(device.ReduceOp(ops), out, b, 1, n, 1); err == nil {
		t.Errorf("reduce op %d: no error", ops)
	}
	for act := device.Identity; act <= device.ActTanh; act++ {
		if err := d.(device.BiasAct).BiasAct(out, b, b, 1, n, act); err != nil {
			t.Errorf("bias act %d: %v", act, err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Error(err)
	}
}

// cuUnaryCase is a unary op with its alpha and input range.
type cuUnaryCase struct {
	op     device.UnaryOp
	alpha  float32
	lo, hi float32
}

func TestCUDAUnary(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(3, 1))
	cases := []cuUnaryCase{
		{device.Neg, 0, -2, 2}, {device.Exp, 0, -5, 5}, {device.Log, 0, 0.01, 10}, {device.Relu, 0, -2, 2},
		{device.Sigmoid, 0, -8, 8}, {device.Tanh, 0, -4, 4}, {device.Sqrt, 0, 0.01, 10},
		{device.AddScalar, 0.75, -2, 2}, {device.MulScalar, -1.5, -2, 2}, {device.PowScalar, 2, -2, 2},
		{device.PowScalar, 3, -2, 2}, {device.PowScalar, 0.5, 0.01, 4}, {device.PowScalar, -1.25, 0.1, 4},
		{device.Square, 0, -2, 2},
	}
	for _, c := range cases {
		for _, n := range cuSizes() {
			name := fmt.Sprintf("unary %v alpha %v [%d]", c.op, c.alpha, n)
			cb, gb := p.bufs(cuRand(r, n, c.lo, c.hi), cuJunk(n+1))
			p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
				return d.Unary(c.op, b[1], b[0], n, c.alpha, 0)
			})
			// The value past n must stay untouched.
			p.same(name, cb[1], gb[1], n+1, 1e-6, 4e-6)
		}
	}
}

// cuWalk is a walk with the lengths of the inputs it reads.
type cuWalk struct {
	name   string
	w      device.Walk
	na, nb int
}

func cuShape(s ...int) [device.MaxDims]int {
	r := [device.MaxDims]int{1, 1, 1, 1, 1, 1}
	copy(r[device.MaxDims-len(s):], s)
	return r
}

func cuStrides(s ...int) [device.MaxDims]int {
	var r [device.MaxDims]int
	copy(r[device.MaxDims-len(s):], s)
	return r
}

func cuWalks(big bool) []cuWalk {
	var ws []cuWalk
	for _, n := range cuSizes() {
		ws = append(ws, cuWalk{fmt.Sprint("contiguous ", n), device.Contiguous(n), n, n})
	}
	ws = append(ws,
		cuWalk{"bias row 129x1000", device.Walk{Shape: cuShape(129, 1000), A: cuStrides(1000, 1), B: cuStrides(0, 1)}, 129000, 1000},
		cuWalk{"column 1000x7", device.Walk{Shape: cuShape(1000, 7), A: cuStrides(7, 1), B: cuStrides(1, 0)}, 7000, 1000},
		cuWalk{"scalar 4097", device.Walk{Shape: cuShape(4097), A: cuStrides(1), B: cuStrides(0)}, 4097, 1},
		cuWalk{"transposed 129x7", device.Walk{Shape: cuShape(7, 129), A: cuStrides(1, 7), B: cuStrides(129, 1)}, 903, 903},
		cuWalk{"strided 1000 by 3", device.Walk{Shape: cuShape(1000), A: cuStrides(3), B: cuStrides(1)}, 2998, 1000},
		cuWalk{"4d permuted 3x7x5x9", device.Walk{Shape: cuShape(3, 7, 5, 9), A: cuStrides(1, 3, 21, 105), B: cuStrides(45, 0, 9, 1)}, 945, 135},
		cuWalk{"4d broadcast 2x1x129x1", device.Walk{Shape: cuShape(2, 3, 129, 7), A: cuStrides(129, 0, 1, 0), B: cuStrides(0, 7, 0, 1)}, 258, 21},
		cuWalk{"empty", device.Walk{Shape: cuShape(0, 7), A: cuStrides(7, 1), B: cuStrides(7, 1)}, 0, 0},
	)
	if big {
		const n = 4097
		ws = append(ws,
			cuWalk{"contiguous 4097x4097", device.Contiguous(n * n), n * n, n * n},
			cuWalk{"transposed 4097x4097", device.Walk{Shape: cuShape(n, n), A: cuStrides(1, n), B: cuStrides(n, 1)}, n * n, n * n},
			cuWalk{"bias row 4097x4097", device.Walk{Shape: cuShape(n, n), A: cuStrides(n, 1), B: cuStrides(0, 1)}, n * n, n},
		)
	}
	return ws
}

func TestCUDACopy(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(4, 1))
	for _, c := range cuWalks(!testing.Short()) {
		n := c.w.N()
		cb, gb := p.bufs(cuRand(r, max(c.na, 1), -2, 2), cuJunk(n+1))
		p.do("copy "+c.name, cb, gb, func(d device.Device, b []device.Buffer) error { return d.Copy(b[1], b[0], c.w) })
		p.same(fmt.Sprintf("copy %s %v strides %v", c.name, c.w.Shape, c.w.A), cb[1], gb[1], n+1, 0, 0)
	}
}

func TestCUDABinary(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(5, 1))
	for _, c := range cuWalks(!testing.Short()) {
		n := c.w.N()
		for op := device.BinaryOp(0); !strings.HasPrefix(op.String(), "BinaryOp("); op++ {
			if c.w.N() > 1<<21 && op != device.Add && op != device.Pow && op != device.ReluGrad {
				continue // the large walks check indexing, which every op shares
			}
			a := cuRand(r, max(c.na, 1), -2, 2)
			b := cuRand(r, max(c.nb, 1), -2, 2)
			switch op {
			case device.Pow:
				a = cuRand(r, max(c.na, 1), 0.1, 2)
			case device.SigmoidGrad:
				a = cuRand(r, max(c.na, 1), 0, 1)
			case device.GreaterEq:
				for i := 0; i < min(len(a), len(b)); i += 3 {
					b[i] = a[i] // ties must compare equal
				}
			}
			name := fmt.Sprintf("binary %v %s %v a%v b%v", op, c.name, c.w.Shape, c.w.A, c.w.B)
			cb, gb := p.bufs(a, b, cuJunk(n+1))
			p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error { return d.Binary(op, b[2], b[0], b[1], c.w, 0, 0) })
			p.same(name, cb[2], gb[2], n+1, 1e-6, 4e-6)
		}
	}
}

func TestCUDAReduce(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(6, 1))
	// Short rows take a warp each; long ones with few rows (and the
	// reduction of everything) are split in two passes; inner > 1 reduces
	// columns.
	shapes := [][3]int{
		{1, 1, 1}, {1, 7, 1}, {3, 129, 1}, {1000, 10, 1}, {128, 10, 1}, {7, 4097, 1}, {1, 4097, 1},
		{1, 100003, 1}, {2, 65537, 1}, {1, 129, 7}, {5, 1000, 129}, {1, 4097, 33}, {3, 1, 4097},
		{129, 1, 1}, {1000, 3, 10},
	}
	if !testing.Short() {
		shapes = append(shapes, [3]int{1, 1 << 24, 1}, [3]int{2, 1000003, 1}, [3]int{1, 60000, 784}, [3]int{4097, 4097, 1})
	}
	for _, s := range shapes {
		outer, n, inner := s[0], s[1], s[2]
		for op := device.ReduceOp(0); !strings.HasPrefix(op.String(), "ReduceOp("); op++ {
			x := cuRand(r, outer*n*inner, -2, 2)
			if op == device.ArgMax && n > 1 {
				for i := range x {
					x[i] = float32(r.IntN(4)) // many ties: the first index must win
				}
			}
			name := fmt.Sprintf("reduce %v [%d,%d,%d]", op, outer, n, inner)
			cb, gb := p.bufs(x, cuJunk(outer*inner+1))
			p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
				return d.Reduce(op, b[1], b[0], outer, n, inner)
			})
			p.same(name, cb[1], gb[1], outer*inner+1, 1e-6, 1e-6)
		}
	}
}

// cuGemmSizes are m, k, n: odd sizes around the tiles of the three kernels.
var cuGemmSizes = [][3]int{
	{1, 1, 1}, {7, 129, 33}, {129, 1000, 7}, {257, 4097, 65}, {33, 7, 129},
	{128, 784, 512}, {784, 128, 512}, {128, 512, 10}, {128, 10, 256}, {2048, 257, 1101},
}

func TestCUDAMatMul(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(7, 1))
	sizes := cuGemmSizes
	if !testing.Short() {
		sizes = append(sizes, [3]int{1024, 1024, 1024}, [3]int{4097, 129, 4097})
	}
	for _, s := range sizes {
		m, k, n := s[0], s[1], s[2]
		big := m*k*n > 1<<29
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, acc := range []bool{false, true} {
				if big && acc == (tr[0] == tr[1]) {
					continue // four of the eight cases at the largest sizes
				}
				name := fmt.Sprintf("matmul %dx%dx%d transA=%v transB=%v acc=%v (%s)",
					m, k, n, tr[0], tr[1], acc, p.gpu.SgemmKernel(m, k, n))
				cb, gb := p.bufs(cuRand(r, m*k, -1, 1), cuRand(r, k*n, -1, 1), cuRand(r, m*n, -1, 1))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
					return d.MatMul(b[2], b[0], b[1], m, k, n, tr[0], tr[1], acc)
				})
				p.same(name, cb[2], gb[2], m*n, 2e-6*float64(k)+1e-6, 1e-4)
			}
		}
	}
}

func TestCUDAMatMulZeroK(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(8, 1))
	for _, acc := range []bool{false, true} {
		cb, gb := p.bufs([]float32{0}, []float32{0}, cuRand(r, 6, -1, 1))
		name := fmt.Sprintf("matmul 2x0x3 acc=%v", acc)
		p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
			return d.MatMul(b[2], b[0], b[1], 2, 0, 3, false, false, acc)
		})
		p.same(name, cb[2], gb[2], 6, 0, 0)
	}
}

var cuRowShapes = [][2]int{{1, 1}, {7, 10}, {128, 10}, {129, 129}, {1000, 7}, {3, 4097}, {2, 100003}, {4097, 33}}

func TestCUDASoftmax(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(9, 1))
	for _, s := range cuRowShapes {
		rows, n := s[0], s[1]
		for _, log := range []bool{false, true} {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("softmax log=%v in place=%v [%d,%d]", log, inPlace, rows, n)
				cb, gb := p.bufs(cuRand(r, rows*n, -8, 8), cuJunk(rows*n))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
					if inPlace {
						return d.Softmax(b[0], b[0], rows, n, log)
					}
					return d.Softmax(b[1], b[0], rows, n, log)
				})
				out := 1
				if inPlace {
					out = 0
				}
				p.same(name, cb[out], gb[out], rows*n, 1e-6, 1e-5+1e-9*float64(n))
			}
		}
	}
}

func TestCUDASoftmaxCrossEntropy(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(10, 1))
	for _, s := range cuRowShapes {
		rows, n := s[0], s[1]
		for _, inPlace := range []bool{false, true} {
			y := make([]float32, rows)
			for i := range y {
				y[i] = float32(r.IntN(n))
			}
			scale := 1 / float32(rows)
			name := fmt.Sprintf("softmax_cross_entropy in place=%v [%d,%d]", inPlace, rows, n)
			cb, gb := p.bufs(cuRand(r, rows*n, -8, 8), y, cuJunk(rows), cuJunk(rows*n))
			p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
				grad := b[3]
				if inPlace {
					grad = b[0]
				}
				return d.(device.SoftmaxCE).SoftmaxCrossEntropy(b[2], grad, b[0], b[1], rows, n, scale)
			})
			grad := 3
			if inPlace {
				grad = 0
			}
			p.same(name+" loss", cb[2], gb[2], rows, 1e-5, 1e-5+1e-9*float64(n))
			p.same(name+" grad", cb[grad], gb[grad], rows*n, 1e-7, 1e-5+1e-9*float64(n))
		}
	}
}

func TestCUDABiasAct(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(11, 1))
	for _, s := range [][2]int{{1, 1}, {128, 512}, {129, 10}, {7, 4097}, {60000, 10}} {
		rows, n := s[0], s[1]
		for act := device.Identity; act <= device.ActTanh; act++ {
			name := fmt.Sprintf("bias_act %d [%d,%d]", act, rows, n)
			cb, gb := p.bufs(cuRand(r, rows*n, -3, 3), cuRand(r, n, -1, 1), cuJunk(rows*n))
			p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
				return d.(device.BiasAct).BiasAct(b[2], b[0], b[1], rows, n, act)
			})
			p.same(name, cb[2], gb[2], rows*n, 1e-6, 4e-6)
			// And in place.
			p.do(name+" in place", cb, gb, func(d device.Device, b []device.Buffer) error {
				return d.(device.BiasAct).BiasAct(b[0], b[0], b[1], rows, n, act)
			})
			p.same(name+" in place", cb[0], gb[0], rows*n, 1e-6, 4e-6)
		}
	}
}

func TestCUDABiasActGrad(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(11, 2))
	for _, s := range [][2]int{{1, 1}, {7, 129}, {128, 512}, {1000, 10}, {4097, 7}, {0, 5}} {
		rows, n := s[0], s[1]
		for act := device.Identity; act <= device.ActTanh; act++ {
			for _, acc := range []bool{false, true} {
				name := fmt.Sprintf("bias_act_grad %d [%d,%d] accumulate=%v", act, rows, n, acc)
				// y in the activation's range: (0, 1) for the sigmoid, (-1, 1)
				// for tanh; both signs for ReLU's mask.
				lo, hi := float32(-2), float32(2)
				switch act {
				case device.ActSigmoid:
					lo, hi = 0.05, 0.95
				case device.ActTanh:
					lo, hi = -0.95, 0.95
				}
				cb, gb := p.bufs(cuRand(r, rows*n, lo, hi), cuRand(r, rows*n, -1, 1), cuRand(r, n, -1, 1), cuJunk(rows*n))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
					return d.(device.BiasActGrad).BiasActGrad(b[3], b[2], b[0], b[1], rows, n, act, acc)
				})
				p.same(name+" dx", cb[3], gb[3], rows*n, 1e-6, 1e-6)
				// The CPU adds row by row in float32, off by about 1.5e-8 per
				// row at these sizes; the GPU's sums are closer than that.
				p.same(name+" dbias", cb[2], gb[2], n, 2e-7*float64(rows)+1e-6, 1e-5)
				// In place over g, without a bias gradient.
				p.do(name+" in place", cb, gb, func(d device.Device, b []device.Buffer) error {
					return d.(device.BiasActGrad).BiasActGrad(b[1], nil, b[0], b[1], rows, n, act, acc)
				})
				p.same(name+" in place", cb[1], gb[1], rows*n, 1e-6, 1e-6)
			}
		}
	}
}

// TestCUDABiasActGradReproducible runs the same bias gradient twice: the
// column sums are in a fixed order, so the two agree bit for bit.
func TestCUDABiasActGradReproducible(t *testing.T) {
	d := cuDevice(t)
	r := rand.New(rand.NewPCG(11, 3))
	const rows, n = 4097, 129
	y := testutil.Upload(t, d, cuRand(r, rows*n, -2, 2))
	g := testutil.Upload(t, d, cuRand(r, rows*n, -1, 1))
	dx := testutil.Upload(t, d, cuJunk(rows*n))
	db := testutil.Upload(t, d, cuJunk(n))
	defer func() {
		for _, b := range []device.Buffer{y, g, dx, db} {
			d.Free(b)
		}
	}()
	var runs [2][]float32
	for i := range runs {
		if err := d.BiasActGrad(dx, db, y, g, rows, n, device.ActRelu, false); err != nil {
			t.Fatal(err)
		}
		runs[i] = testutil.Download(t, d, db, n)
	}
	testutil.AllClose(t, "bias_act_grad twice", runs[1], runs[0], 0, 0)
}

func TestCUDAGather(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(12, 1))
	for _, s := range [][3]int{{1, 1, 1}, {128, 784, 1000}, {7, 129, 3}, {1000, 10, 60000}, {4097, 1, 5}} {
		nidx, rowLen, srcRows := s[0], s[1], s[2]
		idx := make([]float32, nidx)
		for i := range idx {
			idx[i] = float32(r.IntN(srcRows))
		}
		name := fmt.Sprintf("gather %d rows of %dx%d", nidx, srcRows, rowLen)
		cb, gb := p.bufs(cuRand(r, srcRows*rowLen, -2, 2), idx, cuJunk(nidx*rowLen))
		p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error { return d.Gather(b[2], b[0], b[1], nidx, rowLen) })
		p.same(name, cb[2], gb[2], nidx*rowLen, 0, 0)
	}
}

func TestCUDADropoutMaskBitIdentical(t *testing.T) {
	p := newCuPair(t)
	for _, n := range cuSizes() {
		for _, prob := range []float32{0, 0.1, 0.5, 0.9, 1, device.HashUniform(42, 3)} {
			for _, seed := range []uint64{0, 42, 1<<63 + 12345} {
				name := fmt.Sprintf("dropout_mask n=%d p=%v seed=%d", n, prob, seed)
				cb, gb := p.bufs(cuJunk(n + 1))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error { return d.DropoutMask(b[0], n, prob, seed) })
				p.same(name, cb[0], gb[0], n+1, 0, 0)
			}
		}
	}
}

func TestCUDASGDSteps(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(13, 1))
	cases := []device.SGDParams{
		{LR: 0.05},
		{LR: 0.05, Momentum: 0.9},
		{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 1e-2},
		{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
	}
	for _, hp := range cases {
		for _, n := range []int{1, 7, 1000, 4097} {
			name := fmt.Sprintf("sgd %+v n=%d", hp, n)
			cb, gb := p.bufs(cuRand(r, n, -1, 1), cuRand(r, n, -1, 1), cuJunk(n))
			for step := range 5 {
				hp.First = step == 0
				cg, gg := p.bufs(cuRand(r, n, -1, 1))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
					g := cg[0]
					if d == device.Device(p.gpu) {
						g = gg[0]
					}
					return d.(device.Optimizers).SGDStep(b[0], g, b[2], n, hp)
				})
			}
			p.same(name+" p", cb[0], gb[0], n, 1e-6, 1e-5)
			if hp.Momentum != 0 {
				p.same(name+" buf", cb[2], gb[2], n, 1e-6, 1e-5)
			}
		}
	}
}

func TestCUDAAdamSteps(t *testing.T) {
	p := newCuPair(t)
	r := rand.New(rand.NewPCG(14, 1))
	cases := []device.AdamParams{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 1e-2, Decoupled: true},
	}
	for _, hp := range cases {
		for _, n := range []int{1, 7, 1000, 4097} {
			name := fmt.Sprintf("adam %+v n=%d", hp, n)
			zero := make([]float32, n)
			cb, gb := p.bufs(cuRand(r, n, -1, 1), zero, zero)
			for step := 1; step <= 5; step++ {
				hp.Step = step
				cg, gg := p.bufs(cuRand(r, n, -1, 1))
				p.do(name, cb, gb, func(d device.Device, b []device.Buffer) error {
					g := cg[0]
					if d == device.Device(p.gpu) {
						g = gg[0]
					}
					return d.(device.Optimizers).AdamStep(b[0], g, b[1], b[2], nil, n, hp)
				})
			}
			p.same(name+" p", cb[0], gb[0], n, 1e-6, 1e-5)
			p.same(name+" m", cb[1], gb[1], n, 1e-6, 1e-5)
			p.same(name+" v", cb[2], gb[2], n, 1e-7, 1e-5)
		}
	}
}

// TestCUDAMultiTables steps through more lists of tensors than the device
// keeps tables for (subsets in rotating orders, so that tables are dropped
// and uploaded again), checking each multi-tensor step against one SGDStep
// per tensor bit for bit; after ReleaseCached the steps still run, and once
// the buffers are freed no table memory is left.
func TestCUDAMultiTables(t *testing.T) {
	d := cuFresh(t)
	sizes := []int{1, 7, 129, 1023, 1024, 1025, 4097, 784 * 512}
	r := rand.New(rand.NewPCG(15, 1))
	hp := device.SGDParams{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}
	before := d.Stats()
	var all []device.Buffer
	up := func(v []float32) device.Buffer {
		b := testutil.Upload(t, d, v)
		all = append(all, b)
		return b
	}
	var p, buf, g [2][]device.Buffer // [0] per tensor, [1] multi
	for _, n := range sizes {
		pv, bv, gv := cuRand(r, n, -1, 1), cuRand(r, n, -1, 1), cuRand(r, n, -1, 1)
		for k := range 2 {
			p[k], buf[k], g[k] = append(p[k], up(pv)), append(buf[k], up(bv)), append(g[k], up(gv))
		}
	}
	step := func(idx []int) {
		t.Helper()
		var ps, gs, bs []device.Buffer
		var ns []int
		for _, i := range idx {
			if err := d.SGDStep(p[0][i], g[0][i], buf[0][i], sizes[i], hp); err != nil {
				t.Fatal(err)
			}
			ps, gs, bs, ns = append(ps, p[1][i]), append(gs, g[1][i]), append(bs, buf[1][i]), append(ns, sizes[i])
		}
		if err := d.SGDStepMulti(ps, gs, bs, ns, hp); err != nil {
			t.Fatalf("tensors %v: %v", idx, err)
		}
	}
	for s := range 50 {
		// A rotation of the first 1 + s%len(sizes) tensors, rotated by s/len(sizes).
		k := 1 + s%len(sizes)
		idx := make([]int, k)
		for i := range idx {
			idx[i] = (i + s/len(sizes)) % k
		}
		step(idx)
		if s == 40 {
			if err := d.ReleaseCached(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, n := range sizes {
		for _, x := range [][2][]device.Buffer{p, buf} {
			got := testutil.Download(t, d, x[1][i], n)
			want := testutil.Download(t, d, x[0][i], n)
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("tensor %d (n=%d) [%d]: multi %v, per tensor %v", i, n, j, got[j], want[j])
				}
			}
		}
	}
	for _, b := range all {
		d.Free(b)
	}
	if err := d.ReleaseCached(); err != nil {
		t.Fatal(err)
	}
	if after := d.Stats(); after.Allocated != before.Allocated {
		t.Errorf("Allocated %d after freeing everything and releasing the cache, want %d", after.Allocated, before.Allocated)
	}
}

// cuFresh opens a GPU of its own, closed when the test ends, for tests that
// read the allocator's statistics or fill the memory.
func cuFresh(t *testing.T) *device.CUDA {
	t.Helper()
	d, err := device.NewCUDA(0)
	if err != nil {
		t.Fatal(err)
	}
	c := d.(*device.CUDA)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// TestCUDAAllocatorFlat runs 1000 steps of a training-step-like pattern of
// allocations: after the first steps the driver is never called again and
// the reserved memory stays flat.
func TestCUDAAllocatorFlat(t *testing.T) {
	d := cuFresh(t)
	sizes := []int{128 * 784, 128, 128 * 512, 128 * 512, 128 * 256, 128 * 256, 128 * 10, 128 * 10, 128, 1,
		128 * 256, 256 * 10, 128 * 512, 512 * 256, 128 * 784, 784 * 512, 10, 256, 512, 1}
	base, before := d.Stats(), d.Stats()
	for step := range 1000 {
		bufs := make([]device.Buffer, len(sizes))
		for i, n := range sizes {
			b, err := d.Alloc(n)
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if err := d.Fill(b, n, float32(step)); err != nil {
				t.Fatal(err)
			}
			bufs[i] = b
		}
		for _, b := range bufs {
			d.Free(b)
		}
		if step == 1 {
			base = d.Stats()
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	after := d.Stats()
	t.Logf("after warm-up: %+v; after 1000 steps: %+v", base, after)
	if after.DriverAllocs != base.DriverAllocs || after.Reserved != base.Reserved || after.DriverFrees != base.DriverFrees {
		t.Errorf("the allocator kept calling the driver after warm-up: %+v, then %+v", base, after)
	}
	if after.Allocated != before.Allocated {
		t.Errorf("Allocated %d after freeing everything, want %d", after.Allocated, before.Allocated)
	}
	if after.Peak < int64(sizes[0])*4 {
		t.Errorf("Peak %d is less than one buffer", after.Peak)
	}
}

func TestCUDAOutOfMemory(t *testing.T) {
	d := cuFresh(t)
	_, err := d.Alloc(1 << 40)
	if !errors.Is(err, device.ErrOutOfMemory) {
		t.Fatalf("Alloc(1<<40): %v, want an error wrapping device.ErrOutOfMemory", err)
	}
	if !strings.Contains(err.Error(), "out of memory allocating 4.0 TiB (in use") {
		t.Errorf("message %q does not say what was requested and what is in use", err)
	}
	t.Logf("Alloc(1<<40): %v", err)
	cuStillWorks(t, d)
}

// TestCUDAOutOfMemoryDriver fills the GPU in 1 GiB buffers until the driver
// refuses, then checks the error and that the device recovers.
func TestCUDAOutOfMemoryDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the GPU's memory")
	}
	d := cuFresh(t)
	const chunk = 1 << 28 // floats: 1 GiB
	var bufs []device.Buffer
	var err error
	for range 1024 {
		var b device.Buffer
		if b, err = d.Alloc(chunk); err != nil {
			break
		}
		bufs = append(bufs, b)
	}
	if !errors.Is(err, device.ErrOutOfMemory) {
		t.Fatalf("after %d GiB: %v, want an error wrapping device.ErrOutOfMemory", len(bufs), err)
	}
	t.Logf("after %d GiB: %v", len(bufs), err)
	for _, b := range bufs {
		d.Free(b)
	}
	if err := d.ReleaseCached(); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Reserved != 0 || st.Allocated != 0 {
		t.Errorf("after freeing and releasing: %+v", st)
	}
	cuStillWorks(t, d)
}

// cuStillWorks checks that d computes after an error.
func cuStillWorks(t *testing.T, d *device.CUDA) {
	t.Helper()
	b, err := d.Alloc(1000)
	if err != nil {
		t.Fatalf("Alloc after the error: %v", err)
	}
	defer d.Free(b)
	if err := d.Fill(b, 1000, 3); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 1000)
	for i := range want {
		want[i] = 3
	}
	testutil.AllClose(t, "fill after the error", testutil.Download(t, d, b, 1000), want, 0, 0)
}

// Bad indices cannot fail the call that queues the kernel: the row becomes
// NaN and the next Sync reports it, once.
func TestCUDABadIndexReportedAtSync(t *testing.T) {
	d := cuDevice(t)
	src := testutil.Upload(t, d, []float32{1, 2, 3, 4, 5, 6})
	idx := testutil.Upload(t, d, []float32{2, 5, 0})
	dst := testutil.Upload(t, d, cuJunk(6))
	defer d.Free(src)
	defer d.Free(idx)
	defer d.Free(dst)
	if err := d.Gather(dst, src, idx, 3, 2); err != nil {
		t.Fatalf("Gather: %v", err)
	}
	err := d.Sync()
	if err == nil || !strings.Contains(err.Error(), "gather_f32") || !strings.Contains(err.Error(), "index 5 (row 1") {
		t.Errorf("Sync after a bad gather index: %v", err)
	}
	nan := float32(math.NaN())
	testutil.AllClose(t, "gather with a bad index", testutil.Download(t, d, dst, 6), []float32{5, 6, nan, nan, 1, 2}, 0, 0)

	logits := testutil.Upload(t, d, []float32{1, 2, 3, 4})
	labels := testutil.Upload(t, d, []float32{1, 2.5})
	loss := testutil.Upload(t, d, cuJunk(2))
	defer d.Free(logits)
	defer d.Free(labels)
	defer d.Free(loss)
	if err := d.SoftmaxCrossEntropy(loss, logits, logits, labels, 2, 2, 1); err != nil {
		t.Fatalf("SoftmaxCrossEntropy: %v", err)
	}
	got := make([]float32, 2)
	err = d.CopyOut(got, loss)
	if err == nil || !strings.Contains(err.Error(), "softmax_ce_f32") || !strings.Contains(err.Error(), "label 2.5 (row 1)") {
		t.Errorf("CopyOut after a bad label: %v", err)
	}
	if math.IsNaN(float64(got[0])) || !math.IsNaN(float64(got[1])) {
		t.Errorf("losses %v: want a number, then NaN", got)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("a second Sync reports again: %v", err)
	}
}

func TestCUDAErrorsNameTheOp(t *testing.T) {
	d := cuDevice(t)
	b := testutil.Upload(t, d, cuJunk(12))
	defer d.Free(b)
	other := cuFresh(t)
	ob := testutil.Upload(t, other, cuJunk(12))
	cb, err := device.NewCPU(1).Alloc(12)
	if err != nil {
		t.Fatal(err)
	}
	freed, err := d.Alloc(12)
	if err != nil {
		t.Fatal(err)
	}
	d.Free(freed)
	cases := []struct {
		err  error
		want string
	}{
		{d.MatMul(b, b, b, 2, 2, 2, false, false, false), "device: cuda matmul: dst must not be an input"},
		{d.Unary(device.Exp, b, cb, 1, 0, 0), "device: cuda unary exp: x is a *device.CPUBuffer, not a cuda buffer"},
		{d.Unary(device.UnaryOp(99), b, b, 1, 0, 0), "device: cuda unary: unknown op UnaryOp(99)"},
		{d.Binary(device.Mul, b, b, ob, device.Contiguous(12), 0, 0), "device: cuda binary mul: b belongs to another cuda device"},
		{d.Binary(device.Add, b, freed, b, device.Contiguous(12), 0, 0), "device: cuda binary add: a was freed"},
		{d.Reduce(device.ArgMax, b, b, 2, 0, 3), "device: cuda reduce argmax: empty reduction axis"},
		{d.Softmax(b, b, 4, 4, false), "device: cuda softmax: dst has 12 values, need 16"},
		{d.Copy(b, b, device.Walk{Shape: cuShape(2, 2), A: cuStrides(-1, 1)}), "device: cuda copy: negative stride"},
		{d.AdamStep(b, b, b, b, nil, 12, device.AdamParams{}), "device: cuda adam_step: step 0, want >= 1"},
		{d.BiasAct(b, b, b, 1, 1, device.Activation(9)), "device: cuda bias_act: unknown activation 9"},
		{d.BiasActGrad(b, b, b, b, 1, 1, device.Activation(9), false), "device: cuda bias_act_grad: unknown activation 9"},
		{d.BiasActGrad(b, b, ob, b, 1, 1, device.ActRelu, false), "device: cuda bias_act_grad: y belongs to another cuda device"},
		{d.BiasActGrad(b, b, b, b, 1, 1, device.ActRelu, false), "device: cuda bias_act_grad: dbias must not be another operand"},
		{d.BiasActGrad(b, nil, b, b, 4, 4, device.ActRelu, false), "device: cuda bias_act_grad: dx has 12 values, need 16"},
		{d.DropoutMask(b, 12, -0.5, 1), "device: cuda dropout_mask: probability -0.5 is not in [0, 1]"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), c.want) {
			t.Errorf("got error %v, want %q", c.err, c.want)
		}
	}
	other.Free(ob)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Fill(ob, 1, 0); err == nil {
		t.Error("Fill on a closed device: no error")
	}
}

// TestCUDAConcurrent runs small pipelines from several goroutines on one
// device: calls are serialised and each goroutine's thread gets the context.
func TestCUDAConcurrent(t *testing.T) {
	d := cuDevice(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1000 + g
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i + g)
			}
			b, err := d.Alloc(n)
			if err != nil {
				errs <- err
				return
			}
			defer d.Free(b)
			out := make([]float32, n)
			for iter := range 50 {
				if err := d.CopyIn(b, x); err != nil {
					errs <- err
					return
				}
				if err := d.Unary(device.AddScalar, b, b, n, float32(iter), 0); err != nil {
					errs <- err
					return
				}
				if err := d.CopyOut(out, b); err != nil {
					errs <- err
					return
				}
				for i, v := range out {
					if v != x[i]+float32(iter) {
						errs <- fmt.Errorf("goroutine %d iteration %d: [%d] = %v, want %v", g, iter, i, v, x[i]+float32(iter))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
