//go:build cuda

package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"
)

// kernel indexes the kernels of kernels.cu.
type kernel int

const (
	kFill kernel = iota
	kCopyWalk
	kUnary
	kBinary
	kBinaryWalk
	kTernaryWalk
	kReduceRows
	kReducePartial
	kReduceFinal
	kReduceCols
	kSoftmax
	kSoftmaxCE
	kBiasAct
	kBiasActGrad
	kGather
	kDropout
	kSGD
	kAdam
	kSGDMulti
	kAdamMulti
	kSgemm128
	kSgemm64
	kSgemm32
	kSgemmSum
	kBatchNorm
	kBatchNormGrad
	kIm2col
	kCol2im
	numKernels
)

var kernelNames = [numKernels]string{
	"fill_f32", "copy_walk_f32", "unary_f32", "binary_f32", "binary_walk_f32", "ternary_walk_f32",
	"reduce_rows_f32", "reduce_partial_f32", "reduce_final_f32", "reduce_cols_f32",
	"softmax_f32", "softmax_ce_f32", "bias_act_f32", "bias_act_grad_f32", "gather_f32", "dropout_f32",
	"sgd_f32", "adam_f32", "sgd_multi_f32", "adam_multi_f32", "sgemm_128_f32", "sgemm_64_f32", "sgemm_32_f32", "sgemm_splitk_sum_f32",
	"batch_norm_f32", "batch_norm_grad_f32",
	"im2col_f32", "col2im_f32",
}

const (
	threads     = 256       // block size of the 1-D kernels
	maxGridY    = 65535     // CUDA's limit on gridDim.y
	maxGridX    = 1<<31 - 1 // and on gridDim.x
	raccBytes   = 24        // sizeof(RAcc) in kernels.cu
	maxGemmSide = 1<<31 - 1024
)

// MaxDims is the rank of the walks CopyWalk, BinaryWalk and TernaryWalk
// take (device.MaxDims).
const MaxDims = 6

// Walk is a collapsed device.Walk as the walk kernels take it: the output
// shape, the inputs' offsets and strides, and for CopyWalk the dst's
// (DstStrides all zero: contiguous) and the padding.
type Walk struct {
	Shape      [MaxDims]int
	Off        [3]int
	Strides    [3][MaxDims]int
	DstOff     int
	DstStrides [MaxDims]int
	Pad        bool
	Lo, Hi     [MaxDims]int
	Fill       float32
}

var block1 = [3]int{threads, 1, 1}

// blocks is the grid of a grid-stride kernel over items work items, one per
// thread: enough blocks to cover them, at most 32 per multiprocessor.
func (c *Context) blocks(items int) [3]int {
	b := (items + threads - 1) / threads
	return [3]int{min(max(b, 1), 32*c.sms), 1, 1}
}

// Fill sets dst[i] = v for i < n.
func (c *Context) Fill(dst Ptr, n int, v float32) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kFill, c.blocks((n+3)/4), block1, ptrArg(dst), intArg(n), floatArg(v))
}

// walkArgs appends the kernel arguments of w with inputs operands to args:
// the element count, the number of axes used (from the first that is not a
// unit axis, or that is padded) and the inner five sizes,
// then each input's offset and strides. It returns them with the count and
// whether 64-bit indexing is needed (some offset reaches 2^31).
func walkArgs(args []uint64, w *Walk, inputs int) ([]uint64, int, bool) {
	n, nd := 1, 1
	for d, s := range w.Shape {
		n *= s
		padded := w.Pad && (w.Lo[d] != 0 || w.Hi[d] != s) // a unit axis may be all fill
		if (s != 1 || padded) && MaxDims-d > nd {
			nd = MaxDims - d
		}
	}
	args = append(args, intArg(n), intArg(nd))
	for d := 1; d < MaxDims; d++ {
		args = append(args, intArg(w.Shape[d]))
	}
	wide := n >= math.MaxInt32 || w.DstOff+n >= math.MaxInt32
	for i := range inputs {
		args = append(args, intArg(w.Off[i]))
		span := w.Off[i] + 1
		for d := range MaxDims {
			args = append(args, intArg(w.Strides[i][d]))
			span += (w.Shape[d] - 1) * w.Strides[i][d]
		}
		wide = wide || span >= math.MaxInt32
	}
	dspan := w.DstOff + 1
	for d := range MaxDims {
		dspan += (w.Shape[d] - 1) * w.DstStrides[d]
	}
	return args, n, wide || dspan >= math.MaxInt32
}

