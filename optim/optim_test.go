package optim_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/tensor"
)

// composedOnly hides every optional interface of the device it wraps, so
// that the optimizers take their composed path.
type composedOnly struct{ device.Device }

// fusedCounter forwards the fused optimizer steps to a device that has them
// and counts the calls, proving that the fused path ran.
type fusedCounter struct {
	device.Device
	opt   device.Optimizers
	calls int
}

func (f *fusedCounter) SGDStep(p, g, buf device.Buffer, n int, hp device.SGDParams) error {
	f.calls++
	return f.opt.SGDStep(p, g, buf, n, hp)
}

func (f *fusedCounter) AdamStep(p, g, m, v, vmax device.Buffer, n int, hp device.AdamParams) error {
	f.calls++
	return f.opt.AdamStep(p, g, m, v, vmax, n, hp)
}

// multiCounter forwards the multi-tensor optimizer steps to a device that
// has them and counts the calls; it hides the one-tensor steps.
type multiCounter struct {
	device.Device
	multi device.MultiOptimizers
	calls int
}

func (f *multiCounter) SGDStepMulti(ps, gs, bufs []device.Buffer, ns []int, hp device.SGDParams) error {
	f.calls++
	return f.multi.SGDStepMulti(ps, gs, bufs, ns, hp)
}

func (f *multiCounter) AdamStepMulti(ps, gs, ms, vs, vmaxs []device.Buffer, ns []int, hp device.AdamParams) error {
	f.calls++
	return f.multi.AdamStepMulti(ps, gs, ms, vs, vmaxs, ns, hp)
}

var (
	_ device.Device          = composedOnly{}
	_ device.Optimizers      = (*fusedCounter)(nil)
	_ device.MultiOptimizers = (*multiCounter)(nil)
)

// path is one way of running the optimizers on a device.
type path struct {
	name  string
	dev   device.Device
	calls func() int // fused steps run so far; nil on the composed path
	multi bool       // one fused call per step, not one per parameter
}

// paths returns the multi-tensor and one-tensor fused paths (when d has
// them) and the composed one.
func paths(t *testing.T, d device.Device) []path {
	t.Helper()
	cd := composedOnly{d}
	if _, ok := device.Device(cd).(device.Optimizers); ok {
		t.Fatal("composedOnly still exposes device.Optimizers")
	}
	ps := []path{{name: "composed", dev: cd}}
	if opt, ok := d.(device.Optimizers); ok {
		fc := &fusedCounter{Device: d, opt: opt}
		if _, ok := device.Device(fc).(device.MultiOptimizers); ok {
			t.Fatal("fusedCounter exposes device.MultiOptimizers")
		}
		ps = append(ps, path{name: "fused", dev: fc, calls: func() int { return fc.calls }})
	} else {
		t.Logf("%s has no fused optimizer steps", d.Name())
	}
	if multi, ok := d.(device.MultiOptimizers); ok {
		mc := &multiCounter{Device: d, multi: multi}
		ps = append(ps, path{name: "multi", dev: mc, calls: func() int { return mc.calls }, multi: true})
	} else {
		t.Logf("%s has no multi-tensor optimizer steps", d.Name())
	}
	return ps
}

