package serve

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/gograd/gograd/nn"
)

// TestBatcherTransposedWeights checks that a Batcher runs the Linear
// layers of a Sequential, nested ones too, with their weights transposed,
// and answers as the model itself does, at passes of one row, of a few
// rows and of more rows than one tile of the product holds.
func TestBatcherTransposedWeights(t *testing.T) {
	model, dev := trained(t)
	seq, ok := model.(*nn.Sequential)
	if !ok {
		t.Fatalf("the test model is a %T, want a Sequential", model)
	}
	nested := &nn.Sequential{Modules: []nn.Module{&nn.Sequential{Modules: seq.Modules[:1]}, &nn.Sequential{Modules: seq.Modules[1:]}}}
	for _, m := range []nn.Module{seq, nested} {
		prepared, owned := forInference(m)
		linears, transposed := 0, 0
		var count func(m nn.Module, f func(nn.Module))
		count = func(m nn.Module, f func(nn.Module)) {
			if s, ok := m.(*nn.Sequential); ok {
				for _, sub := range s.Modules {
					count(sub, f)
				}
				return
			}
			f(m)
		}
		count(m, func(m nn.Module) {
			if _, ok := m.(*nn.Linear); ok {
				linears++
			}
		})
		count(prepared, func(m nn.Module) {
			if _, ok := m.(*transposedLinear); ok {
				transposed++
			}
		})
		if linears == 0 || transposed != linears || len(owned) != linears {
			t.Errorf("%d Linear layers, %d transposed, %d weights owned", linears, transposed, len(owned))
		}
		for _, t := range owned {
			t.Free()
		}
		b := newBatcher(t, BatcherConfig{Model: m, Device: dev, MaxBatch: 40})
		rng := rand.New(rand.NewPCG(21, 22))
		for _, n := range []int{1, 3, 12, 13, 40} {
			var x []float32
			for range n {
				x = append(x, sample(rng, rng.IntN(classes))...)
			}
			probs := make([]float32, n*classes)
			if err := b.Predict(context.Background(), x, probs); err != nil {
				t.Fatal(err)
			}
			if want := reference(t, m, dev, x); !closeTo(probs, want, 1e-5) {
				t.Errorf("%d rows: probabilities %v, want %v", n, probs, want)
			}
		}
	}
}
