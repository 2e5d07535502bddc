package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/safetensors"
)

// writeGridPNGs writes n 8x8 gray PNGs for each class into dir/<class>/:
// class k is a bright 2x2 square in cell k of a 4x4 grid over dark noise,
// so that up to 16 classes differ.
func writeGridPNGs(t *testing.T, dir string, classes []string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	for k, class := range classes {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		x0, y0 := 2*(k%4), 2*(k/4%4)
		for i := range n {
			img := image.NewGray(image.Rect(0, 0, 8, 8))
			for y := range 8 {
				for x := range 8 {
					v := uint8(rng.IntN(50))
					if x >= x0 && x < x0+2 && y >= y0 && y < y0+2 {
						v = uint8(200 + rng.IntN(56))
					}
					img.SetGray(x, y, color.Gray{Y: v})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, class, fmt.Sprintf("img%02d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An image folder of 13 classes, more than a confusion matrix of digits
// has, trains end to end: the run directory has a confusion plot sized for
// 13 classes and a metrics row, the model file names the 13 classes, eval
// reports every class by name with a 13x13 matrix, predict answers with
// one of the folder's classes, and serve with all 13.
func TestThirteenClassFolder(t *testing.T) {
	classes := []string{"ant", "bat", "cat", "cow", "dog", "eel", "elk", "fox", "gnu", "hen", "owl", "pig", "rat"}
	root := t.TempDir()
	writeGridPNGs(t, filepath.Join(root, "train"), classes, 6, 1)
	writeGridPNGs(t, filepath.Join(root, "test"), classes, 2, 2)
	run := filepath.Join(t.TempDir(), "run")
	r := gograd("train", "-data", root, "-image-size", "8x8", "-model", "fc16,relu,fc", "-batch", "13",
		"-epochs", "1", "-lr", "0.1", "-val", "0", "-out", run)
	if r.code != 0 {
		t.Fatalf("train: %v", r)
	}
	if !strings.Contains(r.stdout, "78 training, 0 validation, 26 test images of 8x8") {
		t.Errorf("train output lacks the image counts:\n%s", r.stdout)
	}
	acc := parsePct(t, doneLine, r.stdout)

	pf, err := os.Open(filepath.Join(run, confusionFile))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(pf)
	pf.Close()
	if err != nil {
		t.Fatalf("%s: %v", confusionFile, err)
	}
	// 6.95x6.45 inches at 120 dots per inch for 13 classes.
	if b := img.Bounds(); b.Dx() != 834 || b.Dy() != 774 {
		t.Errorf("%s is %dx%d, want 834x774", confusionFile, b.Dx(), b.Dy())
	}
	rows := readCSV(t, filepath.Join(run, metricsFile))
	if len(rows) != 2 || len(rows[1]) != len(rows[0]) || rows[1][0] != "1" {
		t.Errorf("metrics.csv: %q, want a header and the row of epoch 1", rows)
	}

	model := filepath.Join(run, modelFile)
	f, err := safetensors.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := json.Marshal(classes)
	for k, v := range map[string]string{"classes": "13", "class_names": string(names), "input": "1,8,8", "layers": "fc16,relu,fc13"} {
		if f.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, f.Metadata[k], v)
		}
	}

	r = gograd("eval", "-model", model)
	if r.code != 0 {
		t.Fatalf("eval: %v", r)
	}
	if got := parsePct(t, testAccLine, r.stdout); got != acc {
		t.Errorf("eval gives %v, train %v", got, acc)
	}
	if !strings.Contains(r.stdout, "class  precision  recall  support  name\n") {
		t.Errorf("eval's table has no name column:\n%s", r.stdout)
	}
	for k, name := range classes {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^ +%d +(-|[0-9.]+%%) +[0-9.]+%% +2  %s$`, k, name))
		if !row.MatchString(r.stdout) {
			t.Errorf("eval has no row for class %d, %s, with its 2 test images:\n%s", k, name, r.stdout)
		}
	}
	header := "true\\pred"
	for k := range classes {
		header += fmt.Sprintf(" %5d", k)
	}
	if !strings.Contains(r.stdout, header+"\n") || !regexp.MustCompile(`(?m)^ +12( +\d+){13}$`).MatchString(r.stdout) {
		t.Errorf("eval has no 13x13 confusion matrix:\n%s", r.stdout)
	}

	r = gograd("predict", "-model", model, filepath.Join(root, "test", "owl", "img00.png"))
	if r.code != 0 {
		t.Fatalf("predict: %v", r)
	}
	m := regexp.MustCompile(`img00.png: (` + strings.Join(classes, "|") + `) \(`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("predict does not name one of the folder's classes: %v", r)
	}

	// serve answers with all 13 classes, labelled with the folder's names,
	// the first the class predict named.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- runCommand(ctx, []string{"serve", "-model", model, "-addr", "127.0.0.1:0"}, &env{stdout: &stdout, stderr: &stderr})
	}()
	url := "http://" + waitListening(t, &stderr, exited)
	body, err := os.ReadFile(filepath.Join(root, "test", "owl", "img00.png"))
	if err != nil {
		t.Fatal(err)
	}
	code, answer := postTo(t, url+"/v1/predict?top_k=20", "image/png", body)
	var a struct {
		Predictions []struct {
			Top []struct {
				Class int
				Label string
			}
		}
	}
	if err := json.Unmarshal(answer, &a); code != 200 || err != nil || len(a.Predictions) != 1 {
		t.Fatalf("serve answered %d %s (%v)", code, answer, err)
	}
	seen := map[int]bool{}
	for _, c := range a.Predictions[0].Top {
		seen[c.Class] = true
		if c.Label != classes[c.Class] {
			t.Errorf("serve labelled class %d %q, want the folder's %q", c.Class, c.Label, classes[c.Class])
		}
	}
	if top := a.Predictions[0].Top; len(top) != 13 || len(seen) != 13 || classes[top[0].Class] != m[1] {
		t.Errorf("serve answered %s; want the 13 classes, %s (%d) first as predict", answer, m[1], slices.Index(classes, m[1]))
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop:\n%s", stderr.String())
	}
}

// train refuses a folder of one class, where there is nothing to learn,
// and one of more classes than a label holds.
func TestFolderClassCount(t *testing.T) {
	one := t.TempDir()
	writeGridPNGs(t, one, []string{"ant"}, 5, 1)
	r := gograd("train", "-data", one, "-image-size", "8x8", "-model", "fc", "-batch", "2", "-epochs", "1", "-out", filepath.Join(t.TempDir(), "run"))
	if r.code == 0 || !strings.Contains(r.stderr, `has only 1 class ["ant"]: a classifier needs at least 2 classes to train`) {
		t.Errorf("train on one class: %v", r)
	}

	many := t.TempDir()
	for k := range data.MaxClasses + 1 {
		if err := os.Mkdir(filepath.Join(many, fmt.Sprintf("c%03d", k)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r = gograd("train", "-data", many, "-image-size", "8x8", "-model", "fc", "-out", filepath.Join(t.TempDir(), "run"))
	if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("has %d classes, more than the %d supported", data.MaxClasses+1, data.MaxClasses)) {
		t.Errorf("train on %d classes: %v", data.MaxClasses+1, r)
	}
}

// bench/torch_load.py prints the report gograd eval prints, line for line,
// for digits, for 13 named classes and for more than it prints as a matrix.
func TestTorchReportClasses(t *testing.T) {
	needTorch(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{10, 13, textMatrixClasses + 1, 100} {
		var names []string
		if n != 10 {
			for k := range n {
				names = append(names, fmt.Sprintf("class %d", k))
			}
		}
		var pred []int
		var labels []uint8
		for range 40 * n {
			k := rng.IntN(n)
			labels = append(labels, uint8(k))
			if rng.IntN(3) == 0 {
				k = rng.IntN(n)
			}
			pred = append(pred, k)
		}
		c := confusion(n, pred, labels)
		var want strings.Builder
		writeReport(&want, c, names)
		rows := make([][]int, n)
		for r := range rows {
			rows[r] = c.counts[r*n : (r+1)*n]
		}
		matrix, _ := json.Marshal(rows)
		namesJSON, _ := json.Marshal(names)
		script := fmt.Sprintf("import json, sys\nimport numpy as np\nsys.path.insert(0, %q)\nimport torch_load\ntorch_load.report(np.array(json.loads(%q), dtype=np.int64), json.loads(%q))\n",
			filepath.Join("..", "..", "bench"), matrix, namesJSON)
		out, err := exec.Command(torchPython, "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%d classes: %v\n%s", n, err, out)
		}
		if string(out) != want.String() {
			t.Errorf("%d classes: torch_load.py's report:\n%s\ngograd's:\n%s", n, out, want.String())
		}
	}
}
