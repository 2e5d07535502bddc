package autograd

import (
	"errors"

	"github.com/gograd/gograd/tensor"
)

// SetGradHook makes Backward call fn(v) once per pass that reaches v, a
// leaf, as soon as v's gradient for that pass is complete: every
// contribution of the pass has been added to v.Grad. fn runs on the
// goroutine running Backward, before Backward goes on, and the hooks of
// different leaves run in the order their gradients become ready, which is
// the order in which a data-parallel trainer can start reducing them. fn
// may read v.Grad (nil if no gradient ever reached v, as for the condition
// of Where); it must not change the graph or run Backward. A nil fn
// removes the hook.
// SetGradHook panics on a variable that is not a leaf.
func (v *Var) SetGradHook(fn func(v *Var)) {
	if v.fn != nil {
		panic(&tensor.Error{Op: "set grad hook", Err: errors.New("autograd: hooks belong to leaves; this variable was computed by " + v.fn.op)})
	}
	v.hook = fn
}

// gradReady calls v's hook, if it has one.
func (v *Var) gradReady() {
	if v.hook != nil {
		v.hook(v)
	}
}
