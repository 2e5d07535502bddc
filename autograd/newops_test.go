package autograd_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
)

// newOpCases are the differentiable operations added with the general
// core, at ranks 1 to 6, with broadcasting where the op broadcasts, and
// the older ops at ranks 5 and 6.
func newOpCases(d device.Device) []gradCase {
	var cs []gradCase
	un := func(name string, op func(a *autograd.Var) *autograd.Var, grid bool) {
		for _, sh := range unaryShapes {
			cs = append(cs, gradCase{name: name, shapes: [][]int{sh}, grid: grid, f: func(in []*autograd.Var) *autograd.Var { return op(in[0]) }})
		}
	}
	un("abs", autograd.Abs, false)
	un("leaky_relu", func(a *autograd.Var) *autograd.Var { return autograd.LeakyReLU(a, 0.1) }, false)
	un("gelu_erf", func(a *autograd.Var) *autograd.Var { return autograd.GELU(a, false) }, false)
	un("gelu_tanh", func(a *autograd.Var) *autograd.Var { return autograd.GELU(a, true) }, false)
	un("silu", autograd.SiLU, false)
	un("softplus", autograd.Softplus, false)
	// On the grid (multiples of 0.1) no value is within 0.05 of the bounds.
	un("clamp", func(a *autograd.Var) *autograd.Var { return autograd.Clamp(a, -0.55, 0.75) }, true)
	for i, sh := range binaryShapes {
		n := 1
		for _, s := range sh[0] {
			n *= s
		}
		mask := make([]float32, n)
		for j := range mask {
			mask[j] = float32((i + j) % 2)
		}
		cond := autograd.Const(tensor.FromSlice(d, mask, sh[0]...))
		cs = append(cs, gradCase{name: "where", shapes: sh, f: func(in []*autograd.Var) *autograd.Var { return autograd.Where(cond, in[0], in[1]) }})
	}
	for _, c := range []struct {
		shape            []int
		axis, start, end int
	}{{[]int{7}, 0, 2, 5}, {[]int{3, 5}, 1, -3, -1}, {[]int{4, 3, 2}, 0, 1, 4}, {[]int{2, 3, 2, 3}, 3, 0, 2},
		{[]int{2, 2, 3, 1, 2}, 2, 1, 3}, {[]int{2, 1, 2, 3, 1, 2}, -3, 1, 2}} {
		cs = append(cs, gradCase{name: fmt.Sprintf("slice axis %d [%d, %d)", c.axis, c.start, c.end), shapes: [][]int{c.shape},
			f: func(in []*autograd.Var) *autograd.Var { return autograd.Slice(in[0], c.axis, c.start, c.end) }})
	}
	for _, c := range []struct {
		shape []int
		axis  int
		idx   []int
	}{{[]int{5}, 0, []int{4, 0, 4, -1}}, {[]int{3, 4}, 1, []int{2, 2, 0}}, {[]int{4, 2, 3}, 0, []int{1, 3}},
		{[]int{2, 3, 2, 2}, 2, []int{1, 0, 1}}, {[]int{2, 2, 3, 1, 2}, 4, []int{1}}, {[]int{2, 1, 3, 2, 1, 2}, 2, []int{2, 0, 0, 1}}} {
		cs = append(cs, gradCase{name: fmt.Sprintf("index_select axis %d %v", c.axis, c.idx), shapes: [][]int{c.shape},
			f: func(in []*autograd.Var) *autograd.Var { return autograd.IndexSelect(in[0], c.axis, c.idx) }})
	}
	for _, c := range []struct {
		shape []int
		pads  [][2]int
	}{{[]int{4}, [][2]int{{2, 1}}}, {[]int{3, 4}, [][2]int{{0, 1}, {1, -2}}}, {[]int{2, 3, 2}, [][2]int{{1, 1}, {-1, 0}, {0, 2}}},
		{[]int{2, 1, 3, 2}, [][2]int{{0, 0}, {1, 0}, {0, 0}, {1, 1}}}, {[]int{2, 2, 1, 3, 2}, [][2]int{{0, 0}, {0, 1}, {2, 0}, {-1, -1}, {0, 0}}},
		{[]int{2, 1, 2, 2, 1, 3}, [][2]int{{1, 0}, {0, 0}, {0, 1}, {0, 0}, {1, 1}, {0, -1}}}} {
		cs = append(cs, gradCase{name: fmt.Sprintf("pad %v", c.pads), shapes: [][]int{c.shape},
			f: func(in []*autograd.Var) *autograd.Var { return autograd.Pad(in[0], c.pads, 0.5) }})
	}
	for _, c := range []struct {
		shapes [][]int
		axis   int
	}{{[][]int{{3}, {2}, {4}}, 0}, {[][]int{{2, 3}, {2, 1}, {2, 2}}, 1}, {[][]int{{1, 3, 2}, {2, 3, 2}}, 0},
		{[][]int{{2, 1, 3, 2}, {2, 2, 3, 2}}, -3}, {[][]int{{2, 2, 1, 3, 2}, {2, 2, 2, 3, 2}}, 2},
		{[][]int{{2, 1, 2, 1, 1, 3}, {2, 1, 2, 1, 2, 3}, {2, 1, 2, 1, 1, 3}}, 4}} {
		cs = append(cs, gradCase{name: fmt.Sprintf("concat axis %d", c.axis), shapes: c.shapes,
			f: func(in []*autograd.Var) *autograd.Var { return autograd.Concat(c.axis, in...) }})
	}
	for _, c := range []struct {
		shape []int
		axis  int
	}{{[]int{3}, 0}, {[]int{3}, 1}, {[]int{2, 3}, 1}, {[]int{2, 1, 3}, -1}, {[]int{2, 2, 1, 3}, 2}, {[]int{2, 1, 2, 1, 3}, 5}} {
		cs = append(cs, gradCase{name: fmt.Sprintf("stack axis %d", c.axis), shapes: [][]int{c.shape, c.shape, c.shape},
			f: func(in []*autograd.Var) *autograd.Var { return autograd.Stack(c.axis, in...) }})
	}
	// The reductions, transposes and softmax at ranks 5 and 6.
	for _, ax := range []int{0, 2, -1} {
		cs = append(cs,
			gradCase{name: "sum_axis", shapes: [][]int{{2, 3, 1, 2, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Sum(in[0], ax, false) }},
			gradCase{name: "mean_axis_keep", shapes: [][]int{{2, 1, 3, 2, 1, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Mean(in[0], ax, true) }},
			gradCase{name: "softmax", shapes: [][]int{{2, 3, 1, 2, 3}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Softmax(in[0], ax) }},
			gradCase{name: "log_softmax", shapes: [][]int{{2, 1, 3, 2, 1, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.LogSoftmax(in[0], ax) }},
		)
	}
	cs = append(cs,
		gradCase{name: "transpose", shapes: [][]int{{2, 3, 1, 2, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Transpose(in[0], 4, 0, 3, 1, 2) }},
		gradCase{name: "transpose_rev", shapes: [][]int{{2, 1, 3, 2, 1, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Transpose(in[0]) }},
		gradCase{name: "reshape", shapes: [][]int{{2, 3, 2, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Reshape(in[0], 2, 1, 3, 1, 2, 2) }},
		gradCase{name: "sum_all", shapes: [][]int{{2, 1, 3, 2, 1, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.SumAll(in[0]) }},
		gradCase{name: "mse", shapes: [][]int{{2, 1, 3, 2, 1, 2}, {2, 1, 3, 2, 1, 2}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.MSE(in[0], in[1]) }},
		gradCase{name: "dropout", shapes: [][]int{{2, 2, 3, 2, 1}}, f: func(in []*autograd.Var) *autograd.Var { return autograd.Dropout(in[0], 0.3, 7) }},
	)
	return cs
}

func TestGradCheckNewOps(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for i, c := range newOpCases(d) {
			r := rand.New(rand.NewPCG(uint64(i), 5))
			var in []*tensor.Tensor
			for k, sh := range c.shapes {
				if c.grid {
					in = append(in, grid(d, r, 0*k, sh...))
				} else {
					in = append(in, away(d, r, sh...))
				}
			}
			if err := autograd.GradCheck(c.f, in, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("%s %v: %v", c.name, c.shapes, err)
			}
		}
	})
}
