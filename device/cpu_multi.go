package device

import "fmt"

var _ MultiOptimizers = (*CPU)(nil)

// SGDStepMulti applies SGDStep to every tensor i (ps[i], gs[i], bufs[i],
// ns[i]) in turn, after checking them all. It allocates nothing.
func (c *CPU) SGDStepMulti(ps, gs, bufs []Buffer, ns []int, hp SGDParams) error {
	op := cpuOp{kind: "sgd_step_multi"}
	if len(gs) != len(ps) || len(ns) != len(ps) || (len(bufs) != len(ps) && !(bufs == nil && hp.Momentum == 0)) {
		return op.errorf("%d parameters, %d gradients, %d buffers and %d lengths", len(ps), len(gs), len(bufs), len(ns))
	}
	written, wnames := [2][]Buffer{ps, bufs}, [2]string{"p", "buf"}
	nw := 2
	if hp.Momentum == 0 {
		nw = 1
	}
	read, rnames := [1][]Buffer{gs}, [1]string{"g"}
	if err := cpuCheckMulti(op, ns, wnames[:nw], written[:nw], rnames[:], read[:]); err != nil {
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
// vs[i], ns[i]) in turn, after checking them all. It allocates nothing.
func (c *CPU) AdamStepMulti(ps, gs, ms, vs []Buffer, ns []int, hp AdamParams) error {
	op := cpuOp{kind: "adam_step_multi"}
	if len(gs) != len(ps) || len(ms) != len(ps) || len(vs) != len(ps) || len(ns) != len(ps) {
		return op.errorf("%d parameters, %d gradients, %d and %d moments, %d lengths", len(ps), len(gs), len(ms), len(vs), len(ns))
	}
	if hp.Step < 1 {
		return op.errorf("step %d, want >= 1", hp.Step)
	}
	written, wnames := [3][]Buffer{ps, ms, vs}, [3]string{"p", "m", "v"}
	read, rnames := [1][]Buffer{gs}, [1]string{"g"}
	if err := cpuCheckMulti(op, ns, wnames[:], written[:], rnames[:], read[:]); err != nil {
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
// tensor i writes (written[r][i] for each role r, named wnames[r]) and reads
// (read[r][i], named rnames[r]) are live CPU buffers of at least ns[i]
// values, and, as on the GPU where all tensors are updated at once, that no
// buffer one tensor writes is given for another. It compares every pair of
// tensors instead of building a map, so that it allocates nothing.
func cpuCheckMulti(op cpuOp, ns []int, wnames []string, written [][]Buffer, rnames []string, read [][]Buffer) error {
	for i, n := range ns {
		if n < 0 {
			return fmt.Errorf("%w (tensor %d)", op.errorf("negative length %d", n), i)
		}
		for r, bs := range written {
			if _, err := cpuData(op, wnames[r], bs[i], n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
		for r, bs := range read {
			if _, err := cpuData(op, rnames[r], bs[i], n); err != nil {
				return fmt.Errorf("%w (tensor %d)", err, i)
			}
		}
	}
	for i := range ns {
		for _, ws := range written {
			w := ws[i]
			for k := range i {
				for _, other := range written {
					if other[k] == w {
						return op.errorf("tensors %d and %d write the same buffer", k, i)
					}
				}
			}
			for k := range ns {
				if k == i {
					continue
				}
				for _, rs := range read {
					if rs[k] == w {
						return op.errorf("tensor %d reads a buffer that tensor %d writes", k, i)
					}
				}
			}
		}
	}
	return nil
}
