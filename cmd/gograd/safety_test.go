package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gograd/gograd/safetensors"
)

// runFilesOf reads the run files of dir (and nothing else: no lock or
// temporary file may be left) into a map.
func runFilesOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if !slices.Contains(runFiles, e.Name()) {
			t.Errorf("%s holds %s, which is not a run file", dir, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

// TestOverwriteKeepsOldRun checks that train -overwrite leaves the old run
// as it was until the new one has a complete epoch: an interrupt or a
// diverged loss in the first epoch changes nothing; after the first epoch
// the directory holds the new run only.
func TestOverwriteKeepsOldRun(t *testing.T) {
	run, _ := fixtureRun(t)
	dataDir := mnistDir(t)
	d := copyRun(t, run)
	before := runFilesOf(t, d)
	args := []string{"train", "-data", dataDir, "-limit", "1000", "-hidden", "16", "-epochs", "2", "-overwrite", "-out", d}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := gogradWith(ctx, func(epoch, batch int) {
		if epoch == 0 && batch == 3 {
			cancel()
		}
	}, args...)
	if r.code != exitInterrupted || !strings.Contains(r.stderr, "the run in "+d+" is unchanged") {
		t.Errorf("interrupted in the first epoch: %v", r)
	}
	if after := runFilesOf(t, d); !maps.Equal(before, after) {
		t.Fatal("an -overwrite interrupted in its first epoch changed the old run")
	}

	r = gograd(append(args, "-lr", "1e30")...)
	if r.code != exitError || !strings.Contains(r.stderr, "training diverged") || !strings.Contains(r.stderr, "is unchanged") {
		t.Errorf("diverged in the first epoch: %v", r)
	}
	if after := runFilesOf(t, d); !maps.Equal(before, after) {
		t.Fatal("an -overwrite that diverged changed the old run")
	}

	// Interrupted in its second epoch, the new run has replaced the old.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	r = gogradWith(ctx, func(epoch, batch int) {
		if epoch == 1 && batch == 2 {
			cancel()
		}
	}, args...)
	if r.code != exitInterrupted || !strings.Contains(r.stdout, "replaced the run in "+d) {
		t.Fatalf("interrupted in the second epoch: %v", r)
	}
	after := runFilesOf(t, d)
	if len(after) != len(runFiles) {
		t.Fatalf("after the first epoch the directory holds %d run files", len(after))
	}
	ck, err := readCheckpoint(filepath.Join(d, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(d, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Epoch != 1 || ck.Batch != 2 || !slices.Equal(ck.Config.Hidden, []int{16}) || f.Metadata["hidden"] != "16" || f.Metadata["epochs"] != "1" {
		t.Errorf("after the replacement: checkpoint epoch %d batch %d hidden %v, model hidden %s epochs %s",
			ck.Epoch, ck.Batch, ck.Config.Hidden, f.Metadata["hidden"], f.Metadata["epochs"])
	}
	if r := gograd("train", "-resume", d); r.code != 0 {
		t.Fatalf("resuming the replaced run: %v", r)
	}
}

// TestDivergedRunKeepsLastGood makes a run diverge in its second epoch and
// checks the message, that the model and checkpoint of epoch 1 stay, and
// that they still load.
func TestDivergedRunKeepsLastGood(t *testing.T) {
	dataDir := mnistDir(t)
	d := filepath.Join(t.TempDir(), "run")
	if r := gograd("train", "-data", dataDir, "-limit", "1000", "-hidden", "16", "-epochs", "1", "-schedule", "none", "-out", d); r.code != 0 {
		t.Fatal(r)
	}
	// The second epoch runs with a learning rate that overflows the weights.
	editCheckpoint(t, d, func(cfg map[string]any) { cfg["epochs"] = 2; cfg["lr"] = 1e30 })
	before := runFilesOf(t, d)
	r := gograd("train", "-resume", d)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != exitError || len(lines) != 1 {
		t.Fatalf("want exit 1 and one line, got %v", r)
	}
	for _, want := range []string{"training diverged", "in epoch 2, batch ", "keeps its last good model (epoch 1) and checkpoint", "lower learning rate", "-lr 1e+30"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("message lacks %q: %s", want, lines[0])
		}
	}
	if after := runFilesOf(t, d); !maps.Equal(before, after) {
		t.Error("the diverged run changed the run files")
	}
	if _, err := readCheckpoint(filepath.Join(d, checkpointFile)); err != nil {
		t.Error(err)
	}
	if r := gograd("eval", "-model", filepath.Join(d, modelFile), "-data", dataDir); r.code != 0 {
		t.Error(r)
	}
}

// TestCheckpointNonFiniteNumbers checks that metrics and the partial epoch
// with NaN and infinities survive a checkpoint's round trip.
func TestCheckpointNonFiniteNumbers(t *testing.T) {
	run, _ := fixtureRun(t)
	ck, err := readCheckpoint(filepath.Join(run, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}
	ck.Metrics[0].TrainLoss = math.NaN()
	ck.Metrics[0].ValAcc = math.Inf(1)
	ck.Metrics[1].Seconds = math.Inf(-1)
	ck.Partial.LossSum = jsonFloat(math.NaN())
	f, err := ck.file()
	if err != nil {
		t.Fatal(err)
	}
	back, err := checkpointFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.Metrics[0].TrainLoss) || !math.IsInf(back.Metrics[0].ValAcc, 1) || !math.IsInf(back.Metrics[1].Seconds, -1) ||
		!math.IsNaN(float64(back.Partial.LossSum)) || back.Metrics[1].TestAcc != ck.Metrics[1].TestAcc {
		t.Errorf("round trip: %+v %+v", back.Metrics, back.Partial)
	}
	for _, bad := range []string{`"NaNx"`, `"1.5"`, `true`} {
		var v jsonFloat
		if err := v.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted as a number", bad)
		}
	}
}

// TestKilledBetweenWrites rebuilds the states that a kill between the
// writes of an epoch leaves, and checks that -resume completes them and
// that the next run removes temporary files.
func TestKilledBetweenWrites(t *testing.T) {
	dataDir := mnistDir(t)
	base := []string{"train", "-data", dataDir, "-limit", "1000", "-hidden", "16", "-schedule", "none"}
	one := filepath.Join(t.TempDir(), "one")
	two := filepath.Join(t.TempDir(), "two")
	if r := gograd(append(base, "-epochs", "1", "-out", one)...); r.code != 0 {
		t.Fatal(r)
	}
	if r := gograd(append(base, "-epochs", "2", "-out", two)...); r.code != 0 {
		t.Fatal(r)
	}
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Killed after the checkpoint of epoch 2, before the model: the other
	// files are those of epoch 1. A temporary file of the model is left.
	d := copyRun(t, one)
	copyFile(filepath.Join(two, checkpointFile), filepath.Join(d, checkpointFile))
	tmp := filepath.Join(d, "."+modelFile+".tmp-12345")
	os.WriteFile(tmp, []byte("half a model"), 0o644)
	r := gograd(append(base, "-epochs", "2", "-out", d)...)
	if r.code != exitError || !strings.Contains(r.stderr, "continue it with -resume") {
		t.Errorf("train -out into the run: %v", r)
	}
	r = gograd("train", "-resume", d)
	if r.code != 0 || !strings.Contains(r.stderr, "rewrote the model and metrics of epoch 2") {
		t.Fatalf("resume: %v", r)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("the temporary file is still there")
	}
	if diff := sameBits(modelTensors(t, filepath.Join(two, modelFile)), modelTensors(t, filepath.Join(d, modelFile))); diff != "" {
		t.Errorf("rewritten model: %s", diff)
	}
	if a, b := metricsWithoutTimes(t, filepath.Join(two, metricsFile)), metricsWithoutTimes(t, filepath.Join(d, metricsFile)); !slices.EqualFunc(a, b, slices.Equal) {
		t.Errorf("rewritten metrics %v, want %v", b, a)
	}
	if r := gograd("train", "-resume", d); !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("resume of the completed run: %v", r)
	}

	// Killed after the first checkpoint: only it is there.
	d = filepath.Join(t.TempDir(), "first")
	os.Mkdir(d, 0o755)
	copyFile(filepath.Join(one, checkpointFile), filepath.Join(d, checkpointFile))
	if r := gograd("train", "-resume", d, "-epochs", "2"); r.code != 0 {
		t.Fatalf("resume from the first checkpoint alone: %v", r)
	}
	if diff := sameBits(modelTensors(t, filepath.Join(two, modelFile)), modelTensors(t, filepath.Join(d, modelFile))); diff != "" {
		t.Errorf("resumed model: %s", diff)
	}
	runFilesOf(t, d)

	// Run files without a checkpoint: the advice is not -resume.
	d = t.TempDir()
	copyFile(filepath.Join(one, modelFile), filepath.Join(d, modelFile))
	r = gograd(append(base, "-epochs", "1", "-out", d)...)
	if r.code != exitError || strings.Contains(r.stderr, "-resume") || !strings.Contains(r.stderr, "-overwrite") {
		t.Errorf("run files without a checkpoint: %v", r)
	}
}

