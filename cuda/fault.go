//go:build cuda

package cuda

/*
#cgo LDFLAGS: -lcuda
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64
#include <cuda.h>
*/
import "C"

import (
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// A fault word records a bad index seen by a kernel, which cannot return an
// error: gather_f32 and softmax_ce_f32 write NaN into the row and store
// (value bits << 32 | row (24 bits) << 8 | kernel tag) into the word, a
// single 8-byte store, so racing writers leave one consistent report. The
// word lives in page-locked host memory mapped into the device, so checking
// it after a synchronisation is a plain load.
const (
	faultGather    = 1
	faultSoftmaxCE = 2
)

// fault is the mapped word: host is its host address, dev the address
// kernels write.
type fault struct {
	host *uint64
	dev  Ptr
}

// newFault allocates the word in the current context.
func newFault() (fault, error) {
	var p unsafe.Pointer
	if r := C.cuMemHostAlloc(&p, 8, C.CU_MEMHOSTALLOC_DEVICEMAP); r != C.CUDA_SUCCESS {
		return fault{}, fmt.Errorf("cuMemHostAlloc of the fault word: CUDA error %d", int(r))
	}
	var d C.CUdeviceptr
	if r := C.cuMemHostGetDevicePointer(&d, p, 0); r != C.CUDA_SUCCESS {
		C.cuMemFreeHost(p)
		return fault{}, fmt.Errorf("cuMemHostGetDevicePointer of the fault word: CUDA error %d", int(r))
	}
	f := fault{host: (*uint64)(p), dev: Ptr(d)}
	atomic.StoreUint64(f.host, 0)
	return f, nil
}

// check returns the error a kernel recorded since the last check, and clears
// it. The caller has synchronised with the device.
func (f fault) check() error {
	w := atomic.SwapUint64(f.host, 0)
	if w == 0 {
		return nil
	}
	row, v := (w>>8)&0xffffff, math.Float32frombits(uint32(w>>32))
	switch w & 0xff {
	case faultGather:
		return fmt.Errorf("cuda: an earlier gather_f32 read index %v (row %d of the index), which is not a row of src; its row is NaN", v, row)
	case faultSoftmaxCE:
		return fmt.Errorf("cuda: an earlier softmax_ce_f32 read label %v (row %d), which is not a class; its loss and gradient are NaN", v, row)
	}
	return fmt.Errorf("cuda: an earlier kernel recorded fault word 0x%x", w)
}

// free releases the word.
func (f fault) free() {
	if f.host != nil {
		C.cuMemFreeHost(unsafe.Pointer(f.host))
	}
}
