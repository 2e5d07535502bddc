package tensor

import (
	"fmt"
	"slices"

	"github.com/gograd/gograd/device"
)

// broadcastShape returns the NumPy broadcast of a and b.
func broadcastShape(op string, a, b []int) []int {
	return broadcastInto(make([]int, 0, max(len(a), len(b))), op, a, b)
}

// broadcastInto is broadcastShape appending to out, which callers keep on
// their stack.
func broadcastInto(out []int, op string, a, b []int) []int {
	n := max(len(a), len(b))
	out = append(out[:0], make([]int, n)...)
	for i := range n {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			fail(op, ErrShape, a, b)
		}
	}
	return out
}

// rowMajor returns the element strides of a contiguous tensor of shape.
func rowMajor(shape []int) []int {
	s := make([]int, len(shape))
	stride := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = stride
		stride *= shape[i]
	}
	return s
}

// stridesFor returns the element strides of a contiguous in, right-aligned
// to out, with 0 on the axes that in broadcasts.
func stridesFor(in, out []int) []int { return stridesInto(make([]int, 0, len(out)), in, out) }

// stridesInto is stridesFor appending to s, which callers keep on their
// stack.
func stridesInto(s []int, in, out []int) []int {
	s = append(s[:0], make([]int, len(out))...)
	stride := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(in) - len(out) + i
		if j >= 0 && in[j] != 1 {
			s[i] = stride
		}
		if j >= 0 {
			stride *= in[j]
		}
	}
	return s
}

// makeWalk returns the device walk over shape with the given input
// strides (device.MakeWalk), panicking with an *Error naming op when the
// shape needs more axes than a walk has.
func makeWalk(op string, shape []int, strides ...[]int) device.Walk {
	w, err := device.MakeWalk(shape, strides...)
	check(op, err, shape)
	return w
}

func sameDevice(op string, a, b *Tensor) {
	if a.dev != b.dev {
		fail(op, fmt.Errorf("tensor: operands on different devices (%s and %s)", a.dev.Name(), b.dev.Name()), a.shape, b.shape)
	}
}

// Binary applies op elementwise with broadcasting.
func Binary(op device.BinaryOp, a, b *Tensor) *Tensor {
	name := op.String()
	sameDevice(name, a, b)
	shape := broadcastShape(name, a.shape, b.shape)
	out := New(a.dev, shape...)
	w := makeWalk(name, shape, stridesFor(a.shape, shape), stridesFor(b.shape, shape))
	check(name, a.dev.Binary(op, out.st.buf, a.Buffer(), b.Buffer(), w, 0, 0), a.shape, b.shape)
	return out
}

// BinaryInto writes op(a, b), broadcast, into dst, which must have the
// broadcast shape. dst may be a or b when it has that operand's shape.
func BinaryInto(op device.BinaryOp, dst, a, b *Tensor) {
	name := op.String()
	sameDevice(name, a, b)
	sameDevice(name, dst, a)
	var sh, sa, sb [2 * device.MaxDims]int
	shape := broadcastInto(sh[:0], name, a.shape, b.shape)
	if !slices.Equal(shape, dst.shape) {
		fail(name, ErrShape, a.shape, b.shape, dst.shape)
	}
	w := makeWalk(name, shape, stridesInto(sa[:0], a.shape, shape), stridesInto(sb[:0], b.shape, shape))
	check(name, a.dev.Binary(op, dst.Buffer(), a.Buffer(), b.Buffer(), w, 0, 0), a.shape, b.shape)
}

// Add returns a + b.
func Add(a, b *Tensor) *Tensor { return Binary(device.Add, a, b) }

// Sub returns a - b.
func Sub(a, b *Tensor) *Tensor { return Binary(device.Sub, a, b) }

// Mul returns a * b elementwise.
func Mul(a, b *Tensor) *Tensor { return Binary(device.Mul, a, b) }

// Div returns a / b elementwise.
func Div(a, b *Tensor) *Tensor { return Binary(device.Div, a, b) }

// Pow returns a ^ b elementwise.
func Pow(a, b *Tensor) *Tensor { return Binary(device.Pow, a, b) }

// Maximum returns the elementwise max of a and b.
func Maximum(a, b *Tensor) *Tensor { return Binary(device.Max, a, b) }

