// Package testutil holds what the tests of every package share: tolerance
// comparison of float32 slices, random inputs, and a loop that runs a test on
// each device the binary was built with.
package testutil
