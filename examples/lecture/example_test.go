package lecture_test

import (
	"fmt"
	"os"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// A multiply gate L = a·b swaps its inputs on the way back: the local
// gradient with respect to a is b, and with respect to b is a.
func Example_mulGate() {
	dev := device.NewCPU(1)
	tp := autograd.NewTape()
	a := tp.Var(tensor.Scalar(dev, 2), true)
	b := tp.Var(tensor.Scalar(dev, -3), true)

	L := autograd.Mul(a, b)
	if err := L.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("L = a·b = %g\n", L.Item())
	fmt.Printf("dL/da = b = %g\n", a.Grad.Item())
	fmt.Printf("dL/db = a = %g\n", b.Grad.Item())
	// Output:
	// L = a·b = -6
	// dL/da = b = -3
	// dL/db = a = 2
}

// f = (x + y)·z with x = -2, y = 5, z = -4. The add gate q = x + y = 3
// passes the gradient it receives, df/dq = z = -4, unchanged to both of its
// inputs; the multiply gate gives z the other factor, df/dz = q = 3.
// BackwardRetain keeps the intermediate q and its gradient.
func Example_addMulGate() {
	dev := device.NewCPU(1)
	tp := autograd.NewTape()
	defer tp.Free()
	x := tp.Var(tensor.Scalar(dev, -2), true)
	y := tp.Var(tensor.Scalar(dev, 5), true)
	z := tp.Var(tensor.Scalar(dev, -4), true)

	q := autograd.Add(x, y)
	f := autograd.Mul(q, z)
	if err := f.BackwardRetain(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("q = x + y = %g\n", q.Item())
	fmt.Printf("f = q·z = %g\n", f.Item())
	fmt.Printf("df/dq = z = %g\n", q.Grad.Item())
	fmt.Printf("df/dx = df/dq · 1 = %g\n", x.Grad.Item())
	fmt.Printf("df/dy = df/dq · 1 = %g\n", y.Grad.Item())
	fmt.Printf("df/dz = q = %g\n", z.Grad.Item())
	// Output:
	// q = x + y = 3
	// f = q·z = -12
	// df/dq = z = -4
	// df/dx = df/dq · 1 = -4
	// df/dy = df/dq · 1 = -4
	// df/dz = q = 3
}

// A two-input neuron f(w, x) = σ(w0·x0 + w1·x1 + w2) with w = [2, -3, -3]
// and x = [-1, -2]. The weighted sum is 1, so f = σ(1) ≈ 0.7311 and
// df/dsum = σ(1)·(1 - σ(1)) ≈ 0.1966; each weight's gradient is that times
// its input, and each input's that times its weight. The same gradients
// come out when σ is built from primitive gates, -s, exp, +1 and 1/u,
// whose values and gradients the lecture tabulates stage by stage.
func Example_sigmoidNeuron() {
	dev := device.NewCPU(1)
	tp := autograd.NewTape()
	defer tp.Free()
	leaf := func(v float32) *autograd.Var { return tp.Var(tensor.Scalar(dev, v), true) }
	w := []*autograd.Var{leaf(2), leaf(-3), leaf(-3)}
	x := []*autograd.Var{leaf(-1), leaf(-2)}
	sum := func() *autograd.Var {
		return autograd.Add(autograd.Add(autograd.Mul(w[0], x[0]), autograd.Mul(w[1], x[1])), w[2])
	}
	show := func() {
		fmt.Printf("  df/dw = [%.4f %.4f %.4f]\n", w[0].Grad.Item(), w[1].Grad.Item(), w[2].Grad.Item())
		fmt.Printf("  df/dx = [%.4f %.4f]\n", x[0].Grad.Item(), x[1].Grad.Item())
		for _, v := range append(w, x...) {
			v.ZeroGrad() // leaf gradients accumulate across passes
		}
	}

	f := autograd.Sigmoid(sum())
	if err := f.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("sigmoid gate: f = %.4f\n", f.Item())
	show()

	s := sum()
	neg := autograd.Neg(s)
	e := autograd.Exp(neg)
	u := autograd.AddScalar(e, 1)
	g := autograd.PowScalar(u, -1)
	if err := g.BackwardRetain(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("primitive gates: f = %.4f\n", g.Item())
	for _, st := range []struct {
		name string
		v    *autograd.Var
	}{{"s", s}, {"-s", neg}, {"exp", e}, {"+1", u}, {"1/u", g}} {
		fmt.Printf("  %-3s value %7.4f  grad %7.4f\n", st.name, st.v.Item(), st.v.Grad.Item())
	}
	show()
	// Output:
	// sigmoid gate: f = 0.7311
	//   df/dw = [-0.1966 -0.3932 0.1966]
	//   df/dx = [0.3932 -0.5898]
	// primitive gates: f = 0.7311
	//   s   value  1.0000  grad  0.1966
	//   -s  value -1.0000  grad -0.1966
	//   exp value  0.3679  grad -0.5344
	//   +1  value  1.3679  grad -0.5344
	//   1/u value  0.7311  grad  1.0000
	//   df/dw = [-0.1966 -0.3932 0.1966]
	//   df/dx = [0.3932 -0.5898]
}

// L = a·b + (a + b) with a = 3, b = -2. The variable a feeds two paths, so
// its gradient is the sum of theirs: dL/da = b + 1 = -1, and likewise
// dL/db = a + 1 = 4. Backward adds (+=) into a gradient; it never assigns.
func Example_accumulation() {
	dev := device.NewCPU(1)
	tp := autograd.NewTape()
	defer tp.Free()
	a := tp.Var(tensor.Scalar(dev, 3), true)
	b := tp.Var(tensor.Scalar(dev, -2), true)

	prod := autograd.Mul(a, b)
	sum := autograd.Add(a, b)
	L := autograd.Add(prod, sum)
	if err := L.BackwardRetain(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("a·b = %g, a+b = %g, L = %g\n", prod.Item(), sum.Item(), L.Item())
	fmt.Printf("dL/d(a·b) = %g, dL/d(a+b) = %g\n", prod.Grad.Item(), sum.Grad.Item())
	fmt.Printf("dL/da = b + 1 = %g\n", a.Grad.Item())
	fmt.Printf("dL/db = a + 1 = %g\n", b.Grad.Item())
	// Output:
	// a·b = -6, a+b = 1, L = -5
	// dL/d(a·b) = 1, dL/d(a+b) = 1
	// dL/da = b + 1 = -1
	// dL/db = a + 1 = 4
}

// L = max(a·b, a + b). A max gate routes the whole gradient to its larger
// input and none to the other. With a = 3, b = 2 the product wins (6 > 5),
// so a and b get the product's local gradients b and a; with a = 0.5, b = 4
// the sum wins (4.5 > 2) and both get 1.
func Example_maxGate() {
	dev := device.NewCPU(1)
	for _, c := range []struct{ a, b float32 }{{3, 2}, {0.5, 4}} {
		tp := autograd.NewTape()
		a := tp.Var(tensor.Scalar(dev, c.a), true)
		b := tp.Var(tensor.Scalar(dev, c.b), true)

		prod := autograd.Mul(a, b)
		sum := autograd.Add(a, b)
		L := autograd.Maximum(prod, sum)
		if err := L.BackwardRetain(); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("a=%g b=%g: a·b=%g a+b=%g L=%g | dL/d(a·b)=%g dL/d(a+b)=%g | dL/da=%g dL/db=%g\n",
			c.a, c.b, prod.Item(), sum.Item(), L.Item(),
			prod.Grad.Item(), sum.Grad.Item(), a.Grad.Item(), b.Grad.Item())
		tp.Free()
	}
	// Output:
	// a=3 b=2: a·b=6 a+b=5 L=6 | dL/d(a·b)=1 dL/d(a+b)=0 | dL/da=2 dL/db=3
	// a=0.5 b=4: a·b=2 a+b=4.5 L=4.5 | dL/d(a·b)=0 dL/d(a+b)=1 | dL/da=1 dL/db=1
}

// WriteDot exports the graph of f = (x + y)·z in Graphviz's DOT language,
// after BackwardRetain so that every box shows its value and gradient.
// Render it with `dot -Tsvg`.
func Example_writeDot() {
	dev := device.NewCPU(1)
	tp := autograd.NewTape()
	defer tp.Free()
	x := tp.Var(tensor.Scalar(dev, -2), true)
	y := tp.Var(tensor.Scalar(dev, 5), true)
	z := tp.Var(tensor.Scalar(dev, -4), true)
	x.Name, y.Name, z.Name = "x", "y", "z"

	q := autograd.Add(x, y)
	q.Name = "q"
	f := autograd.Mul(q, z)
	f.Name = "f"
	if err := f.BackwardRetain(); err != nil {
		fmt.Println(err)
		return
	}
	if err := autograd.WriteDot(os.Stdout, f); err != nil {
		fmt.Println(err)
	}
	// Output:
	// digraph gograd {
	//   rankdir=LR;
	//   node [fontname="Helvetica"];
	//   v2 [shape=record, label="x | shape [] | value -2.0000 | grad -4.0000"];
	//   v3 [shape=record, label="y | shape [] | value 5.0000 | grad -4.0000"];
	//   v1 [shape=record, label="q | shape [] | value 3.0000 | grad -4.0000"];
	//   op1 [shape=ellipse, label="add"];
	//   op1 -> v1;
	//   v2 -> op1;
	//   v3 -> op1;
	//   v4 [shape=record, label="z | shape [] | value -4.0000 | grad 3.0000"];
	//   v0 [shape=record, label="f | shape [] | value -12.0000 | grad 1.0000"];
	//   op0 [shape=ellipse, label="mul"];
	//   op0 -> v0;
	//   v1 -> op0;
	//   v4 -> op0;
	// }
}

// The Jacobian of a vector function collects the gradients of its outputs:
// J[i][j] = ∂yᵢ/∂xⱼ. An elementwise function such as the sigmoid has a
// diagonal Jacobian, σ(x)·(1 - σ(x)) on the diagonal; a linear map y = W·x
// has W itself.
func Example_jacobian() {
	dev := device.NewCPU(1)
	x := tensor.FromSlice(dev, []float32{-1, 0, 2})
	J, err := autograd.Jacobian(autograd.Sigmoid, x)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("dσ/dx:", J.Shape())
	show(J)

	W := autograd.Const(tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3))
	linear := func(x *autograd.Var) *autograd.Var {
		return autograd.Reshape(autograd.MatMul(W, autograd.Reshape(x, 3, 1), false, false), 2)
	}
	J, err = autograd.Jacobian(linear, tensor.FromSlice(dev, []float32{1, -1, 2}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("d(W·x)/dx:", J.Shape())
	show(J)
	// Output:
	// dσ/dx: [3 3]
	//   [0.1966 0.0000 0.0000]
	//   [0.0000 0.2500 0.0000]
	//   [0.0000 0.0000 0.1050]
	// d(W·x)/dx: [2 3]
	//   [1.0000 2.0000 3.0000]
	//   [4.0000 5.0000 6.0000]
}

// show prints a matrix row by row.
func show(m *tensor.Tensor) {
	v, n := m.Data(), m.Dim(1)
	for i := 0; i < len(v); i += n {
		fmt.Print("  [")
		for j, x := range v[i : i+n] {
			if j > 0 {
				fmt.Print(" ")
			}
			fmt.Printf("%.4f", x)
		}
		fmt.Println("]")
	}
}

// Backpropagation never forms a Jacobian: each layer maps the gradient of
// its output, v, to vᵀ·J, the vector-Jacobian product. For y = W·x that is
// Wᵀ·v: with v = [1, -1], the rows of W are added and subtracted.
func Example_vjp() {
	dev := device.NewCPU(1)
	W := autograd.Const(tensor.FromSlice(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3))
	linear := func(x *autograd.Var) *autograd.Var {
		return autograd.Reshape(autograd.MatMul(W, autograd.Reshape(x, 3, 1), false, false), 2)
	}
	x := tensor.FromSlice(dev, []float32{1, -1, 2})
	v := tensor.FromSlice(dev, []float32{1, -1})
	y, vjp, err := autograd.VJP(linear, x, v)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("y = W·x =", y.Data())
	fmt.Println("vᵀ·J = Wᵀ·v =", vjp.Data())
	// Output:
	// y = W·x = [5 11]
	// vᵀ·J = Wᵀ·v = [-3 -3 -3]
}
