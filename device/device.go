package device

import (
	"errors"
	"fmt"
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
	// Copy writes the strided walk of x described by w into contiguous dst:
	// dst[i0,i1,i2,i3] = x[i0*w.A[0] + i1*w.A[1] + i2*w.A[2] + i3*w.A[3]].
	// It implements contiguous copies, transposes and broadcast expansion.
	Copy(dst, x Buffer, w Walk) error
	// Unary computes dst[i] = op(x[i], alpha) for i < n.
	Unary(op UnaryOp, dst, x Buffer, n int, alpha float32) error
	// Binary computes dst = op(a, b) elementwise over w.Shape, reading a at
	// strides w.A and b at strides w.B (0 on broadcast axes).
	Binary(op BinaryOp, dst, a, b Buffer, w Walk) error
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
const MaxDims = 4

// Walk describes an elementwise iteration over a contiguous output of Shape
// (padded with leading 1s), reading inputs at element strides A and B.
type Walk struct {
	Shape [MaxDims]int
	A, B  [MaxDims]int
}

// N is the number of output elements.
func (w Walk) N() int {
	n := 1
	for _, d := range w.Shape {
		n *= d
	}
	return n
}

// Contiguous returns the walk over n elements where both inputs are read
// contiguously, with no broadcasting.
func Contiguous(n int) Walk {
	return Walk{Shape: [MaxDims]int{1, 1, 1, n}, A: [MaxDims]int{0, 0, 0, 1}, B: [MaxDims]int{0, 0, 0, 1}}
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

// Collapse returns the same walk with its unit axes removed and adjacent axes
// merged where both inputs are contiguous across them, right-aligned so that
// the innermost axis is MaxDims-1. Most walks become one or two long rows.
func (w Walk) Collapse() Walk {
	var k Walk // kept axes, left-aligned
	nk := 0
	for d := range MaxDims {
		sz := w.Shape[d]
		if sz == 1 {
			continue
		}
		if nk > 0 && k.A[nk-1] == w.A[d]*sz && k.B[nk-1] == w.B[d]*sz {
			k.Shape[nk-1] *= sz
			k.A[nk-1], k.B[nk-1] = w.A[d], w.B[d]
			continue
		}
		k.Shape[nk], k.A[nk], k.B[nk] = sz, w.A[d], w.B[d]
		nk++
	}
	out := Walk{Shape: [MaxDims]int{1, 1, 1, 1}}
	copy(out.Shape[MaxDims-nk:], k.Shape[:nk])
	copy(out.A[MaxDims-nk:], k.A[:nk])
	copy(out.B[MaxDims-nk:], k.B[:nk])
	return out
}

// UnaryOp names an elementwise operation of one input and a scalar alpha.
type UnaryOp int

// Unary operations. Alpha is ignored unless named.
const (
	Neg       UnaryOp = iota // -x
	Exp                      // e^x
	Log                      // ln x
	Relu                     // max(x, 0)
	Sigmoid                  // 1/(1+e^-x)
	Tanh                     // tanh x
	Sqrt                     // sqrt x
	AddScalar                // x + alpha
	MulScalar                // x * alpha
	PowScalar                // x ^ alpha
	Square                   // x * x
	numUnary
)

var unaryNames = [...]string{"neg", "exp", "log", "relu", "sigmoid", "tanh", "sqrt", "add_scalar", "mul_scalar", "pow_scalar", "square"}

// String returns the operation's name.
func (op UnaryOp) String() string {
	if op >= 0 && op < numUnary {
		return unaryNames[op]
	}
	return fmt.Sprintf("UnaryOp(%d)", int(op))
}

// BinaryOp names an elementwise operation of two inputs.
type BinaryOp int

// Binary operations.
const (
	Add         BinaryOp = iota // a + b
	Sub                         // a - b
	Mul                         // a * b
	Div                         // a / b
	Pow                         // a ^ b
	Max                         // max(a, b)
	GreaterEq                   // 1 if a >= b else 0
	ReluGrad                    // b if a > 0 else 0 (a: relu input, b: upstream gradient)
	SigmoidGrad                 // b * a * (1 - a) (a: sigmoid output)
	TanhGrad                    // b * (1 - a*a) (a: tanh output)
	numBinary
)

var binaryNames = [...]string{"add", "sub", "mul", "div", "pow", "max", "greater_eq", "relu_grad", "sigmoid_grad", "tanh_grad"}

// String returns the operation's name.
func (op BinaryOp) String() string {
	if op >= 0 && op < numBinary {
		return binaryNames[op]
	}
	return fmt.Sprintf("BinaryOp(%d)", int(op))
}

// ReduceOp names a reduction along one axis.
type ReduceOp int

// Reductions.
const (
	Sum    ReduceOp = iota // sum
	Mean                   // arithmetic mean
	MaxOf                  // largest value
	ArgMax                 // index of the first largest value, as a float32
	numReduce
)

var reduceNames = [...]string{"sum", "mean", "max", "argmax"}

// String returns the reduction's name.
func (op ReduceOp) String() string {
	if op >= 0 && op < numReduce {
		return reduceNames[op]
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// Activation selects the function applied by a fused bias + activation.
type Activation int

// Activations for BiasAct. Identity adds the bias only.
const (
	Identity Activation = iota
	ActRelu
	ActSigmoid
	ActTanh
)

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
type SGDParams struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov, First                      bool
}

// AdamParams are the hyper-parameters of one Adam step, as PyTorch defines
// them. Decoupled selects AdamW's weight decay. Step counts from 1.
type AdamParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Decoupled                          bool
	Step                               int
}

// Optimizers is implemented by devices that update a parameter tensor in one
// pass. p is the parameter, g its gradient, and buf, m, v the optimizer state,
// all of n values.
type Optimizers interface {
	SGDStep(p, g, buf Buffer, n int, hp SGDParams) error
	AdamStep(p, g, m, v Buffer, n int, hp AdamParams) error
}

// MultiOptimizers is implemented by devices that update many parameter
// tensors in one call: on a GPU, one kernel launch for a whole model instead
// of one per tensor. Tensor i is the ns[i] values of ps[i], its gradient
// gs[i] and its optimizer state (bufs[i], or ms[i] and vs[i]). The result is
// bit for bit that of SGDStep or AdamStep applied to each tensor. When
// hp.Momentum is 0 the momentum buffers are unused: bufs may be nil or hold
// nil entries. A buffer that a step writes (a parameter or its state) must
// not be given for another tensor. A call that returns an error has updated
// nothing.
type MultiOptimizers interface {
	SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error
	AdamStepMulti(ps, gs, ms, vs []Buffer, ns []int, hp AdamParams) error
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
