package cuda

import (
	"fmt"
	"math"
)

// The table of a multi-tensor optimizer kernel (sgd_multi_f32,
// adam_multi_f32 in kernels.cu): one entry of multiWords 8-byte words per
// tensor (the MultiTensor struct: p, g, s1, s2, s3, n, first chunk), then the
// tensor index of every chunk of multiChunk elements as a uint32, two to a
// word, the first in the low half.
const (
	multiChunk = 1024 // MULTI_CHUNK in kernels.cu
	multiWords = 7    // sizeof(MultiTensor) / 8
)

// multiEntry is one tensor of a multi-tensor step: the device addresses of
// its parameter, gradient and up to three state buffers (0 when unused),
// and its length.
type multiEntry struct {
	p, g, s1, s2, s3 uint64
	n                int
}

// multiTensors appends to dst the tensor part of the table of ents (which
// also serves as the key of its cached device copy) and returns it with the
// number of chunks.
func multiTensors(dst []uint64, ents []multiEntry) ([]uint64, int, error) {
	if len(ents) > math.MaxInt32 {
		return dst, 0, fmt.Errorf("cuda: %d tensors in one multi-tensor step is too many", len(ents))
	}
	chunks := 0
	for _, e := range ents {
		c := (e.n + multiChunk - 1) / multiChunk
		if c > math.MaxUint32-chunks {
			return dst, 0, fmt.Errorf("cuda: multi-tensor step: more than 2^32 chunks of %d values", multiChunk)
		}
		dst = append(dst, e.p, e.g, e.s1, e.s2, e.s3, uint64(e.n), uint64(chunks))
		chunks += c
	}
	return dst, chunks, nil
}

// multiTable returns the whole table of the tensor part tensors, which has
// chunks chunks: a copy of it followed by the tensor index of each chunk.
func multiTable(tensors []uint64, chunks int) []uint64 {
	tab := make([]uint64, len(tensors)+(chunks+1)/2)
	idx := tab[copy(tab, tensors):]
	c := 0
	for t := range len(tensors) / multiWords {
		n := int(tensors[t*multiWords+5])
		for range (n + multiChunk - 1) / multiChunk {
			idx[c/2] |= uint64(t) << (32 * (c % 2))
			c++
		}
	}
	return tab
}
