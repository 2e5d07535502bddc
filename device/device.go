package device

import (
	"errors"
	"fmt"
	"slices"
)

// Buffer is a contiguous array of float32 values owned by one Device.
type Buffer interface {
	// Len is the number of float32 values the buffer holds.
	Len() int
}

// Device runs every tensor operation. Buffers passed to a device must have
// been allocated by it, and must be large enough for the sizes given.
// Integer data (labels, row indices, argmax results) is stored as float32,
// which is exact up to 2^24.
type Device interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Alloc returns a buffer of n float32s. Its contents are undefined.
	Alloc(n int) (Buffer, error)
	// Free returns a buffer to the device. The buffer must not be used after.
	Free(Buffer)
	// CopyIn copies len(src) values from the host into the start of dst.
	CopyIn(dst Buffer, src []float32) error
	// CopyOut copies len(dst) values from the start of src to the host.
	CopyOut(dst []float32, src Buffer) error
	// Fill sets the first n values of dst to v.
	Fill(dst Buffer, n int, v float32) error
	// Copy writes the strided walk of x described by w into dst:
	// dst[w.OffD + Σ i_d·w.D[d]] = x[w.OffA + Σ i_d·w.A[d]] (dst contiguous
	// when w.D is zero), with padding where w.Pad is set (see Walk). It
	// implements contiguous copies, transposes, broadcast expansion,
	// slicing, padding and concatenation.
	Copy(dst, x Buffer, w Walk) error
	// Unary computes dst[i] = op(x[i], alpha, beta) for i < n.
	Unary(op UnaryOp, dst, x Buffer, n int, alpha, beta float32) error
	// Binary computes dst = op(a, b, alpha, beta) elementwise over w.Shape
	// into contiguous dst, reading a at w.OffA and strides w.A and b at
	// w.OffB and strides w.B (0 on broadcast axes).
	Binary(op BinaryOp, dst, a, b Buffer, w Walk, alpha, beta float32) error
	// Ternary computes dst = op(a, b, c) elementwise over w.Shape into
	// contiguous dst, reading a, b and c as Binary reads a and b.
	Ternary(op TernaryOp, dst, a, b, c Buffer, w Walk) error
	// Reduce views x as [outer, n, inner] and reduces the middle axis into
	// dst of [outer, inner].
	Reduce(op ReduceOp, dst, x Buffer, outer, n, inner int) error
	// MatMul computes dst[m,n] = op(a)[m,k] · op(b)[k,n] (+ dst if accumulate),
	// where op transposes its argument when the flag is set: a is stored
	// [k,m] when transA, b is stored [n,k] when transB.
	MatMul(dst, a, b Buffer, m, k, n int, transA, transB, accumulate bool) error
	// Softmax computes the softmax (or log-softmax) of each of the rows of x,
	// each n wide.
	Softmax(dst, x Buffer, rows, n int, log bool) error
	// Gather copies rows: dst[i,:] = src[idx[i],:] for i < nidx, rows of rowLen.
	Gather(dst, src, idx Buffer, nidx, rowLen int) error
	// DropoutMask fills dst[:n] with 1/(1-p) where a counter-based hash of
	// (seed, i) keeps element i, and 0 elsewhere. The same seed gives the same
	// mask on every device.
	DropoutMask(dst Buffer, n int, p float32, seed uint64) error
	// Sync waits for all queued work to finish and reports any deferred error.
	Sync() error
}

// MaxDims is the largest rank a Walk describes. Tensors of higher rank are
// collapsed before they reach a device.
const MaxDims = 6

// Walk describes an elementwise iteration over the output Shape (padded
// with leading 1s). At output index (i0, ..., i5) input A is read at
// OffA + Σ i_d·A[d], and likewise B and C (stride 0 broadcasts an axis).
// Copy reads A only, and writes dst at OffD + Σ i_d·D[d]; when D is all
// zero, dst is contiguous from its start, as it always is for Binary and
// Ternary. With Pad (Copy only), an output index outside [Lo[d], Hi[d]) on
// some axis d gets Fill and reads nothing, and elsewhere A is read at
// OffA + Σ (i_d - Lo[d])·A[d]: so padding, cropping, slicing and
// concatenation are strided copies. Strides may overlap for inputs (im2col
// reads windows that share elements) but not for dst, whose elements are
// written in parallel.
type Walk struct {
	Shape            [MaxDims]int
	A, B, C          [MaxDims]int
	OffA, OffB, OffC int
	D                [MaxDims]int
	OffD             int
	Pad              bool
	Lo, Hi           [MaxDims]int
	Fill             float32
}

// N is the number of output elements.
func (w Walk) N() int {
	n := 1
	for _, d := range w.Shape {
		n *= d
	}
	return n
}

// Contiguous returns the walk over n elements where every input is read
// contiguously, with no broadcasting.
func Contiguous(n int) Walk {
	var w Walk
	for d := range MaxDims {
		w.Shape[d] = 1
	}
	w.Shape[MaxDims-1] = n
	w.A[MaxDims-1], w.B[MaxDims-1], w.C[MaxDims-1] = 1, 1, 1
	return w
}