// problem is a quadratic loss over some parameter tensors: build records it
// through autograd, grad is its gradient in float64 on the host.
type problem struct {
	name   string
	shapes [][]int
	init   [][]float32
	build  func(dev device.Device) func(ps []*autograd.Var) *autograd.Var
	grad   func(p [][]float64) [][]float64
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// diagonal is f = 0.5·Σ a_i (p_i - c_i)² over a vector of 5 and a [2, 3]
// matrix, with gradient a∘(p - c).
func diagonal() problem {
	r := rand.New(rand.NewPCG(11, 12))
	shapes := [][]int{{5}, {2, 3}}
	var init, as, cs [][]float32
	for _, s := range shapes {
		n := numel(s)
		init = append(init, testutil.RandSlice(r, n, -2, 2))
		as = append(as, testutil.RandSlice(r, n, 0.5, 2))
		cs = append(cs, testutil.RandSlice(r, n, -1, 1))
	}
	return problem{
		name: "diagonal", shapes: shapes, init: init,
		build: func(dev device.Device) func(ps []*autograd.Var) *autograd.Var {
			tp := autograd.NewTape()
			var a, c []*autograd.Var
			for i, s := range shapes {
				a = append(a, autograd.Const(tensor.FromSlice(dev, as[i], s...)))
				c = append(c, tp.Var(tensor.FromSlice(dev, cs[i], s...), false))
			}
			return func(ps []*autograd.Var) *autograd.Var {
				var loss *autograd.Var
				for i, p := range ps {
					d := autograd.Sub(p, c[i])
					l := autograd.SumAll(autograd.Mul(a[i], autograd.Mul(d, d)))
					if loss == nil {
						loss = l
					} else {
						loss = autograd.Add(loss, l)
					}
				}
				return autograd.MulScalar(loss, 0.5)
			}
		},
		grad: func(p [][]float64) [][]float64 {
			g := make([][]float64, len(p))
			for i := range p {
				g[i] = make([]float64, len(p[i]))
				for j := range p[i] {
					g[i][j] = float64(as[i][j]) * (p[i][j] - float64(cs[i][j]))
				}
			}
			return g
		},
	}
}

// rotated is f = 0.5·(p - c)ᵀ Rᵀ D R (p - c) in two dimensions, with R a
// rotation by 0.5 rad and D = diag(4, 0.25): an ill-conditioned bowl whose
// axes are not the coordinate axes.
func rotated() problem {
	cs, sn := math.Cos(0.5), math.Sin(0.5)
	rot := [2][2]float64{{cs, -sn}, {sn, cs}}
	diag := [2]float64{4, 0.25}
	c := []float32{0.3, -0.7}
	// The device computes with R and D rounded to float32; so does the host.
	var r32 [2][2]float64
	for i := range rot {
		for j := range rot[i] {
			r32[i][j] = float64(float32(rot[i][j]))
		}
	}
	return problem{
		name: "rotated", shapes: [][]int{{2}}, init: [][]float32{{-1.5, 1.2}},
		build: func(dev device.Device) func(ps []*autograd.Var) *autograd.Var {
			tp := autograd.NewTape()
			cv := tp.Var(tensor.FromSlice(dev, c, 2), false)
			rv := autograd.Const(tensor.FromSlice(dev, []float32{
				float32(rot[0][0]), float32(rot[0][1]), float32(rot[1][0]), float32(rot[1][1])}, 2, 2))
			dv := autograd.Const(tensor.FromSlice(dev, []float32{float32(diag[0]), float32(diag[1])}, 1, 2))
			return func(ps []*autograd.Var) *autograd.Var {
				d := autograd.Reshape(autograd.Sub(ps[0], cv), 1, 2)
				y := autograd.MatMul(d, rv, false, true) // (R d)ᵀ
				return autograd.MulScalar(autograd.SumAll(autograd.Mul(dv, autograd.Mul(y, y))), 0.5)
			}
		},
		grad: func(p [][]float64) [][]float64 {
			var d, y [2]float64
			for i := range d {
				d[i] = p[0][i] - float64(c[i])
			}
			for i := range y {
				y[i] = diag[i] * (r32[i][0]*d[0] + r32[i][1]*d[1])
			}
			return [][]float64{{r32[0][0]*y[0] + r32[1][0]*y[1], r32[0][1]*y[0] + r32[1][1]*y[1]}}
		},
	}
}

// refOptimizer is a float64 optimizer written from PyTorch's pseudo-code.
type refOptimizer interface {
	step(p, g [][]float64, lr float64)
}

// refSGD follows the algorithm box of torch.optim.SGD.
type refSGD struct {
	momentum, dampening, wd float64
	nesterov                bool
	t                       int
	b                       [][]float64
}

func (o *refSGD) step(p, g [][]float64, lr float64) {
	o.t++
	if o.b == nil {
		o.b = make([][]float64, len(p))
	}
	for i := range p {
		if o.b[i] == nil {
			o.b[i] = make([]float64, len(p[i]))
		}
		for j := range p[i] {
			gt := g[i][j]
			if o.wd != 0 {
				gt += o.wd * p[i][j]
			}
			if o.momentum != 0 {
				if o.t > 1 {
					o.b[i][j] = o.momentum*o.b[i][j] + (1-o.dampening)*gt
				} else {
					o.b[i][j] = gt
				}
				if o.nesterov {
					gt += o.momentum * o.b[i][j]
				} else {
					gt = o.b[i][j]
				}
			}
			p[i][j] -= lr * gt
		}
	}
}

// refAdam follows the algorithm boxes of torch.optim.Adam and, when
// decoupled, torch.optim.AdamW, without amsgrad.
type refAdam struct {
	beta1, beta2, eps, wd float64
	decoupled             bool
	t                     int
	m, v                  [][]float64
}

func (o *refAdam) step(p, g [][]float64, lr float64) {
	o.t++
	if o.m == nil {
		o.m, o.v = make([][]float64, len(p)), make([][]float64, len(p))
	}
	for i := range p {
		if o.m[i] == nil {
			o.m[i], o.v[i] = make([]float64, len(p[i])), make([]float64, len(p[i]))
		}
		for j := range p[i] {
			gt := g[i][j]
			if o.decoupled {
				p[i][j] -= lr * o.wd * p[i][j]
			} else if o.wd != 0 {
				gt += o.wd * p[i][j]
			}
			o.m[i][j] = o.beta1*o.m[i][j] + (1-o.beta1)*gt
			o.v[i][j] = o.beta2*o.v[i][j] + (1-o.beta2)*gt*gt
			mhat := o.m[i][j] / (1 - math.Pow(o.beta1, float64(o.t)))
			vhat := o.v[i][j] / (1 - math.Pow(o.beta2, float64(o.t)))
			p[i][j] -= lr * mhat / (math.Sqrt(vhat) + o.eps)
		}
	}
}

// optCase is one optimizer configuration. lr64 is the schedule's rate in
// float64, the reference's own closed form.
type optCase struct {
	name  string
	make  func(ps []*autograd.Var) (optim.Optimizer, error)
	ref   func() refOptimizer
	sched optim.Schedule
	lr64  func(step int) float64
}

func sgdCase(name string, cfg optim.SGDConfig) optCase {
	return optCase{
		name: name,
		make: func(ps []*autograd.Var) (optim.Optimizer, error) { return optim.NewSGD(ps, cfg) },
		ref: func() refOptimizer {
			return &refSGD{momentum: float64(cfg.Momentum), dampening: float64(cfg.Dampening),
				wd: float64(cfg.WeightDecay), nesterov: cfg.Nesterov}
		},
		sched: optim.Constant{Base: cfg.LR},
		lr64:  func(int) float64 { return float64(cfg.LR) },
	}
}

func adamCase(name string, cfg optim.AdamConfig, decoupled bool) optCase {
	b1, b2, eps := 0.9, 0.999, 1e-8
	if cfg.Beta1 != 0 {
		b1 = float64(cfg.Beta1)
	}
	if cfg.Beta2 != 0 {
		b2 = float64(cfg.Beta2)
	}
	if cfg.Eps != 0 {
		eps = float64(cfg.Eps)
	}
	return optCase{
		name: name,
		make: func(ps []*autograd.Var) (optim.Optimizer, error) {
			if decoupled {
				return optim.NewAdamW(ps, cfg)
			}
			return optim.NewAdam(ps, cfg)
		},
		ref: func() refOptimizer {
			return &refAdam{beta1: b1, beta2: b2, eps: eps, wd: float64(cfg.WeightDecay), decoupled: decoupled}
		},
		sched: optim.Constant{Base: cfg.LR},
		lr64:  func(int) float64 { return float64(cfg.LR) },
	}
}

// withStepLR makes c's rate halve every 4 steps, from base.
func withStepLR(c optCase, base float64) optCase {
	c.name += " steplr"
	c.sched = optim.StepLR{Base: float32(base), StepSize: 4, Gamma: 0.5}
	c.lr64 = func(t int) float64 { return base * math.Pow(0.5, float64(t/4)) }
	return c
}

// withCosine makes c's rate follow a cosine from base to base/10 over 8
// steps and back up.
func withCosine(c optCase, base float64) optCase {
	c.name += " cosine"
	c.sched = optim.CosineAnnealing{Base: float32(base), Min: float32(base / 10), TMax: 8}
	c.lr64 = func(t int) float64 { return base/10 + (base-base/10)*(1+math.Cos(math.Pi*float64(t)/8))/2 }
	return c
}

func optCases() []optCase {
	return []optCase{
		sgdCase("sgd", optim.SGDConfig{LR: 0.1}),
		sgdCase("sgd momentum", optim.SGDConfig{LR: 0.05, Momentum: 0.9}),
		sgdCase("sgd momentum dampening", optim.SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.5}),
		sgdCase("sgd nesterov", optim.SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true}),
		sgdCase("sgd weight decay", optim.SGDConfig{LR: 0.1, WeightDecay: 0.1}),
		sgdCase("sgd nesterov weight decay", optim.SGDConfig{LR: 0.05, Momentum: 0.8, WeightDecay: 0.05, Nesterov: true}),
		withStepLR(sgdCase("sgd momentum", optim.SGDConfig{LR: 0.1, Momentum: 0.9}), 0.1),
		adamCase("adam", optim.AdamConfig{LR: 0.05}, false),
		adamCase("adam betas eps", optim.AdamConfig{LR: 0.05, Beta1: 0.8, Beta2: 0.99, Eps: 1e-3}, false),
		adamCase("adam weight decay", optim.AdamConfig{LR: 0.05, WeightDecay: 0.1}, false),
		adamCase("adamw weight decay", optim.AdamConfig{LR: 0.05, WeightDecay: 0.1}, true),
		withStepLR(adamCase("adam", optim.AdamConfig{LR: 0.1}, false), 0.1),
		withCosine(adamCase("adamw", optim.AdamConfig{LR: 0.1, WeightDecay: 0.2}, true), 0.1),
	}
}

