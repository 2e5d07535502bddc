// Package nn provides neural-network layers built on autograd: Linear,
// activations, LayerNorm, Dropout and Sequential, losses, weight
// initialisation, and checkpoints in the safetensors format.
//
// Fusion is declared by the layer: a Linear layer given an activation with
// WithActivation (as NewMLP builds them) runs as one autograd.LinearAct
// node; Sequential never rewrites its modules.
//
// Parameter names follow PyTorch's state_dict ("0.weight", "0.bias",
// "2.weight", ... for a Sequential; weights are [out, in]; a fused Linear
// layer takes the indices of the Linear and its activation), so a
// checkpoint written here loads into the equivalent torch.nn.Sequential
// unchanged.
package nn