// TestStaleLock checks that a lock file whose holder is gone does not stop
// a run, and that a run leaves no lock file.
func TestStaleLock(t *testing.T) {
	dataDir := mnistDir(t)
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, lockFile), []byte("999999999\n"), 0o644)
	if r := gograd("train", "-data", dataDir, "-limit", "1000", "-hidden", "16", "-epochs", "1", "-out", d); r.code != 0 {
		t.Fatal(r)
	}
	runFilesOf(t, d)
	// A failed run into a new directory leaves no directory behind.
	nd := filepath.Join(t.TempDir(), "new")
	if r := gograd("train", "-data", dataDir, "-limit", "1000", "-hidden", "16", "-lr", "1e30", "-out", nd); r.code != exitError {
		t.Fatal(r)
	}
	if _, err := os.Stat(nd); err == nil {
		t.Errorf("the failed run left %s", nd)
	}
}

// TestEvalNeedsOnlyTestFiles evaluates with a directory that holds only
// the two test files.
func TestEvalNeedsOnlyTestFiles(t *testing.T) {
	run, _ := fixtureRun(t)
	src := mnistDir(t)
	d := t.TempDir()
	matches, _ := filepath.Glob(filepath.Join(src, "t10k-*"))
	if len(matches) != 2 {
		t.Fatalf("test files in %s: %v", src, matches)
	}
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, filepath.Base(m)), b, 0o644)
	}
	r := gograd("eval", "-model", filepath.Join(run, modelFile), "-data", d)
	if r.code != 0 || !strings.Contains(r.stdout, "10000 test images") {
		t.Errorf("eval with the test files only: %v", r)
	}
}