// newParams uploads the problem's initial values as parameters.
func newParams(dev device.Device, shapes [][]int, init [][]float32) []*autograd.Var {
	ps := make([]*autograd.Var, len(shapes))
	for i, s := range shapes {
		ps[i] = autograd.Param(tensor.FromSlice(dev, init[i], s...))
	}
	return ps
}

func values(ps []*autograd.Var) [][]float32 {
	vs := make([][]float32, len(ps))
	for i, p := range ps {
		vs[i] = p.Value.Data()
	}
	return vs
}

// train runs steps [from, to) of c on ps: it sets the scheduled rate, then
// records the loss, backpropagates, steps and zeroes the gradients. It
// returns the parameters after each step.
func train(t *testing.T, c optCase, o optim.Optimizer, ps []*autograd.Var, loss func([]*autograd.Var) *autograd.Var, from, to int) [][][]float32 {
	t.Helper()
	var traj [][][]float32
	for s := from; s < to; s++ {
		o.SetLR(c.sched.LR(s))
		if err := loss(ps).Backward(); err != nil {
			t.Fatalf("step %d: backward: %v", s, err)
		}
		if err := o.Step(); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
		optim.ZeroGrad(ps)
		traj = append(traj, values(ps))
	}
	return traj
}

const steps = 10

// TestTrajectories runs every configuration for ten steps on each problem
// and compares the parameters after every step with the float64 reference.
func TestTrajectories(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, pr := range []problem{diagonal(), rotated()} {
				for _, c := range optCases() {
					t.Run(fmt.Sprintf("%s/%s/%s", pa.name, pr.name, c.name), func(t *testing.T) {
						ps := newParams(pa.dev, pr.shapes, pr.init)
						o, err := c.make(ps)
						if err != nil {
							t.Fatal(err)
						}
						before := 0
						if pa.calls != nil {
							before = pa.calls()
						}
						traj := train(t, c, o, ps, pr.build(pa.dev), 0, steps)
						if pa.calls != nil {
							want := steps * len(ps)
							if pa.multi {
								want = steps
							}
							if got := pa.calls() - before; got != want {
								t.Errorf("%d fused steps ran, want %d", got, want)
							}
						}

						ref := c.ref()
						p := make([][]float64, len(pr.init))
						for i, v := range pr.init {
							for _, x := range v {
								p[i] = append(p[i], float64(x))
							}
						}
						for s := range steps {
							if lr := float64(o.LR()); s == steps-1 && math.Abs(lr-c.lr64(s)) > 1e-7*c.lr64(s) {
								t.Errorf("rate after the run %v, want %v", lr, c.lr64(s))
							}
							ref.step(p, pr.grad(p), c.lr64(s))
							for i := range p {
								want := make([]float32, len(p[i]))
								for j, x := range p[i] {
									want[j] = float32(x)
								}
								if !testutil.AllClose(t, fmt.Sprintf("step %d param %d", s+1, i), traj[s][i], want, 2e-6, 2e-5) {
									return
								}
							}
						}
						if _, n := o.State(); n != steps {
							t.Errorf("state reports %d steps, want %d", n, steps)
						}
					})
				}
			}
		}
	})
}

