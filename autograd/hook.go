package autograd

// SetGradHook registers fn to be called once per Backward pass that reaches
// v, as soon as v's gradient for that pass is complete, in the goroutine
// running Backward; nil removes the hook. "Reaches" means that v is an input
// of an operation recorded on the tape that Backward walks (or is the root
// itself). Data-parallel training uses it to start reducing a gradient while
// Backward computes the others.
//
// The reverse walk over the tape has finished v's gradient once it has run
// the backward function of the first recorded operation that reads v: fn
// runs right after that one. Variables read first by the same operation are
// called in the order of its inputs. v.Grad may still be nil in fn when no
// gradient flowed to v in this pass (for example through a branch of the
// graph that did not contribute to the root).
func (v *Var) SetGradHook(fn func(v *Var)) { v.gradHook = fn }

// hookAt is a hooked variable and the index of the first node that reads it.
type hookAt struct {
	v  *Var
	at int
}

// planHooks lists, in tp.hooks, the hooked variables that the tape's nodes
// read, each with the index of the first node reading it, in increasing
// order of that index.
func (tp *Tape) planHooks() {
	tp.hooks = tp.hooks[:0]
	for i, n := range tp.nodes {
		for _, in := range n.inputs {
			if in.gradHook == nil || !in.requiresGrad || in.hookPlanned {
				continue
			}
			in.hookPlanned = true
			tp.hooks = append(tp.hooks, hookAt{in, i})
		}
	}
	for _, h := range tp.hooks {
		h.v.hookPlanned = false
	}
}

// fireHooks calls the hooks of the variables whose first reader is node i,
// which the reverse walk has just processed, in the order of its inputs,
// and drops them from the plan.
func (tp *Tape) fireHooks(i int) {
	k := len(tp.hooks)
	j := k
	for j > 0 && tp.hooks[j-1].at == i {
		j--
	}
	if j == k {
		return
	}
	for _, h := range tp.hooks[j:k] {
		h.v.gradHook(h.v)
	}
	clear(tp.hooks[j:k])
	tp.hooks = tp.hooks[:j]
}
