package nn_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// composedOnly hides the optional fused interfaces of the device it wraps.
type composedOnly struct{ device.Device }

// hostLinear computes x·Wᵀ + b in float64 for x of [batch, in].
func hostLinear(x, w, b []float32, batch, in, out int) []float32 {
	y := make([]float32, batch*out)
	for r := range batch {
		for o := range out {
			s := 0.0
			for k := range in {
				s += float64(x[r*in+k]) * float64(w[o*in+k])
			}
			if b != nil {
				s += float64(b[o])
			}
			y[r*out+o] = float32(s)
		}
	}
	return y
}

func TestLinearForward(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, tc := range []struct {
			batch, in, out int
			bias           bool
		}{{7, 5, 3, true}, {1, 13, 17, true}, {9, 33, 6, false}, {4, 1, 1, true}} {
			r := rand.New(rand.NewPCG(uint64(tc.in), uint64(tc.out)))
			l := nn.NewLinear(d, tc.in, tc.out, tc.bias, r)
			xs := testutil.RandSlice(r, tc.batch*tc.in, -2, 2)
			y := l.Forward(autograd.Const(tensor.FromSlice(d, xs, tc.batch, tc.in)))
			if got, want := y.Shape(), []int{tc.batch, tc.out}; !slices.Equal(got, want) {
				t.Fatalf("%+v: output shape %v, want %v", tc, got, want)
			}
			var b []float32
			if tc.bias {
				b = l.Bias.Value.Data()
			}
			want := hostLinear(xs, l.Weight.Value.Data(), b, tc.batch, tc.in, tc.out)
			testutil.AllClose(t, fmt.Sprintf("%+v", tc), y.Value.Data(), want, 1e-5, 1e-5)

			names := []string{"weight"}
			if tc.bias {
				names = append(names, "bias")
			}
			var got []string
			for _, p := range l.Parameters() {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, names) {
				t.Errorf("%+v: parameters %v, want %v", tc, got, names)
			}
			if !slices.Equal(l.Weight.Shape(), []int{tc.out, tc.in}) {
				t.Errorf("%+v: weight shape %v, want [out in]", tc, l.Weight.Shape())
			}
		}
	})
}

func TestActivations(t *testing.T) {
	d := device.NewCPU(1)
	xs := []float32{-3, -0.5, 0, 0.25, 2}
	for _, tc := range []struct {
		m    nn.Module
		name string
		f    func(float64) float64
	}{
		{nn.ReLU{}, "ReLU()", func(x float64) float64 { return max(x, 0) }},
		{nn.Sigmoid{}, "Sigmoid()", func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{nn.Tanh{}, "Tanh()", math.Tanh},
	} {
		got := tc.m.Forward(autograd.Const(tensor.FromSlice(d, xs))).Value.Data()
		want := make([]float32, len(xs))
		for i, x := range xs {
			want[i] = float32(tc.f(float64(x)))
		}
		testutil.AllClose(t, tc.name, got, want, 1e-6, 1e-6)
		if s := fmt.Sprint(tc.m); s != tc.name {
			t.Errorf("prints as %q, want %q", s, tc.name)
		}
		if tc.m.Parameters() != nil {
			t.Errorf("%s has parameters", tc.name)
		}
	}
}

// moments returns the mean and standard deviation of v and its extremes.
func moments(v []float32) (mean, std, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		mean += float64(x)
		lo, hi = min(lo, float64(x)), max(hi, float64(x))
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v))), lo, hi
}

