package optim

import (
	"fmt"
	"math"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/tensor"
)

// Optimizer updates a fixed list of parameters.
type Optimizer interface {
	// Step applies one update from the parameters' current gradients.
	// Parameters with no gradient are skipped.
	Step() error
	// LR is the current learning rate.
	LR() float32
	// SetLR changes the learning rate, as a schedule does between epochs.
	SetLR(lr float32)
	// State returns the optimizer's buffers, named "<index>.<buffer>" after
	// the parameter's position, and the number of steps taken.
	State() (bufs map[string]*tensor.Tensor, steps int)
	// SetState restores buffers and steps saved by State.
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
}

// SGD is stochastic gradient descent as torch.optim.SGD defines it:
//
//	g = grad + wd·p
//	buf = g on the first step, else momentum·buf + (1-dampening)·g
//	g = g + momentum·buf with Nesterov, else buf   (when momentum != 0)
//	p = p - lr·g
type SGD struct {
	cfg    SGDConfig
	params []*autograd.Var
	bufs   []*tensor.Tensor
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
	return &SGD{cfg: cfg, params: params, bufs: make([]*tensor.Tensor, len(params))}, nil
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
			WeightDecay: o.cfg.WeightDecay, Nesterov: o.cfg.Nesterov}
		if multi, idx := multiDevice(o.params, o.args.idx[:0]); multi != nil {
			o.args.idx = idx
			// Parameters whose momentum buffer is new take a first step, in a
			// call of their own: all of them on the first step, none after.
			fresh, old := o.args.fresh[:0], o.args.old[:0]
			for _, i := range idx {
				if o.bufs[i] == nil && o.cfg.Momentum != 0 {
					o.bufs[i] = tensor.New(o.params[i].Value.Device(), o.params[i].Value.Shape()...)
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
			hp.First = o.bufs[i] == nil
			if hp.First && o.cfg.Momentum != 0 {
				o.bufs[i] = tensor.New(p.Value.Device(), p.Value.Shape()...)
			}
			sgdStep(p.Value, p.Grad, o.bufs[i], hp)
		}
		o.steps++
	})
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
	idx, fresh, old    []int
	ps, gs, bs, ms, vs []device.Buffer
	ns                 []int
}

// reset empties the buffer lists, dropping their references.
func (a *multiArgs) reset() {
	for _, l := range []*[]device.Buffer{&a.ps, &a.gs, &a.bs, &a.ms, &a.vs} {
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
			return nil, nil
		}
		idx = append(idx, i)
	}
	multi, ok := dev.(device.MultiOptimizers)
	if !ok {
		return nil, nil
	}
	return multi, idx
}

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
	if hp.WeightDecay != 0 {
		wd := tensor.MulScalar(p, hp.WeightDecay)
		d.AddInPlace(wd)
		wd.Free()
	}
	if hp.Momentum != 0 {
		if hp.First {
			copyInto(buf, d)
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
			copyInto(d, buf)
		}
	}
	d.ScaleInPlace(-hp.LR)
	p.AddInPlace(d)
}

func copyInto(dst, src *tensor.Tensor) {
	if err := dst.Device().Copy(dst.Buffer(), src.Buffer(), device.Contiguous(src.Len())); err != nil {
		panic(&tensor.Error{Op: "copy", Err: err})
	}
}

// State returns the momentum buffers as "<i>.momentum_buffer".
func (o *SGD) State() (map[string]*tensor.Tensor, int) {
	m := map[string]*tensor.Tensor{}
	for i, b := range o.bufs {
		if b != nil {
			m[fmt.Sprintf("%d.momentum_buffer", i)] = b
		}
	}
	return m, o.steps
}

// SetState restores momentum buffers saved by State.
func (o *SGD) SetState(bufs map[string][]float32, steps int) error {
	return setState(o.params, bufs, []string{"momentum_buffer"}, [][]*tensor.Tensor{o.bufs}, steps, &o.steps)
}

// setState checks and copies saved buffers into slots, one list per name.
// It checks every buffer before copying any, so a bad state changes nothing.
func setState(params []*autograd.Var, bufs map[string][]float32, names []string, slots [][]*tensor.Tensor, steps int, dst *int) error {
	if steps < 0 {
		return fmt.Errorf("optim: set state: negative step count %d", steps)
	}
	for k, v := range bufs {
		ok := false
		for i, p := range params {
			for _, n := range names {
				if k == fmt.Sprintf("%d.%s", i, n) {
					if len(v) != p.Value.Len() {
						return fmt.Errorf("optim: set state: buffer %s has %d values, parameter has %d", k, len(v), p.Value.Len())
					}
					ok = true
				}
			}
		}
		if !ok {
			return fmt.Errorf("optim: set state: unknown buffer %q", k)
		}
	}
	return tensor.Catch(func() {
		for j, n := range names {
			for i, p := range params {
				v, ok := bufs[fmt.Sprintf("%d.%s", i, n)]
				if !ok {
					continue
				}
				if slots[j][i] == nil {
					slots[j][i] = tensor.New(p.Value.Device(), p.Value.Shape()...)
				}
				slots[j][i].CopyFrom(v)
			}
		}
		*dst = steps
	})
}

