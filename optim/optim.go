package optim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Optimizer updates a fixed list of parameters.
type Optimizer interface {
	// Step applies one update from the parameters' current gradients.
	// Parameters with no gradient are skipped, their state untouched.
	Step() error
	// LR is the current learning rate.
	LR() float32
	// SetLR changes the learning rate, as a schedule does between epochs.
	SetLR(lr float32)
	// State returns the optimizer's per-parameter state, named
	// "<index>.<buffer>" after the parameter's position and PyTorch's
	// state_dict, and the number of steps taken. The tensors are the
	// optimizer's own: they stay valid, and its buffers change with later
	// steps.
	State() (bufs map[string]*tensor.Tensor, steps int)
	// SetState replaces the whole state with one saved by State: a
	// parameter absent from bufs has no state, as before its first step. It
	// checks everything before changing anything.
	SetState(bufs map[string][]float32, steps int) error
}

// ZeroGrad zeroes the gradients of params.
func ZeroGrad(params []*autograd.Var) {
	for _, p := range params {
		p.ZeroGrad()
	}
}

// SGDConfig holds SGD's hyper-parameters, with PyTorch's names and meaning.
type SGDConfig struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov                             bool
	// Maximize ascends the objective: the update starts from the negated
	// gradient, as torch.optim.SGD's maximize.
	Maximize bool
}

// SGD is stochastic gradient descent as torch.optim.SGD defines it:
//
//	g = -grad with Maximize, else grad
//	g = g + wd·p
//	buf = g on the parameter's first step, else momentum·buf + (1-dampening)·g
//	g = g + momentum·buf with Nesterov, else buf   (when momentum != 0)
//	p = p - lr·g
//
// Each parameter has its own momentum buffer ("<i>.momentum_buffer" in
// State), made on the first step that it has a gradient.
type SGD struct {
	cfg    SGDConfig
	params []*autograd.Var
	bufs   []*tensor.Tensor // momentum buffers, kept once made
	has    []bool           // whether bufs[i] holds a momentum buffer
	steps  int
	args   multiArgs
}

// NewSGD returns an SGD optimizer over params.
func NewSGD(params []*autograd.Var, cfg SGDConfig) (*SGD, error) {
	if cfg.LR < 0 || cfg.Momentum < 0 || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("optim: sgd: negative lr %v, momentum %v or weight decay %v", cfg.LR, cfg.Momentum, cfg.WeightDecay)
	}
	if cfg.Nesterov && (cfg.Momentum <= 0 || cfg.Dampening != 0) {
		return nil, fmt.Errorf("optim: sgd: Nesterov momentum requires a momentum and zero dampening")
	}
	n := len(params)
	return &SGD{cfg: cfg, params: params, bufs: make([]*tensor.Tensor, n), has: make([]bool, n)}, nil
}

// LR is the learning rate.
func (o *SGD) LR() float32 { return o.cfg.LR }

// SetLR sets the learning rate.
func (o *SGD) SetLR(lr float32) { o.cfg.LR = lr }

// Step applies one SGD update: in one call of the device's multi-tensor
// step when it has one (device.MultiOptimizers) and holds every parameter,
// else tensor by tensor.
func (o *SGD) Step() error {
	return tensor.Catch(func() {
		hp := device.SGDParams{LR: o.cfg.LR, Momentum: o.cfg.Momentum, Dampening: o.cfg.Dampening,
			WeightDecay: o.cfg.WeightDecay, Nesterov: o.cfg.Nesterov, Maximize: o.cfg.Maximize}
		var multi device.MultiOptimizers
		multi, o.args.idx = multiDevice(o.params, o.args.idx[:0])
		if multi != nil {
			// Parameters whose momentum buffer is new take a first step, in a
			// call of their own: all of them on the first step, none after.
			fresh, old := o.args.fresh[:0], o.args.old[:0]
			for _, i := range o.args.idx {
				if o.cfg.Momentum != 0 && !o.has[i] {
					o.buffer(i)
					fresh = append(fresh, i)
				} else {
					old = append(old, i)
				}
			}
			o.args.fresh, o.args.old = fresh, old
			hp.First = true
			o.sgdMulti(multi, fresh, hp)
			hp.First = false
			o.sgdMulti(multi, old, hp)
			o.steps++
			return
		}
		for i, p := range o.params {
			if p.Grad == nil {
				continue
			}
			hp.First = false
			if o.cfg.Momentum != 0 && !o.has[i] {
				o.buffer(i)
				hp.First = true
			}
			sgdStep(p.Value, p.Grad, o.bufs[i], hp)
		}
		o.steps++
	})
}