// TestLinearInit checks PyTorch's default initialisation: weight and bias
// uniform in ±1/sqrt(in), filling that range.
func TestLinearInit(t *testing.T) {
	d := device.NewCPU(0)
	for _, tc := range []struct{ in, out int }{{300, 200}, {7, 4000}} {
		l := nn.NewLinear(d, tc.in, tc.out, true, rand.New(rand.NewPCG(1, 2)))
		bound := 1 / math.Sqrt(float64(tc.in))
		for _, p := range l.Parameters() {
			mean, std, lo, hi := moments(p.Value.Data())
			name := fmt.Sprintf("%+v %s", tc, p.Name)
			if lo < -bound || hi > bound {
				t.Errorf("%s: values in [%v, %v], outside ±%v", name, lo, hi, bound)
			}
			if p.Value.Len() < 1000 {
				continue // too few values for the statistics below
			}
			if lo > -0.99*bound || hi < 0.99*bound {
				t.Errorf("%s: values in [%v, %v] do not fill ±%v", name, lo, hi, bound)
			}
			if math.Abs(mean) > 0.02*bound {
				t.Errorf("%s: mean %v", name, mean)
			}
			if want := bound / math.Sqrt(3); math.Abs(std-want) > 0.02*want {
				t.Errorf("%s: std %v, want %v", name, std, want)
			}
		}
	}
	a := nn.NewLinear(d, 10, 10, true, rand.New(rand.NewPCG(5, 5))).Weight.Value.Data()
	b := nn.NewLinear(d, 10, 10, true, rand.New(rand.NewPCG(5, 5))).Weight.Value.Data()
	c := nn.NewLinear(d, 10, 10, true, rand.New(rand.NewPCG(6, 5))).Weight.Value.Data()
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("initialisation is not determined by the generator")
	}
}

func TestInitStd(t *testing.T) {
	const out, in = 512, 1024
	d := device.NewCPU(0)
	for _, tc := range []struct {
		name    string
		f       func(*tensor.Tensor, *rand.Rand)
		std     float64
		uniform bool
	}{
		{"KaimingUniform", nn.KaimingUniform, math.Sqrt(2.0 / in), true},
		{"KaimingNormal", nn.KaimingNormal, math.Sqrt(2.0 / in), false},
		{"XavierUniform", nn.XavierUniform, math.Sqrt(2.0 / (in + out)), true},
		{"XavierNormal", nn.XavierNormal, math.Sqrt(2.0 / (in + out)), false},
	} {
		w := tensor.New(d, out, in)
		tc.f(w, rand.New(rand.NewPCG(3, 4)))
		mean, std, lo, hi := moments(w.Data())
		if math.Abs(std-tc.std) > 0.01*tc.std {
			t.Errorf("%s: std %v, want %v", tc.name, std, tc.std)
		}
		if math.Abs(mean) > 0.01*tc.std {
			t.Errorf("%s: mean %v", tc.name, mean)
		}
		bound := tc.std * math.Sqrt(3)
		switch {
		case tc.uniform && (lo < -bound || hi > bound || lo > -0.999*bound || hi < 0.999*bound):
			t.Errorf("%s: values in [%v, %v], want to fill ±%v", tc.name, lo, hi, bound)
		case !tc.uniform && (hi < 4*tc.std || lo > -4*tc.std):
			t.Errorf("%s: values in [%v, %v] lack a normal's tails", tc.name, lo, hi)
		}
		err := tensor.Catch(func() { tc.f(tensor.New(d, 3, 4, 5), rand.New(rand.NewPCG(1, 1))) })
		if err == nil || !strings.Contains(err.Error(), "[3 4 5]") {
			t.Errorf("%s of a 3-d tensor: error %v", tc.name, err)
		}
	}
}

