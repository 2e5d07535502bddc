// Package autograd records tensor operations and computes gradients by
// walking the recorded graph backwards, with PyTorch's semantics.
//
// # Recording
//
// Every operation with an input that requires a gradient is recorded,
// whatever tape its inputs came from, or none: a function of parameters
// alone (an L2 penalty) records as a function of data does. A recorded
// variable keeps its inputs and a backward function: a plain function of
// the node that reads the output's gradient and adds each input's share
// to that input's gradient, so each op carries its own local derivative
// in one place, as in micrograd. Backward may run from any scalar: it sorts
// the graph below it (depth first), seeds its gradient with one and runs
// the backward functions in reverse topological order. Leaf gradients
// accumulate (+=) across calls until ZeroGrad sets them to none; an
// intermediate's gradient belongs to one pass and is never a view of
// another tensor. Leaves are Param (trainable), Const (no gradient) and
// Tape.Var (an input on a tape). Inside Tape.NoGrad the operations on that
// tape record no gradient.
//
// # Memory
//
// Memory belongs to a pass, not to each op. A Tape is the scope of a pass:
// an operation belongs to the first tape among its inputs, which allocates
// its node, with the headers of its value, gradient and saved tensors, in
// one slab per pass, sized after the previous pass. Backward without
// retain ends the pass: it releases the values, gradients and saved
// tensors of every intermediate it walked and of every variable of the
// root's tape in one go, and keeps only the root's value for the caller
// until the tape's next pass ends (Tape.Free ends it too). The buffers go
// back to the device's pool, which hands them to the next pass, so a
// training step allocates one Go object (the slab) and no device memory,
// and nothing waits for Go's garbage collector to free device memory.
// Slabs are never reused: a variable held past its pass stays a valid Go
// value whose use fails with ErrReleased, naming Detach, Value.Clone and
// BackwardRetain as the ways to keep it, instead of showing the next
// pass's numbers. Operations on inputs of no tape put their nodes on the
// heap; Backward releases them in the same way, and Free releases a
// variable that no Backward will reach.
//
// # Hooks and functional transforms
//
// SetGradHook calls a function on a leaf as soon as its gradient for the
// pass is complete, for data-parallel reduction overlapping the backward
// pass. Jacobian and VJP compute what torch.autograd.functional's
// jacobian and vjp compute. GradCheck compares gradients with float64
// finite differences.
package autograd