// TestStateResume saves the state after 5 steps, restores it into a fresh
// optimizer over fresh parameters and continues: the last 5 steps must be
// bit for bit those of the uninterrupted run.
func TestStateResume(t *testing.T) {
	pr := diagonal()
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, c := range optCases() {
				t.Run(pa.name+"/"+c.name, func(t *testing.T) {
					loss := pr.build(pa.dev)
					ps := newParams(pa.dev, pr.shapes, pr.init)
					o, err := c.make(ps)
					if err != nil {
						t.Fatal(err)
					}
					train(t, c, o, ps, loss, 0, steps/2)

					bufs, n := o.State()
					if n != steps/2 {
						t.Errorf("state reports %d steps, want %d", n, steps/2)
					}
					saved := map[string][]float32{}
					for k, b := range bufs {
						saved[k] = b.Data()
					}
					checkStateNames(t, c.name, saved, len(ps))

					ps2 := newParams(pa.dev, pr.shapes, values(ps))
					o2, err := c.make(ps2)
					if err != nil {
						t.Fatal(err)
					}
					if err := o2.SetState(saved, n); err != nil {
						t.Fatal(err)
					}
					want := train(t, c, o, ps, loss, steps/2, steps)
					got := train(t, c, o2, ps2, loss, steps/2, steps)
					for s := range got {
						for i := range got[s] {
							if !bitsEqual(got[s][i], want[s][i]) {
								t.Fatalf("step %d param %d: resumed %v, uninterrupted %v", steps/2+s+1, i, got[s][i], want[s][i])
							}
						}
					}
					if _, n := o2.State(); n != steps {
						t.Errorf("resumed state reports %d steps, want %d", n, steps)
					}
				})
			}
		}
	})
}

