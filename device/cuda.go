//go:build cuda

package device

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gograd/gograd/cuda"
)

// CUDABuilt reports whether this binary was built with the cuda tag.
const CUDABuilt = true

// The kernels know the ops of this package by value: cuda/ops.h is
// generated from the op table (go generate), and internal/opsgen's tests
// fail when it or kernels.cu falls behind.
const _ = uint(cuda.MaxDims-MaxDims) + uint(MaxDims-cuda.MaxDims) // fails to compile unless equal

// CUDA runs every operation on an NVIDIA GPU, with the kernels of
// kernels.cu; nothing falls back to the host. Work is queued asynchronously
// on one stream: CopyOut and Sync wait for it and report the error of a
// kernel that failed earlier.
//
// It differs from the CPU backend in two ways. Floating-point results agree
// to rounding, not bit for bit (sums and dot products are added in another
// order), except DropoutMask, which is bit-identical. And a kernel cannot
// return an error without a synchronisation, so a label (SoftmaxCrossEntropy)
// or row index (Gather) that is out of range makes that row NaN, and the
// error comes from the next Sync or CopyOut instead of the call itself.
//
// Memory comes from a caching allocator: freed buffers are kept for reuse,
// so a training loop stops calling the driver after its first step. Stats
// describes it and Close releases everything.
type CUDA struct {
	ctx *cuda.Context
	mu  sync.Mutex // guards the freed flags of buffers
}

// CUDABuffer is a buffer of the CUDA backend: a block of device memory.
type CUDABuffer struct {
	ptr   cuda.Ptr
	n     int
	dev   *CUDA
	freed bool
}

// Len is the number of float32 values the buffer holds.
func (b *CUDABuffer) Len() int { return b.n }

var (
	_ Device          = (*CUDA)(nil)
	_ SoftmaxCE       = (*CUDA)(nil)
	_ BiasAct         = (*CUDA)(nil)
	_ BiasActGrad     = (*CUDA)(nil)
	_ Optimizers      = (*CUDA)(nil)
	_ MultiOptimizers = (*CUDA)(nil)
	_ Buffer          = (*CUDABuffer)(nil)
)

// NewCUDA opens CUDA device ordinal and loads the kernels. Each CUDA value
// has its own allocator and module, on the device's primary context.
func NewCUDA(ordinal int) (Device, error) {
	c, err := cuda.NewContext(ordinal)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	return &CUDA{ctx: c}, nil
}

// Name returns "cuda".
func (c *CUDA) Name() string { return "cuda" }

// GPU is the name of the GPU, as the driver reports it.
func (c *CUDA) GPU() string { return c.ctx.Name() }

// Stats returns the allocator's statistics.
func (c *CUDA) Stats() cuda.Stats { return c.ctx.Stats() }

// ReleaseCached returns the allocator's cached blocks to the driver.
func (c *CUDA) ReleaseCached() error { return c.ctx.ReleaseCached() }

// Time runs fn, which queues work on c, and returns the GPU time that work
// took, measured with CUDA events.
func (c *CUDA) Time(fn func() error) (time.Duration, error) { return c.ctx.Time(fn) }

// SgemmKernel names the kernel MatMul uses for an m x k x n product.
func (c *CUDA) SgemmKernel(m, k, n int) string { return c.ctx.SgemmKernel(m, k, n) }

// Close waits for queued work and frees all of the device's memory, buffers
// in use included. The device must not be used after.
func (c *CUDA) Close() error { return c.ctx.Close() }

// cudaOOM is an allocation failure for lack of device memory: it wraps
// ErrOutOfMemory and the allocator's error, which says what is in use.
type cudaOOM struct{ err error }

func (e *cudaOOM) Error() string   { return "device: " + e.err.Error() }
func (e *cudaOOM) Unwrap() []error { return []error{ErrOutOfMemory, e.err} }

