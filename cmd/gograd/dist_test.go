package main

import (
	"strings"
	"testing"
)

// TestDistUsage checks the -dist flags' command line errors, which come
// before any communicator is opened.
func TestDistUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-dist", "gloo"}, "want none, mpi or nccl"},
		{[]string{"-dist", "nccl"}, "-dist nccl trains on GPUs: give -device cuda"},
		{[]string{"-dist", "mpi", "-device", "cuda"}, "-dist mpi trains on CPUs: use -dist nccl with -device cuda"},
		{[]string{"-dist-timeout", "1m"}, "-dist-timeout applies only with -dist mpi or -dist nccl"},
		{[]string{"-dist", "mpi", "-dist-timeout", "-1s"}, "-dist-timeout -1s: want a positive duration"},
		{[]string{"-dist", "mpi", "-dist-timeout", "0s"}, "-dist-timeout 0s: want a positive duration"},
	} {
		res := gograd(append([]string{"train"}, c.args...)...)
		if res.code != exitUsage || !strings.Contains(res.stderr, c.want) || res.stdout != "" {
			t.Errorf("train %s: want exit 2 and %q, got %v", strings.Join(c.args, " "), c.want, res)
		}
	}
}

// TestResumeFlagsDist checks that -resume accepts -dist, which the error
// for a flag -resume refuses lists.
func TestResumeFlagsDist(t *testing.T) {
	res := gograd("train", "-resume", t.TempDir(), "-dist", "none", "-hidden", "8")
	if res.code != exitUsage || !strings.Contains(res.stderr, "-hidden cannot be used with -resume") ||
		!strings.Contains(res.stderr, "-dist and -dist-timeout may be given") {
		t.Errorf("want -hidden refused and -dist listed as allowed: %v", res)
	}
}
