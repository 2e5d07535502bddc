//go:build !cuda

package device

// isNilBackend reports whether b is a typed nil of a backend's buffer:
// this build has only the CPU's, which isNil checks itself.
func isNilBackend(Buffer) bool { return false }