func TestMLPParameters(t *testing.T) {
	d := device.NewCPU(0)
	type ps = []struct {
		name  string
		shape []int
	}
	plain := ps{{"0.weight", []int{512, 784}}, {"0.bias", []int{512}}, {"2.weight", []int{256, 512}},
		{"2.bias", []int{256}}, {"4.weight", []int{10, 256}}, {"4.bias", []int{10}}}
	dropout := ps{{"0.weight", []int{512, 784}}, {"0.bias", []int{512}}, {"3.weight", []int{256, 512}},
		{"3.bias", []int{256}}, {"6.weight", []int{10, 256}}, {"6.bias", []int{10}}}
	for _, tc := range []struct {
		cfg     nn.MLPConfig
		want    ps
		modules []string
	}{
		{nn.MLPConfig{In: 784, Hidden: []int{512, 256}, Out: 10}, plain,
			[]string{"*nn.Linear", "*nn.Linear", "*nn.Linear"}},
		{nn.MLPConfig{In: 784, Hidden: []int{512, 256}, Out: 10, Activation: "tanh", Dropout: 0.2}, dropout,
			[]string{"*nn.Linear", "*nn.Dropout", "*nn.Linear", "*nn.Dropout", "*nn.Linear"}},
	} {
		m, err := nn.NewMLP(d, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		params := m.Parameters()
		if len(params) != len(tc.want) {
			t.Fatalf("%d parameters, want %d", len(params), len(tc.want))
		}
		for i, p := range params {
			if p.Name != tc.want[i].name || !slices.Equal(p.Shape(), tc.want[i].shape) {
				t.Errorf("parameter %d: %s %v, want %s %v", i, p.Name, p.Shape(), tc.want[i].name, tc.want[i].shape)
			}
		}
		var kinds []string
		for _, mod := range m.Modules {
			kinds = append(kinds, fmt.Sprintf("%T", mod))
		}
		if !slices.Equal(kinds, tc.modules) {
			t.Errorf("modules %v, want %v", kinds, tc.modules)
		}
		if n := nn.NumParams(m); n != 535818 {
			t.Errorf("NumParams %d, want 535818", n)
		}
		vars := nn.Vars(params)
		for i := range vars {
			if vars[i] != params[i].Var {
				t.Errorf("Vars[%d] is not parameter %d", i, i)
			}
		}
	}
}

func TestMLPConfigErrors(t *testing.T) {
	d := device.NewCPU(1)
	for _, tc := range []struct {
		cfg  nn.MLPConfig
		want string
	}{
		{nn.MLPConfig{In: 0, Out: 3}, "input 0"},
		{nn.MLPConfig{In: 4, Out: -1}, "output -1"},
		{nn.MLPConfig{In: 4, Hidden: []int{8, 0}, Out: 3}, "hidden width 0"},
		{nn.MLPConfig{In: 4, Out: 3, Dropout: 1}, "dropout 1"},
		{nn.MLPConfig{In: 4, Out: 3, Dropout: -0.1}, "dropout -0.1"},
		{nn.MLPConfig{In: 4, Hidden: []int{8}, Out: 3, Activation: "gelu"}, `"gelu"`},
	} {
		_, err := nn.NewMLP(d, tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "nn: mlp: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}

// TestGradCheckMLP checks the gradients of a small MLP's loss with respect
// to its input and every parameter against finite differences, once built
// from autograd.Linear directly and once through the nn modules.
func TestGradCheckMLP(t *testing.T) {
	const batch, in, hidden, out = 3, 4, 5, 3
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(9, 9))
		up := func(lo, hi float32, shape ...int) *tensor.Tensor {
			n := 1
			for _, s := range shape {
				n *= s
			}
			return tensor.FromSlice(d, testutil.RandSlice(r, n, lo, hi), shape...)
		}
		inputs := []*tensor.Tensor{up(-1, 1, batch, in), up(-0.8, 0.8, hidden, in), up(-0.5, 0.5, hidden),
			up(-0.8, 0.8, out, hidden), up(-0.5, 0.5, out)}
		labels := tensor.FromSlice(d, []float32{2, 0, 1}, batch)
		target := up(-1, 1, batch, out)

		direct := func(in []*autograd.Var) *autograd.Var {
			h := autograd.Tanh(autograd.Linear(in[0], in[1], in[2]))
			return nn.CrossEntropyLoss(autograd.Linear(h, in[3], in[4]), labels)
		}
		// through modules: the inputs become the layers' parameters.
		modules := func(act string, loss func(*autograd.Var) *autograd.Var) func(in []*autograd.Var) *autograd.Var {
			m, err := nn.NewMLP(d, nn.MLPConfig{In: in, Hidden: []int{hidden}, Out: out, Activation: act})
			if err != nil {
				t.Fatal(err)
			}
			return func(in []*autograd.Var) *autograd.Var {
				l0, l2 := m.Modules[0].(*nn.Linear), m.Modules[1].(*nn.Linear)
				l0.Weight, l0.Bias, l2.Weight, l2.Bias = in[1], in[2], in[3], in[4]
				return loss(m.Forward(in[0]))
			}
		}
		ce := func(y *autograd.Var) *autograd.Var { return nn.CrossEntropyLoss(y, labels) }
		mse := func(y *autograd.Var) *autograd.Var { return nn.MSELoss(y, autograd.Const(target)) }
		for _, tc := range []struct {
			name string
			f    func(in []*autograd.Var) *autograd.Var
		}{
			{"direct", direct},
			{"modules tanh cross-entropy", modules("tanh", ce)},
			{"modules sigmoid mse", modules("sigmoid", mse)},
		} {
			if tc.name == "modules tanh cross-entropy" { // the layers really compute with the inputs
				consts := make([]*autograd.Var, len(inputs))
				for i, x := range inputs {
					consts[i] = autograd.Const(x)
				}
				if a, b := direct(consts).Item(), tc.f(consts).Item(); a != b {
					t.Errorf("%s: loss %v, built directly %v", tc.name, b, a)
				}
			}
			if err := autograd.GradCheck(tc.f, inputs, autograd.GradCheckOptions{}); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	})
}

func TestDropout(t *testing.T) {
	const n = 20000
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := rand.New(rand.NewPCG(2, 3))
		xs := testutil.RandSlice(r, n, 0.5, 1.5)
		for _, p := range []float32{0.1, 0.5, 0.8} {
			x := autograd.Const(tensor.FromSlice(d, xs, 100, n/100))
			dr := nn.NewDropout(p, 42)
			y1 := dr.Forward(x).Value.Data()
			y2 := dr.Forward(x).Value.Data()
			again := nn.NewDropout(p, 42).Forward(x).Value.Data()
			other := nn.NewDropout(p, 43).Forward(x).Value.Data()
			scale := 1 / (1 - p)
			dropped := 0
			for i, y := range y1 {
				switch {
				case y == 0:
					dropped++
				case math.Abs(float64(y-xs[i]*scale)) > 1e-6*float64(y):
					t.Fatalf("p %v: kept element %d is %v, want %v·%v", p, i, y, xs[i], scale)
				}
			}
			if frac := float64(dropped) / n; math.Abs(frac-float64(p)) > 0.02 {
				t.Errorf("p %v: dropped %v of the elements", p, frac)
			}
			if slices.Equal(y1, y2) {
				t.Errorf("p %v: two calls drew the same mask", p)
			}
			if !slices.Equal(y1, again) {
				t.Errorf("p %v: the same seed gave a different first mask", p)
			}
			if slices.Equal(y1, other) {
				t.Errorf("p %v: another seed gave the same mask", p)
			}

			dr.SetTraining(false)
			if y := dr.Forward(x).Value.Data(); !slices.Equal(y, xs) {
				t.Errorf("p %v: evaluation mode is not the identity", p)
			}
			dr.SetTraining(true)

			// The gradient passes through the kept elements, scaled.
			tp := autograd.NewTape()
			xv := tp.Var(tensor.FromSlice(d, xs, 100, n/100), true)
			yv := dr.Forward(xv)
			yd := yv.Value.Data()
			if err := autograd.SumAll(yv).Backward(); err != nil {
				t.Fatal(err)
			}
			for i, g := range xv.Grad.Data() {
				if want := yd[i] / xs[i]; math.Abs(float64(g-want)) > 1e-5 {
					t.Fatalf("p %v: gradient %d is %v, want %v", p, i, g, want)
				}
			}
		}
		if y := nn.NewDropout(0, 1).Forward(autograd.Const(tensor.FromSlice(d, xs))).Value.Data(); !slices.Equal(y, xs) {
			t.Error("dropout with p 0 changed its input")
		}
	})
}