// IsContiguous reports whether s are the row-major strides of the walk's shape.
func (w Walk) IsContiguous(s [MaxDims]int) bool {
	stride := 1
	for d := MaxDims - 1; d >= 0; d-- {
		if w.Shape[d] != 1 && s[d] != stride {
			return false
		}
		stride *= w.Shape[d]
	}
	return true
}

// plain reports whether axis d reads its input everywhere (no padding).
func (w *Walk) plain(d int) bool {
	return !w.Pad || (w.Lo[d] == 0 && w.Hi[d] == w.Shape[d])
}

// walkAxis is one axis of a walk: its size, the strides of the inputs and
// dst, and its padding bounds; plain axes have none.
type walkAxis struct {
	n, a, b, c, d, lo, hi int
	plain                 bool
}

// mergeAxes drops the plain unit axes of axes and merges each plain axis
// into the plain axis before it where every operand is contiguous across
// the two, in place; it returns the axes kept.
func mergeAxes(axes []walkAxis) []walkAxis {
	k := axes[:0]
	for _, ax := range axes {
		if ax.n == 1 && ax.plain {
			continue
		}
		if len(k) > 0 && ax.plain && k[len(k)-1].plain {
			q := &k[len(k)-1]
			if q.a == ax.a*ax.n && q.b == ax.b*ax.n && q.c == ax.c*ax.n && q.d == ax.d*ax.n {
				*q = walkAxis{n: q.n * ax.n, a: ax.a, b: ax.b, c: ax.c, d: ax.d, hi: q.n * ax.n, plain: true}
				continue
			}
		}
		k = append(k, ax)
	}
	return k
}

// Collapse returns the same walk with its unit axes removed and adjacent
// axes merged where every input (and dst) is contiguous across them and
// neither is padded, right-aligned so that the innermost axis is
// MaxDims-1. Most walks become one or two long rows.
func (w Walk) Collapse() Walk {
	dstContig := w.D == [MaxDims]int{}
	if dstContig {
		stride := 1
		for d := MaxDims - 1; d >= 0; d-- {
			w.D[d] = stride
			stride *= w.Shape[d]
		}
	}
	var buf [MaxDims]walkAxis
	for d := range MaxDims {
		ax := walkAxis{w.Shape[d], w.A[d], w.B[d], w.C[d], w.D[d], 0, w.Shape[d], w.plain(d)}
		if !ax.plain {
			ax.lo, ax.hi = w.Lo[d], w.Hi[d]
		}
		buf[d] = ax
	}
	k := mergeAxes(buf[:])
	out := Walk{OffA: w.OffA, OffB: w.OffB, OffC: w.OffC, OffD: w.OffD, Pad: w.Pad, Fill: w.Fill}
	for d := range MaxDims {
		out.Shape[d], out.Hi[d] = 1, 1
	}
	for i, ax := range k {
		d := MaxDims - len(k) + i
		out.Shape[d], out.A[d], out.B[d], out.C[d], out.D[d], out.Lo[d], out.Hi[d] = ax.n, ax.a, ax.b, ax.c, ax.d, ax.lo, ax.hi
	}
	if dstContig {
		out.D = [MaxDims]int{}
	}
	if out.Pad {
		out.Pad = false
		for d := range MaxDims {
			if out.Lo[d] != 0 || out.Hi[d] != out.Shape[d] {
				out.Pad = true
			}
		}
	}
	if !out.Pad {
		out.Lo, out.Hi = [MaxDims]int{}, [MaxDims]int{}
	}
	return out
}

// MakeWalk returns the walk over shape, of any rank, with up to three
// inputs read at the given element strides (one slice of len(shape) per
// input). Shapes of more than MaxDims axes are merged where their inputs
// allow (as Collapse merges); a walk that still needs more axes is an
// error. It allocates nothing.
func MakeWalk(shape []int, strides ...[]int) (Walk, error) {
	var w Walk
	if len(strides) > 3 {
		return w, fmt.Errorf("device: walk of %d inputs, at most 3", len(strides))
	}
	for i, st := range strides {
		if len(st) != len(shape) {
			return w, fmt.Errorf("device: walk over %v: input %d has %d strides", slices.Clone(shape), i, len(st))
		}
	}
	var buf [4 * MaxDims]walkAxis
	axes := buf[:0]
	for i, n := range shape {
		ax := walkAxis{n: n, hi: n, plain: true}
		for j, st := range strides {
			*[3]*int{&ax.a, &ax.b, &ax.c}[j] = st[i]
		}
		axes = append(axes, ax)
	}
	if len(axes) > MaxDims {
		axes = mergeAxes(axes)
	}
	if len(axes) > MaxDims {
		return w, fmt.Errorf("device: walk over %v needs %d axes, more than %d", slices.Clone(shape), len(axes), MaxDims)
	}
	for d := range MaxDims {
		w.Shape[d] = 1
	}
	for i, ax := range axes {
		d := MaxDims - len(axes) + i
		w.Shape[d], w.A[d], w.B[d], w.C[d] = ax.n, ax.a, ax.b, ax.c
	}
	return w, nil
}