// CopyWalk writes the walk of x described by w into dst: dst[DstOff +
// Σ i_d·DstStrides[d]] (or dst[DstOff + i]) = x[Off[0] + Σ (i_d -
// Lo[d])·Strides[0][d]], and Fill outside [Lo, Hi) when Pad is set.
func (c *Context) CopyWalk(dst, x Ptr, w *Walk) error {
	args, n := copyWalkArgs(dst, x, w)
	if n == 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kCopyWalk, c.blocks(n), block1, args...)
}

// copyWalkArgs returns the arguments of copy_walk_f32, the last of which
// selects 64-bit indexing, and the element count.
func copyWalkArgs(dst, x Ptr, w *Walk) ([]uint64, int) {
	args, n, wide := walkArgs(append(make([]uint64, 0, maxArgs), ptrArg(dst), ptrArg(x)), w, 1)
	args = append(args, intArg(w.DstOff))
	for d := range MaxDims {
		args = append(args, intArg(w.DstStrides[d]))
	}
	args = append(args, boolArg(w.DstStrides != [MaxDims]int{}), boolArg(w.Pad))
	for d := range MaxDims {
		args = append(args, intArg(w.Lo[d]))
	}
	for d := range MaxDims {
		args = append(args, intArg(w.Hi[d]))
	}
	return append(args, floatArg(w.Fill), boolArg(wide)), n
}

// Unary computes dst[i] = op(x[i], alpha, beta) for i < n.
func (c *Context) Unary(op int, dst, x Ptr, n int, alpha, beta float32) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kUnary, c.blocks((n+3)/4), block1, intArg(op), ptrArg(dst), ptrArg(x), intArg(n), floatArg(alpha), floatArg(beta))
}

// Binary computes dst[i] = op(a[i], b[i], alpha, beta) for i < n, all
// contiguous.
func (c *Context) Binary(op int, dst, a, b Ptr, n int, alpha, beta float32) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kBinary, c.blocks((n+3)/4), block1, intArg(op), ptrArg(dst), ptrArg(a), ptrArg(b), intArg(n), floatArg(alpha), floatArg(beta))
}

// BinaryWalk computes dst = op(a, b, alpha, beta) contiguously over
// w.Shape, reading a and b at their offsets and strides (0 on broadcast
// axes).
func (c *Context) BinaryWalk(op int, dst, a, b Ptr, w *Walk, alpha, beta float32) error {
	args, n := binaryWalkArgs(op, dst, a, b, w, alpha, beta)
	if n == 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kBinaryWalk, c.blocks(n), block1, args...)
}

// binaryWalkArgs returns the arguments of binary_walk_f32, the last of
// which selects 64-bit indexing, and the element count.
func binaryWalkArgs(op int, dst, a, b Ptr, w *Walk, alpha, beta float32) ([]uint64, int) {
	args, n, wide := walkArgs(append(make([]uint64, 0, maxArgs), intArg(op), ptrArg(dst), ptrArg(a), ptrArg(b)), w, 2)
	return append(args, floatArg(alpha), floatArg(beta), boolArg(wide)), n
}

// TernaryWalk computes dst = op(a, b, x) contiguously over w.Shape, each
// read at its offset and strides.
func (c *Context) TernaryWalk(op int, dst, a, b, x Ptr, w *Walk) error {
	args, n, wide := walkArgs(append(make([]uint64, 0, maxArgs), intArg(op), ptrArg(dst), ptrArg(a), ptrArg(b), ptrArg(x)), w, 3)
	if n == 0 {
		return nil
	}
	args = append(args, boolArg(wide))
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kTernaryWalk, c.blocks(n), block1, args...)
}