// buffer makes parameter i's momentum buffer, to be set by its first step.
func (o *SGD) buffer(i int) {
	if o.bufs[i] == nil {
		p := o.params[i].Value
		o.bufs[i] = tensor.New(p.Device(), p.Shape()...)
	}
	o.has[i] = true
}

// sgdMulti runs one multi-tensor SGD step over the parameters idx.
func (o *SGD) sgdMulti(multi device.MultiOptimizers, idx []int, hp device.SGDParams) {
	if len(idx) == 0 {
		return
	}
	a := &o.args
	a.reset()
	for _, i := range idx {
		p := o.params[i]
		var b device.Buffer
		if o.bufs[i] != nil {
			b = o.bufs[i].Buffer()
		}
		a.ps, a.gs, a.bs = append(a.ps, p.Value.Buffer()), append(a.gs, p.Grad.Buffer()), append(a.bs, b)
		a.ns = append(a.ns, p.Value.Len())
	}
	if err := multi.SGDStepMulti(a.ps, a.gs, a.bs, a.ns, hp); err != nil {
		panic(&tensor.Error{Op: "sgd step", Err: err})
	}
}

// multiArgs holds the argument lists of multi-tensor steps, kept between
// steps so that a step allocates nothing.
type multiArgs struct {
	idx, fresh, old, group  []int
	ps, gs, bs, ms, vs, vms []device.Buffer
	ns                      []int
}

// reset empties the buffer lists, dropping their references.
func (a *multiArgs) reset() {
	for _, l := range []*[]device.Buffer{&a.ps, &a.gs, &a.bs, &a.ms, &a.vs, &a.vms} {
		clear(*l)
		*l = (*l)[:0]
	}
	a.ns = a.ns[:0]
}

// multiDevice returns the device of the parameters that have a gradient, as
// a device.MultiOptimizers, and their indices, appended to idx, when it has
// multi-tensor steps and holds all of them (values and gradients); else nil.
func multiDevice(params []*autograd.Var, idx []int) (device.MultiOptimizers, []int) {
	var dev device.Device
	for i, p := range params {
		if p.Grad == nil {
			continue
		}
		if dev == nil {
			dev = p.Value.Device()
		}
		if p.Value.Device() != dev || p.Grad.Device() != dev {
			return nil, idx[:0]
		}
		idx = append(idx, i)
	}
	multi, ok := dev.(device.MultiOptimizers)
	if !ok {
		return nil, idx[:0]
	}
	return multi, idx
}

// sgdStep updates one parameter: in the device's fused step when it has
// one, else in tensor operations.
func sgdStep(p, g, buf *tensor.Tensor, hp device.SGDParams) {
	dev := p.Device()
	if f, ok := dev.(device.Optimizers); ok {
		var b device.Buffer
		if buf != nil {
			b = buf.Buffer()
		}
		if err := f.SGDStep(p.Buffer(), g.Buffer(), b, p.Len(), hp); err != nil {
			panic(&tensor.Error{Op: "sgd step", Shapes: [][]int{p.Shape()}, Err: err})
		}
		return
	}
	d := g.Clone()
	defer d.Free()
	if hp.Maximize {
		d.ScaleInPlace(-1)
	}
	if hp.WeightDecay != 0 {
		wd := tensor.MulScalar(p, hp.WeightDecay)
		d.AddInPlace(wd)
		wd.Free()
	}
	if hp.Momentum != 0 {
		if hp.First {
			tensor.CopyInto(buf, d)
		} else {
			buf.ScaleInPlace(hp.Momentum)
			s := tensor.MulScalar(d, 1-hp.Dampening)
			buf.AddInPlace(s)
			s.Free()
		}
		if hp.Nesterov {
			s := tensor.MulScalar(buf, hp.Momentum)
			d.AddInPlace(s)
			s.Free()
		} else {
			tensor.CopyInto(d, buf)
		}
	}
	d.ScaleInPlace(-hp.LR)
	p.AddInPlace(d)
}