// checkStateNames checks the buffer names PyTorch would use for c.
func checkStateNames(t *testing.T, name string, st map[string][]float32, nparams int) {
	t.Helper()
	var kinds []string
	switch {
	case strings.HasPrefix(name, "adam"):
		kinds = []string{"exp_avg", "exp_avg_sq"}
	case strings.Contains(name, "momentum") || strings.Contains(name, "nesterov"):
		kinds = []string{"momentum_buffer"}
	}
	var want []string
	for i := range nparams {
		for _, k := range kinds {
			want = append(want, fmt.Sprintf("%d.%s", i, k))
		}
	}
	var got []string
	for k := range st {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("state buffers %v, want %v", got, want)
	}
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestSetStateErrors checks that a bad state is refused whole: neither the
// buffers nor the step count change.
func TestSetStateErrors(t *testing.T) {
	dev := device.NewCPU(1)
	pr := diagonal()
	loss := pr.build(dev)
	good := func(n int) []float32 { return make([]float32, n) }
	cases := []struct {
		name string
		c    optCase
		bufs map[string][]float32
		want string
	}{
		{"unknown index", sgdCase("sgd momentum", optim.SGDConfig{LR: 0.1, Momentum: 0.9}),
			map[string][]float32{"2.momentum_buffer": good(5)}, "unknown buffer"},
		{"other optimizer's buffer", sgdCase("sgd momentum", optim.SGDConfig{LR: 0.1, Momentum: 0.9}),
			map[string][]float32{"0.exp_avg": good(5)}, "unknown buffer"},
		{"wrong length", sgdCase("sgd momentum", optim.SGDConfig{LR: 0.1, Momentum: 0.9}),
			map[string][]float32{"0.momentum_buffer": good(5), "1.momentum_buffer": good(5)}, "has 5 values"},
		{"adam wrong length", adamCase("adam", optim.AdamConfig{LR: 0.1}, false),
			map[string][]float32{"0.exp_avg": good(5), "0.exp_avg_sq": good(5), "1.exp_avg": good(6), "1.exp_avg_sq": good(7)}, "has 7 values"},
		{"negative steps", adamCase("adam", optim.AdamConfig{LR: 0.1}, false),
			map[string][]float32{"0.exp_avg": good(5)}, "negative step count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := newParams(dev, pr.shapes, pr.init)
			o, err := tc.c.make(ps)
			if err != nil {
				t.Fatal(err)
			}
			train(t, tc.c, o, ps, loss, 0, 2)
			before, n := snapshot(o)
			steps := 7
			if tc.name == "negative steps" {
				steps = -1
			}
			err = o.SetState(tc.bufs, steps)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "optim: ") {
				t.Fatalf("SetState error %v, want one containing %q", err, tc.want)
			}
			after, n2 := snapshot(o)
			if n2 != n {
				t.Errorf("steps changed from %d to %d", n, n2)
			}
			for k, v := range before {
				if !bitsEqual(after[k], v) {
					t.Errorf("buffer %s changed from %v to %v", k, v, after[k])
				}
			}
		})
	}
}