// Alloc returns a buffer of n float32s. Its contents are undefined.
func (c *CUDA) Alloc(n int) (Buffer, error) {
	switch {
	case n < 0:
		return nil, fmt.Errorf("device: cuda alloc: negative length %d", n)
	case n == 0:
		return &CUDABuffer{dev: c}, nil
	case n > math.MaxInt64/4:
		return nil, fmt.Errorf("device: cuda alloc of %d values: %w", n, ErrOutOfMemory)
	}
	p, err := c.ctx.Alloc(int64(n) * 4)
	if err != nil {
		if errors.Is(err, cuda.ErrOutOfMemory) {
			return nil, &cudaOOM{err}
		}
		return nil, fmt.Errorf("device: cuda alloc of %d values: %w", n, err)
	}
	return &CUDABuffer{ptr: p, n: n, dev: c}, nil
}

// Free returns b to the allocator. Buffers of other devices, nil and buffers
// already freed are ignored.
func (c *CUDA) Free(b Buffer) {
	cb, ok := b.(*CUDABuffer)
	if !ok || cb == nil || cb.dev != c {
		return
	}
	c.mu.Lock()
	freed := cb.freed
	cb.freed = true
	c.mu.Unlock()
	if !freed && cb.ptr != 0 {
		c.ctx.Free(cb.ptr) // cannot fail for a live buffer of this device
	}
}

// ptr returns the pointer of b for op, whose size a shared check
// (check.go) has validated: it checks only that b is a live buffer of this
// device.
func (c *CUDA) ptr(op, arg string, b Buffer, _ int) (cuda.Ptr, error) {
	if isNil(b) {
		return 0, fmt.Errorf("device: cuda %s: %s is nil", op, arg)
	}
	return c.buf(opName{kind: op}, arg, b)
}

// wrap prefixes a kernel's error with the operation and its shape.
func wrap(err error, op string, shape ...int) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("device: cuda %s %v: %w", op, shape, err)
}

// CopyIn copies src into the start of dst.
func (c *CUDA) CopyIn(dst Buffer, src []float32) error {
	if err := CheckHost("copy_in", "dst", dst, len(src)); err != nil {
		return cudaErr(err)
	}
	p, err := c.ptr("copy_in", "dst", dst, len(src))
	if err != nil {
		return err
	}
	return wrap(c.ctx.CopyIn(p, src), "copy_in", len(src))
}

// CopyOut waits for queued work and copies the first len(dst) values of src.
func (c *CUDA) CopyOut(dst []float32, src Buffer) error {
	if err := CheckHost("copy_out", "src", src, len(dst)); err != nil {
		return cudaErr(err)
	}
	p, err := c.ptr("copy_out", "src", src, len(dst))
	if err != nil {
		return err
	}
	return wrap(c.ctx.CopyOut(dst, p), "copy_out", len(dst))
}

// Fill sets the first n values of dst to v.
func (c *CUDA) Fill(dst Buffer, n int, v float32) error {
	if err := CheckFill(dst, n); err != nil {
		return cudaErr(err)
	}
	p, err := c.ptr("fill", "dst", dst, n)
	if err != nil {
		return err
	}
	return wrap(c.ctx.Fill(p, n, v), "fill", n)
}

// Sync waits for all queued work and reports the error of any that failed.
func (c *CUDA) Sync() error {
	if err := c.ctx.Sync(); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return nil
}

// buf returns the pointer of the CUDA buffer b, whose size a shared check
// has validated, or an error when b is not a live buffer of this device.
func (c *CUDA) buf(op opName, arg string, b Buffer) (cuda.Ptr, error) {
	cb, ok := b.(*CUDABuffer)
	switch {
	case !ok:
		return 0, fmt.Errorf("device: cuda %v: %s is a %T, not a cuda buffer", op, arg, b)
	case cb.dev != c:
		return 0, fmt.Errorf("device: cuda %v: %s belongs to another cuda device", op, arg)
	}
	c.mu.Lock()
	freed := cb.freed
	c.mu.Unlock()
	if freed {
		return 0, fmt.Errorf("device: cuda %v: %s was freed", op, arg)
	}
	return cb.ptr, nil
}