// TestSetTraining checks that Sequential passes the mode to its Dropout
// layers: in evaluation an MLP with dropout computes exactly what the same
// MLP without dropout does.
func TestSetTraining(t *testing.T) {
	d := device.NewCPU(0)
	cfg := nn.MLPConfig{In: 8, Hidden: []int{32, 32}, Out: 4, Dropout: 0.5, Seed: 3}
	m, err := nn.NewMLP(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dropout = 0
	plain, err := nn.NewMLP(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := autograd.Const(tensor.FromSlice(d, testutil.RandSlice(rand.New(rand.NewPCG(1, 1)), 5*8, -1, 1), 5, 8))
	fwd := func(m nn.Module) []float32 { return m.Forward(x).Value.Data() }
	want := fwd(plain)

	a, b := fwd(m), fwd(m)
	if slices.Equal(a, b) || slices.Equal(a, want) {
		t.Error("training mode: the forward pass is deterministic")
	}
	m.SetTraining(false)
	if a, b := fwd(m), fwd(m); !slices.Equal(a, want) || !slices.Equal(b, want) {
		t.Errorf("evaluation mode: %v, want %v", a, want)
	}
	m.SetTraining(true)
	if a := fwd(m); slices.Equal(a, want) {
		t.Error("training mode again: dropout is off")
	}
}

// TestLosses compares CrossEntropyLoss and MSELoss, and the cross-entropy's
// gradient, with host computations, on the device and on its composed path.
func TestLosses(t *testing.T) {
	const rows, n = 6, 7
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, dev := range []device.Device{d, composedOnly{d}} {
			r := rand.New(rand.NewPCG(4, 4))
			logits := testutil.RandSlice(r, rows*n, -3, 3)
			for j := range n { // a row of large logits tests the log-sum-exp's stability
				logits[2*n+j] += 80
				logits[4*n+j] -= 90
			}
			labels := make([]float32, rows)
			for i := range labels {
				labels[i] = float32(r.IntN(n))
			}
			want, wantGrad := 0.0, make([]float32, rows*n)
			for i := range rows {
				row := logits[i*n : i*n+n]
				m := float64(slices.Max(row))
				s := 0.0
				for _, v := range row {
					s += math.Exp(float64(v) - m)
				}
				lse := m + math.Log(s)
				want += lse - float64(row[int(labels[i])])
				for j, v := range row {
					g := math.Exp(float64(v) - lse)
					if j == int(labels[i]) {
						g--
					}
					wantGrad[i*n+j] = float32(g / rows)
				}
			}
			want /= rows

			tp := autograd.NewTape()
			x := tp.Var(tensor.FromSlice(dev, logits, rows, n), true)
			loss := nn.CrossEntropyLoss(x, tensor.FromSlice(dev, labels, rows))
			name := fmt.Sprintf("%T", dev)
			testutil.AllClose(t, name+" cross-entropy", []float32{loss.Item()}, []float32{float32(want)}, 1e-5, 1e-5)
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			testutil.AllClose(t, name+" cross-entropy gradient", x.Grad.Data(), wantGrad, 1e-6, 1e-5)

			pred, target := testutil.RandSlice(r, 15, -2, 2), testutil.RandSlice(r, 15, -2, 2)
			mse := 0.0
			for i := range pred {
				mse += (float64(pred[i]) - float64(target[i])) * (float64(pred[i]) - float64(target[i]))
			}
			got := nn.MSELoss(autograd.Const(tensor.FromSlice(dev, pred, 3, 5)), autograd.Const(tensor.FromSlice(dev, target, 3, 5))).Item()
			testutil.AllClose(t, name+" mse", []float32{got}, []float32{float32(mse / 15)}, 1e-6, 1e-5)
		}
	})
}