// AddInPlace adds src, broadcast to t's shape, into t. src must broadcast
// to exactly t's shape: equal element counts in other shapes are an error.
func (t *Tensor) AddInPlace(src *Tensor) {
	sameDevice("add in place", t, src)
	if slices.Equal(t.shape, src.shape) {
		check("add in place", t.dev.Binary(device.Add, t.Buffer(), t.Buffer(), src.Buffer(), device.Contiguous(t.Len()), 0, 0), t.shape, src.shape)
		return
	}
	var sh, sa, sb [2 * device.MaxDims]int
	if !slices.Equal(broadcastInto(sh[:0], "add in place", t.shape, src.shape), t.shape) {
		fail("add in place", ErrShape, t.shape, src.shape)
	}
	w := makeWalk("add in place", t.shape, stridesInto(sa[:0], t.shape, t.shape), stridesInto(sb[:0], src.shape, t.shape))
	check("add in place", t.dev.Binary(device.Add, t.Buffer(), t.Buffer(), src.Buffer(), w, 0, 0), t.shape, src.shape)
}

// Unary applies op elementwise with the scalar alpha.
func Unary(op device.UnaryOp, x *Tensor, alpha float32) *Tensor {
	out := New(x.dev, x.shape...)
	check(op.String(), x.dev.Unary(op, out.st.buf, x.Buffer(), x.Len(), alpha, 0), x.shape)
	return out
}

// UnaryInto writes op(x, alpha) into dst, which must hold x's number of
// values and may be x.
func UnaryInto(op device.UnaryOp, dst, x *Tensor, alpha float32) {
	sameDevice(op.String(), dst, x)
	if dst.Len() != x.Len() {
		fail(op.String(), ErrShape, dst.shape, x.shape)
	}
	check(op.String(), x.dev.Unary(op, dst.Buffer(), x.Buffer(), x.Len(), alpha, 0), x.shape)
}

// Neg returns -x.
func Neg(x *Tensor) *Tensor { return Unary(device.Neg, x, 0) }

// Exp returns e^x.
func Exp(x *Tensor) *Tensor { return Unary(device.Exp, x, 0) }

// Log returns ln x.
func Log(x *Tensor) *Tensor { return Unary(device.Log, x, 0) }

// Relu returns max(x, 0).
func Relu(x *Tensor) *Tensor { return Unary(device.Relu, x, 0) }

// Sigmoid returns 1/(1+e^-x).
func Sigmoid(x *Tensor) *Tensor { return Unary(device.Sigmoid, x, 0) }

// Tanh returns tanh x.
func Tanh(x *Tensor) *Tensor { return Unary(device.Tanh, x, 0) }

// Sqrt returns sqrt x.
func Sqrt(x *Tensor) *Tensor { return Unary(device.Sqrt, x, 0) }

// AddScalar returns x + s.
func AddScalar(x *Tensor, s float32) *Tensor { return Unary(device.AddScalar, x, s) }

// MulScalar returns x * s.
func MulScalar(x *Tensor, s float32) *Tensor { return Unary(device.MulScalar, x, s) }

// PowScalar returns x ^ p.
func PowScalar(x *Tensor, p float32) *Tensor { return Unary(device.PowScalar, x, p) }

// ScaleInPlace multiplies t by s in place.
func (t *Tensor) ScaleInPlace(s float32) {
	check("scale in place", t.dev.Unary(device.MulScalar, t.Buffer(), t.Buffer(), t.Len(), s, 0), t.shape)
}

// matDims returns the rows and columns of a 2-D operand after an optional transpose.
func matDims(op string, t *Tensor, trans bool) (r, c int) {
	if len(t.shape) != 2 {
		fail(op, fmt.Errorf("%w: want a matrix", ErrShape), t.shape)
	}
	if trans {
		return t.shape[1], t.shape[0]
	}
	return t.shape[0], t.shape[1]
}

// MatMul returns op(a) · op(b) for matrices, where op transposes its
// argument when the flag is set.
func MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	sameDevice("matmul", a, b)
	m, k := matDims("matmul", a, transA)
	k2, n := matDims("matmul", b, transB)
	if k != k2 {
		fail("matmul", ErrShape, a.shape, b.shape)
	}
	out := New(a.dev, m, n)
	check("matmul", a.dev.MatMul(out.st.buf, a.Buffer(), b.Buffer(), m, k, n, transA, transB, false), a.shape, b.shape)
	return out
}