// cudaErr prefixes an error of a shared check with the backend's name.
func cudaErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("device: cuda %w", err)
}

// isNilBackend reports whether b is a typed nil of a backend's buffer.
func isNilBackend(b Buffer) bool {
	cb, ok := b.(*CUDABuffer)
	return ok && cb == nil
}

// cudaWalk converts a collapsed walk for the kernels.
func cudaWalk(w *Walk) cuda.Walk {
	return cuda.Walk{Shape: w.Shape, Off: [3]int{w.OffA, w.OffB, w.OffC}, Strides: [3][MaxDims]int{w.A, w.B, w.C},
		DstOff: w.OffD, DstStrides: w.D, Pad: w.Pad, Lo: w.Lo, Hi: w.Hi, Fill: w.Fill}
}

// flat reports whether the collapsed walk w of n elements reads operand
// strides s contiguously (from its offset).
func flat(w *Walk, s [MaxDims]int, n int) bool {
	return n == 1 || (w.Shape[MaxDims-1] == n && s[MaxDims-1] == 1)
}

// at is p advanced by off float32 values.
func at(p cuda.Ptr, off int) cuda.Ptr { return p + cuda.Ptr(4*off) }

// Copy writes the strided walk of x described by w into dst (see Walk).
func (c *CUDA) Copy(dst, x Buffer, w Walk) error {
	n, err := CheckCopy(dst, x, &w)
	if err != nil || n == 0 {
		return cudaErr(err)
	}
	name := opName{kind: "copy"}
	d, err := c.buf(name, "dst", dst)
	if err != nil {
		return err
	}
	xp, err := c.buf(name, "x", x)
	if err != nil {
		return err
	}
	cw := w.Collapse()
	if !cw.Pad && cw.D == [MaxDims]int{} && flat(&cw, cw.A, n) {
		return wrap(c.ctx.CopyDevice(at(d, cw.OffD), at(xp, cw.OffA), n), "copy", w.Shape[:]...)
	}
	k := cudaWalk(&cw)
	return wrap(c.ctx.CopyWalk(d, xp, &k), "copy", w.Shape[:]...)
}

// Unary computes dst[i] = op(x[i], alpha, beta) for i < n.
func (c *CUDA) Unary(op UnaryOp, dst, x Buffer, n int, alpha, beta float32) error {
	if err := CheckUnary(op, dst, x, n); err != nil {
		return cudaErr(err)
	}
	name := opName{"unary", op}
	d, err := c.buf(name, "dst", dst)
	if err != nil {
		return err
	}
	xp, err := c.buf(name, "x", x)
	if err != nil {
		return err
	}
	return wrap(c.ctx.Unary(int(op), d, xp, n, alpha, beta), name.String(), n)
}

// Binary computes dst = op(a, b, alpha, beta) elementwise over w.Shape.
func (c *CUDA) Binary(op BinaryOp, dst, a, b Buffer, w Walk, alpha, beta float32) error {
	n, err := CheckBinary(op, dst, a, b, &w)
	if err != nil || n == 0 {
		return cudaErr(err)
	}
	name := opName{"binary", op}
	d, err := c.buf(name, "dst", dst)
	if err != nil {
		return err
	}
	ap, err := c.buf(name, "a", a)
	if err != nil {
		return err
	}
	bp, err := c.buf(name, "b", b)
	if err != nil {
		return err
	}
	cw := w.Collapse()
	if flat(&cw, cw.A, n) && flat(&cw, cw.B, n) {
		return wrap(c.ctx.Binary(int(op), d, at(ap, cw.OffA), at(bp, cw.OffB), n, alpha, beta), name.String(), w.Shape[:]...)
	}
	k := cudaWalk(&cw)
	return wrap(c.ctx.BinaryWalk(int(op), d, ap, bp, &k, alpha, beta), name.String(), w.Shape[:]...)
}