// TestZeroGrad checks that nn.ZeroGrad clears every parameter's gradient
// (to nil, as PyTorch's set_to_none), that the next Backward then writes a
// fresh gradient into the released buffer, and that without it gradients add.
func TestZeroGrad(t *testing.T) {
	d := device.NewCPU(1)
	m, err := nn.NewMLP(d, nn.MLPConfig{In: 3, Hidden: []int{4}, Out: 2})
	if err != nil {
		t.Fatal(err)
	}
	backward := func() {
		tp := autograd.NewTape()
		x := tp.Var(tensor.FromSlice(d, []float32{1, -2, 3, 0.5, 0.5, -1}, 2, 3), false)
		if err := nn.CrossEntropyLoss(m.Forward(x), tensor.FromSlice(d, []float32{0, 1}, 2)).Backward(); err != nil {
			t.Fatal(err)
		}
	}
	backward()
	first := map[string][]float32{}
	for _, p := range m.Parameters() {
		if p.Grad == nil || slices.Max(p.Grad.Data()) == 0 && slices.Min(p.Grad.Data()) == 0 {
			t.Fatalf("%s: no gradient after Backward", p.Name)
		}
		first[p.Name] = p.Grad.Data()
	}
	nn.ZeroGrad(m)
	for _, p := range m.Parameters() {
		if p.Grad != nil {
			t.Errorf("%s: gradient %v after ZeroGrad, want nil", p.Name, p.Grad.Data())
		}
	}
	backward()
	for _, p := range m.Parameters() {
		testutil.AllClose(t, p.Name+" after ZeroGrad and Backward", p.Grad.Data(), first[p.Name], 0, 0)
	}
	backward()
	for _, p := range m.Parameters() {
		twice := make([]float32, len(first[p.Name]))
		for i, g := range first[p.Name] {
			twice[i] = 2 * g
		}
		testutil.AllClose(t, p.Name+" after two Backward passes", p.Grad.Data(), twice, 1e-6, 1e-6)
	}
}