// Reduce views x as [outer, n, inner] and reduces the middle axis into dst
// of [outer, inner]. Short rows take a warp each; few long rows (and the
// reduction of everything) are split into chunks reduced in two passes;
// inner > 1 reduces columns with coalesced loads.
func (c *Context) Reduce(op int, dst, x Ptr, outer, n, inner int) error {
	if outer <= 0 || inner <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	switch {
	case inner > 1:
		gx := (inner + 31) / 32
		if gx > maxGridX {
			return fmt.Errorf("cuda: reduce_cols_f32: %d columns is too many", inner)
		}
		return c.launch(kReduceCols, [3]int{gx, min(outer, maxGridY), 1}, [3]int{32, 8, 1},
			intArg(op), ptrArg(dst), ptrArg(x), intArg(outer), intArg(n), intArg(inner))
	case n <= 4096 || outer >= 32*c.sms:
		// A warp per row; 8 warps per block.
		return c.launch(kReduceRows, c.blocks(outer*32), block1,
			intArg(op), ptrArg(dst), ptrArg(x), intArg(outer), intArg(n))
	}
	// Few long rows: about 4 blocks per multiprocessor in all, each over a
	// chunk of at least 2048 values, then one pass over the partial results.
	parts := min(max((4*c.sms+outer-1)/outer, 1), 1024, (n+2047)/2048)
	chunk := (n + parts - 1) / parts
	parts = (n + chunk - 1) / chunk
	scratch, err := c.pool.Get(int64(outer) * int64(parts) * raccBytes)
	if err != nil {
		return fmt.Errorf("cuda: reduce scratch for %d partial results: %w", outer*parts, err)
	}
	// Put it back once both passes are queued: later work that reuses the
	// block is queued after them.
	defer c.pool.Put(scratch)
	err = c.launch(kReducePartial, [3]int{parts, min(outer, maxGridY), 1}, block1,
		intArg(op), uint64(scratch), ptrArg(x), intArg(outer), intArg(n), intArg(chunk))
	if err != nil {
		return err
	}
	return c.launch(kReduceFinal, [3]int{min(outer, 32*c.sms), 1, 1}, block1,
		intArg(op), ptrArg(dst), uint64(scratch), intArg(outer), intArg(parts), intArg(n))
}

// rowThreads is the block size of the block-per-row kernels for rows of n.
func rowThreads(n int) int {
	switch {
	case n <= 128:
		return 32
	case n <= 1024:
		return 128
	}
	return threads
}

// Softmax computes the softmax (or log-softmax) of each of the rows of x,
// each n wide, into dst, which may be x.
func (c *Context) Softmax(dst, x Ptr, rows, n int, log bool) error {
	if rows <= 0 || n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kSoftmax, [3]int{min(rows, 32*c.sms), 1, 1}, [3]int{rowThreads(n), 1, 1},
		ptrArg(dst), ptrArg(x), intArg(rows), intArg(n), boolArg(log))
}

// SoftmaxCE writes each row's cross-entropy loss and (softmax - onehot) *
// scale into grad, for rows of n logits and float32 labels. A label that is
// not an integer in [0, n) gives NaN for that row, and the next Sync or
// CopyOut reports it.
func (c *Context) SoftmaxCE(loss, grad, logits, labels Ptr, rows, n int, scale float32) error {
	if rows <= 0 || n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kSoftmaxCE, [3]int{min(rows, 32*c.sms), 1, 1}, [3]int{rowThreads(n), 1, 1},
		ptrArg(loss), ptrArg(grad), ptrArg(logits), ptrArg(labels), intArg(rows), intArg(n), floatArg(scale),
		ptrArg(c.fault.dev))
}

// rowGrid is the grid and block of a kernel with rows on y and columns of n
// on x.
func (c *Context) rowGrid(rows, n int) (grid, block [3]int) {
	tx := min((n+31)/32*32, threads)
	gx := min((n+tx-1)/tx, 32*c.sms)
	return [3]int{gx, min(rows, maxGridY), 1}, [3]int{tx, 1, 1}
}

// BiasAct computes dst[r,j] = act(x[r,j] + bias[j]) for rows of n.
func (c *Context) BiasAct(dst, x, bias Ptr, rows, n int, act int) error {
	if rows <= 0 || n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	grid, block := c.rowGrid(rows, n)
	return c.launch(kBiasAct, grid, block, ptrArg(dst), ptrArg(x), ptrArg(bias), intArg(rows), intArg(n), intArg(act))
}