// Ternary computes dst = op(a, b, x) elementwise over w.Shape.
func (c *CUDA) Ternary(op TernaryOp, dst, a, b, x Buffer, w Walk) error {
	n, err := CheckTernary(op, dst, a, b, x, &w)
	if err != nil || n == 0 {
		return cudaErr(err)
	}
	name := opName{"ternary", op}
	d, err := c.buf(name, "dst", dst)
	if err != nil {
		return err
	}
	ap, err := c.buf(name, "a", a)
	if err != nil {
		return err
	}
	bp, err := c.buf(name, "b", b)
	if err != nil {
		return err
	}
	xp, err := c.buf(name, "c", x)
	if err != nil {
		return err
	}
	cw := w.Collapse()
	k := cudaWalk(&cw)
	return wrap(c.ctx.TernaryWalk(int(op), d, ap, bp, xp, &k), name.String(), w.Shape[:]...)
}

// Reduce views x as [outer, n, inner] and reduces the middle axis into dst
// of [outer, inner].
func (c *CUDA) Reduce(op ReduceOp, dst, x Buffer, outer, n, inner int) error {
	if err := CheckReduce(op, dst, x, outer, n, inner); err != nil {
		return cudaErr(err)
	}
	name := "reduce " + op.String()
	out := outer * inner
	total := out * n
	d, err := c.ptr(name, "dst", dst, out)
	if err != nil {
		return err
	}
	xp, err := c.ptr(name, "x", x, total)
	if err != nil {
		return err
	}
	return wrap(c.ctx.Reduce(int(op), d, xp, outer, n, inner), name, outer, n, inner)
}

// MatMul computes dst[m,n] = op(a)[m,k] · op(b)[k,n] (+ dst if accumulate).
// dst must not be a or b.
func (c *CUDA) MatMul(dst, a, b Buffer, m, k, n int, transA, transB, accumulate bool) error {
	if err := CheckMatMul(dst, a, b, m, k, n); err != nil {
		return cudaErr(err)
	}
	const name = "matmul"
	mn, mk, kn := m*n, m*k, k*n
	d, err := c.ptr(name, "dst", dst, mn)
	if err != nil {
		return err
	}
	ap, err := c.ptr(name, "a", a, mk)
	if err != nil {
		return err
	}
	bp, err := c.ptr(name, "b", b, kn)
	if err != nil {
		return err
	}
	if mn == 0 || (k == 0 && accumulate) {
		return nil
	}
	if k == 0 {
		return wrap(c.ctx.Fill(d, mn, 0), name, m, k, n)
	}
	return wrap(c.ctx.Sgemm(d, ap, bp, m, k, n, transA, transB, accumulate), name, m, k, n)
}

// Softmax computes the softmax, or log-softmax when log is set, of each of
// the rows of x, each n wide. dst may be x.
func (c *CUDA) Softmax(dst, x Buffer, rows, n int, log bool) error {
	if err := CheckSoftmax(dst, x, rows, n, log); err != nil {
		return cudaErr(err)
	}
	name := "softmax"
	if log {
		name = "log_softmax"
	}
	total := rows * n
	d, err := c.ptr(name, "dst", dst, total)
	if err != nil {
		return err
	}
	xp, err := c.ptr(name, "x", x, total)
	if err != nil {
		return err
	}
	return wrap(c.ctx.Softmax(d, xp, rows, n, log), name, rows, n)
}

// SoftmaxCrossEntropy writes each row's loss -log softmax(logits)[label] and
// the gradient (softmax(logits) - onehot(label)) * scale in one pass per
// row, without storing the probabilities. grad may be logits. A label that
// is not an integer in [0, n) makes its row's loss and gradient NaN, and the
// next Sync or CopyOut returns an error naming it.
func (c *CUDA) SoftmaxCrossEntropy(loss, grad, logits, labels Buffer, rows, n int, scale float32) error {
	if err := CheckSoftmaxCE(loss, grad, logits, labels, rows, n); err != nil {
		return cudaErr(err)
	}
	const name = "softmax_cross_entropy"
	total := rows * n
	lp, err := c.ptr(name, "loss", loss, rows)
	if err != nil {
		return err
	}
	gp, err := c.ptr(name, "grad", grad, total)
	if err != nil {
		return err
	}
	xp, err := c.ptr(name, "logits", logits, total)
	if err != nil {
		return err
	}
	yp, err := c.ptr(name, "labels", labels, rows)
	if err != nil {
		return err
	}
	return wrap(c.ctx.SoftmaxCE(lp, gp, xp, yp, rows, n, scale), name, rows, n)
}

