package dense_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
	"github.com/gograd/gograd/tensor"
	"github.com/gograd/gograd/tensor/dense"
	gt "gorgonia.org/tensor"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b9)) }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func randT(d device.Device, r *rand.Rand, lo, hi float32, shape ...int) (*tensor.Tensor, []float32) {
	v := testutil.RandSlice(r, numel(shape), lo, hi)
	return tensor.FromSlice(d, v, append([]int{}, shape...)...), v
}

func checkShape(t *testing.T, name string, x *tensor.Tensor, want ...int) {
	t.Helper()
	if !slices.Equal(x.Shape(), want) {
		t.Fatalf("%s: shape %v, want %v", name, x.Shape(), want)
	}
}

// transposeRef is the 2-D transpose of a row-major rows x cols matrix.
func transposeRef(v []float32, rows, cols int) []float32 {
	out := make([]float32, len(v))
	for i := range rows {
		for j := range cols {
			out[j*rows+i] = v[i*cols+j]
		}
	}
	return out
}

func TestDense(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		r := newRand(16)
		for _, shape := range [][]int{{2, 3}, {5}, {1, 4}, {2, 1, 3, 2}, {}} {
			name := fmt.Sprint(shape)
			x, v := randT(d, r, -1, 1, shape...)
			dn := dense.ToDense(x)
			if dn.Dtype() != gt.Float32 || !slices.Equal([]int(dn.Shape()), shape) {
				t.Fatalf("to dense %s: %v of shape %v", name, dn.Dtype(), dn.Shape())
			}
			if len(shape) == 0 {
				if got := dn.ScalarValue().(float32); got != v[0] {
					t.Errorf("to dense scalar: %v, want %v", got, v[0])
				}
			} else {
				testutil.AllClose(t, "to dense "+name, dn.Float32s(), v, 0, 0)
			}
			back, err := dense.FromDense(d, dn)
			if err != nil {
				t.Fatalf("from dense %s: %v", name, err)
			}
			checkShape(t, "round trip "+name, back, shape...)
			testutil.AllClose(t, "round trip "+name, back.Data(), v, 0, 0)
		}

		v := testutil.RandSlice(r, 20, -1, 1)
		full := gt.New(gt.WithShape(4, 5), gt.WithBacking(slices.Clone(v)))
		views := []struct {
			name  string
			slice []gt.Slice
			shape []int
			at    func(i, j int) float32
		}{
			{"rows", []gt.Slice{gt.S(1, 3)}, []int{2, 5}, func(i, j int) float32 { return v[(i+1)*5+j] }},
			{"columns", []gt.Slice{nil, gt.S(1, 4)}, []int{4, 3}, func(i, j int) float32 { return v[i*5+j+1] }},
			{"strided", []gt.Slice{gt.S(0, 4, 2), gt.S(0, 5, 2)}, []int{2, 3}, func(i, j int) float32 { return v[i*10+j*2] }},
		}
		for _, c := range views {
			view, err := full.Slice(c.slice...)
			if err != nil {
				t.Fatalf("slice %s: %v", c.name, err)
			}
			got, err := dense.FromDense(d, view.(*gt.Dense))
			if err != nil {
				t.Fatalf("from dense %s: %v", c.name, err)
			}
			checkShape(t, "view "+c.name, got, c.shape...)
			want := make([]float32, numel(c.shape))
			for i := range want {
				want[i] = c.at(i/c.shape[1], i%c.shape[1])
			}
			testutil.AllClose(t, "view "+c.name, got.Data(), want, 0, 0)
		}

		tr := gt.New(gt.WithShape(4, 5), gt.WithBacking(slices.Clone(v)))
		if err := tr.T(); err != nil {
			t.Fatal(err)
		}
		got, err := dense.FromDense(d, tr)
		if err != nil {
			t.Fatalf("from transposed dense: %v", err)
		}
		want := transposeRef(v, 4, 5)
		checkShape(t, "transposed dense", got, 5, 4)
		testutil.AllClose(t, "transposed dense", got.Data(), want, 0, 0)

		f64 := gt.New(gt.WithShape(2), gt.WithBacking([]float64{1, 2}))
		if _, err := dense.FromDense(d, f64); err == nil || !strings.HasPrefix(err.Error(), "dense: ") {
			t.Errorf("from float64 dense: %v", err)
		}
		col := gt.New(gt.WithShape(2, 3), gt.AsFortran([]float32{1, 2, 3, 4, 5, 6}))
		if _, err := dense.FromDense(d, col); err == nil {
			t.Error("from column-major dense: no error")
		}
	})
}