// SoftmaxCE is implemented by devices with a fused softmax + cross-entropy.
// For each of the rows of logits (n classes each) and its integer label, it
// writes the row's loss -log softmax(logits)[label] to loss, and
// (softmax(logits) - onehot(label)) * scale to grad. It never materialises
// the probabilities in a separate buffer.
type SoftmaxCE interface {
	SoftmaxCrossEntropy(loss, grad, logits, labels Buffer, rows, n int, scale float32) error
}

// BiasAct is implemented by devices with a fused bias + activation:
// dst[r,j] = act(x[r,j] + bias[j]) for rows of n.
type BiasAct interface {
	BiasAct(dst, x, bias Buffer, rows, n int, act Activation) error
}

// BiasActGrad is implemented by devices with a fused backward of BiasAct:
// from y = act(x + bias), rows of n, and g, the gradient with respect to y,
// it writes dx = g·act'(y), computed from y alone (for ReLU, g where y > 0),
// and adds the column sums of dx into dbias, or stores them unless
// accumulate. dbias may be nil; dx may be g. It never materialises act'(y).
type BiasActGrad interface {
	BiasActGrad(dx, dbias, y, g Buffer, rows, n int, act Activation, accumulate bool) error
}

// HostMemory is implemented by devices whose buffers are host memory (the
// CPU). Adopt returns a buffer that is data itself, without a copy; the
// caller must not use data afterwards except through the buffer.
type HostMemory interface {
	Adopt(data []float32) Buffer
}

// SGDParams are the hyper-parameters of one SGD step, as PyTorch defines them.
// First marks the first step, where the momentum buffer starts as the gradient.
// Maximize ascends: the step uses -g, as torch.optim.SGD(maximize=True).
type SGDParams struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov, First, Maximize            bool
}

// AdamParams are the hyper-parameters of one Adam step, as PyTorch defines
// them. Decoupled selects AdamW's weight decay. Step counts from 1.
// Maximize ascends (the step uses -g); AMSGrad keeps the running maximum of
// the second moment in a buffer vmax and divides by it, as
// torch.optim.Adam(amsgrad=True).
type AdamParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Decoupled, Maximize, AMSGrad       bool
	Step                               int
}

// Optimizers is implemented by devices that update a parameter tensor in one
// pass. p is the parameter, g its gradient, and buf, m, v (and vmax, used
// and needed only with hp.AMSGrad; nil otherwise) the optimizer state, all
// of n values.
type Optimizers interface {
	SGDStep(p, g, buf Buffer, n int, hp SGDParams) error
	AdamStep(p, g, m, v, vmax Buffer, n int, hp AdamParams) error
}

// MultiOptimizers is implemented by devices that update many parameter
// tensors in one call: on a GPU, one kernel launch for a whole model instead
// of one per tensor. Tensor i is the ns[i] values of ps[i], its gradient
// gs[i] and its optimizer state (bufs[i], or ms[i], vs[i] and, with
// hp.AMSGrad, vmaxs[i]; vmaxs is nil otherwise). The result is
// bit for bit that of SGDStep or AdamStep applied to each tensor. When
// hp.Momentum is 0 the momentum buffers are unused: bufs may be nil or hold
// nil entries. A buffer that a step writes (a parameter or its state) must
// not be given for another tensor. A call that returns an error has updated
// nothing.
type MultiOptimizers interface {
	SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error
	AdamStepMulti(ps, gs, ms, vs, vmaxs []Buffer, ns []int, hp AdamParams) error
}

// ErrNoCUDA is returned when a CUDA device is requested from a build without it.
var ErrNoCUDA = errors.New("gograd was built without CUDA; rebuild with -tags cuda")

// ErrOutOfMemory is wrapped by allocation failures.
var ErrOutOfMemory = errors.New("device: out of memory")

// HashUniform maps (seed, i) to a uniform float32 in [0, 1) with the
// splitmix64 finaliser. It is the counter-based generator behind
// DropoutMask; every backend computes exactly this function.
func HashUniform(seed, i uint64) float32 {
	x := seed + (i+1)*0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	x ^= x >> 31
	return float32(x>>40) * (1.0 / (1 << 24))
}

// Open returns the device named "cpu", "cuda" or "auto". Auto picks CUDA in a
// build with it and the CPU otherwise.
func Open(name string) (Device, error) {
	switch name {
	case "cpu":
		return NewCPU(0), nil
	case "cuda":
		return NewCUDA(0)
	case "auto":
		if CUDABuilt {
			return NewCUDA(0)
		}
		return NewCPU(0), nil
	}
	return nil, fmt.Errorf("device: unknown device %q (want cpu, cuda or auto)", name)
}