// smallMLP returns a 20-16-8-5 MLP whose initialisation depends on seed.
func smallMLP(t *testing.T, d device.Device, seed uint64) *nn.Sequential {
	t.Helper()
	m, err := nn.NewMLP(d, nn.MLPConfig{In: 20, Hidden: []int{16, 8}, Out: 5, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// paramData copies every parameter of m to the host, by name.
func paramData(m nn.Module) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range m.Parameters() {
		out[p.Name] = p.Value.Data()
	}
	return out
}

func sameParams(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestSaveLoad(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		path := filepath.Join(t.TempDir(), "mlp.safetensors")
		src, dst := smallMLP(t, d, 1), smallMLP(t, d, 2)
		x := autograd.Const(tensor.FromSlice(d, testutil.RandSlice(rand.New(rand.NewPCG(1, 2)), 3*20, -1, 1), 3, 20))
		want := src.Forward(x).Value.Data()
		if slices.Equal(dst.Forward(x).Value.Data(), want) {
			t.Fatal("the two models agree before loading")
		}
		meta := map[string]string{"epoch": "3", "arch": "20-16-8-5"}
		if err := nn.Save(path, src, meta); err != nil {
			t.Fatal(err)
		}
		got, err := nn.Load(path, dst)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(meta) {
			t.Errorf("metadata %v, want %v", got, meta)
		}
		if !sameParams(paramData(dst), paramData(src)) {
			t.Error("loaded parameters differ from the saved ones")
		}
		if y := dst.Forward(x).Value.Data(); !slices.Equal(y, want) {
			t.Errorf("loaded model computes %v, want %v", y, want)
		}

		// The file holds PyTorch's names and [out, in] weights.
		f, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ts := range f.Tensors {
			names = append(names, fmt.Sprint(ts.Name, ts.Shape))
		}
		wantNames := []string{"0.bias[16]", "0.weight[16 20]", "2.bias[8]", "2.weight[8 16]", "4.bias[5]", "4.weight[5 8]"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("file tensors %v, want %v", names, wantNames)
		}
	})
}

// TestLoadErrors checks that a checkpoint that does not fit the model is
// refused with a message naming the problem and the file, and that the
// model is left exactly as it was.
func TestLoadErrors(t *testing.T) {
	d := device.NewCPU(0)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := nn.Save(good, smallMLP(t, d, 1), nil); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// edit writes the state dict of a seed-1 model changed by fn.
	edit := func(fn func([]safetensors.Tensor) []safetensors.Tensor) func(path string) error {
		return func(path string) error {
			return safetensors.WriteFile(path, &safetensors.File{Tensors: fn(nn.StateDict(smallMLP(t, d, 1)))})
		}
	}
	bytesFile := func(b []byte) func(path string) error {
		return func(path string) error { return os.WriteFile(path, b, 0o644) }
	}
	corrupt := bytes.Clone(raw)
	copy(corrupt[8:], "{{{{")
	huge := bytes.Clone(raw)
	copy(huge, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	for _, tc := range []struct {
		name  string
		write func(path string) error // nil: no file
		want  string
	}{
		{"missing tensor", edit(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "4.bias" })
		}), `no tensor "4.bias"`},
		{"extra tensor", edit(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "6.weight", Shape: []int{2}, Data: []float32{1, 2}})
		}), `"6.weight", which the model does not have`},
		{"transposed weight", edit(func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "4.weight" {
					ts[i].Shape = []int{8, 5}
				}
			}
			return ts
		}), `"4.weight" has shape [8 5], the model wants [5 8]`},
		{"wrong size", edit(func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "2.bias" {
					ts[i].Shape, ts[i].Data = []int{9}, make([]float32, 9)
				}
			}
			return ts
		}), `"2.bias" has shape [9]`},
		{"truncated", bytesFile(raw[:len(raw)-7]), "safetensors"},
		{"header only", bytesFile(raw[:20]), "safetensors"},
		{"corrupt header", bytesFile(corrupt), "safetensors"},
		{"huge header length", bytesFile(huge), "safetensors"},
		{"empty", bytesFile(nil), "safetensors"},
		{"no file", nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if tc.write != nil {
				if err := tc.write(path); err != nil {
					t.Fatal(err)
				}
			}
			m := smallMLP(t, d, 2)
			before := paramData(m)
			_, err := nn.Load(path, m)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "nn: load: ") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) {
				t.Errorf("error %q, want one starting nn: load: and naming %q and the file", msg, tc.want)
			}
			if !sameParams(paramData(m), before) {
				t.Error("the failed load changed the model")
			}
		})
	}
}