// biasGradRows is the number of threads over rows in a block of
// bias_act_grad_f32 (32 threads wide) for rows rows: more for taller inputs,
// so that more loads are in flight per column strip. It depends on rows
// alone, so the summation order does too.
func biasGradRows(rows int) int {
	switch {
	case rows <= 64:
		return 8
	case rows <= 256:
		return 16
	}
	return 32
}

// BiasActGrad writes dx = g·act'(y) for rows of n, with y the output of
// the activation act, and the column sums of dx into dbias (added to it when
// accumulate), in one launch. dbias may be 0, for no bias gradient; dx may
// be g. The sums are in a fixed order, so repeated calls agree bit for bit.
func (c *Context) BiasActGrad(dx, dbias, y, g Ptr, rows, n int, act int, accumulate bool) error {
	// With no rows there is still a bias gradient to clear.
	if n <= 0 || rows < 0 || (rows == 0 && (dbias == 0 || accumulate)) {
		return nil
	}
	gx := (n + 31) / 32
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kBiasActGrad, [3]int{min(gx, maxGridX), 1, 1}, [3]int{32, biasGradRows(rows), 1},
		ptrArg(dx), ptrArg(dbias), ptrArg(y), ptrArg(g), intArg(rows), intArg(n), intArg(act), boolArg(accumulate))
}

// bnThreads is the block size of the batch norm kernels for m values per
// channel: whole warps, more for longer channels. It depends on m alone, so
// the summation order does too.
func bnThreads(m int) int {
	switch {
	case m >= 8192:
		return 1024
	case m >= 256:
		return 256
	}
	return (m + 31) / 32 * 32
}

// BatchNorm normalises each channel of x, [outer, c, inner], with its
// batch statistics in one launch of one block per channel: it stores the
// mean and 1/sqrt(var + eps) of each channel, writes y = (x - mean)·invstd·w
// + b, and, when rmean is not 0, updates rmean and rvar with the momentum
// and the unbiased variance. With relu it writes relu(y) instead, the
// ReLU that follows fused. outer·inner must be at least 2.
func (c *Context) BatchNorm(y, mean, invstd, rmean, rvar, x, w, b Ptr, outer, ch, inner int, eps, momentum float32, relu bool) error {
	if outer*ch*inner <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kBatchNorm, [3]int{min(ch, maxGridX), 1, 1}, [3]int{bnThreads(outer * inner), 1, 1},
		ptrArg(y), ptrArg(mean), ptrArg(invstd), ptrArg(rmean), ptrArg(rvar), ptrArg(x), ptrArg(w), ptrArg(b),
		intArg(outer), intArg(ch), intArg(inner), floatArg(eps), floatArg(momentum), boolArg(relu))
}

// BatchNormGrad is the backward pass of BatchNorm in one launch: per
// channel, dbias = Σg and dweight = Σg·x̂ (stored, or added when
// accumulate; either may be 0) and, when dx is not 0, dx = w·invstd·(g -
// dbias/m - x̂·dweight/m) with this batch's sums. When y, the forward
// pass's output, is not 0, a ReLU followed: g·[y > 0] takes the place of g.
// dx may be g or y.
func (c *Context) BatchNormGrad(dx, dweight, dbias, x, y, mean, invstd, w, g Ptr, outer, ch, inner int, accumulate bool) error {
	if outer*ch*inner <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kBatchNormGrad, [3]int{min(ch, maxGridX), 1, 1}, [3]int{bnThreads(outer * inner), 1, 1},
		ptrArg(dx), ptrArg(dweight), ptrArg(dbias), ptrArg(x), ptrArg(y), ptrArg(mean), ptrArg(invstd), ptrArg(w), ptrArg(g),
		intArg(outer), intArg(ch), intArg(inner), boolArg(accumulate))
}

// Gather copies dst[i,:] = src[idx[i],:] for i < nidx, rows of rowLen; src
// has srcRows rows. A bad index gives a row of NaN, and the next Sync or
// CopyOut reports it.
func (c *Context) Gather(dst, src, idx Ptr, nidx, rowLen, srcRows int) error {
	if nidx <= 0 || rowLen <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	grid, block := c.rowGrid(nidx, rowLen)
	return c.launch(kGather, grid, block, ptrArg(dst), ptrArg(src), ptrArg(idx), intArg(nidx), intArg(rowLen),
		intArg(srcRows), ptrArg(c.fault.dev))
}

