// Package autograd records tensor operations on a Tape and computes
// gradients by walking it backwards.
//
// Each differentiable operation computes its value, records itself on the
// tape of its inputs, and keeps a closure that, given the gradient of its
// output, accumulates (+=) the gradients of its inputs. Recording order is
// topological, so Backward runs the closures in reverse. After Backward the
// tape frees the values and gradients of its intermediates at once, so
// device memory never waits for Go's garbage collector.
//
// Leaves are created with Param (trainable, no tape), Const (no gradient),
// or Tape.Var (on a tape, for inputs and worked examples). An operation
// records on the first tape among its inputs; operations on leaves with no
// tape simply compute. Inside Tape.NoGrad nothing records a backward closure.
package autograd
