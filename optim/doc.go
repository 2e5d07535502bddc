// Package optim updates parameters from their gradients: SGD with momentum,
// dampening, Nesterov and weight decay, Adam and AdamW, each exactly as
// PyTorch defines them, and learning-rate schedules.
//
// A step runs as one call for all parameter tensors on devices that
// implement device.MultiOptimizers (one kernel launch on CUDA), as one fused
// kernel per tensor on devices that implement only device.Optimizers, and as
// composed tensor operations elsewhere.
// The optimizer state (momentum buffers, moment estimates, step count) is
// exposed by State and restored by SetState, for checkpoints.
package optim