// AdamConfig holds Adam's hyper-parameters, with PyTorch's names. Zero
// Beta1, Beta2 and Eps take PyTorch's defaults 0.9, 0.999 and 1e-8.
type AdamConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
}

// Adam is torch.optim.Adam (Decoupled false: weight decay added to the
// gradient) or torch.optim.AdamW (Decoupled true: p *= 1 - lr·wd first):
//
//	m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//	p = p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
type Adam struct {
	cfg       AdamConfig
	decoupled bool
	params    []*autograd.Var
	m, v      []*tensor.Tensor
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
	return &Adam{cfg: cfg, decoupled: decoupled, params: params, m: make([]*tensor.Tensor, n), v: make([]*tensor.Tensor, n)}, nil
}

// LR is the learning rate.
func (o *Adam) LR() float32 { return o.cfg.LR }

// SetLR sets the learning rate.
func (o *Adam) SetLR(lr float32) { o.cfg.LR = lr }

// Step applies one Adam update: in one call of the device's multi-tensor
// step when it has one (device.MultiOptimizers) and holds every parameter,
// else tensor by tensor.
func (o *Adam) Step() error {
	o.steps++
	hp := device.AdamParams{LR: o.cfg.LR, Beta1: o.cfg.Beta1, Beta2: o.cfg.Beta2, Eps: o.cfg.Eps,
		WeightDecay: o.cfg.WeightDecay, Decoupled: o.decoupled, Step: o.steps}
	return tensor.Catch(func() {
		multi, idx := multiDevice(o.params, o.args.idx[:0])
		if multi == nil {
			for i, p := range o.params {
				if p.Grad != nil {
					o.state(i)
					adamStep(p.Value, p.Grad, o.m[i], o.v[i], hp)
				}
			}
			return
		}
		o.args.idx = idx
		a := &o.args
		a.reset()
		for _, i := range idx {
			o.state(i)
			p := o.params[i]
			a.ps, a.gs = append(a.ps, p.Value.Buffer()), append(a.gs, p.Grad.Buffer())
			a.ms, a.vs = append(a.ms, o.m[i].Buffer()), append(a.vs, o.v[i].Buffer())
			a.ns = append(a.ns, p.Value.Len())
		}
		if err := multi.AdamStepMulti(a.ps, a.gs, a.ms, a.vs, nil, a.ns, hp); err != nil {
			panic(&tensor.Error{Op: "adam step", Err: err})
		}
	})
}

// state makes the moment estimates of parameter i, zero, if it has none.
func (o *Adam) state(i int) {
	if o.m[i] == nil {
		p := o.params[i].Value
		o.m[i] = tensor.Zeros(p.Device(), p.Shape()...)
		o.v[i] = tensor.Zeros(p.Device(), p.Shape()...)
	}
}

func adamStep(p, g, m, v *tensor.Tensor, hp device.AdamParams) {
	dev := p.Device()
	if f, ok := dev.(device.Optimizers); ok {
		if err := f.AdamStep(p.Buffer(), g.Buffer(), m.Buffer(), v.Buffer(), nil, p.Len(), hp); err != nil {
			panic(&tensor.Error{Op: "adam step", Shapes: [][]int{p.Shape()}, Err: err})
		}
		return
	}
	d := g.Clone()
	defer d.Free()
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

// State returns "<i>.exp_avg" and "<i>.exp_avg_sq" for each parameter.
func (o *Adam) State() (map[string]*tensor.Tensor, int) {
	st := map[string]*tensor.Tensor{}
	for i := range o.params {
		if o.m[i] != nil {
			st[fmt.Sprintf("%d.exp_avg", i)] = o.m[i]
			st[fmt.Sprintf("%d.exp_avg_sq", i)] = o.v[i]
		}
	}
	return st, o.steps
}

// SetState restores the moment estimates and the step count.
func (o *Adam) SetState(bufs map[string][]float32, steps int) error {
	return setState(o.params, bufs, []string{"exp_avg", "exp_avg_sq"}, [][]*tensor.Tensor{o.m, o.v}, steps, &o.steps)
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
