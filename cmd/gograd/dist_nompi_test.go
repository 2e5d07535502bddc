//go:build !mpi

package main

import (
	"strings"
	"testing"
)

// TestDistWithoutMPI checks that a build without the mpi tag refuses
// -dist mpi and -dist nccl with one line saying how to rebuild.
func TestDistWithoutMPI(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-dist", "mpi"}, "-dist mpi: this gograd binary was built without MPI; rebuild it with -tags mpi"},
		{[]string{"-dist", "nccl", "-device", "cuda"}, "-dist nccl: this gograd binary was built without NCCL; rebuild it with -tags 'cuda mpi'"},
	} {
		res := gograd(append([]string{"train", "-out", t.TempDir()}, c.args...)...)
		if res.code != exitError || !strings.HasPrefix(res.stderr, "gograd: "+c.want) ||
			strings.Count(res.stderr, "\n") != 1 || res.stdout != "" {
			t.Errorf("train %s: want exit 1 and the one line %q..., got %v", strings.Join(c.args, " "), c.want, res)
		}
	}
}
