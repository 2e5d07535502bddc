//go:build cuda

package device

// DevicePointer returns the address of the buffer's device memory, for
// libraries that work on device memory themselves (NCCL, in package dist).
// Work queued on the buffer runs on the legacy default stream.
func (b *CUDABuffer) DevicePointer() uintptr { return uintptr(b.ptr) }
