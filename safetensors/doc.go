// Package safetensors reads and writes checkpoints in the safetensors format,
// so that a file written here loads with PyTorch's
// safetensors.torch.load_file, and a file written there (with float32
// tensors, and int64 ones such as a BatchNorm's num_batches_tracked) loads
// here.
//
// A file is laid out as
//
//	8 bytes    N, the header length, unsigned little-endian
//	N bytes    the header: a JSON object, padded with trailing spaces
//	rest       the data section: every tensor's values, little-endian float32
//	           (dtype F32) or int64 (dtype I64)
//
// The header maps each tensor name to
//
//	{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}
//
// where the offsets are byte positions relative to the start of the data
// section, and the optional key "__metadata__" to an object of string
// values. Encode lays the tensors out contiguously in name order and pads the
// header so that the data section starts at a multiple of 8 bytes.
//
// Tensors are float32 in memory. I64 tensors, PyTorch's integer counters,
// are read into float32 and must hold integers of magnitude at most 2^24,
// which float32 holds exactly; Encode writes a tensor whose DType is I64 as
// int64, and refuses values that are not such integers.
//
// Decode accepts any valid F32 and I64 file, whatever order its tensors are laid out
// in, and rejects everything else with an error that starts with
// "safetensors: ": a header that is not a JSON object or is longer than the
// file or than 100 MB, an entry with a missing or unexpected field, a dtype
// other than F32 and I64, an I64 value beyond 2^24, a negative or overflowing shape, data offsets that disagree
// with the shape, that overlap, that leave a gap or that do not reach the end
// of the file, duplicate or empty names, and metadata that is not a map of
// strings. It never allocates much more than the size of its input.
//
// WriteFile replaces a file atomically: a crash or an error leaves either the
// old file or the new one, never a mix.
package safetensors
