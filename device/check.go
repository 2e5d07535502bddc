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
