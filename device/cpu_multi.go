package device

import "fmt"

var _ MultiOptimizers = (*CPU)(nil)

// SGDStepMulti applies SGDStep to every tensor i (ps[i], gs[i], bufs[i],
// ns[i]) in turn, after checking them all.
func (c *CPU) SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error {
	op := cpuOp{kind: "sgd_step_multi"}
	if len(gs) != len(ps) || len(ns) != len(ps) || (len(bufs) != len(ps) && !(bufs == nil && hp.Momentum == 0)) {
		return op.errorf("%d parameters, %d gradients, %d buffers and %d lengths", len(ps), len(gs), len(bufs), len(ns))
	}
	written, read := make([][]Buffer, len(ps)), make([][]Buffer, len(ps))
	for i := range ps {
		written[i], read[i] = []Buffer{ps[i]}, []Buffer{gs[i]}
		if hp.Momentum != 0 {
			written[i] = append(written[i], bufs[i])
		}
	}
	if err := cpuCheckMulti(op, ns, []string{"p", "buf"}, written, []string{"g"}, read); err != nil {
		return err
	}
	for i, n := range ns {
		var b Buffer
		if hp.Momentum != 0 {
			b = bufs[i]
		}
		if err := c.SGDStep(ps[i], gs[i], b, n, hp); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	return nil
}

// AdamStepMulti applies AdamStep to every tensor i (ps[i], gs[i], ms[i],
// vs[i], ns[i]) in turn, after checking them all.
func (c *CPU) AdamStepMulti(ps, gs, ms, vs []Buffer, ns []int, hp AdamParams) error {
	op := cpuOp{kind: "adam_step_multi"}
	if len(gs) != len(ps) || len(ms) != len(ps) || len(vs) != len(ps) || len(ns) != len(ps) {
		return op.errorf("%d parameters, %d gradients, %d and %d moments, %d lengths", len(ps), len(gs), len(ms), len(vs), len(ns))
	}
	if hp.Step < 1 {
		return op.errorf("step %d, want >= 1", hp.Step)
	}
	written, read := make([][]Buffer, len(ps)), make([][]Buffer, len(ps))
	for i := range ps {
		written[i], read[i] = []Buffer{ps[i], ms[i], vs[i]}, []Buffer{gs[i]}
	}
	if err := cpuCheckMulti(op, ns, []string{"p", "m", "v"}, written, []string{"g"}, read); err != nil {
		return err
	}
	for i, n := range ns {
		if err := c.AdamStep(ps[i], gs[i], ms[i], vs[i], n, hp); err != nil {
			return fmt.Errorf("%w (tensor %d)", err, i)
		}
	}
	return nil
}

// cpuCheckMulti checks the tensors of a multi-tensor step: that the buffers
// tensor i writes (written[i], named by wnames) and reads (read[i], named by
// rnames) are live CPU buffers of at least ns[i] values, and, as on the GPU
// where all tensors are updated at once, that no buffer one tensor writes is
// given for another.
func cpuCheckMulti(op cpuOp, ns []int, wnames []string, written [][]Buffer, rnames []string, read [][]Buffer) error {
	writer := map[Buffer]int{}
	for i, n := range ns {
		if n < 0 {
			return fmt.Errorf("%w (tensor %d)", op.errorf("negative length %d", n), i)
		}
		for j, b := range written[i] {
			if _, err := cpuData(op, wnames[j], b, n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
			if k, ok := writer[b]; ok && k != i {
				return op.errorf("tensors %d and %d write the same buffer", k, i)
			}
			writer[b] = i
		}
		for j, b := range read[i] {
			if _, err := cpuData(op, rnames[j], b, n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
	}
	for i := range ns {
		for _, b := range read[i] {
			if k, ok := writer[b]; ok && k != i {
				return op.errorf("tensor %d reads a buffer that tensor %d writes", i, k)
			}
		}
	}
	return nil
}