// Dropout fills dst[:n] with scale where HashUniform(seed, i) >= p and 0
// elsewhere.
func (c *Context) Dropout(dst Ptr, n int, p, scale float32, seed uint64) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kDropout, c.blocks(n), block1, ptrArg(dst), intArg(n), floatArg(p), floatArg(scale), seed)
}

// SGDArgs are the hyper-parameters of an SGD step (device.SGDParams).
type SGDArgs struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov, First, Maximize            bool
}

func (a *SGDArgs) args() []uint64 {
	return []uint64{floatArg(a.LR), floatArg(a.Momentum), floatArg(1 - a.Dampening), floatArg(a.WeightDecay),
		boolArg(a.Nesterov), boolArg(a.First), boolArg(a.Maximize)}
}

// AdamArgs are the hyper-parameters of an Adam step (device.AdamParams);
// Step counts from 1 (package device checks it).
type AdamArgs struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Decoupled, Maximize                bool
	Step                               int
}

// args are the scalar arguments of adam_f32 and adam_multi_f32: the
// hyper-parameters, then decay = 1 - lr*wd, the step size lr / (1 - beta1^t)
// and sqrt(1 - beta2^t), computed in float64 as PyTorch computes them in
// Python, and maximize.
func (a *AdamArgs) args() []uint64 {
	bc1 := 1 - math.Pow(float64(a.Beta1), float64(a.Step))
	bc2 := 1 - math.Pow(float64(a.Beta2), float64(a.Step))
	stepSize := float32(float64(a.LR) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := float32(1 - float64(a.LR)*float64(a.WeightDecay))
	return []uint64{floatArg(a.Beta1), floatArg(a.Beta2), floatArg(a.Eps), floatArg(a.WeightDecay), boolArg(a.Decoupled),
		floatArg(decay), floatArg(stepSize), floatArg(bc2Sqrt), boolArg(a.Maximize)}
}

// SGD is one torch.optim.SGD step over n parameters; buf is unused when
// momentum is 0.
func (c *Context) SGD(p, g, buf Ptr, n int, hp *SGDArgs) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kSGD, c.blocks(n), block1, append([]uint64{ptrArg(p), ptrArg(g), ptrArg(buf), intArg(n)}, hp.args()...)...)
}

// Adam is one torch.optim.Adam (AdamW when decoupled) step over n
// parameters; vmax is 0 without AMSGrad.
func (c *Context) Adam(p, g, m, v, vmax Ptr, n int, hp *AdamArgs) error {
	if n <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	return c.launch(kAdam, c.blocks(n), block1, append([]uint64{ptrArg(p), ptrArg(g), ptrArg(m), ptrArg(v), ptrArg(vmax), intArg(n)},
		hp.args()...)...)
}

// SGDMulti is SGD over several tensors in one launch: tensor i is the n[i]
// parameters p[i] with gradient g[i] and momentum buffer buf[i] (unused when
// momentum is 0; buf may then be nil). Each tensor's result is bit for bit
// that of SGD. A buffer that one tensor writes must not belong to another.
func (c *Context) SGDMulti(p, g, buf []Ptr, n []int, hp *SGDArgs) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	c.ents = c.ents[:0]
	for i := range p {
		e := multiEntry{p: uint64(p[i]), g: uint64(g[i]), n: n[i]}
		if hp.Momentum != 0 {
			e.s1 = uint64(buf[i])
		}
		c.ents = append(c.ents, e)
	}
	return c.launchMulti(kSGDMulti, hp.args()...)
}

// AdamMulti is Adam over several tensors in one launch: tensor i is the n[i]
// parameters p[i] with gradient g[i], moments m[i], v[i] and, with AMSGrad
// (vmax not nil), the maximum vmax[i]. Each tensor's result is bit for bit
// that of Adam. A buffer that one tensor writes must not belong to another.
func (c *Context) AdamMulti(p, g, m, v, vmax []Ptr, n []int, hp *AdamArgs) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	c.ents = c.ents[:0]
	for i := range p {
		e := multiEntry{p: uint64(p[i]), g: uint64(g[i]), s1: uint64(m[i]), s2: uint64(v[i]), n: n[i]}
		if vmax != nil {
			e.s3 = uint64(vmax[i])
		}
		c.ents = append(c.ents, e)
	}
	return c.launchMulti(kAdamMulti, hp.args()...)
}

