package cuda

import (
	"fmt"
	"testing"
)

// TestMultiTableCoversEveryElement walks a multi-tensor table as the kernels
// do (chunk c of tensor tab[idx[c]] is elements [(c-chunk0)*multiChunk, +multiChunk)
// clipped to n) and checks that every element of every tensor is updated
// once, with the right pointers.
func TestMultiTableCoversEveryElement(t *testing.T) {
	cases := [][]int{
		{1},
		{0},
		{1, 7, 129, 4097, 784 * 512},
		{multiChunk, multiChunk + 1, 0, multiChunk - 1, 2 * multiChunk},
		{3, 0, 0, 5},
	}
	for _, ns := range cases {
		t.Run(fmt.Sprint(ns), func(t *testing.T) {
			ents := make([]multiEntry, len(ns))
			for i, n := range ns {
				b := uint64(i+1) << 32
				ents[i] = multiEntry{p: b, g: b + 1, s1: b + 2, s2: b + 3, s3: b + 4, n: n}
			}
			words, chunks, err := multiTensors([]uint64{42}, ents)
			if err != nil {
				t.Fatal(err)
			}
			if words[0] != 42 || len(words) != 1+multiWords*len(ns) {
				t.Fatalf("multiTensors did not append to dst: %v", words)
			}
			tab := multiTable(words[1:], chunks)
			if want := multiWords*len(ns) + (chunks+1)/2; len(tab) != want {
				t.Fatalf("table of %d words, want %d", len(tab), want)
			}
			seen := make([][]int, len(ns))
			for i, n := range ns {
				seen[i] = make([]int, n)
			}
			for c := range chunks {
				ti := int(uint32(tab[multiWords*len(ns)+c/2] >> (32 * (c % 2))))
				if ti >= len(ns) {
					t.Fatalf("chunk %d: tensor %d of %d", c, ti, len(ns))
				}
				e := tab[ti*multiWords : (ti+1)*multiWords]
				if e[0] != ents[ti].p || e[1] != ents[ti].g || e[2] != ents[ti].s1 || e[3] != ents[ti].s2 || e[4] != ents[ti].s3 || int(e[5]) != ns[ti] {
					t.Fatalf("tensor %d: entry %v, want %+v", ti, e, ents[ti])
				}
				lo := (c - int(e[6])) * multiChunk
				if lo < 0 || lo >= ns[ti] {
					t.Fatalf("chunk %d of tensor %d starts at %d of %d", c, ti, lo, ns[ti])
				}
				for i := lo; i < min(ns[ti], lo+multiChunk); i++ {
					seen[ti][i]++
				}
			}
			for i := range seen {
				for j, k := range seen[i] {
					if k != 1 {
						t.Fatalf("tensor %d element %d updated %d times", i, j, k)
					}
				}
			}
		})
	}
}