// MatMulAcc adds op(a) · op(b) into dst, whose shape must match the product.
func MatMulAcc(dst, a, b *Tensor, transA, transB bool) { MatMulInto(dst, a, b, transA, transB, true) }

// MatMulInto writes op(a) · op(b) into dst, or adds it when accumulate is
// set. dst's shape must match the product.
func MatMulInto(dst, a, b *Tensor, transA, transB, accumulate bool) {
	sameDevice("matmul", a, b)
	sameDevice("matmul", dst, a)
	m, k := matDims("matmul", a, transA)
	k2, n := matDims("matmul", b, transB)
	if k != k2 || dst.Len() != m*n {
		fail("matmul", ErrShape, a.shape, b.shape, dst.shape)
	}
	check("matmul", a.dev.MatMul(dst.Buffer(), a.Buffer(), b.Buffer(), m, k, n, transA, transB, accumulate), a.shape, b.shape)
}

// Transpose permutes the axes; with no axes it reverses them.
func Transpose(x *Tensor, axes ...int) *Tensor {
	n := len(x.shape)
	if len(axes) == 0 {
		for i := n - 1; i >= 0; i-- {
			axes = append(axes, i)
		}
	}
	if len(axes) != n {
		fail("transpose", fmt.Errorf("%w: %d axes for %d dimensions", ErrShape, len(axes), n), x.shape)
	}
	inStrides := rowMajor(x.shape)
	shape := make([]int, n)
	strides := make([]int, n)
	seen := make([]bool, n)
	for i, a := range axes {
		a = x.axis("transpose", a)
		if seen[a] {
			fail("transpose", fmt.Errorf("%w: repeated axis %d", ErrShape, a), x.shape)
		}
		seen[a] = true
		shape[i], strides[i] = x.shape[a], inStrides[a]
	}
	out := New(x.dev, shape...)
	check("transpose", x.dev.Copy(out.st.buf, x.Buffer(), makeWalk("transpose", shape, strides)), x.shape)
	return out
}

// T swaps the last two axes.
func T(x *Tensor) *Tensor {
	n := len(x.shape)
	if n < 2 {
		fail("T", fmt.Errorf("%w: want at least 2 dimensions", ErrShape), x.shape)
	}
	axes := make([]int, n)
	for i := range axes {
		axes[i] = i
	}
	axes[n-1], axes[n-2] = n-2, n-1
	return Transpose(x, axes...)
}

// Expand broadcasts x to shape, copying.
func Expand(x *Tensor, shape ...int) *Tensor {
	if !slices.Equal(broadcastShape("expand", x.shape, shape), shape) {
		fail("expand", ErrShape, x.shape, shape)
	}
	out := New(x.dev, shape...)
	check("expand", x.dev.Copy(out.st.buf, x.Buffer(), makeWalk("expand", shape, stridesFor(x.shape, shape))), x.shape, shape)
	return out
}

// Reduce applies op along axis; with keepDims the axis stays with size 1.
func Reduce(op device.ReduceOp, x *Tensor, axis int, keepDims bool) *Tensor {
	name := op.String()
	a := x.axis(name, axis)
	outer, inner := numel(x.shape[:a]), numel(x.shape[a+1:])
	shape := append([]int(nil), x.shape...)
	if keepDims {
		shape[a] = 1
	} else {
		shape = append(shape[:a], shape[a+1:]...)
	}
	out := New(x.dev, shape...)
	check(name, x.dev.Reduce(op, out.st.buf, x.Buffer(), outer, x.shape[a], inner), x.shape)
	return out
}

// ReduceAll applies op over every element and returns a scalar tensor.
func ReduceAll(op device.ReduceOp, x *Tensor) *Tensor {
	out := New(x.dev)
	check(op.String(), x.dev.Reduce(op, out.st.buf, x.Buffer(), 1, x.Len(), 1), x.shape)
	return out
}

// Sum sums along axis.
func Sum(x *Tensor, axis int, keepDims bool) *Tensor { return Reduce(device.Sum, x, axis, keepDims) }

// Mean averages along axis.
func Mean(x *Tensor, axis int, keepDims bool) *Tensor {
	return Reduce(device.Mean, x, axis, keepDims)
}

