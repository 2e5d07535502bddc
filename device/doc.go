// Package device defines the Device interface that runs every tensor
// operation, and its backends: the CPU backend, always built, and the CUDA
// backend, built with the cuda tag.
//
// Operations are enums (UnaryOp, BinaryOp, TernaryOp, ReduceOp) rather than
// a method each, described once in the op table of ops.go (Ops), from which
// the CUDA op codes are generated, so that a new operation is one entry in
// the table and one case in each backend. Each operation's arguments are
// checked once, by the Check functions of check.go that every backend
// calls first; the backends then trust them. Fused kernels
// (SoftmaxCE, BiasAct, Optimizers, MultiOptimizers) are small optional
// interfaces; callers check for them with a type assertion and compose the
// result from the basic operations where a device lacks them.
package device