// BiasAct computes dst[r,j] = act(x[r,j] + bias[j]) for rows of n in one
// pass, without storing the biased values. dst may be x.
func (c *CUDA) BiasAct(dst, x, bias Buffer, rows, n int, act Activation) error {
	if err := CheckBiasAct(dst, x, bias, rows, n, act); err != nil {
		return cudaErr(err)
	}
	const name = "bias_act"
	total := rows * n
	d, err := c.ptr(name, "dst", dst, total)
	if err != nil {
		return err
	}
	xp, err := c.ptr(name, "x", x, total)
	if err != nil {
		return err
	}
	bp, err := c.ptr(name, "bias", bias, n)
	if err != nil {
		return err
	}
	return wrap(c.ctx.BiasAct(d, xp, bp, rows, n, int(act)), name, rows, n)
}

// BiasActGrad is the backward pass of BiasAct, in one launch: from y =
// act(x + bias) and g, the gradient with respect to y, it writes dx =
// g·act'(y) and adds the column sums of dx into dbias, or stores them unless
// accumulate. dbias may be nil. dx may be g. The sums are in a fixed order
// (each thread sums every 8th, 16th or 32nd row, then the threads' partial
// sums are added in turn), so repeated calls agree bit for bit; the CPU adds
// row by row, so the two differ by rounding.
func (c *CUDA) BiasActGrad(dx, dbias, y, g Buffer, rows, n int, act Activation, accumulate bool) error {
	if err := CheckBiasActGrad(dx, dbias, y, g, rows, n, act); err != nil {
		return cudaErr(err)
	}
	const name = "bias_act_grad"
	total := rows * n
	d, err := c.ptr(name, "dx", dx, total)
	if err != nil {
		return err
	}
	yp, err := c.ptr(name, "y", y, total)
	if err != nil {
		return err
	}
	gp, err := c.ptr(name, "g", g, total)
	if err != nil {
		return err
	}
	var db cuda.Ptr
	if dbias != nil {
		if db, err = c.ptr(name, "dbias", dbias, n); err != nil {
			return err
		}
	}
	return wrap(c.ctx.BiasActGrad(d, db, yp, gp, rows, n, int(act), accumulate), name, rows, n)
}

// BatchNormForward normalises each channel of x, [outer, c, inner], with
// its batch statistics in one launch (see the BatchNorm interface). The
// sums are in a fixed order, so repeated calls agree bit for bit; the CPU
// sums in another order, so the two differ by rounding.
func (c *CUDA) BatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias Buffer, outer, ch, inner int, eps, momentum float32, act Activation) error {
	if err := CheckBatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias, outer, ch, inner, eps, momentum, act); err != nil {
		return cudaErr(err)
	}
	const name = "batch_norm"
	total := outer * ch * inner
	var p [8]cuda.Ptr
	for i, b := range []struct {
		arg string
		buf Buffer
		n   int
	}{{"y", y, total}, {"mean", mean, ch}, {"invstd", invstd, ch}, {"running_mean", runMean, ch}, {"running_var", runVar, ch},
		{"x", x, total}, {"weight", weight, ch}, {"bias", bias, ch}} {
		if (i == 3 || i == 4) && isNil(b.buf) {
			continue
		}
		var err error
		if p[i], err = c.ptr(name, b.arg, b.buf, b.n); err != nil {
			return err
		}
	}
	return wrap(c.ctx.BatchNorm(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], outer, ch, inner, eps, momentum, act == ActRelu), name, outer, ch, inner)
}

