package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gograd/gograd/tensor"
)

// fans returns the fan-in and fan-out of a weight of [out, in].
func fans(w *tensor.Tensor) (in, out int) {
	if w.Dims() != 2 {
		panic(&tensor.Error{Op: "init", Shapes: [][]int{w.Shape()}, Err: fmt.Errorf("%w: want a [out, in] weight", tensor.ErrShape)})
	}
	return w.Dim(1), w.Dim(0)
}

func fill(w *tensor.Tensor, rng *rand.Rand, uniform bool, scale float64) {
	v := make([]float32, w.Len())
	for i := range v {
		if uniform {
			v[i] = float32((2*rng.Float64() - 1) * scale)
		} else {
			v[i] = float32(rng.NormFloat64() * scale)
		}
	}
	w.CopyFrom(v)
}

// KaimingUniform fills w ([out, in]) from U(±sqrt(6/fan_in)), He et al.'s
// initialisation for ReLU layers (PyTorch's kaiming_uniform_ with its
// defaults for ReLU).
func KaimingUniform(w *tensor.Tensor, rng *rand.Rand) {
	in, _ := fans(w)
	fill(w, rng, true, math.Sqrt(6/float64(in)))
}

// KaimingNormal fills w from N(0, 2/fan_in).
func KaimingNormal(w *tensor.Tensor, rng *rand.Rand) {
	in, _ := fans(w)
	fill(w, rng, false, math.Sqrt(2/float64(in)))
}

// XavierUniform fills w from U(±sqrt(6/(fan_in+fan_out))), Glorot and Bengio's.
func XavierUniform(w *tensor.Tensor, rng *rand.Rand) {
	in, out := fans(w)
	fill(w, rng, true, math.Sqrt(6/float64(in+out)))
}

// XavierNormal fills w from N(0, 2/(fan_in+fan_out)).
func XavierNormal(w *tensor.Tensor, rng *rand.Rand) {
	in, out := fans(w)
	fill(w, rng, false, math.Sqrt(2/float64(in+out)))
}
