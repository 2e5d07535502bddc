package optim_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
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
func diagonal() problem { return diagonalOf([][]int{{5}, {2, 3}}) }

// diagonalOf is diagonal over parameters of the given shapes. Its loss
// leaves out the parameters given as nil, which so get no gradient.
func diagonalOf(shapes [][]int) problem {
	r := rand.New(rand.NewPCG(11, 12))
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
					if p == nil {
						continue
					}
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
// A nil g[i] is a parameter without a gradient: it is skipped.
type refOptimizer interface {
	step(p, g [][]float64, lr float64)
}

// refSGD follows the algorithm box of torch.optim.SGD, with each
// parameter's momentum buffer made on its first step with a gradient.
type refSGD struct {
	momentum, dampening, wd float64
	nesterov, maximize      bool
	b                       [][]float64
}

func (o *refSGD) step(p, g [][]float64, lr float64) {
	if o.b == nil {
		o.b = make([][]float64, len(p))
	}
	for i := range p {
		if g[i] == nil {
			continue
		}
		first := o.b[i] == nil
		if first {
			o.b[i] = make([]float64, len(p[i]))
		}
		for j := range p[i] {
			gt := g[i][j]
			if o.maximize {
				gt = -gt
			}
			if o.wd != 0 {
				gt += o.wd * p[i][j]
			}
			if o.momentum != 0 {
				if first {
					o.b[i][j] = gt
				} else {
					o.b[i][j] = o.momentum*o.b[i][j] + (1-o.dampening)*gt
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
// decoupled, torch.optim.AdamW, with each parameter's own step count t.
type refAdam struct {
	beta1, beta2, eps, wd        float64
	decoupled, amsgrad, maximize bool
	t                            []int
	m, v, vmax                   [][]float64
}

func (o *refAdam) step(p, g [][]float64, lr float64) {
	if o.m == nil {
		n := len(p)
		o.t, o.m, o.v, o.vmax = make([]int, n), make([][]float64, n), make([][]float64, n), make([][]float64, n)
	}
	for i := range p {
		if g[i] == nil {
			continue
		}
		if o.m[i] == nil {
			o.m[i], o.v[i], o.vmax[i] = make([]float64, len(p[i])), make([]float64, len(p[i])), make([]float64, len(p[i]))
		}
		o.t[i]++
		t := float64(o.t[i])
		for j := range p[i] {
			gt := g[i][j]
			if o.maximize {
				gt = -gt
			}
			if o.decoupled {
				p[i][j] -= lr * o.wd * p[i][j]
			} else if o.wd != 0 {
				gt += o.wd * p[i][j]
			}
			o.m[i][j] = o.beta1*o.m[i][j] + (1-o.beta1)*gt
			o.v[i][j] = o.beta2*o.v[i][j] + (1-o.beta2)*gt*gt
			mhat := o.m[i][j] / (1 - math.Pow(o.beta1, t))
			v := o.v[i][j]
			if o.amsgrad {
				o.vmax[i][j] = math.Max(o.vmax[i][j], v)
				v = o.vmax[i][j]
			}
			vhat := v / (1 - math.Pow(o.beta2, t))
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
	// momentum: SGD with a momentum buffer; adam: Adam or AdamW.
	momentum, adam bool
	amsgrad        bool
}

func sgdCase(name string, cfg optim.SGDConfig) optCase {
	return optCase{
		name: name,
		make: func(ps []*autograd.Var) (optim.Optimizer, error) { return optim.NewSGD(ps, cfg) },
		ref: func() refOptimizer {
			return &refSGD{momentum: float64(cfg.Momentum), dampening: float64(cfg.Dampening),
				wd: float64(cfg.WeightDecay), nesterov: cfg.Nesterov, maximize: cfg.Maximize}
		},
		sched:    optim.Constant{Base: cfg.LR},
		lr64:     func(int) float64 { return float64(cfg.LR) },
		momentum: cfg.Momentum != 0,
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
			return &refAdam{beta1: b1, beta2: b2, eps: eps, wd: float64(cfg.WeightDecay), decoupled: decoupled,
				amsgrad: cfg.AMSGrad, maximize: cfg.Maximize}
		},
		sched:   optim.Constant{Base: cfg.LR},
		lr64:    func(int) float64 { return float64(cfg.LR) },
		adam:    true,
		amsgrad: cfg.AMSGrad,
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
		sgdCase("sgd maximize", optim.SGDConfig{LR: 0.05, Maximize: true}),
		sgdCase("sgd nesterov weight decay maximize", optim.SGDConfig{LR: 0.05, Momentum: 0.8, WeightDecay: 0.05, Nesterov: true, Maximize: true}),
		adamCase("adam amsgrad", optim.AdamConfig{LR: 0.05, Beta2: 0.9, AMSGrad: true}, false),
		adamCase("adam amsgrad weight decay", optim.AdamConfig{LR: 0.05, WeightDecay: 0.1, AMSGrad: true}, false),
		adamCase("adamw amsgrad weight decay", optim.AdamConfig{LR: 0.05, Beta2: 0.9, WeightDecay: 0.1, AMSGrad: true}, true),
		adamCase("adam maximize weight decay", optim.AdamConfig{LR: 0.05, WeightDecay: 0.1, Maximize: true}, false),
		adamCase("adamw amsgrad maximize", optim.AdamConfig{LR: 0.05, Beta1: 0.5, Beta2: 0.9, WeightDecay: 0.1, AMSGrad: true, Maximize: true}, true),
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
	return trainSome(t, c, o, ps, loss, from, to, nil)
}

// trainSome is train where on step s only the parameters i with active(s,
// i) get a gradient (all of them when active is nil).
func trainSome(t *testing.T, c optCase, o optim.Optimizer, ps []*autograd.Var, loss func([]*autograd.Var) *autograd.Var, from, to int, active func(s, i int) bool) [][][]float32 {
	t.Helper()
	var traj [][][]float32
	for s := from; s < to; s++ {
		o.SetLR(c.sched.LR(s))
		in := ps
		if active != nil {
			in = make([]*autograd.Var, len(ps))
			for i, p := range ps {
				if active(s, i) {
					in[i] = p
				}
			}
		}
		if err := loss(in).Backward(); err != nil {
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

// TestSkippedSteps runs every configuration for ten steps over three
// parameters of which two have no gradient on some steps (skipping), and
// compares each parameter after every step with the float64 reference, in
// which each parameter counts its own steps and makes its state on its
// first step with a gradient. A skipped parameter must not change at all.
func TestSkippedSteps(t *testing.T) {
	pr := diagonalOf(skipShapes)
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, c := range optCases() {
				t.Run(pa.name+"/"+c.name, func(t *testing.T) {
					ps := newParams(pa.dev, pr.shapes, pr.init)
					o, err := c.make(ps)
					if err != nil {
						t.Fatal(err)
					}
					before := 0
					if pa.calls != nil {
						before = pa.calls()
					}
					traj := trainSome(t, c, o, ps, pr.build(pa.dev), 0, steps, skipping)
					if pa.calls != nil {
						if got, want := pa.calls()-before, fusedCalls(c, pa.multi, len(ps)); got != want {
							t.Errorf("%d fused steps ran, want %d", got, want)
						}
					}
					ref := c.ref()
					p := float64s(pr.init)
					prev := pr.init
					for s := range steps {
						g := pr.grad(p)
						for i := range g {
							if !skipping(s, i) {
								g[i] = nil
							}
						}
						ref.step(p, g, c.lr64(s))
						for i := range p {
							if !skipping(s, i) && !bitsEqual(traj[s][i], prev[i]) {
								t.Errorf("step %d: parameter %d has no gradient but changed from %v to %v", s+1, i, prev[i], traj[s][i])
							}
							if !testutil.AllClose(t, fmt.Sprintf("step %d param %d", s+1, i), traj[s][i], float32s(p[i]), 2e-6, 2e-5) {
								return
							}
						}
						prev = traj[s]
					}
				})
			}
		}
	})
}

// fusedCalls is the number of fused steps that c runs over n parameters
// in TestSkippedSteps: one per parameter with a gradient and step, or with
// multi one per step and group of parameters updated alike (Adam's of the
// same step count; SGD's taking their first step with momentum or not).
func fusedCalls(c optCase, multi bool, n int) int {
	calls := 0
	count := make([]int, n) // the steps with a gradient so far
	for s := range steps {
		groups := map[int]bool{}
		for i := range n {
			if !skipping(s, i) {
				continue
			}
			count[i]++
			switch {
			case !multi:
				calls++
			case c.adam:
				groups[count[i]] = true
			case c.momentum:
				groups[min(count[i], 2)] = true
			default:
				groups[0] = true
			}
		}
		calls += len(groups)
	}
	return calls
}

func float64s(vs [][]float32) [][]float64 {
	out := make([][]float64, len(vs))
	for i, v := range vs {
		out[i] = make([]float64, len(v))
		for j, x := range v {
			out[i][j] = float64(x)
		}
	}
	return out
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// torchData is testdata/torch_optim.json, written by torch_optim.py: fixed
// gradients (nil where a parameter has none) and, for each configuration,
// torch.optim's parameters after every step and its final state.
type torchData struct {
	Torch  string        `json:"torch"`
	Shapes [][]int       `json:"shapes"`
	Init   [][]float32   `json:"init"`
	Grads  [][][]float32 `json:"grads"`
	Cases  []torchCase   `json:"cases"`
}

type torchCase struct {
	Name        string               `json:"name"`
	Optimizer   string               `json:"optimizer"`
	LR          float32              `json:"lr"`
	Momentum    float32              `json:"momentum"`
	Dampening   float32              `json:"dampening"`
	WeightDecay float32              `json:"weight_decay"`
	Nesterov    bool                 `json:"nesterov"`
	Betas       []float32            `json:"betas"`
	Eps         float32              `json:"eps"`
	AMSGrad     bool                 `json:"amsgrad"`
	Maximize    bool                 `json:"maximize"`
	Params      [][][]float32        `json:"params"`
	State       map[string][]float32 `json:"state"`
}

// optCase returns the configuration as an optCase.
func (tc torchCase) optCase(t *testing.T) optCase {
	t.Helper()
	if tc.Optimizer == "sgd" {
		return sgdCase(tc.Name, optim.SGDConfig{LR: tc.LR, Momentum: tc.Momentum, Dampening: tc.Dampening,
			WeightDecay: tc.WeightDecay, Nesterov: tc.Nesterov, Maximize: tc.Maximize})
	}
	cfg := optim.AdamConfig{LR: tc.LR, Eps: tc.Eps, WeightDecay: tc.WeightDecay, AMSGrad: tc.AMSGrad, Maximize: tc.Maximize}
	if len(tc.Betas) == 2 {
		cfg.Beta1, cfg.Beta2 = tc.Betas[0], tc.Betas[1]
	}
	if tc.Optimizer != "adam" && tc.Optimizer != "adamw" {
		t.Fatalf("unknown optimizer %q", tc.Optimizer)
	}
	return adamCase(tc.Name, cfg, tc.Optimizer == "adamw")
}

func readTorchData(t *testing.T) *torchData {
	t.Helper()
	b, err := os.ReadFile("testdata/torch_optim.json")
	if err != nil {
		t.Fatalf("%v: regenerate it with `cd optim/testdata && python3 torch_optim.py` (needs PyTorch)", err)
	}
	var td torchData
	if err := json.Unmarshal(b, &td); err != nil {
		t.Fatalf("testdata/torch_optim.json: %v", err)
	}
	if len(td.Cases) == 0 || len(td.Grads) == 0 || len(td.Init) != len(td.Shapes) {
		t.Fatalf("testdata/torch_optim.json: %d cases, %d steps, %d initial values for %d shapes", len(td.Cases), len(td.Grads), len(td.Init), len(td.Shapes))
	}
	return &td
}

// TestAgainstPyTorch feeds torch_optim.py's gradients, in which parameters
// skip steps, to each configuration, and compares the parameters after
// every step and the final state, buffer by buffer under PyTorch's
// state_dict names, with torch.optim's. The float64 reference, given the
// same gradients, must agree with PyTorch too.
func TestAgainstPyTorch(t *testing.T) {
	td := readTorchData(t)
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, tc := range td.Cases {
				t.Run(pa.name+"/"+tc.Name, func(t *testing.T) {
					c := tc.optCase(t)
					ps := newParams(pa.dev, td.Shapes, td.Init)
					o, err := c.make(ps)
					if err != nil {
						t.Fatal(err)
					}
					// The loss Σ g·p has the gradient g. (The gradients join
					// a tape, so that the products are recorded.)
					tp := autograd.NewTape()
					gs := make([][]*autograd.Var, len(td.Grads))
					for s, step := range td.Grads {
						gs[s] = make([]*autograd.Var, len(step))
						for i, g := range step {
							if g != nil {
								gs[s][i] = tp.Var(tensor.FromSlice(pa.dev, g, td.Shapes[i]...), false)
							}
						}
					}
					ref, p := c.ref(), float64s(td.Init)
					for s := range td.Grads {
						var loss *autograd.Var
						g := make([][]float64, len(ps))
						for i, gv := range gs[s] {
							if gv == nil {
								continue
							}
							l := autograd.SumAll(autograd.Mul(gv, ps[i]))
							if loss == nil {
								loss = l
							} else {
								loss = autograd.Add(loss, l)
							}
							g[i] = float64s([][]float32{td.Grads[s][i]})[0]
						}
						if err := loss.Backward(); err != nil {
							t.Fatal(err)
						}
						if err := o.Step(); err != nil {
							t.Fatalf("step %d: %v", s+1, err)
						}
						optim.ZeroGrad(ps)
						ref.step(p, g, float64(tc.LR))
						for i, want := range tc.Params[s] {
							if !testutil.AllClose(t, fmt.Sprintf("step %d param %d", s+1, i), ps[i].Value.Data(), want, 1e-6, 1e-5) ||
								!testutil.AllClose(t, fmt.Sprintf("reference step %d param %d", s+1, i), float32s(p[i]), want, 2e-6, 2e-5) {
								return
							}
						}
					}
					st, n := snapshot(o)
					if n != len(td.Grads) {
						t.Errorf("state reports %d steps, want %d", n, len(td.Grads))
					}
					if got, want := slices.Sorted(maps.Keys(st)), slices.Sorted(maps.Keys(tc.State)); !slices.Equal(got, want) {
						t.Fatalf("state buffers %v, PyTorch's %v", got, want)
					}
					for k, want := range tc.State {
						testutil.AllClose(t, "state "+k, st[k], want, 1e-6, 1e-5)
					}
				})
			}
		}
	})
}

// TestStateResume saves the state after 5 steps, restores it into a fresh
// optimizer over fresh parameters and continues: the last 5 steps must be
// bit for bit those of the uninterrupted run, with all parameters stepping
// together and with parameters that skip steps.
func TestStateResume(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, c := range optCases() {
				for _, skip := range []bool{false, true} {
					pr, active, name := diagonal(), func(int, int) bool { return true }, "all"
					if skip {
						pr, active, name = diagonalOf(skipShapes), skipping, "skipping"
					}
					t.Run(pa.name+"/"+c.name+"/"+name, func(t *testing.T) {
						loss := pr.build(pa.dev)
						ps := newParams(pa.dev, pr.shapes, pr.init)
						o, err := c.make(ps)
						if err != nil {
							t.Fatal(err)
						}
						trainSome(t, c, o, ps, loss, 0, steps/2, active)

						saved, n := snapshot(o)
						if n != steps/2 {
							t.Errorf("state reports %d steps, want %d", n, steps/2)
						}
						checkStateNames(t, c, saved, len(ps))
						if c.adam {
							for i := range ps {
								want := 0
								for s := range steps / 2 {
									if active(s, i) {
										want++
									}
								}
								if got := saved[fmt.Sprintf("%d.step", i)]; !slices.Equal(got, []float32{float32(want)}) {
									t.Errorf("parameter %d: step %v, want [%d]", i, got, want)
								}
							}
						}

						ps2 := newParams(pa.dev, pr.shapes, values(ps))
						o2, err := c.make(ps2)
						if err != nil {
							t.Fatal(err)
						}
						if err := o2.SetState(saved, n); err != nil {
							t.Fatal(err)
						}
						if again, _ := snapshot(o2); !sameState(again, saved) {
							t.Errorf("state after SetState %v, want %v", again, saved)
						}
						want := trainSome(t, c, o, ps, loss, steps/2, steps, active)
						got := trainSome(t, c, o2, ps2, loss, steps/2, steps, active)
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
		}
	})
}

// skipShapes are the parameters of the tests in which some parameters skip
// steps; skipping says which have a gradient on each step.
var skipShapes = [][]int{{5}, {2, 3}, {4}}

// skipping is the schedule of torch_optim.py: parameter 0 has a gradient on
// every step (counted from 0), parameter 1 first on step 2 and then on two
// steps of three, parameter 2 on odd steps.
func skipping(s, i int) bool {
	switch i {
	case 0:
		return true
	case 1:
		return s >= 2 && s%3 != 1
	}
	return s%2 == 1
}

// checkStateNames checks the buffer names PyTorch's state_dict uses for c.
func checkStateNames(t *testing.T, c optCase, st map[string][]float32, nparams int) {
	t.Helper()
	var kinds []string
	switch {
	case c.adam && c.amsgrad:
		kinds = []string{"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
	case c.adam:
		kinds = []string{"step", "exp_avg", "exp_avg_sq"}
	case c.momentum:
		kinds = []string{"momentum_buffer"}
	}
	var want []string
	for i := range nparams {
		for _, k := range kinds {
			want = append(want, fmt.Sprintf("%d.%s", i, k))
		}
	}
	got := slices.Sorted(maps.Keys(st))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("state buffers %v, want %v", got, want)
	}
}

// sameState reports whether two states hold the same buffers, bit for bit.
func sameState(a, b map[string][]float32) bool {
	return maps.EqualFunc(a, b, bitsEqual)
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestSetStateErrors checks that a bad state is refused whole, with a clear
// message: neither the buffers nor the step counts change.
func TestSetStateErrors(t *testing.T) {
	dev := device.NewCPU(1)
	pr := diagonal()
	loss := pr.build(dev)
	good := func(n int) []float32 { return make([]float32, n) }
	// adamState is a well-formed state of both parameters, with steps, and
	// with extra buffers added or replaced (a nil value removes one).
	adamState := func(extra map[string][]float32) map[string][]float32 {
		m := map[string][]float32{"0.exp_avg": good(5), "0.exp_avg_sq": good(5), "0.step": {3},
			"1.exp_avg": good(6), "1.exp_avg_sq": good(6), "1.step": {7}}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	sgdMomentum := sgdCase("sgd momentum", optim.SGDConfig{LR: 0.1, Momentum: 0.9})
	adam := adamCase("adam", optim.AdamConfig{LR: 0.1}, false)
	amsgrad := adamCase("adam amsgrad", optim.AdamConfig{LR: 0.1, AMSGrad: true}, false)
	cases := []struct {
		name  string
		c     optCase
		bufs  map[string][]float32
		steps int
		want  string
	}{
		{"unknown index", sgdMomentum, map[string][]float32{"2.momentum_buffer": good(5)}, 7, "unknown buffer"},
		{"index with a leading zero", sgdMomentum, map[string][]float32{"00.momentum_buffer": good(5)}, 7, "unknown buffer"},
		{"other optimizer's buffer", sgdMomentum, map[string][]float32{"0.exp_avg": good(5)}, 7, "unknown buffer"},
		{"sgd step", sgdMomentum, map[string][]float32{"0.momentum_buffer": good(5), "0.step": {7}}, 7, `unknown buffer "0.step"`},
		{"wrong length", sgdMomentum, map[string][]float32{"0.momentum_buffer": good(5), "1.momentum_buffer": good(5)}, 7, "has 5 values"},
		{"adam wrong length", adam, adamState(map[string][]float32{"1.exp_avg_sq": good(7)}), 7, "has 7 values"},
		{"negative steps", adam, map[string][]float32{"0.exp_avg": good(5)}, -1, "negative step count"},
		{"step of two values", adam, adamState(map[string][]float32{"0.step": {3, 3}}), 7, "0.step has 2 values, want 1"},
		{"step without moments", adam, map[string][]float32{"0.step": {3}}, 7, "parameter 0 has no exp_avg"},
		{"no second moment", adam, adamState(map[string][]float32{"1.exp_avg_sq": nil}), 7, "parameter 1 has no exp_avg_sq"},
		{"some parameters without a step", adam, adamState(map[string][]float32{"1.step": nil}), 7,
			"parameter 1 has no step, but other parameters have one"},
		{"step beyond the optimizer's", adam, adamState(nil), 6, "parameter 1 has step 7, want a whole number up to the optimizer's 6 steps"},
		{"fractional step", adam, adamState(map[string][]float32{"0.step": {2.5}}), 7, "parameter 0 has step 2.5"},
		{"NaN step", adam, adamState(map[string][]float32{"0.step": {float32(math.NaN())}}), 7, "parameter 0 has step NaN"},
		{"step zero", adam, adamState(map[string][]float32{"0.step": {0}}), 7, "parameter 0 has moment estimates but step count 0"},
		{"old state at step zero", adam, adamState(map[string][]float32{"0.step": nil, "1.step": nil}), 0,
			"parameter 0 has moment estimates but step count 0"},
		{"saved without amsgrad", amsgrad, adamState(nil), 7, "parameter 0 has no max_exp_avg_sq: the state was saved without AMSGrad"},
		{"amsgrad buffer without amsgrad", adam, adamState(map[string][]float32{"0.max_exp_avg_sq": good(5)}), 7,
			`unknown buffer "0.max_exp_avg_sq"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := newParams(dev, pr.shapes, pr.init)
			o, err := tc.c.make(ps)
			if err != nil {
				t.Fatal(err)
			}
			// Parameter 1 skips the first step, so that the step counts differ.
			trainSome(t, tc.c, o, ps, loss, 0, 3, func(s, i int) bool { return i == 0 || s > 0 })
			before, n := snapshot(o)
			err = o.SetState(tc.bufs, tc.steps)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "optim: ") {
				t.Fatalf("SetState error %v, want one containing %q", err, tc.want)
			}
			after, n2 := snapshot(o)
			if n2 != n {
				t.Errorf("steps changed from %d to %d", n, n2)
			}
			if !sameState(after, before) {
				t.Errorf("state changed from %v to %v", before, after)
			}
		})
	}
}

// TestOldState loads Adam states without "<i>.step", as gograd saved them
// when all parameters shared one step count: every parameter with moment
// estimates takes the optimizer's step count, one without has no state. The
// resumed run must repeat the uninterrupted one bit for bit, here with
// parameter 1 stepping only after the state was saved.
func TestOldState(t *testing.T) {
	pr := diagonal()
	first := func(s, i int) bool { return i == 0 || s >= steps/2 }
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		for _, pa := range paths(t, d) {
			for _, c := range optCases() {
				if !c.adam {
					continue
				}
				t.Run(pa.name+"/"+c.name, func(t *testing.T) {
					loss := pr.build(pa.dev)
					ps := newParams(pa.dev, pr.shapes, pr.init)
					o, err := c.make(ps)
					if err != nil {
						t.Fatal(err)
					}
					trainSome(t, c, o, ps, loss, 0, steps/2, first)
					saved, n := snapshot(o)
					if !slices.Equal(saved["0.step"], []float32{steps / 2}) || saved["1.step"] != nil {
						t.Fatalf("steps %v and %v, want [%d] and none", saved["0.step"], saved["1.step"], steps/2)
					}
					old := maps.Clone(saved)
					delete(old, "0.step")

					ps2 := newParams(pa.dev, pr.shapes, values(ps))
					o2, err := c.make(ps2)
					if err != nil {
						t.Fatal(err)
					}
					if err := o2.SetState(old, n); err != nil {
						t.Fatal(err)
					}
					if again, _ := snapshot(o2); !sameState(again, saved) {
						t.Errorf("state after SetState %v, want %v", again, saved)
					}
					want := trainSome(t, c, o, ps, loss, steps/2, steps, first)
					got := trainSome(t, c, o2, ps2, loss, steps/2, steps, first)
					for s := range got {
						for i := range got[s] {
							if !bitsEqual(got[s][i], want[s][i]) {
								t.Fatalf("step %d param %d: resumed %v, uninterrupted %v", steps/2+s+1, i, got[s][i], want[s][i])
							}
						}
					}
					if a, b := mustSnapshot(o2), mustSnapshot(o); !sameState(a, b) {
						t.Errorf("resumed state %v, uninterrupted %v", a, b)
					}
				})
			}
		}
	})
}

// TestSetStateReplaces checks that SetState replaces the whole state, as
// PyTorch's load_state_dict does: a parameter absent from the saved state
// loses its own, and its next step is a first step.
func TestSetStateReplaces(t *testing.T) {
	pr := diagonal()
	only0 := func(s, i int) bool { return i == 0 }
	dev := device.NewCPU(1)
	for _, pa := range paths(t, dev) {
		for _, c := range optCases() {
			if !c.adam && !c.momentum {
				continue
			}
			t.Run(pa.name+"/"+c.name, func(t *testing.T) {
				loss := pr.build(pa.dev)
				// a: both parameters step; b: only parameter 0.
				pa1, pb := newParams(pa.dev, pr.shapes, pr.init), newParams(pa.dev, pr.shapes, pr.init)
				a, err := c.make(pa1)
				if err != nil {
					t.Fatal(err)
				}
				b, err := c.make(pb)
				if err != nil {
					t.Fatal(err)
				}
				train(t, c, a, pa1, loss, 0, 3)
				trainSome(t, c, b, pb, loss, 0, 3, only0)
				st, n := snapshot(b)
				if err := a.SetState(st, n); err != nil {
					t.Fatal(err)
				}
				if got := mustSnapshot(a); !sameState(got, st) {
					t.Fatalf("state after SetState %v, want %v", got, st)
				}
				pa1[0].Value.CopyFrom(pb[0].Value.Data())
				pa1[1].Value.CopyFrom(pb[1].Value.Data())
				got := train(t, c, a, pa1, loss, 3, 5)
				want := train(t, c, b, pb, loss, 3, 5)
				for s := range got {
					for i := range got[s] {
						if !bitsEqual(got[s][i], want[s][i]) {
							t.Fatalf("step %d param %d: %v, want %v", 4+s, i, got[s][i], want[s][i])
						}
					}
				}
				if x, y := mustSnapshot(a), mustSnapshot(b); !sameState(x, y) {
					t.Errorf("state %v, want %v", x, y)
				}
			})
		}
	}
}

// nopFused and nopMulti have fused (one-tensor) and multi-tensor
// optimizer steps that do nothing, so that TestStepAllocs counts only the
// optimizers' own allocations, not those of a backend's kernels.
type nopFused struct{ device.Device }

func (nopFused) SGDStep(p, g, buf device.Buffer, n int, hp device.SGDParams) error { return nil }

func (nopFused) AdamStep(p, g, m, v, vmax device.Buffer, n int, hp device.AdamParams) error {
	return nil
}

type nopMulti struct{ device.Device }

func (nopMulti) SGDStepMulti(ps, gs, bufs []device.Buffer, ns []int, hp device.SGDParams) error {
	return nil
}

func (nopMulti) AdamStepMulti(ps, gs, ms, vs, vmaxs []device.Buffer, ns []int, hp device.AdamParams) error {
	return nil
}

// TestStepAllocs checks that a step on the fused paths allocates nothing in
// the optimizer once the state exists, also when a parameter skips every
// other step and Adam's parameters so fall into groups of different step
// counts.
func TestStepAllocs(t *testing.T) {
	pr := diagonalOf(skipShapes)
	cpu := device.NewCPU(1)
	for _, dev := range []device.Device{nopFused{cpu}, nopMulti{cpu}} {
		for _, c := range optCases() {
			ps := newParams(dev, pr.shapes, pr.init)
			grads := make([]*tensor.Tensor, len(ps))
			for i, p := range ps {
				grads[i] = tensor.Full(dev, 0.01, p.Value.Shape()...)
				p.Grad = grads[i]
			}
			o, err := c.make(ps)
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			step := func() {
				k++
				if k%2 == 0 {
					ps[2].Grad = nil
				} else {
					ps[2].Grad = grads[2]
				}
				if err := o.Step(); err != nil {
					t.Fatal(err)
				}
			}
			step()
			step()
			if n := testing.AllocsPerRun(20, step); n != 0 {
				t.Errorf("%T/%s: %v allocations per step", dev, c.name, n)
			}
			for _, p := range ps {
				p.Grad = nil
			}
			for _, g := range grads {
				g.Free()
			}
		}
	}
}

// mustSnapshot is snapshot's state without the step count.
func mustSnapshot(o optim.Optimizer) map[string][]float32 {
	st, _ := snapshot(o)
	return st
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

// FuzzSetState gives Adam's SetState a valid state with one buffer of any
// name, length and value added or replaced, and any step count: it must
// either take the state as given, so that State returns it again, or refuse
// it with an error and change nothing; it must never panic.
func FuzzSetState(f *testing.F) {
	f.Add("0.exp_avg", 5, float32(0), 2, false)
	f.Add("1.step", 1, float32(2), 3, false)
	f.Add("1.step", 1, float32(3), 2, false)
	f.Add("0.max_exp_avg_sq", 5, float32(1), 7, true)
	f.Add("1.max_exp_avg_sq", 6, float32(1), 2, false)
	f.Add("00.step", 1, float32(1), 2, false)
	f.Add("0.momentum_buffer", 5, float32(1), 2, false)
	f.Add("0.step", 1, float32(math.Inf(1)), 2, true)
	pr := diagonal()
	dev := device.NewCPU(1)
	loss := pr.build(dev)
	f.Fuzz(func(t *testing.T, key string, n int, val float32, steps int, amsgrad bool) {
		if n < 0 || n > 64 {
			return
		}
		c := adamCase("adam", optim.AdamConfig{LR: 0.1, AMSGrad: amsgrad}, false)
		ps := newParams(dev, pr.shapes, pr.init)
		o, err := c.make(ps)
		if err != nil {
			t.Fatal(err)
		}
		trainSome(t, c, o, ps, loss, 0, 2, func(s, i int) bool { return i == 0 || s > 0 })
		before, n0 := snapshot(o)
		given := maps.Clone(before)
		v := make([]float32, n)
		for i := range v {
			v[i] = val
		}
		given[key] = v
		if err := o.SetState(given, steps); err != nil {
			if !strings.HasPrefix(err.Error(), "optim: set state: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if after, n1 := snapshot(o); n1 != n0 || !sameState(after, before) {
				t.Errorf("refused state changed the state from %v (%d steps) to %v (%d)", before, n0, after, n1)
			}
			return
		}
		if after, n1 := snapshot(o); n1 != steps || !sameState(after, given) {
			t.Errorf("state %v (%d steps) after setting %v (%d)", after, n1, given, steps)
		}
	})
}