// BatchNormBackward is the backward pass of BatchNormForward in one
// launch (see the BatchNorm interface).
func (c *CUDA) BatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g Buffer, outer, ch, inner int, act Activation, accumulate bool) error {
	if err := CheckBatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g, outer, ch, inner, act); err != nil {
		return cudaErr(err)
	}
	const name = "batch_norm_grad"
	total := outer * ch * inner
	var p [9]cuda.Ptr
	for i, b := range []struct {
		arg string
		buf Buffer
		n   int
	}{{"dx", dx, total}, {"dweight", dweight, ch}, {"dbias", dbias, ch}, {"x", x, total}, {"y", y, total}, {"mean", mean, ch},
		{"invstd", invstd, ch}, {"weight", weight, ch}, {"g", g, total}} {
		if i < 3 && isNil(b.buf) || i == 4 && act != ActRelu {
			continue
		}
		var err error
		if p[i], err = c.ptr(name, b.arg, b.buf, b.n); err != nil {
			return err
		}
	}
	return wrap(c.ctx.BatchNormGrad(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], outer, ch, inner, accumulate), name, outer, ch, inner)
}

// Gather copies rows: dst[i,:] = src[idx[i],:] for i < nidx, rows of rowLen.
// An index that does not name a whole row of src gives a row of NaN, and the
// next Sync or CopyOut returns an error naming it.
func (c *CUDA) Gather(dst, src, idx Buffer, nidx, rowLen int) error {
	if err := CheckGather(dst, src, idx, nidx, rowLen); err != nil {
		return cudaErr(err)
	}
	const name = "gather"
	total := nidx * rowLen
	d, err := c.ptr(name, "dst", dst, total)
	if err != nil {
		return err
	}
	ip, err := c.ptr(name, "idx", idx, nidx)
	if err != nil {
		return err
	}
	sp, err := c.ptr(name, "src", src, 0)
	if err != nil {
		return err
	}
	if rowLen == 0 {
		return nil
	}
	return wrap(c.ctx.Gather(d, sp, ip, nidx, rowLen, src.Len()/rowLen), name, nidx, rowLen)
}

// DropoutMask fills dst[:n] with 1/(1-p) where HashUniform(seed, i) >= p and
// with 0 elsewhere, bit-identical to the CPU backend. p must lie in [0, 1].
func (c *CUDA) DropoutMask(dst Buffer, n int, p float32, seed uint64) error {
	if err := CheckDropout(dst, n, p); err != nil {
		return cudaErr(err)
	}
	const name = "dropout_mask"
	d, err := c.ptr(name, "dst", dst, n)
	if err != nil {
		return err
	}
	scale := 1 / (1 - p) // in float32, as the CPU backend computes it
	return wrap(c.ctx.Dropout(d, n, p, scale, seed), name, n)
}

// SGDStep updates p in place as torch.optim.SGD does, with g the gradient
// and buf the momentum buffer (unused, and may be nil, when Momentum is 0).
func (c *CUDA) SGDStep(p, g, buf Buffer, n int, hp SGDParams) error {
	if err := CheckSGD(p, g, buf, n, hp); err != nil {
		return cudaErr(err)
	}
	const name = "sgd_step"
	pp, err := c.ptr(name, "p", p, n)
	if err != nil {
		return err
	}
	gp, err := c.ptr(name, "g", g, n)
	if err != nil {
		return err
	}
	var bp cuda.Ptr
	if hp.Momentum != 0 {
		if bp, err = c.ptr(name, "buf", buf, n); err != nil {
			return err
		}
	}
	return wrap(c.ctx.SGD(pp, gp, bp, n, sgdArgs(&hp)), name, n)
}

// sgdArgs and adamArgs convert the hyper-parameters for the launchers.
func sgdArgs(hp *SGDParams) *cuda.SGDArgs {
	return &cuda.SGDArgs{LR: hp.LR, Momentum: hp.Momentum, Dampening: hp.Dampening, WeightDecay: hp.WeightDecay,
		Nesterov: hp.Nesterov, First: hp.First, Maximize: hp.Maximize}
}

