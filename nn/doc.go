// Package nn provides neural-network layers built on autograd: Linear,
// activations, LayerNorm, BatchNorm1d and BatchNorm2d, Dropout and
// Sequential, losses, weight initialisation, and checkpoints in the
// safetensors format.
//
// Fusion is declared by the layer: a Linear layer given an activation with
// WithActivation (as NewMLP builds them) runs as one autograd.LinearAct
// node, and a BatchNorm given device.ActRelu with its WithActivation as
// one autograd.BatchNormAct node; Sequential never rewrites its modules.
//
// Parameter names follow PyTorch's state_dict ("0.weight", "0.bias",
// "2.weight", ... for a Sequential; weights are [out, in]; a fused Linear
// layer takes the indices of the Linear and its activation, a fused
// BatchNorm those of the BatchNorm and its ReLU), so a
// checkpoint written here loads into the equivalent torch.nn.Sequential
// unchanged. Buffers (see Buffered), such as BatchNorm's running
// statistics, follow the same names and are saved and loaded with the
// parameters, but are not parameters: optimizers never see them.
package nn