// Max takes the largest value along axis.
func Max(x *Tensor, axis int, keepDims bool) *Tensor {
	return Reduce(device.MaxOf, x, axis, keepDims)
}

// ArgMax returns the index of the largest value along axis, as float32.
func ArgMax(x *Tensor, axis int) *Tensor { return Reduce(device.ArgMax, x, axis, false) }

// SumAll sums every element into a scalar.
func SumAll(x *Tensor) *Tensor { return ReduceAll(device.Sum, x) }

// MeanAll averages every element into a scalar.
func MeanAll(x *Tensor) *Tensor { return ReduceAll(device.Mean, x) }

// MaxAll returns the largest element as a scalar.
func MaxAll(x *Tensor) *Tensor { return ReduceAll(device.MaxOf, x) }

// SumTo sums x over its broadcast axes so that it has shape, the inverse of
// broadcasting shape to x's shape. It returns x itself when the shapes are
// identical, and a tensor of exactly shape otherwise.
func SumTo(x *Tensor, shape []int) *Tensor {
	if slices.Equal(x.shape, shape) {
		return x
	}
	if !slices.Equal(broadcastShape("sum to", shape, x.shape), x.shape) {
		fail("sum to", ErrShape, x.shape, shape)
	}
	cur := x
	lead := len(x.shape) - len(shape)
	for i := range x.shape {
		if x.shape[i] == 1 || (i >= lead && shape[i-lead] != 1) {
			continue
		}
		next := Sum(cur, i, true)
		if cur != x {
			cur.Free()
		}
		cur = next
	}
	if cur == x {
		return x.Reshape(shape...)
	}
	out := cur.Reshape(shape...)
	cur.Free()
	return out
}

// lastAxis moves axis to the end, returning the moved tensor and the
// permutation that undoes it, or x itself and nil when axis is already last.
func lastAxis(x *Tensor, axis int) (*Tensor, []int) {
	n := len(x.shape)
	if axis == n-1 {
		return x, nil
	}
	perm := make([]int, 0, n)
	for i := range n {
		if i != axis {
			perm = append(perm, i)
		}
	}
	perm = append(perm, axis)
	inv := make([]int, n)
	for i, p := range perm {
		inv[p] = i
	}
	return Transpose(x, perm...), inv
}

func softmax(op string, x *Tensor, axis int, log bool) *Tensor {
	a := x.axis(op, axis)
	moved, inv := lastAxis(x, a)
	n := x.shape[a]
	out := New(x.dev, moved.shape...)
	check(op, x.dev.Softmax(out.st.buf, moved.Buffer(), moved.Len()/max(n, 1), n, log), x.shape)
	if inv == nil {
		return out
	}
	moved.Free()
	back := Transpose(out, inv...)
	out.Free()
	return back
}

// Softmax returns the softmax of x along axis.
func Softmax(x *Tensor, axis int) *Tensor { return softmax("softmax", x, axis, false) }

// LogSoftmax returns the log-softmax of x along axis.
func LogSoftmax(x *Tensor, axis int) *Tensor { return softmax("log softmax", x, axis, true) }

// Gather returns the rows of src (indexed along axis 0) named by idx, a
// vector of float32 row indices on the same device.
func Gather(src, idx *Tensor) *Tensor {
	sameDevice("gather", src, idx)
	if len(src.shape) == 0 || len(idx.shape) != 1 {
		fail("gather", ErrShape, src.shape, idx.shape)
	}
	rowLen := numel(src.shape[1:])
	shape := append([]int{idx.shape[0]}, src.shape[1:]...)
	out := New(src.dev, shape...)
	check("gather", src.dev.Gather(out.st.buf, src.Buffer(), idx.Buffer(), idx.shape[0], rowLen), src.shape, idx.shape)
	return out
}

// GatherInto copies the rows of src named by idx into dst, which must have
// the gathered shape. It allocates nothing.
func GatherInto(dst, src, idx *Tensor) {
	sameDevice("gather", src, idx)
	if len(src.shape) == 0 || len(idx.shape) != 1 || dst.Len() != idx.shape[0]*numel(src.shape[1:]) {
		fail("gather", ErrShape, src.shape, idx.shape, dst.shape)
	}
	check("gather", src.dev.Gather(dst.Buffer(), src.Buffer(), idx.Buffer(), idx.shape[0], numel(src.shape[1:])), src.shape, idx.shape)
}
