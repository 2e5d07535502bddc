package device

import (
	"fmt"
	"math"
	"slices"
)

// The checks below are the one description of each operation's arguments,
// shared by every backend: a backend calls the check of an operation first
// and then trusts the sizes it was given. Their errors name the operation
// and the offending sizes; the backend adds its name ("device: cpu ...").
// What only a backend can know (that a buffer is its own and not freed)
// it checks itself when it takes the buffer.

// ArgError is an invalid argument of a device operation.
type ArgError struct {
	Op  string // the operation: "binary add", "matmul"
	Msg string // what is wrong, with the sizes
}

// Error names the operation and what is wrong.
func (e *ArgError) Error() string { return e.Op + ": " + e.Msg }

// opName names an operation in errors: a kind ("binary") followed by the
// enum value for the enum-selected operations ("binary add"). Building one
// costs nothing; it is only formatted when an error is returned.
type opName struct {
	kind string
	op   fmt.Stringer
}

func (o opName) String() string {
	if o.op == nil {
		return o.kind
	}
	return o.kind + " " + o.op.String()
}

func argErr(op opName, format string, args ...any) error {
	return &ArgError{Op: op.String(), Msg: fmt.Sprintf(format, args...)}
}

// need checks that b is not nil and holds at least n values.
func need(op opName, arg string, b Buffer, n int) error {
	if isNil(b) {
		return argErr(op, "%s is nil", arg)
	}
	if l := b.Len(); l < n {
		return argErr(op, "%s has %d values, need %d", arg, l, n)
	}
	return nil
}

// isNil reports whether b is nil or a typed nil of the backends' buffers.
func isNil(b Buffer) bool {
	switch v := b.(type) {
	case nil:
		return true
	case *CPUBuffer:
		return v == nil
	}
	return isNilBackend(b)
}

// size returns the product of dims, or an error when one is negative or
// the product overflows.
func size(op opName, dims ...int) (int, error) {
	p := 1
	for _, d := range dims {
		if d < 0 {
			return 0, argErr(op, "negative size %d in %v", d, slices.Clone(dims))
		}
		if d != 0 && p > math.MaxInt/d {
			return 0, argErr(op, "size %v overflows int", slices.Clone(dims))
		}
		p *= d
	}
	return p, nil
}

// span returns the number of values an operand read from off at strides
// st over shape must hold: one past its largest offset, 0 for an empty
// walk; ok is false on overflow.
func span(shape, st [MaxDims]int, off int) (n int, ok bool) {
	last := off
	for d := range MaxDims {
		if shape[d] == 0 {
			return 0, true
		}
		if st[d] != 0 && shape[d]-1 > (math.MaxInt-1-last)/st[d] {
			return 0, false
		}
		last += (shape[d] - 1) * st[d]
	}
	return last + 1, true
}

