package autograd

import (
	"bufio"
	"fmt"
	"io"
)

// WriteDot writes the graph that computed root in Graphviz DOT: a box per
// variable with its name, shape and, for scalars, value and gradient, and
// an ellipse per operation. Export before Backward frees the
// intermediates, or after BackwardRetain to show the gradients.
func WriteDot(w io.Writer, root *Var) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "digraph gograd {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];")
	ids := map[*Var]int{}
	var visit func(v *Var)
	visit = func(v *Var) {
		if _, ok := ids[v]; ok {
			return
		}
		id := len(ids)
		ids[v] = id
		for _, in := range v.Inputs() {
			visit(in)
		}
		fmt.Fprintf(bw, "  v%d [shape=record, label=\"%s\"];\n", id, dotLabel(v))
		if len(v.Inputs()) == 0 {
			return
		}
		fmt.Fprintf(bw, "  op%d [shape=ellipse, label=\"%s\"];\n  op%d -> v%d;\n", id, v.Op(), id, id)
		for _, in := range v.Inputs() {
			fmt.Fprintf(bw, "  v%d -> op%d;\n", ids[in], id)
		}
	}
	visit(root)
	fmt.Fprintln(bw, "}")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("autograd: write dot: %w", err)
	}
	return nil
}

func dotLabel(v *Var) string {
	name := v.Name
	if name == "" {
		name = v.Op()
	}
	label := fmt.Sprintf("%s | shape %v", name, v.Value.Shape())
	if v.released && v.Value.Len() != 1 {
		return label + " | released"
	}
	if v.Value.Len() == 1 && !v.released {
		label += fmt.Sprintf(" | value %.4f", v.Value.Item())
		if v.Grad != nil {
			label += fmt.Sprintf(" | grad %.4f", v.Grad.Item())
		}
	}
	return label
}
