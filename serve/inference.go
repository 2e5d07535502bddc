package serve

import (
	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/tensor"
)

// forInference returns the module the Batcher runs for m: m itself, or,
// for a Sequential, a Sequential of the same modules (nested ones alike)
// in which each Linear layer holds its weight transposed, [in, out]. A
// forward pass then multiplies by the weight in the layout the matrix
// product reads in place (a pass of a few dozen rows) or packs by copying,
// instead of transposing the same weight again on every pass: for a pass
// of a few rows, transposing the weight costs as much as the product. The
// answers are those of m. It also returns the
// transposed weights, which the Batcher frees when it closes.
func forInference(m nn.Module) (nn.Module, []*tensor.Tensor) {
	var owned []*tensor.Tensor
	var prepare func(m nn.Module) nn.Module
	prepare = func(m nn.Module) nn.Module {
		switch m := m.(type) {
		case *nn.Sequential:
			mods := make([]nn.Module, len(m.Modules))
			for i, sub := range m.Modules {
				mods[i] = prepare(sub)
			}
			return &nn.Sequential{Modules: mods}
		case *nn.Linear:
			wt := tensor.Transpose(m.Weight.Value)
			owned = append(owned, wt)
			return &transposedLinear{Linear: m, wt: autograd.Const(wt)}
		}
		return m
	}
	return prepare(m), owned
}

// transposedLinear is a Linear layer whose forward pass multiplies by its
// weight stored transposed. It reads the weight once, when made: it is for
// a model that no longer changes.
type transposedLinear struct {
	*nn.Linear
	wt *autograd.Var // the transpose of Linear.Weight, [in, out]
}

// Forward computes act(x·Wᵀ + b) as the Linear layer does.
func (l *transposedLinear) Forward(x *autograd.Var) *autograd.Var {
	return autograd.LinearActT(x, l.wt, l.Bias, l.Act)
}