// maxTables is the most multi-tensor tables kept on the device. A training
// loop uses one or two; when a program cycles through more, they are all
// dropped and uploaded again as needed.
const maxTables = 16

// multiUpload is a multi-tensor table on the device.
type multiUpload struct {
	ptr     uintptr
	tensors int // entries
	chunks  int
}

// launchMulti runs the multi-tensor kernel k over the tensors in c.ents,
// with the table's arguments followed by scalars; the caller has entered.
// The table is uploaded on the first use of a list of tensors and reused
// after, so a training step copies nothing to the device.
func (c *Context) launchMulti(k kernel, scalars ...uint64) error {
	var chunks int
	var err error
	c.tabWords, chunks, err = multiTensors(c.tabWords[:0], c.ents)
	if err != nil {
		return err
	}
	if chunks == 0 {
		return nil
	}
	c.tabKey = c.tabKey[:0]
	for _, w := range c.tabWords {
		c.tabKey = binary.LittleEndian.AppendUint64(c.tabKey, w)
	}
	up, ok := c.tables[string(c.tabKey)]
	if !ok {
		if up, err = c.uploadTable(k, chunks); err != nil {
			return err
		}
	}
	args := append([]uint64{uint64(up.ptr), uint64(up.ptr) + uint64(8*multiWords*up.tensors), intArg(up.chunks)}, scalars...)
	return c.launch(k, [3]int{min(up.chunks, 32*c.sms), 1, 1}, block1, args...)
}

// uploadTable copies the table of c.ents (its tensor part in c.tabWords,
// c.tabKey) for kernel k to the device and caches it. Package device has
// checked the tensors (lengths, and that no tensor writes another's buffer).
func (c *Context) uploadTable(k kernel, chunks int) (multiUpload, error) {
	if len(c.tables) >= maxTables {
		c.dropTables()
	}
	tab := multiTable(c.tabWords, chunks)
	p, err := c.pool.Get(int64(len(tab)) * 8)
	if err != nil {
		return multiUpload{}, fmt.Errorf("cuda: %s: table of %d tensors: %w", kernelNames[k], len(c.ents), err)
	}
	if err := cu.MemcpyHtoDAsync(Ptr(p), unsafe.Pointer(&tab[0]), int64(len(tab))*8, cu.Stream{}); err != nil {
		c.pool.Put(p)
		return multiUpload{}, fmt.Errorf("cuda: %s: copying a table of %d tensors to the device: %w", kernelNames[k], len(c.ents),
			describe(err))
	}
	up := multiUpload{ptr: p, tensors: len(c.ents), chunks: chunks}
	if c.tables == nil {
		c.tables = map[string]multiUpload{}
	}
	c.tables[string(c.tabKey)] = up
	return up, nil
}

// dropTables returns the cached tables' memory to the pool; work queued
// later that reuses it runs after the kernels that read them.
func (c *Context) dropTables() {
	for k, up := range c.tables {
		c.pool.Put(up.ptr)
		delete(c.tables, k)
	}
}

