// Package optim updates parameters from their gradients: SGD with momentum,
// dampening, Nesterov and weight decay, Adam and AdamW with AMSGrad, all
// with Maximize, each exactly as PyTorch defines them, and learning-rate
// schedules.
//
// A parameter without a gradient is skipped, and each parameter keeps its
// own state, as torch.optim does: SGD's momentum buffer, Adam's moment
// estimates and its own step count, which gives its bias correction.
//
// A step runs as one call for all parameter tensors on devices that
// implement device.MultiOptimizers (one kernel launch on CUDA; for Adam one
// call per distinct step count, so one when all parameters step together),
// as one fused kernel per tensor on devices that implement only
// device.Optimizers, and as composed tensor operations elsewhere. AMSGrad
// and Maximize are flags of the fused steps.
// The optimizer state is exposed by State and restored by SetState, for
// checkpoints, named as in PyTorch's state_dict ("<i>.step", "<i>.exp_avg",
// "<i>.momentum_buffer", ...).
package optim