// State returns the momentum buffers as "<i>.momentum_buffer".
func (o *SGD) State() (map[string]*tensor.Tensor, int) {
	m := map[string]*tensor.Tensor{}
	for i, b := range o.bufs {
		if o.has[i] {
			m[strconv.Itoa(i)+".momentum_buffer"] = b
		}
	}
	return m, o.steps
}

// SetState replaces the momentum buffers with those saved by State.
func (o *SGD) SetState(bufs map[string][]float32, steps int) error {
	st, err := parseState(o.params, bufs, steps, []string{"momentum_buffer"})
	if err != nil {
		return err
	}
	return tensor.Catch(func() {
		for i, p := range st {
			o.has[i] = p != nil
			if p != nil {
				o.buffer(i)
				o.bufs[i].CopyFrom(p["momentum_buffer"])
			}
		}
		o.steps = steps
	})
}

// parseState checks a saved state against params: each key must be
// "<i>.<name>" with i a parameter's index and name among names, and each
// buffer as long as its parameter ("step", a scalar, one value). It returns
// each parameter's buffers by name, nil for a parameter with none.
func parseState(params []*autograd.Var, bufs map[string][]float32, steps int, names []string) ([]map[string][]float32, error) {
	if steps < 0 {
		return nil, fmt.Errorf("optim: set state: negative step count %d", steps)
	}
	st := make([]map[string][]float32, len(params))
	for k, v := range bufs {
		idx, name, _ := strings.Cut(k, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(params) || strconv.Itoa(i) != idx || !slices.Contains(names, name) {
			return nil, fmt.Errorf("optim: set state: unknown buffer %q", k)
		}
		want := params[i].Value.Len()
		if name == "step" {
			want = 1
		}
		if len(v) != want {
			return nil, fmt.Errorf("optim: set state: buffer %s has %d values, want %d", k, len(v), want)
		}
		if st[i] == nil {
			st[i] = map[string][]float32{}
		}
		st[i][name] = v
	}
	return st, nil
}

// AdamConfig holds Adam's hyper-parameters, with PyTorch's names. Zero
// Beta1, Beta2 and Eps take PyTorch's defaults 0.9, 0.999 and 1e-8.
type AdamConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	// AMSGrad divides by the largest second moment estimate so far,
	// max_exp_avg_sq, kept per parameter, as torch.optim.Adam's amsgrad.
	AMSGrad bool
	// Maximize ascends the objective: the update starts from the negated
	// gradient, as torch.optim.Adam's maximize.
	Maximize bool
}

// Adam is torch.optim.Adam (Decoupled false: weight decay added to the
// gradient) or torch.optim.AdamW (Decoupled true: p *= 1 - lr·wd first).
// With t the number of steps in which this parameter had a gradient:
//
//	g = -grad with Maximize, else grad
//	m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//	v̂ = max(v̂, v) with AMSGrad, else v
//	p = p - lr/(1-β1^t) · m / (sqrt(v̂)/sqrt(1-β2^t) + eps)
//
// Each parameter has its own state, made on the first step that it has a
// gradient: "<i>.step" (t, a float32 scalar as in PyTorch), "<i>.exp_avg"
// (m), "<i>.exp_avg_sq" (v) and with AMSGrad "<i>.max_exp_avg_sq" (v̂).
type Adam struct {
	cfg       AdamConfig
	decoupled bool
	params    []*autograd.Var
	m, v, vm  []*tensor.Tensor // moment estimates and AMSGrad's maxima, kept once made
	step      []int            // each parameter's steps; 0: no state
	stepT     []*tensor.Tensor // the steps as State returns them
	steps     int
	args      multiArgs
}

