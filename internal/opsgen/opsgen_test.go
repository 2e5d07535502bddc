package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHeaderUpToDate fails when the committed cuda/ops.h differs from what
// the op table generates.
func TestHeaderUpToDate(t *testing.T) {
	if got, want := read(t, "cuda/ops.h"), header(device.Ops()); !bytes.Equal(got, want) {
		t.Fatalf("cuda/ops.h is not what device.Ops generates: run go generate ./device\n--- want\n%s", want)
	}
}

// TestKernelsCoverOps checks that every op of the table has a kernel: its
// family's entry point is in cuda/kernels.ptx, kernels.cu handles its op
// code (a case of the family's switch, or a use for reductions and
// activations), and the PTX was built from this kernels.cu and ops.h.
func TestKernelsCoverOps(t *testing.T) {
	ptx, cu, h := read(t, "cuda/kernels.ptx"), string(read(t, "kernels.cu")), read(t, "cuda/ops.h")
	entries := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.entry\s+(\w+)\(`).FindAllSubmatch(ptx, -1) {
		entries[string(m[1])] = true
	}
	if len(entries) == 0 {
		t.Fatal("cuda/kernels.ptx has no .entry")
	}
	for _, op := range device.Ops() {
		if !entries[op.Kernel] {
			t.Errorf("%s %s: kernel %s is not an entry of cuda/kernels.ptx", op.Kind, op.Name, op.Kernel)
		}
		var want string
		switch op.Kind {
		case device.KindUnary, device.KindBinary, device.KindTernary:
			want = "case " + op.Const + ":"
		default:
			want = op.Const
		}
		if !strings.Contains(cu, want) {
			t.Errorf("%s %s: kernels.cu has no %q", op.Kind, op.Name, want)
		}
	}
	sum := sha256.Sum256(append([]byte(cu), h...))
	first, _, _ := bytes.Cut(ptx, []byte("\n"))
	if want := fmt.Sprintf("// sha256 %x", sum); string(first) != want {
		t.Errorf("cuda/kernels.ptx starts %q, want %q: run make ptx", first, want)
	}
}

// TestOpsTable checks the table itself: names unique within a family,
// codes in order, and constants that C accepts.
func TestOpsTable(t *testing.T) {
	seen := map[string]bool{}
	next := map[device.OpKind]int{}
	ident := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	for _, op := range device.Ops() {
		key := op.Kind.String() + " " + op.Name
		if op.Name == "" || seen[key] {
			t.Errorf("%s: empty or repeated name", key)
		}
		seen[key] = true
		if op.Code != next[op.Kind] {
			t.Errorf("%s: code %d, want %d", key, op.Code, next[op.Kind])
		}
		next[op.Kind]++
		if !ident.MatchString(op.Const) || op.Doc == "" {
			t.Errorf("%s: constant %q or doc %q", key, op.Const, op.Doc)
		}
	}
}
