// Package nn provides neural-network layers built on autograd: Linear,
// activations, Dropout and Sequential, losses, weight initialisation, and
// checkpoints in the safetensors format.
//
// Parameter names follow PyTorch's state_dict ("0.weight", "0.bias",
// "2.weight", ... for a Sequential; weights are [out, in]), so a checkpoint
// written here loads into the equivalent torch.nn.Sequential unchanged.
package nn
