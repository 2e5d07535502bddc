package device_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// multiSizes are the tensor lengths of the multi-tensor tests: a scalar,
// odd sizes around the GPU's chunks of 1024, and an MLP's 784x512 weight.
var multiSizes = []int{1, 7, 129, 4097, 784 * 512}

// multiState is a list of tensors on a device, one buffer list per role
// (parameters, then optimizer state), uploaded from the same host values.
type multiState [][]device.Buffer

func multiUpload(t *testing.T, d device.Device, vals [][][]float32) multiState {
	t.Helper()
	st := make(multiState, len(vals))
	for k, role := range vals {
		for _, v := range role {
			b := testutil.Upload(t, d, v)
			t.Cleanup(func() { d.Free(b) })
			st[k] = append(st[k], b)
		}
	}
	return st
}

// multiSameBits fails the test unless both states hold the same float bits.
func multiSameBits(t *testing.T, d device.Device, name string, got, want multiState, roles []string) {
	t.Helper()
	for k := range want {
		for i, n := range multiSizes {
			g := testutil.Download(t, d, got[k][i], n)
			w := testutil.Download(t, d, want[k][i], n)
			for j := range w {
				if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
					t.Errorf("%s: %s of tensor %d (n=%d) [%d]: multi %v, per tensor %v", name, roles[k], i, n, j, g[j], w[j])
					break
				}
			}
		}
	}
}

// multiRand returns random values for each of multiSizes, count times.
func multiRand(r *rand.Rand, count int) [][][]float32 {
	out := make([][][]float32, count)
	for k := range out {
		for _, n := range multiSizes {
			out[k] = append(out[k], testutil.RandSlice(r, n, -1, 1))
		}
	}
	return out
}

// multiOrder is the order of the tensors given to the multi-tensor step at
// a step: reversed on odd steps, so that a device sees two lists.
func multiOrder(step int) []int {
	o := make([]int, len(multiSizes))
	for i := range o {
		o[i] = i
		if step%2 == 1 {
			o[i] = len(o) - 1 - i
		}
	}
	return o
}

func multiPick[T any](xs []T, order []int) []T {
	out := make([]T, len(order))
	for i, j := range order {
		out[i] = xs[j]
	}
	return out
}

// TestMultiStepsBitIdentical runs each optimizer for several steps on two
// copies of the same tensors, one SGDStep/AdamStep per tensor on the first
// and one SGDStepMulti/AdamStepMulti call on the second, with the same
// gradients: they must agree bit for bit.
func TestMultiStepsBitIdentical(t *testing.T) {
	sgd := []device.SGDParams{
		{LR: 0.1},
		{LR: 0.05, WeightDecay: 0.01},
		{LR: 0.1, Momentum: 0.9},
		{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 1e-2},
		{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
		{LR: 0.1, Momentum: 0.9, Dampening: 0.2, WeightDecay: 0.01, Nesterov: true, Maximize: true},
	}
	adam := []device.AdamParams{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1},
		{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true},
		{LR: 1e-2, Beta1: 0.8, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.1, AMSGrad: true, Maximize: true},
	}
	const steps = 4
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		opt, ok := d.(device.Optimizers)
		multi, ok2 := d.(device.MultiOptimizers)
		if !ok || !ok2 {
			t.Skipf("%s has no multi-tensor optimizer steps", d.Name())
		}
		r := rand.New(rand.NewPCG(21, 5))
		for _, hp := range sgd {
			name := fmt.Sprintf("sgd %+v", hp)
			init := multiRand(r, 2) // parameters, momentum buffers
			one, all := multiUpload(t, d, init), multiUpload(t, d, init)
			for step := range steps {
				g := multiUpload(t, d, multiRand(r, 1))[0]
				hp.First = step == 0
				for i, n := range multiSizes {
					var buf device.Buffer
					if hp.Momentum != 0 {
						buf = one[1][i]
					}
					must(t, opt.SGDStep(one[0][i], g[i], buf, n, hp))
				}
				o := multiOrder(step)
				var bufs []device.Buffer // nil without momentum
				if hp.Momentum != 0 {
					bufs = multiPick(all[1], o)
				}
				must(t, multi.SGDStepMulti(multiPick(all[0], o), multiPick(g, o), bufs, multiPick(multiSizes, o), hp))
			}
			multiSameBits(t, d, name, all, one, []string{"p", "buf"})
		}
		for _, hp := range adam {
			name := fmt.Sprintf("adam %+v", hp)
			init := multiRand(r, 1)
			for range 3 { // the moments and vmax start at zero
				var z [][]float32
				for _, n := range multiSizes {
					z = append(z, make([]float32, n))
				}
				init = append(init, z)
			}
			one, all := multiUpload(t, d, init), multiUpload(t, d, init)
			for step := 1; step <= steps; step++ {
				g := multiUpload(t, d, multiRand(r, 1))[0]
				hp.Step = step
				for i, n := range multiSizes {
					var vm device.Buffer
					if hp.AMSGrad {
						vm = one[3][i]
					}
					must(t, opt.AdamStep(one[0][i], g[i], one[1][i], one[2][i], vm, n, hp))
				}
				o := multiOrder(step)
				var vms []device.Buffer
				if hp.AMSGrad {
					vms = multiPick(all[3], o)
				}
				must(t, multi.AdamStepMulti(multiPick(all[0], o), multiPick(g, o), multiPick(all[1], o),
					multiPick(all[2], o), vms, multiPick(multiSizes, o), hp))
			}
			multiSameBits(t, d, name, all, one, []string{"p", "m", "v", "vmax"})
		}
	})
}