func snapshot(o optim.Optimizer) (map[string][]float32, int) {
	bufs, n := o.State()
	m := map[string][]float32{}
	for k, b := range bufs {
		m[k] = b.Data()
	}
	return m, n
}

// TestSkipsParamsWithoutGrad checks that a parameter that received no
// gradient is left alone.
func TestSkipsParamsWithoutGrad(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, c := range optCases() {
				ps := newParams(pa.dev, [][]int{{3}}, [][]float32{{1, 2, 3}})
				o, err := c.make(ps)
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Step(); err != nil {
					t.Fatalf("%s/%s: %v", pa.name, c.name, err)
				}
				if got := ps[0].Value.Data(); !slices.Equal(got, []float32{1, 2, 3}) {
					t.Errorf("%s/%s: parameter without gradient changed to %v", pa.name, c.name, got)
				}
			}
		}
	})
}

func TestConfigErrors(t *testing.T) {
	ps := []*autograd.Var{autograd.Param(tensor.Zeros(device.NewCPU(1), 3))}
	sgd := func(cfg optim.SGDConfig) func() error {
		return func() error { _, err := optim.NewSGD(ps, cfg); return err }
	}
	adam := func(cfg optim.AdamConfig) func() error {
		return func() error { _, err := optim.NewAdam(ps, cfg); return err }
	}
	adamw := func(cfg optim.AdamConfig) func() error {
		return func() error { _, err := optim.NewAdamW(ps, cfg); return err }
	}
	cases := []struct {
		name string
		f    func() error
		ok   bool
	}{
		{"sgd valid", sgd(optim.SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true}), true},
		{"sgd zero lr", sgd(optim.SGDConfig{}), true},
		{"sgd negative lr", sgd(optim.SGDConfig{LR: -0.1}), false},
		{"sgd negative momentum", sgd(optim.SGDConfig{LR: 0.1, Momentum: -0.5}), false},
		{"sgd negative weight decay", sgd(optim.SGDConfig{LR: 0.1, WeightDecay: -1e-4}), false},
		{"sgd nesterov without momentum", sgd(optim.SGDConfig{LR: 0.1, Nesterov: true}), false},
		{"sgd nesterov with dampening", sgd(optim.SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}), false},
		{"adam valid", adam(optim.AdamConfig{LR: 1e-3, Beta1: 0.5, Beta2: 0.9, WeightDecay: 0.1}), true},
		{"adam negative lr", adam(optim.AdamConfig{LR: -1e-3}), false},
		{"adam beta1 one", adam(optim.AdamConfig{LR: 1e-3, Beta1: 1}), false},
		{"adam beta2 above one", adam(optim.AdamConfig{LR: 1e-3, Beta2: 1.5}), false},
		{"adam negative beta1", adam(optim.AdamConfig{LR: 1e-3, Beta1: -0.1}), false},
		{"adam negative weight decay", adam(optim.AdamConfig{LR: 1e-3, WeightDecay: -0.1}), false},
		{"adamw negative lr", adamw(optim.AdamConfig{LR: -1e-3}), false},
		{"adamw beta2 one", adamw(optim.AdamConfig{LR: 1e-3, Beta2: 1}), false},
	}
	for _, tc := range cases {
		err := tc.f()
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: no error", tc.name)
		case !tc.ok && !strings.HasPrefix(err.Error(), "optim: "):
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

// TestStepLR compares StepLR with the closed form base·γ^⌊e/step⌋ and with
// torch.optim.lr_scheduler.StepLR's recursive update.
func TestStepLR(t *testing.T) {
	for _, s := range []optim.StepLR{{Base: 0.1, StepSize: 3, Gamma: 0.5}, {Base: 1, StepSize: 1, Gamma: 0.9}, {Base: 0.01, StepSize: 7, Gamma: 0.1}} {
		rec := float64(s.Base)
		for e := range 25 {
			if e > 0 && e%s.StepSize == 0 {
				rec *= float64(s.Gamma)
			}
			closed := float64(s.Base) * math.Pow(float64(s.Gamma), math.Floor(float64(e)/float64(s.StepSize)))
			got := float64(s.LR(e))
			if math.Abs(got-closed) > 1e-6*closed || math.Abs(got-rec) > 1e-6*rec {
				t.Errorf("%+v epoch %d: %v, want %v (recursive %v)", s, e, got, closed, rec)
			}
		}
	}
}

// TestCosineAnnealing compares CosineAnnealing with the closed form of
// torch.optim.lr_scheduler.CosineAnnealingLR and with its recursive update,
// over three periods (the rate climbs back after TMax, as PyTorch's does).
func TestCosineAnnealing(t *testing.T) {
	for _, s := range []optim.CosineAnnealing{{Base: 0.1, Min: 0.001, TMax: 8}, {Base: 1, Min: 0, TMax: 5}, {Base: 0.5, Min: 0.1, TMax: 1}} {
		base, lo, tmax := float64(s.Base), float64(s.Min), float64(s.TMax)
		rec := base
		for e := range 3*s.TMax + 1 {
			switch {
			case e == 0:
			case mod(e-1-s.TMax, 2*s.TMax) == 0:
				rec += (base - lo) * (1 - math.Cos(math.Pi/tmax)) / 2
			default:
				rec = (1+math.Cos(math.Pi*float64(e)/tmax))/(1+math.Cos(math.Pi*float64(e-1)/tmax))*(rec-lo) + lo
			}
			closed := lo + (base-lo)*(1+math.Cos(math.Pi*float64(e)/tmax))/2
			got := float64(s.LR(e))
			if math.Abs(got-closed) > 1e-6*base || math.Abs(got-rec) > 1e-6*base {
				t.Errorf("%+v epoch %d: %v, want %v (recursive %v)", s, e, got, closed, rec)
			}
		}
		if got := s.LR(s.TMax); math.Abs(float64(got)-lo) > 1e-7 {
			t.Errorf("%+v: rate at TMax %v, want the minimum", s, got)
		}
	}
}

// mod is Python's %: the result has the sign of m.
func mod(a, m int) int { return ((a % m) + m) % m }

func TestConstant(t *testing.T) {
	s := optim.Constant{Base: 0.3}
	for e := range 5 {
		if s.LR(e) != 0.3 {
			t.Errorf("epoch %d: %v", e, s.LR(e))
		}
	}
}