// NewAdam returns Adam over params.
func NewAdam(params []*autograd.Var, cfg AdamConfig) (*Adam, error) {
	return newAdam(params, cfg, false)
}

// NewAdamW returns AdamW (decoupled weight decay) over params. PyTorch's
// default weight decay for AdamW is 0.01; pass it explicitly.
func NewAdamW(params []*autograd.Var, cfg AdamConfig) (*Adam, error) {
	return newAdam(params, cfg, true)
}

func newAdam(params []*autograd.Var, cfg AdamConfig, decoupled bool) (*Adam, error) {
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.LR < 0 || cfg.WeightDecay < 0 || cfg.Beta1 >= 1 || cfg.Beta2 >= 1 || cfg.Beta1 < 0 || cfg.Beta2 < 0 {
		return nil, fmt.Errorf("optim: adam: invalid lr %v, betas (%v, %v) or weight decay %v", cfg.LR, cfg.Beta1, cfg.Beta2, cfg.WeightDecay)
	}
	n := len(params)
	return &Adam{cfg: cfg, decoupled: decoupled, params: params,
		m: make([]*tensor.Tensor, n), v: make([]*tensor.Tensor, n), vm: make([]*tensor.Tensor, n),
		step: make([]int, n), stepT: make([]*tensor.Tensor, n)}, nil
}

// LR is the learning rate.
func (o *Adam) LR() float32 { return o.cfg.LR }

// SetLR sets the learning rate.
func (o *Adam) SetLR(lr float32) { o.cfg.LR = lr }

// Step applies one Adam update to every parameter that has a gradient. On
// a device with multi-tensor steps (device.MultiOptimizers) that holds them
// all it makes one call per distinct step count, so one call when all
// parameters step together; else it updates tensor by tensor, in the
// device's fused step (device.Optimizers) when it has one, else in tensor
// operations.
func (o *Adam) Step() error {
	hp := device.AdamParams{LR: o.cfg.LR, Beta1: o.cfg.Beta1, Beta2: o.cfg.Beta2, Eps: o.cfg.Eps,
		WeightDecay: o.cfg.WeightDecay, Decoupled: o.decoupled, Maximize: o.cfg.Maximize, AMSGrad: o.cfg.AMSGrad}
	return tensor.Catch(func() {
		var multi device.MultiOptimizers
		multi, o.args.idx = multiDevice(o.params, o.args.idx[:0])
		if multi == nil {
			for i, p := range o.params {
				if p.Grad != nil {
					o.begin(i)
					hp.Step = o.step[i]
					o.adamStep(i, hp)
				}
			}
			o.steps++
			return
		}
		for _, i := range o.args.idx {
			o.begin(i)
		}
		// Group the parameters by step count, taking out one group a pass.
		todo := o.args.idx
		for len(todo) > 0 {
			hp.Step = o.step[todo[0]]
			group, rest := o.args.group[:0], todo[:0]
			for _, i := range todo {
				if o.step[i] == hp.Step {
					group = append(group, i)
				} else {
					rest = append(rest, i)
				}
			}
			o.args.group, todo = group, rest
			o.adamMulti(multi, group, hp)
		}
		o.steps++
	})
}

// adamMulti runs one multi-tensor Adam step over the parameters idx.
func (o *Adam) adamMulti(multi device.MultiOptimizers, idx []int, hp device.AdamParams) {
	a := &o.args
	a.reset()
	for _, i := range idx {
		p := o.params[i]
		a.ps, a.gs = append(a.ps, p.Value.Buffer()), append(a.gs, p.Grad.Buffer())
		a.ms, a.vs = append(a.ms, o.m[i].Buffer()), append(a.vs, o.v[i].Buffer())
		if hp.AMSGrad {
			a.vms = append(a.vms, o.vm[i].Buffer())
		}
		a.ns = append(a.ns, p.Value.Len())
	}
	var vms []device.Buffer
	if hp.AMSGrad {
		vms = a.vms
	}
	if err := multi.AdamStepMulti(a.ps, a.gs, a.ms, a.vs, vms, a.ns, hp); err != nil {
		panic(&tensor.Error{Op: "adam step", Err: err})
	}
}