// checkWalk validates a walk reading inputs operands (1 to 3) for op,
// with dst and the inputs, and returns its element count.
func checkWalk(op opName, w *Walk, dst Buffer, inputs ...Buffer) (int, error) {
	n, err := size(op, w.Shape[:]...)
	if err != nil {
		return 0, err
	}
	strides := [3]*[MaxDims]int{&w.A, &w.B, &w.C}
	offs := [3]int{w.OffA, w.OffB, w.OffC}
	for i := range inputs {
		for d := range MaxDims {
			if strides[i][d] < 0 {
				return 0, argErr(op, "negative stride in walk %v of input %d", *strides[i], i)
			}
		}
		if offs[i] < 0 {
			return 0, argErr(op, "negative offset %d of input %d", offs[i], i)
		}
	}
	for d := range MaxDims {
		if w.D[d] < 0 {
			return 0, argErr(op, "negative dst stride in %v", w.D)
		}
	}
	if w.OffD < 0 {
		return 0, argErr(op, "negative dst offset %d", w.OffD)
	}
	if w.Pad {
		for d := range MaxDims {
			if w.Lo[d] < 0 || w.Hi[d] < w.Lo[d] || w.Hi[d] > w.Shape[d] {
				return 0, argErr(op, "padding bounds [%d, %d) of axis %d outside shape %v", w.Lo[d], w.Hi[d], d, w.Shape)
			}
		}
	}
	if n == 0 {
		return 0, nil
	}
	dn := n + w.OffD
	if w.D != [MaxDims]int{} {
		s, ok := span(w.Shape, w.D, w.OffD)
		if !ok {
			return 0, argErr(op, "dst walk %v overflows int", w.D)
		}
		dn = s
	}
	if err := need(op, "dst", dst, dn); err != nil {
		return 0, err
	}
	names := [3]string{"a", "b", "c"}
	if len(inputs) == 1 {
		names[0] = "x"
	}
	for i, in := range inputs {
		shape := w.Shape
		if w.Pad {
			for d := range MaxDims {
				shape[d] = w.Hi[d] - w.Lo[d]
			}
		}
		s, ok := span(shape, *strides[i], offs[i])
		if !ok {
			return 0, argErr(op, "walk %v of %s overflows int", *strides[i], names[i])
		}
		if err := need(op, names[i], in, s); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// CheckCopy validates the arguments of Device.Copy and returns the number
// of elements it writes.
func CheckCopy(dst, x Buffer, w *Walk) (int, error) {
	return checkWalk(opName{kind: "copy"}, w, dst, x)
}

// CheckUnary validates the arguments of Device.Unary.
func CheckUnary(op UnaryOp, dst, x Buffer, n int) error {
	if op < 0 || op >= numUnary {
		return argErr(opName{kind: "unary"}, "unknown op %v", op)
	}
	name := opName{"unary", op}
	if n < 0 {
		return argErr(name, "negative length %d", n)
	}
	if err := need(name, "dst", dst, n); err != nil {
		return err
	}
	return need(name, "x", x, n)
}

// CheckBinary validates the arguments of Device.Binary and returns the
// number of elements it writes.
func CheckBinary(op BinaryOp, dst, a, b Buffer, w *Walk) (int, error) {
	if op < 0 || op >= numBinary {
		return 0, argErr(opName{kind: "binary"}, "unknown op %v", op)
	}
	name := opName{"binary", op}
	if w.Pad || w.D != [MaxDims]int{} || w.OffD != 0 {
		return 0, argErr(name, "padding and dst strides are for copy only")
	}
	return checkWalk(name, w, dst, a, b)
}

// CheckTernary validates the arguments of Device.Ternary and returns the
// number of elements it writes.
func CheckTernary(op TernaryOp, dst, a, b, c Buffer, w *Walk) (int, error) {
	if op < 0 || op >= numTernary {
		return 0, argErr(opName{kind: "ternary"}, "unknown op %v", op)
	}
	name := opName{"ternary", op}
	if w.Pad || w.D != [MaxDims]int{} || w.OffD != 0 {
		return 0, argErr(name, "padding and dst strides are for copy only")
	}
	return checkWalk(name, w, dst, a, b, c)
}

// CheckFill validates the arguments of Device.Fill.
func CheckFill(dst Buffer, n int) error {
	name := opName{kind: "fill"}
	if n < 0 {
		return argErr(name, "negative length %d", n)
	}
	return need(name, "dst", dst, n)
}

// CheckHost validates the device buffer of CopyIn ("copy_in", dst) or
// CopyOut ("copy_out", src) for n host values.
func CheckHost(op, arg string, b Buffer, n int) error {
	return need(opName{kind: op}, arg, b, n)
}

// CheckReduce validates the arguments of Device.Reduce: an empty axis is
// an error for MaxOf and ArgMax, which have no value to give.
func CheckReduce(op ReduceOp, dst, x Buffer, outer, n, inner int) error {
	if op < 0 || op >= numReduce {
		return argErr(opName{kind: "reduce"}, "unknown op %v", op)
	}
	name := opName{"reduce", op}
	out, err := size(name, outer, inner)
	if err != nil {
		return err
	}
	total, err := size(name, out, n)
	if err != nil {
		return err
	}
	if err := need(name, "dst", dst, out); err != nil {
		return err
	}
	if err := need(name, "x", x, total); err != nil {
		return err
	}
	if n == 0 && out > 0 && (op == MaxOf || op == ArgMax) {
		return argErr(name, "empty reduction axis (%d x 0 x %d)", outer, inner)
	}
	return nil
}

// CheckMatMul validates the arguments of Device.MatMul; dst must not be an
// input.
func CheckMatMul(dst, a, b Buffer, m, k, n int) error {
	name := opName{kind: "matmul"}
	mn, err := size(name, m, n)
	if err != nil {
		return err
	}
	mk, err := size(name, m, k)
	if err != nil {
		return err
	}
	kn, err := size(name, k, n)
	if err != nil {
		return err
	}
	if err := need(name, "dst", dst, mn); err != nil {
		return err
	}
	if err := need(name, "a", a, mk); err != nil {
		return err
	}
	if err := need(name, "b", b, kn); err != nil {
		return err
	}
	if dst == a || dst == b {
		return argErr(name, "dst must not be an input")
	}
	return nil
}

// rowsOf validates rows x n values in each of bufs, named by names.
func rowsOf(name opName, rows, n int, names []string, bufs ...Buffer) error {
	total, err := size(name, rows, n)
	if err != nil {
		return err
	}
	for i, b := range bufs {
		if err := need(name, names[i], b, total); err != nil {
			return err
		}
	}
	return nil
}

// CheckSoftmax validates the arguments of Device.Softmax.
func CheckSoftmax(dst, x Buffer, rows, n int, log bool) error {
	name := opName{kind: "softmax"}
	if log {
		name.kind = "log_softmax"
	}
	return rowsOf(name, rows, n, []string{"dst", "x"}, dst, x)
}

// CheckGather validates the sizes of Device.Gather; the indices' values
// are the backend's to check (the GPU reports them at the next Sync).
func CheckGather(dst, src, idx Buffer, nidx, rowLen int) error {
	name := opName{kind: "gather"}
	total, err := size(name, nidx, rowLen)
	if err != nil {
		return err
	}
	if err := need(name, "dst", dst, total); err != nil {
		return err
	}
	if err := need(name, "idx", idx, nidx); err != nil {
		return err
	}
	return need(name, "src", src, 0)
}

// CheckDropout validates the arguments of Device.DropoutMask.
func CheckDropout(dst Buffer, n int, p float32) error {
	name := opName{kind: "dropout_mask"}
	if n < 0 {
		return argErr(name, "negative length %d", n)
	}
	if err := need(name, "dst", dst, n); err != nil {
		return err
	}
	if !(p >= 0 && p <= 1) {
		return argErr(name, "probability %v is not in [0, 1]", p)
	}
	return nil
}

// CheckSoftmaxCE validates the arguments of SoftmaxCE; the labels' values
// are the backend's to check.
func CheckSoftmaxCE(loss, grad, logits, labels Buffer, rows, n int) error {
	name := opName{kind: "softmax_cross_entropy"}
	if err := rowsOf(name, rows, n, []string{"grad", "logits"}, grad, logits); err != nil {
		return err
	}
	if err := need(name, "loss", loss, rows); err != nil {
		return err
	}
	return need(name, "labels", labels, rows)
}

// CheckBiasAct validates the arguments of BiasAct.
func CheckBiasAct(dst, x, bias Buffer, rows, n int, act Activation) error {
	name := opName{kind: "bias_act"}
	if act < 0 || act >= numActivation {
		return argErr(name, "unknown activation %d", int(act))
	}
	if err := rowsOf(name, rows, n, []string{"dst", "x"}, dst, x); err != nil {
		return err
	}
	return need(name, "bias", bias, n)
}

// CheckBiasActGrad validates the arguments of BiasActGrad; dbias may be
// nil, and must not be another operand.
func CheckBiasActGrad(dx, dbias, y, g Buffer, rows, n int, act Activation) error {
	name := opName{kind: "bias_act_grad"}
	if act < 0 || act >= numActivation {
		return argErr(name, "unknown activation %d", int(act))
	}
	if err := rowsOf(name, rows, n, []string{"dx", "y", "g"}, dx, y, g); err != nil {
		return err
	}
	if dbias == nil {
		return nil
	}
	if err := need(name, "dbias", dbias, n); err != nil {
		return err
	}
	if dbias == dx || dbias == y || dbias == g {
		return argErr(name, "dbias must not be another operand")
	}
	return nil
}

// CheckSGD validates the arguments of SGDStep: buf is needed only with
// momentum.
func CheckSGD(p, g, buf Buffer, n int, hp SGDParams) error {
	name := opName{kind: "sgd_step"}
	if hp.Momentum == 0 {
		return checkStep(name, n, sgdNames[:2], p, g)
	}
	return checkStep(name, n, sgdNames[:], p, g, buf)
}

// CheckAdam validates the arguments of AdamStep: hp.Step counts from 1,
// and vmax is needed with hp.AMSGrad (and must be nil without).
func CheckAdam(p, g, m, v, vmax Buffer, n int, hp AdamParams) error {
	name := opName{kind: "adam_step"}
	if hp.Step < 1 {
		return argErr(name, "step %d, want >= 1", hp.Step)
	}
	if !hp.AMSGrad {
		if vmax != nil {
			return argErr(name, "vmax given without AMSGrad")
		}
		return checkStep(name, n, adamNames[:4], p, g, m, v)
	}
	return checkStep(name, n, adamNames[:], p, g, m, v, vmax)
}

var (
	sgdNames  = [...]string{"p", "g", "buf"}
	adamNames = [...]string{"p", "g", "m", "v", "vmax"}
)

// checkStep validates one tensor of an optimizer step: n values in each
// of bufs, named by names.
func checkStep(name opName, n int, names []string, bufs ...Buffer) error {
	if n < 0 {
		return argErr(name, "negative length %d", n)
	}
	for i, b := range bufs {
		if err := need(name, names[i], b, n); err != nil {
			return err
		}
	}
	return nil
}

// CheckSGDMulti validates the arguments of SGDStepMulti: the list lengths,
// each tensor as CheckSGD does, and that no buffer one tensor writes is
// given for another.
func CheckSGDMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error {
	name := opName{kind: "sgd_step_multi"}
	mom := hp.Momentum != 0
	if len(gs) != len(ps) || len(ns) != len(ps) || (len(bufs) != len(ps) && !(bufs == nil && !mom)) {
		return argErr(name, "%d parameters, %d gradients, %d buffers and %d lengths", len(ps), len(gs), len(bufs), len(ns))
	}
	for i, n := range ns {
		var err error
		if mom {
			err = checkStep(name, n, sgdNames[:], ps[i], gs[i], bufs[i])
		} else {
			err = checkStep(name, n, sgdNames[:2], ps[i], gs[i])
		}
		if err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	written := [2][]Buffer{ps, bufs}
	if !mom {
		return disjoint(name, written[:1], gs)
	}
	return disjoint(name, written[:], gs)
}

// CheckAdamMulti validates the arguments of AdamStepMulti as
// CheckSGDMulti does those of SGDStepMulti; vmaxs is given exactly with
// hp.AMSGrad.
func CheckAdamMulti(ps, gs, ms, vs, vmaxs []Buffer, ns []int, hp AdamParams) error {
	name := opName{kind: "adam_step_multi"}
	if len(gs) != len(ps) || len(ms) != len(ps) || len(vs) != len(ps) || len(ns) != len(ps) {
		return argErr(name, "%d parameters, %d gradients, %d and %d moments, %d lengths", len(ps), len(gs), len(ms), len(vs), len(ns))
	}
	if hp.AMSGrad != (vmaxs != nil) || (vmaxs != nil && len(vmaxs) != len(ps)) {
		return argErr(name, "%d vmax buffers for %d parameters with AMSGrad %v", len(vmaxs), len(ps), hp.AMSGrad)
	}
	if hp.Step < 1 {
		return argErr(name, "step %d, want >= 1", hp.Step)
	}
	for i, n := range ns {
		var err error
		if hp.AMSGrad {
			err = checkStep(name, n, adamNames[:], ps[i], gs[i], ms[i], vs[i], vmaxs[i])
		} else {
			err = checkStep(name, n, adamNames[:4], ps[i], gs[i], ms[i], vs[i])
		}
		if err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	written := [4][]Buffer{ps, ms, vs, vmaxs}
	if !hp.AMSGrad {
		return disjoint(name, written[:3], gs)
	}
	return disjoint(name, written[:], gs)
}

// disjoint reports a buffer that one tensor writes (written[r][i]) and that
// another tensor writes or reads (read[k]): a device that updates every
// tensor at once would race on it. It compares pairs instead of building a
// map, so that it allocates nothing.
func disjoint(name opName, written [][]Buffer, read []Buffer) error {
	n := len(read)
	for i := range n {
		for _, ws := range written {
			w := ws[i]
			for k := range i {
				for _, other := range written {
					if other[k] == w {
						return argErr(name, "tensors %d and %d write the same buffer", k, i)
					}
				}
			}
			for k := range n {
				if k != i && read[k] == w {
					return argErr(name, "tensor %d reads a buffer that tensor %d writes", k, i)
				}
			}
		}
	}
	return nil
}