// dupNames is a module whose two parameters share a name, which no
// checkpoint can hold.
type dupNames struct{ a, b *autograd.Var }

func (m dupNames) Forward(x *autograd.Var) *autograd.Var { return x }
func (m dupNames) Parameters() []nn.Param {
	return []nn.Param{{Name: "w", Var: m.a}, {Name: "w", Var: m.b}}
}
func (m dupNames) SetTraining(bool) {}

// TestSaveFailureKeepsCheckpoint checks that a failed Save leaves an
// existing checkpoint intact and no temporary files behind.
func TestSaveFailureKeepsCheckpoint(t *testing.T) {
	d := device.NewCPU(1)
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	if err := nn.Save(path, smallMLP(t, d, 1), map[string]string{"epoch": "1"}); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := dupNames{autograd.Param(tensor.Zeros(d, 2)), autograd.Param(tensor.Ones(d, 2))}
	check := func(name string, err error) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), "nn: save: ") {
			t.Errorf("%s: error %v, want an nn: save: error", name, err)
		}
		now, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(now, orig) {
			t.Errorf("%s: the existing checkpoint changed (%v)", name, rerr)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s: directory holds %v, want the checkpoint alone", name, names)
		}
	}
	check("duplicate names", nn.Save(path, bad, nil))
	check("missing directory", nn.Save(filepath.Join(dir, "absent", "ckpt.safetensors"), smallMLP(t, d, 2), nil))
	check("directory as path", nn.Save(dir, smallMLP(t, d, 2), nil))
	if os.Geteuid() == 0 {
		t.Log("running as root: the read-only directory case is skipped")
		return
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	check("read-only directory", nn.Save(path, smallMLP(t, d, 2), nil))
}

func TestLoadStateDictAtomic(t *testing.T) {
	d := device.NewCPU(1)
	m := smallMLP(t, d, 2)
	before := paramData(m)
	ts := nn.StateDict(smallMLP(t, d, 1))
	ts = ts[:len(ts)-1] // the last parameter is missing: nothing may be loaded
	if err := nn.LoadStateDict(m, &safetensors.File{Tensors: ts}); err == nil {
		t.Fatal("no error")
	}
	if !sameParams(paramData(m), before) {
		t.Error("a failed LoadStateDict changed the model")
	}
}

