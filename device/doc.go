// Package device defines the Device interface that runs every tensor
// operation, and its backends: the CPU backend, always built, and the CUDA
// backend, built with the cuda tag.
//
// Operations are enums (UnaryOp, BinaryOp, ReduceOp) rather than a method
// each, so that a new operation is one case in each backend. Fused kernels
// (SoftmaxCE, BiasAct, Optimizers, MultiOptimizers) are small optional
// interfaces; callers check for them with a type assertion and compose the
// result from the basic operations where a device lacks them.
package device
