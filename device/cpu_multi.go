package device

import "fmt"

var _ MultiOptimizers = (*CPU)(nil)

// SGDStepMulti applies SGDStep to every tensor i (ps[i], gs[i], bufs[i],
// ns[i]) in turn, after checking them all. It allocates nothing.
func (c *CPU) SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error {
	if err := CheckSGDMulti(ps, gs, bufs, ns, hp); err != nil {
		return cpuErr(err)
	}
	op := cpuOp{kind: "sgd_step_multi"}
	lists := [3][]Buffer{ps, gs, bufs}
	if hp.Momentum == 0 {
		lists[2] = nil
	}
	if err := cpuLive(op, lists[:], sgdNames[:]); err != nil {
		return err
	}
	for i, n := range ns {
		var b Buffer
		if hp.Momentum != 0 {
			b = bufs[i]
		}
		if err := c.sgdStep(ps[i], gs[i], b, n, hp); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	return nil
}

// AdamStepMulti applies AdamStep to every tensor i (ps[i], gs[i], ms[i],
// vs[i], vmaxs[i] with AMSGrad, ns[i]) in turn, after checking them all. It allocates nothing.
func (c *CPU) AdamStepMulti(ps, gs, ms, vs, vmaxs []Buffer, ns []int, hp AdamParams) error {
	if err := CheckAdamMulti(ps, gs, ms, vs, vmaxs, ns, hp); err != nil {
		return cpuErr(err)
	}
	lists := [5][]Buffer{ps, gs, ms, vs, vmaxs}
	if err := cpuLive(cpuOp{kind: "adam_step_multi"}, lists[:], adamNames[:]); err != nil {
		return err
	}
	for i, n := range ns {
		var vm Buffer
		if hp.AMSGrad {
			vm = vmaxs[i]
		}
		if err := c.adamStep(ps[i], gs[i], ms[i], vs[i], vm, n, hp); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	return nil
}

// cpuLive checks that every buffer of the lists (named by names) is a live
// CPU buffer before a multi-tensor step updates any tensor, so that a call
// that fails has updated nothing.
func cpuLive(op cpuOp, lists [][]Buffer, names []string) error {
	for r, l := range lists {
		for i, b := range l {
			if _, err := cpuBuf(op, names[r], b); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
	}
	return nil
}
