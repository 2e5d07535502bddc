package tensor_test

import (
	"errors"
	"fmt"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

func ExampleFromSlice() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	defer x.Free()
	fmt.Println(x.Shape(), x.Len(), x.Dim(-1))
	fmt.Println(x.Data())
	fmt.Println(x)
	fmt.Println(tensor.FromSlice(dev, []float32{7, 8})) // no shape: a vector
	// Output:
	// [2 3] 6 3
	// [1 2 3 4 5 6]
	// Tensor[2 3][1 2 3 4 5 6]
	// Tensor[2][7 8]
}

func ExampleAdd() {
	dev := device.NewCPU(1)
	a := tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	row := tensor.FromSlice(dev, []float32{10, 20, 30})     // [3] broadcasts over rows
	col := tensor.FromSlice(dev, []float32{100, 200}, 2, 1) // [2 1] broadcasts over columns
	fmt.Println(tensor.Add(a, row))
	fmt.Println(tensor.Add(a, col))
	fmt.Println(tensor.Add(row, col)) // both sides broadcast: [3] and [2 1] give [2 3]
	fmt.Println(tensor.Add(a, tensor.Scalar(dev, 0.5)))
	// Output:
	// Tensor[2 3][11 22 33 14 25 36]
	// Tensor[2 3][101 102 103 204 205 206]
	// Tensor[2 3][110 120 130 210 220 230]
	// Tensor[2 3][1.5 2.5 3.5 4.5 5.5 6.5]
}

func ExampleMatMul() {
	dev := device.NewCPU(1)
	a := tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := tensor.FromSlice(dev, []float32{7, 8, 9, 10, 11, 12}, 3, 2)
	fmt.Println(tensor.MatMul(a, b, false, false)) // a·b
	fmt.Println(tensor.MatMul(a, a, true, false))  // aᵀ·a, without materialising aᵀ
	fmt.Println(tensor.MatMul(a, a, false, true))  // a·aᵀ
	// Output:
	// Tensor[2 2][58 64 139 154]
	// Tensor[3 3][17 22 27 22 29 36 27 36 45]
	// Tensor[2 2][14 32 32 77]
}

func ExampleSoftmax() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{1, 2, 3, 0, 0, 0}, 2, 3)
	p := tensor.Softmax(x, -1)
	for _, row := range [][]float32{p.Data()[:3], p.Data()[3:]} {
		fmt.Printf("%.4f\n", row)
	}
	fmt.Printf("row sums %.4f\n", tensor.Sum(p, 1, false).Data())
	fmt.Printf("log-softmax %.4f\n", tensor.LogSoftmax(x, 1).Data()[:3])
	// Output:
	// [0.0900 0.2447 0.6652]
	// [0.3333 0.3333 0.3333]
	// row sums [1.0000 1.0000]
	// log-softmax [-2.4076 -1.4076 -0.4076]
}

func ExampleCatch() {
	dev := device.NewCPU(1)
	a, b := tensor.Zeros(dev, 2, 3), tensor.Zeros(dev, 4)
	err := tensor.Catch(func() { tensor.Add(a, b) })
	fmt.Println(err)
	fmt.Println(errors.Is(err, tensor.ErrShape))
	// Output:
	// tensor: add: [2 3] and [4]: tensor: shape mismatch
	// true
}

func ExampleTensor_Reshape() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	y := x.Reshape(3, -1) // shares x's storage
	x.Free()              // y keeps it alive
	fmt.Println(y)
	fmt.Println(tensor.T(y))
	// Output:
	// Tensor[3 2][1 2 3 4 5 6]
	// Tensor[2 3][1 3 5 2 4 6]
}