// begin counts a step of parameter i, first making its state, zero, if it
// has none.
func (o *Adam) begin(i int) {
	if o.step[i] == 0 {
		p := o.params[i].Value
		o.m[i], o.v[i] = zeroed(o.m[i], p), zeroed(o.v[i], p)
		if o.cfg.AMSGrad {
			o.vm[i] = zeroed(o.vm[i], p)
		}
	}
	o.step[i]++
}

// zeroed fills t with zeros, first making it in the shape of like if nil.
func zeroed(t, like *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		t = tensor.New(like.Device(), like.Shape()...)
	}
	t.Fill(0)
	return t
}

// adamStep updates parameter i, hp.Step being its step count: in the
// device's fused step when it has one, else in tensor operations.
func (o *Adam) adamStep(i int, hp device.AdamParams) {
	p, g, m, v := o.params[i].Value, o.params[i].Grad, o.m[i], o.v[i]
	if f, ok := p.Device().(device.Optimizers); ok {
		var vm device.Buffer
		if hp.AMSGrad {
			vm = o.vm[i].Buffer()
		}
		if err := f.AdamStep(p.Buffer(), g.Buffer(), m.Buffer(), v.Buffer(), vm, p.Len(), hp); err != nil {
			panic(&tensor.Error{Op: "adam step", Shapes: [][]int{p.Shape()}, Err: err})
		}
		return
	}
	d := g.Clone()
	defer d.Free()
	if o.cfg.Maximize {
		d.ScaleInPlace(-1)
	}
	if hp.WeightDecay != 0 {
		if hp.Decoupled {
			p.ScaleInPlace(1 - hp.LR*hp.WeightDecay)
		} else {
			wd := tensor.MulScalar(p, hp.WeightDecay)
			d.AddInPlace(wd)
			wd.Free()
		}
	}
	m.ScaleInPlace(hp.Beta1)
	s := tensor.MulScalar(d, 1-hp.Beta1)
	m.AddInPlace(s)
	s.Free()
	v.ScaleInPlace(hp.Beta2)
	sq := tensor.Mul(d, d)
	sq.ScaleInPlace(1 - hp.Beta2)
	v.AddInPlace(sq)
	sq.Free()
	if o.cfg.AMSGrad {
		mx := tensor.Maximum(o.vm[i], v)
		tensor.CopyInto(o.vm[i], mx)
		mx.Free()
		v = o.vm[i]
	}
	// The scalars are computed in float64, as PyTorch does in Python.
	bc1 := 1 - math.Pow(float64(hp.Beta1), float64(hp.Step))
	bc2 := 1 - math.Pow(float64(hp.Beta2), float64(hp.Step))
	den := tensor.Sqrt(v)
	den.ScaleInPlace(float32(1 / math.Sqrt(bc2)))
	den2 := tensor.AddScalar(den, hp.Eps)
	den.Free()
	upd := tensor.Div(m, den2)
	den2.Free()
	upd.ScaleInPlace(float32(-float64(hp.LR) / bc1))
	p.AddInPlace(upd)
	upd.Free()
}

// State returns, for each parameter that has state, "<i>.step" (a float32
// scalar, exact up to 2^24 steps, as PyTorch's), "<i>.exp_avg",
// "<i>.exp_avg_sq" and with AMSGrad "<i>.max_exp_avg_sq". The step tensors
// are the optimizer's too, but written by State, not by Step.
func (o *Adam) State() (map[string]*tensor.Tensor, int) {
	st := map[string]*tensor.Tensor{}
	for i, n := range o.step {
		if n == 0 {
			continue
		}
		k := strconv.Itoa(i) + "."
		st[k+"exp_avg"], st[k+"exp_avg_sq"] = o.m[i], o.v[i]
		if o.cfg.AMSGrad {
			st[k+"max_exp_avg_sq"] = o.vm[i]
		}
		if o.stepT[i] == nil {
			o.stepT[i] = tensor.New(o.params[i].Value.Device())
		}
		o.stepT[i].CopyFrom([]float32{float32(n)})
		st[k+"step"] = o.stepT[i]
	}
	return st, o.steps
}