// TestPyTorchStateDict evaluates and predicts with a plain state_dict (no
// metadata) as PyTorch writes it, given -activation, and with one that has
// PyTorch's layer names fc1, fc2 and the activation in its metadata: both
// give the results of the gograd model.
func TestPyTorchStateDict(t *testing.T) {
	run, _ := fixtureRun(t)
	dataDir := mnistDir(t)
	want := gograd("eval", "-model", filepath.Join(run, modelFile), "-data", dataDir)
	if want.code != 0 {
		t.Fatal(want)
	}
	acc := testAccLine.FindString(want.stdout)
	d := t.TempDir()
	plain := writeStateDict(t, run, d, nil)
	r := gograd("eval", "-model", plain, "-data", dataDir, "-activation", "relu")
	if r.code != 0 || testAccLine.FindString(r.stdout) != acc || acc == "" {
		t.Errorf("plain state_dict: %v\nwant %s", r, acc)
	}
	f, err := safetensors.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		f.Tensors[i].Name = strings.NewReplacer("0.", "fc1.", "2.", "fc2.").Replace(f.Tensors[i].Name)
	}
	// The metadata of the README's PyTorch snippet.
	f.Metadata = map[string]string{"format": modelFormat, "activation": "relu"}
	named := filepath.Join(d, "named.safetensors")
	if err := safetensors.WriteFile(named, f); err != nil {
		t.Fatal(err)
	}
	r = gograd("eval", "-model", named, "-data", dataDir)
	if r.code != 0 || testAccLine.FindString(r.stdout) != acc {
		t.Errorf("fc1/fc2 state_dict: %v\nwant %s", r, acc)
	}
	img := writeDigitPNG(t, d, "digit.png", testImage(t, 0), false, 28)
	p1 := gograd("predict", "-model", filepath.Join(run, modelFile), img)
	p2 := gograd("predict", "-model", named, img)
	if p1.code != 0 || p1.stdout != p2.stdout {
		t.Errorf("predict: gograd model %v, state_dict %v", p1, p2)
	}
}