// TestMultiStepErrors checks that bad lists are refused, naming the tensor,
// and that a refused call updates nothing.
func TestMultiStepErrors(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		multi, ok := d.(device.MultiOptimizers)
		if !ok {
			t.Skipf("%s has no multi-tensor optimizer steps", d.Name())
		}
		ones := func(n int) device.Buffer {
			v := make([]float32, n)
			for i := range v {
				v[i] = 1
			}
			b := testutil.Upload(t, d, v)
			t.Cleanup(func() { d.Free(b) })
			return b
		}
		p0, p1, g0, g1, b0, b1, small := ones(8), ones(8), ones(8), ones(8), ones(8), ones(8), ones(4)
		ns := []int{8, 8}
		mom := device.SGDParams{LR: 1, Momentum: 0.9}
		adam := device.AdamParams{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1}
		bs := func(b ...device.Buffer) []device.Buffer { return b }
		cases := []struct {
			name string
			err  error
			want string
		}{
			{"lengths", multi.SGDStepMulti(bs(p0, p1), bs(g0), bs(b0, b1), ns, mom), "2 parameters, 1 gradients"},
			{"no buffers with momentum", multi.SGDStepMulti(bs(p0, p1), bs(g0, g1), nil, ns, mom), "0 buffers"},
			{"small gradient", multi.SGDStepMulti(bs(p0, p1), bs(g0, small), bs(b0, b1), ns, mom), "g has 4 values, need 8 (tensor 1)"},
			{"nil buffer", multi.SGDStepMulti(bs(p0, p1), bs(g0, g1), bs(b0, nil), ns, mom), "buf is nil (tensor 1)"},
			{"negative length", multi.SGDStepMulti(bs(p0, p1), bs(g0, g1), bs(b0, b1), []int{8, -1}, mom), "(tensor 1)"},
			{"same parameter", multi.SGDStepMulti(bs(p0, p0), bs(g0, g1), bs(b0, b1), ns, mom), "tensors 0 and 1 write the same buffer"},
			{"gradient is a parameter", multi.SGDStepMulti(bs(p0, p1), bs(g0, p0), nil, ns, device.SGDParams{LR: 1}),
				"tensor 1 reads a buffer that tensor 0 writes"},
			{"adam step 0", multi.AdamStepMulti(bs(p0, p1), bs(g0, g1), bs(b0, b1), bs(g0, g1), nil, ns, device.AdamParams{LR: 1}),
				"step 0, want >= 1"},
			{"adam small moment", multi.AdamStepMulti(bs(p0, p1), bs(g0, g1), bs(b0, b1), bs(small, small), nil, ns, adam),
				"v has 4 values, need 8 (tensor 0)"},
			{"adam shared moment", multi.AdamStepMulti(bs(p0, p1), bs(g0, g1), bs(b0, b1), bs(small, b0), nil, []int{4, 4}, adam),
				"tensors 0 and 1 write the same buffer"},
		}
		prefix := "device: " + d.Name() + " "
		for _, c := range cases {
			if c.err == nil || !strings.HasPrefix(c.err.Error(), prefix) || !strings.Contains(c.err.Error(), c.want) {
				t.Errorf("%s: error %v, want %q in it", c.name, c.err, c.want)
			}
		}
		for i, b := range []device.Buffer{p0, p1, b0, b1} {
			for j, v := range testutil.Download(t, d, b, 8) {
				if v != 1 {
					t.Fatalf("buffer %d [%d] is %v after refused calls, want 1", i, j, v)
				}
			}
		}
		// Empty lists and empty tensors are no-ops.
		must(t, multi.SGDStepMulti(nil, nil, nil, nil, mom))
		must(t, multi.AdamStepMulti(nil, nil, nil, nil, nil, nil, adam))
		must(t, multi.SGDStepMulti(bs(p0), bs(g0), bs(b0), []int{0}, mom))
	})
}
