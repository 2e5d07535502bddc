package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// runMain runs this binary as the command, through the launcher given
// (mpirun and its flags) or directly, and returns its output.
func runMain(t *testing.T, launcher []string, args string) string {
	t.Helper()
	argv := append(append([]string(nil), launcher...), os.Args[0])
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOGRAD_DDP_MAIN=1", "GOGRAD_DDP_ARGS="+args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v %s: %v\n%s", argv, args, err, out.String())
	}
	return out.String()
}