// TestPredictHostileImages checks a dark digit on a transparent background,
// a 100000x1 PNG and a 20000x20000 PNG bomb: the first is classified like
// the plain digit, the others are refused with one line each.
func TestPredictHostileImages(t *testing.T) {
	run, _ := fixtureRun(t)
	d := t.TempDir()
	var plain, clear []string
	for i := range 4 {
		px := testImage(t, i)
		plain = append(plain, writeDigitPNG(t, d, fmt.Sprintf("plain%d.png", i), px, false, 28))
		// Black ink whose opacity is the digit's intensity.
		img := image.NewNRGBA(image.Rect(0, 0, 28, 28))
		for j, v := range px {
			img.SetNRGBA(j%28, j/28, color.NRGBA{0, 0, 0, uint8(math.Round(float64(v) * 255))})
		}
		clear = append(clear, writePNG(t, d, fmt.Sprintf("clear%d.png", i), img))
	}
	model := filepath.Join(run, modelFile)
	a := gograd(append([]string{"predict", "-model", model}, plain...)...)
	b := gograd(append([]string{"predict", "-model", model}, clear...)...)
	al, bl := strings.Split(strings.TrimSpace(a.stdout), "\n"), strings.Split(strings.TrimSpace(b.stdout), "\n")
	if a.code != 0 || b.code != 0 || len(al) != 4 || len(bl) != 4 {
		t.Fatalf("plain: %v\ntransparent: %v", a, b)
	}
	for i := range al {
		top := func(line string) string { return strings.Fields(line)[1] }
		if top(al[i]) != top(bl[i]) || !strings.Contains(bl[i], "inverted") {
			t.Errorf("transparent digit %d: %q, plain %q", i, bl[i], al[i])
		}
	}

	wide := writePNG(t, d, "wide.png", image.NewGray(image.Rect(0, 0, 100000, 1)))
	bomb := filepath.Join(d, "bomb.png")
	if err := os.WriteFile(bomb, pngBomb(t, 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	r := gograd("predict", "-model", model, wide, bomb, plain[0])
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != exitError || len(lines) != 3 || !strings.Contains(lines[0], "wide.png: image too large: 100000x1") ||
		!strings.Contains(lines[1], "bomb.png: image too large: 20000x20000") || !strings.Contains(lines[2], "2 of 3 images") ||
		strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("hostile images: %v", r)
	}
}

func writePNG(t *testing.T, dir, name string, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pngBomb is a side x side grayscale PNG whose pixel data is cut short: its
// header is what a decompression bomb shows, and decoding it would need
// side*side bytes.
func pngBomb(t *testing.T, side int) []byte {
	t.Helper()
	chunk := func(dst []byte, typ string, body []byte) []byte {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
		s := len(dst)
		dst = append(dst, typ...)
		dst = append(dst, body...)
		return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[s:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(side))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(side))
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	b := chunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	b = chunk(b, "IDAT", []byte{0x78, 0x9c, 0x63, 0x00, 0x00})
	return chunk(b, "IEND", nil)
}