// Sgemm computes dst[m,n] = op(a)[m,k] · op(b)[k,n] (+ dst when accumulate),
// row-major, where a is stored [k,m] when transA and b [n,k] when transB. It
// takes the largest tile (128, 64 or 32 square) that still gives every
// multiprocessor a block. When even 32x32 tiles leave multiprocessors idle
// and k is long (a batch of 128 through an MLP layer), it splits k: each
// slice of k is multiplied into a workspace, and the slices are summed in a
// fixed order, so results do not vary from run to run.
func (c *Context) Sgemm(dst, a, b Ptr, m, k, n int, transA, transB, accumulate bool) error {
	if m <= 0 || n <= 0 || k < 0 {
		return nil
	}
	if m > maxGemmSide || n > maxGemmSide || k > maxGemmSide {
		return fmt.Errorf("cuda: sgemm %dx%dx%d: a side exceeds %d", m, k, n, maxGemmSide)
	}
	kern, tiles := c.sgemmTiles(m, n)
	if tiles > maxGridX {
		return fmt.Errorf("cuda: %s: %dx%d needs %d tiles, more than a grid holds", kernelNames[kern], m, n, tiles)
	}
	splits, kchunk := c.sgemmSplits(kern, tiles, k)
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	if splits == 1 {
		return c.launch(kern, [3]int{tiles, 1, 1}, block1, ptrArg(dst), ptrArg(a), ptrArg(b),
			intArg(m), intArg(n), intArg(k), boolArg(transA), boolArg(transB), boolArg(accumulate), intArg(kchunk))
	}
	ws, err := c.pool.Get(int64(splits) * int64(m) * int64(n) * 4)
	if err != nil {
		return fmt.Errorf("cuda: split-K workspace for %s: %w", kernelNames[kern], err)
	}
	defer c.pool.Put(ws) // later users of the block are queued after the sum
	err = c.launch(kern, [3]int{tiles, splits, 1}, block1, uint64(ws), ptrArg(a), ptrArg(b),
		intArg(m), intArg(n), intArg(k), boolArg(transA), boolArg(transB), boolArg(false), intArg(kchunk))
	if err != nil {
		return err
	}
	return c.launch(kSgemmSum, c.blocks(m*n), block1, ptrArg(dst), uint64(ws), intArg(m*n), intArg(splits), boolArg(accumulate))
}

// sgemmSplits returns how many slices of k an SGEMM of tiles blocks with
// kernel kern is split into, and their length (a multiple of 32): about two
// blocks per multiprocessor, slices of at least 128, at most 16 of them.
func (c *Context) sgemmSplits(kern kernel, tiles, k int) (splits, kchunk int) {
	if kern == kSgemm128 || tiles >= c.sms || k < 256 {
		return 1, k
	}
	splits = min((2*c.sms+tiles-1)/tiles, k/128, 16)
	kchunk = ((k+splits-1)/splits + 31) / 32 * 32
	return (k + kchunk - 1) / kchunk, kchunk
}

// sgemmTiles picks the SGEMM kernel for an m x n product and returns it
// with its number of tiles (blocks).
func (c *Context) sgemmTiles(m, n int) (kernel, int) {
	tiles := func(t int) int { return ((m + t - 1) / t) * ((n + t - 1) / t) }
	switch {
	case tiles(128) >= c.sms:
		return kSgemm128, tiles(128)
	case tiles(64) >= c.sms:
		return kSgemm64, tiles(64)
	}
	return kSgemm32, tiles(32)
}

// SgemmKernel names the kernel Sgemm uses for an m x k x n product, with
// the number of slices of k when it splits k.
func (c *Context) SgemmKernel(m, k, n int) string {
	kern, tiles := c.sgemmTiles(m, n)
	if splits, _ := c.sgemmSplits(kern, tiles, k); splits > 1 {
		return fmt.Sprintf("%s split-K %d", kernelNames[kern], splits)
	}
	return kernelNames[kern]
}

// ConvGeom is the geometry of a sliding window over [N, C, H, W] images
// (device.ConvGeom): kernel, strides, padding and dilations.
type ConvGeom struct {
	N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW int
}

func (g *ConvGeom) args(args []uint64) []uint64 {
	for _, v := range [...]int{g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW} {
		args = append(args, intArg(v))
	}
	return args
}

// Im2col writes the column matrix of x, of cols values, into col
// (device.Im2col), with fill in the padding.
func (c *Context) Im2col(col, x Ptr, g *ConvGeom, cols int, fill float32) error {
	if cols <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	var buf [16]uint64
	args := append(g.args(append(buf[:0], ptrArg(col), ptrArg(x))), floatArg(fill))
	return c.launch(kIm2col, c.blocks(cols), block1, args...)
}

// Col2im stores (or adds, when accumulate) into x, of pixels values, the
// sums of the elements of col read from each pixel (device.Im2col).
func (c *Context) Col2im(x, col Ptr, g *ConvGeom, pixels int, accumulate bool) error {
	if pixels <= 0 {
		return nil
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	var buf [16]uint64
	args := append(g.args(append(buf[:0], ptrArg(x), ptrArg(col))), boolArg(accumulate))
	return c.launch(kCol2im, c.blocks(pixels), block1, args...)
}