// TestSequentialFusesActivation checks that an MLP, whose Linear layers and
// activations Sequential runs as fused nodes, computes the losses and
// gradients of the same layers applied one module at a time, over a few
// training steps, with and without the device's fused kernels.
// TestDeclaredFusion checks that NewMLP's layers, which fuse their
// activation, compute what a Sequential of separate Linear and activation
// modules computes (loss and every gradient, over several steps), and that
// the two print and name their parameters alike, as PyTorch does.
func TestDeclaredFusion(t *testing.T) {
	const batch, in, out = 9, 13, 4
	for _, act := range []string{"relu", "sigmoid", "tanh"} {
		for _, composed := range []bool{false, true} {
			var d device.Device = device.NewCPU(0)
			if composed {
				d = composedOnly{d}
			}
			name := fmt.Sprintf("%s composed=%v", act, composed)
			cfg := nn.MLPConfig{In: in, Hidden: []int{11, 6}, Out: out, Activation: act, Seed: 3}
			fused, err := nn.NewMLP(d, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := nn.NewMLP(d, cfg)
			var mods []nn.Module
			for _, m := range ref.Modules {
				l := m.(*nn.Linear)
				plainAct := l.Act
				l.Act = device.Identity
				mods = append(mods, l)
				switch plainAct {
				case device.ActRelu:
					mods = append(mods, nn.ReLU{})
				case device.ActSigmoid:
					mods = append(mods, nn.Sigmoid{})
				case device.ActTanh:
					mods = append(mods, nn.Tanh{})
				}
			}
			plain := nn.NewSequential(mods...)
			if fmt.Sprint(fused) != fmt.Sprint(plain) {
				t.Errorf("%s: fused model prints\n%v\nwant\n%v", name, fused, plain)
			}
			r := rand.New(rand.NewPCG(4, 4))
			labels := tensor.FromSlice(d, []float32{0, 1, 2, 3, 0, 1, 2, 3, 0}, batch)
			tf, tp := autograd.NewTape(), autograd.NewTape()
			for step := range 3 {
				x := tensor.FromSlice(d, testutil.RandSlice(r, batch*in, -1, 1), batch, in)
				lf := nn.CrossEntropyLoss(fused.Forward(tf.Var(x, false)), labels)
				lp := nn.CrossEntropyLoss(plain.Forward(tp.Var(x, false)), labels)
				sn := fmt.Sprintf("%s step %d", name, step)
				testutil.AllClose(t, sn+" loss", []float32{lf.Item()}, []float32{lp.Item()}, 1e-6, 1e-5)
				if err := lf.Backward(); err != nil {
					t.Fatal(err)
				}
				if err := lp.Backward(); err != nil {
					t.Fatal(err)
				}
				pf, pp := fused.Parameters(), plain.Parameters()
				for i := range pf {
					if pf[i].Name != pp[i].Name {
						t.Fatalf("%s: parameter %d is %q, want %q", sn, i, pf[i].Name, pp[i].Name)
					}
					testutil.AllClose(t, sn+" grad "+pf[i].Name, pf[i].Grad.Data(), pp[i].Grad.Data(), 1e-5, 1e-4)
				}
				x.Free()
			}
			tf.Free()
			tp.Free()
		}
	}
}

// loopMatMul is a CPU whose matrix products are plain loops, so that
// allocation counts leave out those of internal/sgemm.
type loopMatMul struct{ *device.CPU }

func (c loopMatMul) MatMul(dst, a, b device.Buffer, m, k, n int, transA, transB, acc bool) error {
	d, x, y := dst.(*device.CPUBuffer).Data(), a.(*device.CPUBuffer).Data(), b.(*device.CPUBuffer).Data()
	for i := range m {
		for j := range n {
			var s float32
			for l := range k {
				ai, bi := i*k+l, l*n+j
				if transA {
					ai = l*m + i
				}
				if transB {
					bi = j*k + l
				}
				s += x[ai] * y[bi]
			}
			if acc {
				s += d[i*n+j]
			}
			d[i*n+j] = s
		}
	}
	return nil
}

// TestTrainStepAllocations checks that a training step of an MLP allocates
// almost nothing once the first step has run: the pass's nodes come in one
// slab and its buffers from the device pool.
func TestTrainStepAllocations(t *testing.T) {
	d := loopMatMul{device.NewCPU(1)}
	m, err := nn.NewMLP(d, nn.MLPConfig{In: 20, Hidden: []int{16, 8}, Out: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewSGD(nn.Vars(m.Parameters()), optim.SGDConfig{LR: 0.01, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	tp := autograd.NewTape()
	x := tp.Var(tensor.FromSlice(d, testutil.RandSlice(r, 8*20, -1, 1), 8, 20), false)
	y := tensor.FromSlice(d, []float32{0, 1, 2, 3, 4, 0, 1, 2}, 8)
	step := func() {
		loss := nn.CrossEntropyLoss(m.Forward(x), y)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		loss.Value.Free()
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		nn.ZeroGrad(m)
	}
	step()
	if n := testing.AllocsPerRun(20, step); n > 1 {
		t.Errorf("%v allocations per step, want at most 1 (the pass's slab)", n)
	}
}