// SetState replaces the state with one saved by State. A state without
// "<i>.step" buffers, as gograd saved before it kept a step count per
// parameter, gives every parameter with moment estimates the step count
// steps. A state saved without AMSGrad cannot be loaded with it: it lacks
// max_exp_avg_sq.
func (o *Adam) SetState(bufs map[string][]float32, steps int) error {
	names, slots := []string{"exp_avg", "exp_avg_sq"}, [][]*tensor.Tensor{o.m, o.v}
	if o.cfg.AMSGrad {
		names, slots = append(names, "max_exp_avg_sq"), append(slots, o.vm)
	}
	st, err := parseState(o.params, bufs, steps, append([]string{"step"}, names...))
	if err != nil {
		return err
	}
	perParam := false
	for _, b := range st {
		if _, ok := b["step"]; ok {
			perParam = true
		}
	}
	counts := make([]int, len(st))
	for i, b := range st {
		if b == nil {
			continue
		}
		for _, n := range names {
			if _, ok := b[n]; ok {
				continue
			}
			if n == "max_exp_avg_sq" {
				return fmt.Errorf("optim: set state: parameter %d has no max_exp_avg_sq: the state was saved without AMSGrad", i)
			}
			return fmt.Errorf("optim: set state: parameter %d has no %s", i, n)
		}
		s, ok := b["step"]
		switch {
		case !perParam:
			counts[i] = steps
		case !ok:
			return fmt.Errorf("optim: set state: parameter %d has no step, but other parameters have one", i)
		case s[0] == float32(steps):
			counts[i] = steps // exact beyond float32's 2^24 in the common case
		default:
			f := float64(s[0])
			if f != math.Trunc(f) || f > float64(steps) {
				return fmt.Errorf("optim: set state: parameter %d has step %v, want a whole number up to the optimizer's %d steps", i, s[0], steps)
			}
			counts[i] = int(f)
		}
		if counts[i] < 1 {
			return fmt.Errorf("optim: set state: parameter %d has moment estimates but step count %d, want at least 1", i, counts[i])
		}
	}
	return tensor.Catch(func() {
		for i, b := range st {
			o.step[i] = 0
			if b == nil {
				continue
			}
			o.begin(i) // makes the buffers
			o.step[i] = counts[i]
			for j, n := range names {
				slots[j][i].CopyFrom(b[n])
			}
		}
		o.steps = steps
	})
}

// Schedule gives the learning rate for an epoch, counted from 0.
type Schedule interface {
	LR(epoch int) float32
}

// Constant keeps the base learning rate.
type Constant struct{ Base float32 }

// LR returns Base.
func (s Constant) LR(int) float32 { return s.Base }

// StepLR multiplies the rate by Gamma every StepSize epochs, as
// torch.optim.lr_scheduler.StepLR.
type StepLR struct {
	Base     float32
	StepSize int
	Gamma    float32
}

// LR returns Base · Gamma^(epoch / StepSize).
func (s StepLR) LR(epoch int) float32 {
	return float32(float64(s.Base) * math.Pow(float64(s.Gamma), float64(epoch/max(s.StepSize, 1))))
}

// CosineAnnealing anneals the rate from Base to Min over TMax epochs, as
// torch.optim.lr_scheduler.CosineAnnealingLR's closed form.
type CosineAnnealing struct {
	Base, Min float32
	TMax      int
}

// LR returns Min + (Base - Min)(1 + cos(π·epoch/TMax))/2.
func (s CosineAnnealing) LR(epoch int) float32 {
	c := math.Cos(math.Pi * float64(epoch) / float64(max(s.TMax, 1)))
	return s.Min + float32(float64(s.Base-s.Min)*(1+c)/2)
}

var (
	_ Optimizer = (*SGD)(nil)
	_ Optimizer = (*Adam)(nil)
)