func adamArgs(hp *AdamParams) *cuda.AdamArgs {
	return &cuda.AdamArgs{LR: hp.LR, Beta1: hp.Beta1, Beta2: hp.Beta2, Eps: hp.Eps, WeightDecay: hp.WeightDecay,
		Decoupled: hp.Decoupled, Maximize: hp.Maximize, Step: hp.Step}
}

// AdamStep updates p in place as torch.optim.Adam (or AdamW when
// hp.Decoupled) does, with g the gradient, m, v the first and second moment
// estimates and, with hp.AMSGrad, vmax their running maximum.
func (c *CUDA) AdamStep(p, g, m, v, vmax Buffer, n int, hp AdamParams) error {
	if err := CheckAdam(p, g, m, v, vmax, n, hp); err != nil {
		return cudaErr(err)
	}
	const name = "adam_step"
	var ptrs [5]cuda.Ptr
	bufs := [5]Buffer{p, g, m, v, vmax}
	for i, b := range bufs {
		if i == 4 && !hp.AMSGrad {
			break
		}
		var err error
		if ptrs[i], err = c.ptr(name, adamNames[i], b, n); err != nil {
			return err
		}
	}
	return wrap(c.ctx.Adam(ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], n, adamArgs(&hp)), name, n)
}

// SGDStepMulti is SGDStep on every tensor i (ps[i], gs[i], bufs[i], ns[i])
// in one kernel launch, bit-identical to one SGDStep per tensor. The device
// keeps a table of the tensors' addresses, uploaded on the first step over a
// list of buffers, so that later steps copy nothing.
func (c *CUDA) SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error {
	if err := CheckSGDMulti(ps, gs, bufs, ns, hp); err != nil {
		return cudaErr(err)
	}
	const name = "sgd_step_multi"
	pp, gp := make([]cuda.Ptr, len(ps)), make([]cuda.Ptr, len(ps))
	var bp []cuda.Ptr
	if hp.Momentum != 0 {
		bp = make([]cuda.Ptr, len(ps))
	}
	for i, n := range ns {
		var err error
		if pp[i], err = c.ptr(name, "p", ps[i], n); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
		if gp[i], err = c.ptr(name, "g", gs[i], n); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
		if bp != nil {
			if bp[i], err = c.ptr(name, "buf", bufs[i], n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
	}
	err := c.ctx.SGDMulti(pp, gp, bp, ns, sgdArgs(&hp))
	return wrap(err, name, len(ps))
}

// AdamStepMulti is AdamStep on every tensor i (ps[i], gs[i], ms[i], vs[i],
// vmaxs[i] with AMSGrad, ns[i]) in one kernel launch, bit-identical to one
// AdamStep per tensor, with a table kept on the device as SGDStepMulti does.
func (c *CUDA) AdamStepMulti(ps, gs, ms, vs, vmaxs []Buffer, ns []int, hp AdamParams) error {
	if err := CheckAdamMulti(ps, gs, ms, vs, vmaxs, ns, hp); err != nil {
		return cudaErr(err)
	}
	const name = "adam_step_multi"
	k := len(ps)
	ptrs := make([]cuda.Ptr, 5*k)
	lists := [5][]Buffer{ps, gs, ms, vs, vmaxs}
	for i, n := range ns {
		for j, l := range lists {
			if j == 4 && !hp.AMSGrad {
				break
			}
			var err error
			if ptrs[j*k+i], err = c.ptr(name, adamNames[j], l[i], n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
	}
	var vm []cuda.Ptr
	if hp.AMSGrad {
		vm = ptrs[4*k:]
	}
	err := c.ctx.AdamMulti(ptrs[:k], ptrs[k:2*k], ptrs[2*k:3*k], ptrs[3*k:4*k], vm, ns, adamArgs(&hp))
	return wrap(err, name, len(ps))
}
