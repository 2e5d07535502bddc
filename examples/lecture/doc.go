// Package lecture works through the examples of the backpropagation lecture
// with gograd's autograd API, on scalars: a multiply gate, an add gate
// feeding a multiply gate, a sigmoid neuron, a variable used twice, a max
// gate, and the export of a graph to Graphviz.
//
// The package holds no code; each example is a runnable Example function
// whose expected output was derived by hand, so `go test` checks the
// library against the lecture's arithmetic. Each example builds its
// variables as leaves of a tape,
//
//	dev := device.NewCPU(1)
//	tp := autograd.NewTape()
//	a := tp.Var(tensor.Scalar(dev, 2), true)
//
// combines them with autograd's operations, and calls Backward (or
// BackwardRetain, to keep the intermediates' gradients for inspection) on
// the scalar result.
package lecture
