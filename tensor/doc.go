// Package tensor provides float32 n-dimensional tensors that live on a
// device.Device. Every operation dispatches to the tensor's device.
//
// Tensors are row-major and contiguous. Reshape shares storage; every other
// operation returns a new tensor. Elementwise binary operations broadcast
// with NumPy's rules. Misuse, such as a shape mismatch, panics with an
// *Error that names the operation and the shapes; Catch turns such a panic
// back into an error at an API boundary. WriteNpy and ReadNpy read and
// write NumPy's .npy files; the subpackage tensor/dense converts to and from
// gorgonia.org/tensor's Dense. The package itself depends only on device,
// math32, x/sys and the standard library.
package tensor
