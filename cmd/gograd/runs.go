package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/safetensors"
)

// The files of a run directory.
const (
	modelFile      = "model.safetensors"
	checkpointFile = "checkpoint.safetensors"
	metricsFile    = "metrics.csv"
	curvesFile     = "curves.png"
	confusionFile  = "confusion.png"
)

// runFiles lists every file train writes into a run directory.
var runFiles = []string{modelFile, checkpointFile, metricsFile, curvesFile, confusionFile}

// Metadata format markers.
const (
	modelFormat      = "gograd-mlp-1"
	checkpointFormat = "gograd-checkpoint-1"
)

// arch is a model's architecture, stored in the model file's metadata so
// that eval and predict can rebuild the model from the file alone.
type arch struct {
	In         int
	Hidden     []int
	Out        int
	Activation string
	Dropout    float64
}

func (a arch) String() string {
	s := fmt.Sprintf("%d-", a.In)
	if len(a.Hidden) > 0 {
		s += strings.ReplaceAll(joinInts(a.Hidden), ",", "-") + "-"
	}
	s += fmt.Sprintf("%d %s", a.Out, a.Activation)
	if a.Dropout > 0 {
		s += fmt.Sprintf(", dropout %g", a.Dropout)
	}
	return s
}

// mlp builds the model, initialised from seed.
func (a arch) mlp(dev device.Device, seed uint64) (*nn.Sequential, error) {
	return nn.NewMLP(dev, nn.MLPConfig{In: a.In, Hidden: a.Hidden, Out: a.Out,
		Activation: a.Activation, Dropout: float32(a.Dropout), Seed: seed})
}

func (a arch) metadata() map[string]string {
	return map[string]string{
		"format":     modelFormat,
		"in":         strconv.Itoa(a.In),
		"hidden":     joinInts(a.Hidden),
		"out":        strconv.Itoa(a.Out),
		"activation": a.Activation,
		"dropout":    strconv.FormatFloat(a.Dropout, 'g', -1, 64),
	}
}

// metricsRow is one line of metrics.csv.
type metricsRow struct {
	Epoch         int     `json:"epoch"`
	LR            float64 `json:"lr"`
	TrainLoss     float64 `json:"train_loss"`
	ValAcc        float64 `json:"val_acc"` // meaningless when the run has no validation set
	TestAcc       float64 `json:"test_acc"`
	Seconds       float64 `json:"epoch_seconds"`
	SamplesPerSec float64 `json:"samples_per_sec"`
}

// writeMetrics writes rows as CSV; val_acc is left empty without a
// validation set.
func writeMetrics(w io.Writer, rows []metricsRow, hasVal bool) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"epoch", "lr", "train_loss", "val_acc", "test_acc", "epoch_seconds", "samples_per_sec"}); err != nil {
		return err
	}
	for _, r := range rows {
		val := ""
		if hasVal {
			val = strconv.FormatFloat(r.ValAcc, 'f', 4, 64)
		}
		rec := []string{
			strconv.Itoa(r.Epoch),
			strconv.FormatFloat(r.LR, 'g', 6, 64),
			strconv.FormatFloat(r.TrainLoss, 'f', 6, 64),
			val,
			strconv.FormatFloat(r.TestAcc, 'f', 4, 64),
			strconv.FormatFloat(r.Seconds, 'f', 3, 64),
			strconv.FormatFloat(r.SamplesPerSec, 'f', 0, 64),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// checkpoint is the training state saved after every epoch and on an
// interrupt. With it, a resumed run repeats the rest of the uninterrupted
// run exactly: the batch order of an epoch depends only on the seed and the
// epoch, and dropout masks only on their seeds and call counters.
type checkpoint struct {
	Config       trainConfig
	Epoch        int      // epochs completed
	Batch        int      // batches completed in epoch Epoch (0 at an epoch boundary)
	Steps        int      // optimizer steps taken
	DropoutCalls []uint64 // each dropout layer's call counter, in model order
	Partial      partialEpoch
	Metrics      []metricsRow // one row per completed epoch

	TrainN    int // training examples, to check that a resumed run sees the same data
	WorldSize int // processes that trained the run (-dist); 1 for one

	Model []safetensors.Tensor // the model's state_dict
	Optim map[string][]float32 // the optimizer's buffers
	shape map[string][]int     // the optimizer buffers' shapes, for encoding
}

// jsonFloat is a float64 whose JSON form is a number, or the string "NaN",
// "+Inf" or "-Inf", which JSON numbers cannot express.
type jsonFloat float64

// MarshalJSON writes f as a number, or a string where it is not finite.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte(`"` + strconv.FormatFloat(v, 'g', -1, 64) + `"`), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads a number or one of the strings of MarshalJSON.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(math.IsNaN(v) || math.IsInf(v, 0)) {
			return fmt.Errorf("%q is not a number", s)
		}
		*f = jsonFloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// metricsJSON is metricsRow as the checkpoint stores it.
type metricsJSON struct {
	Epoch         int       `json:"epoch"`
	LR            jsonFloat `json:"lr"`
	TrainLoss     jsonFloat `json:"train_loss"`
	ValAcc        jsonFloat `json:"val_acc"`
	TestAcc       jsonFloat `json:"test_acc"`
	Seconds       jsonFloat `json:"epoch_seconds"`
	SamplesPerSec jsonFloat `json:"samples_per_sec"`
}

// MarshalJSON encodes r, non-finite numbers included.
func (r metricsRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(metricsJSON{r.Epoch, jsonFloat(r.LR), jsonFloat(r.TrainLoss), jsonFloat(r.ValAcc),
		jsonFloat(r.TestAcc), jsonFloat(r.Seconds), jsonFloat(r.SamplesPerSec)})
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (r *metricsRow) UnmarshalJSON(b []byte) error {
	var m metricsJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = metricsRow{m.Epoch, float64(m.LR), float64(m.TrainLoss), float64(m.ValAcc), float64(m.TestAcc),
		float64(m.Seconds), float64(m.SamplesPerSec)}
	return nil
}

// partialEpoch is the progress within an interrupted epoch.
type partialEpoch struct {
	LossSum jsonFloat `json:"loss_sum"` // sum of the batch losses so far
	Seconds jsonFloat `json:"seconds"`  // training time so far
}

// newCheckpoint captures the state of model and opt.
func newCheckpoint(cfg trainConfig, model *nn.Sequential, opt optim.Optimizer) *checkpoint {
	ck := &checkpoint{Config: cfg, Model: nn.StateDict(model), Optim: map[string][]float32{}, shape: map[string][]int{}}
	bufs, steps := opt.State()
	for name, t := range bufs {
		ck.Optim[name] = t.Data()
		ck.shape[name] = t.Shape()
	}
	ck.Steps = steps
	for _, d := range dropouts(model) {
		ck.DropoutCalls = append(ck.DropoutCalls, d.Calls)
	}
	return ck
}

// dropouts returns the dropout layers of model, in order.
func dropouts(model *nn.Sequential) []*nn.Dropout {
	var ds []*nn.Dropout
	for _, m := range model.Modules {
		if d, ok := m.(*nn.Dropout); ok {
			ds = append(ds, d)
		}
	}
	return ds
}

func (ck *checkpoint) file() (*safetensors.File, error) {
	cfg, err := json.Marshal(ck.Config)
	if err != nil {
		return nil, err
	}
	calls, err := json.Marshal(ck.DropoutCalls)
	if err != nil {
		return nil, err
	}
	partial, err := json.Marshal(ck.Partial)
	if err != nil {
		return nil, err
	}
	metrics, err := json.Marshal(ck.Metrics)
	if err != nil {
		return nil, err
	}
	f := &safetensors.File{Metadata: map[string]string{
		"format":         checkpointFormat,
		"config":         string(cfg),
		"epoch":          strconv.Itoa(ck.Epoch),
		"batch":          strconv.Itoa(ck.Batch),
		"steps":          strconv.Itoa(ck.Steps),
		"train_examples": strconv.Itoa(ck.TrainN),
		"dropout_calls":  string(calls),
		"partial":        string(partial),
		"metrics":        string(metrics),
		"world_size":     strconv.Itoa(max(ck.WorldSize, 1)),
	}}
	for _, t := range ck.Model {
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "model." + t.Name, Shape: t.Shape, Data: t.Data})
	}
	for _, name := range slices.Sorted(maps.Keys(ck.Optim)) {
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "optim." + name, Shape: ck.shape[name], Data: ck.Optim[name]})
	}
	return f, nil
}

func (ck *checkpoint) save(path string) error {
	f, err := ck.file()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads and checks the checkpoint at path.
func readCheckpoint(path string) (*checkpoint, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint: %w", err)
	}
	ck, err := checkpointFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return ck, nil
}

func checkpointFromFile(f *safetensors.File) (*checkpoint, error) {
	md := f.Metadata
	if md["format"] != checkpointFormat {
		return nil, fmt.Errorf("not a gograd checkpoint: its metadata has no format %q", checkpointFormat)
	}
	ck := &checkpoint{Optim: map[string][]float32{}, shape: map[string][]int{}}
	for _, field := range []struct {
		key string
		dst any
	}{
		{"config", &ck.Config},
		{"epoch", &ck.Epoch},
		{"batch", &ck.Batch},
		{"steps", &ck.Steps},
		{"train_examples", &ck.TrainN},
		{"dropout_calls", &ck.DropoutCalls},
		{"partial", &ck.Partial},
		{"metrics", &ck.Metrics},
	} {
		v, ok := md[field.key]
		if !ok {
			return nil, fmt.Errorf("metadata has no %q", field.key)
		}
		if err := json.Unmarshal([]byte(v), field.dst); err != nil {
			return nil, fmt.Errorf("metadata %q: %v", field.key, err)
		}
	}
	if ck.Epoch < 0 || ck.Batch < 0 || ck.Steps < 0 || len(ck.Metrics) != ck.Epoch {
		return nil, fmt.Errorf("inconsistent metadata: epoch %d, batch %d, steps %d, %d metrics rows",
			ck.Epoch, ck.Batch, ck.Steps, len(ck.Metrics))
	}
	if err := ck.Config.validate(); err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	var err error
	if ck.WorldSize, err = worldSizeOf(md); err != nil {
		return nil, err
	}
	if err := ck.checkProgress(); err != nil {
		return nil, err
	}
	for _, t := range f.Tensors {
		switch name, ok := strings.CutPrefix(t.Name, "model."); {
		case ok:
			ck.Model = append(ck.Model, safetensors.Tensor{Name: name, Shape: t.Shape, Data: t.Data})
		default:
			name, ok := strings.CutPrefix(t.Name, "optim.")
			if !ok {
				return nil, fmt.Errorf("unexpected tensor %q", t.Name)
			}
			ck.Optim[name] = t.Data
			ck.shape[name] = t.Shape
		}
	}
	return ck, nil
}

// checkProgress checks the position of ck against its configuration and
// its training set: an epoch has TrainN/Batch batches (the last partial
// one dropped), and every batch is one optimizer step.
func (ck *checkpoint) checkProgress() error {
	perEpoch := globalBatches(ck.TrainN, ck.Config.Batch, ck.WorldSize)
	switch {
	case ck.TrainN < 1 || perEpoch < 1:
		return fmt.Errorf("metadata train_examples=%d: fewer than one batch of %d", ck.TrainN, ck.Config.Batch)
	case ck.Epoch > ck.Config.Epochs:
		return fmt.Errorf("metadata epoch=%d: beyond the run's %d epochs", ck.Epoch, ck.Config.Epochs)
	case ck.Batch >= perEpoch || (ck.Batch > 0 && ck.Epoch == ck.Config.Epochs):
		return fmt.Errorf("metadata batch=%d: epoch %d has only %d batches (%d examples, batch %d)",
			ck.Batch, ck.Epoch+1, perEpoch, ck.TrainN, ck.Config.Batch)
	case ck.Steps != ck.Epoch*perEpoch+ck.Batch:
		return fmt.Errorf("metadata steps=%d: epoch %d, batch %d of %d per epoch means %d steps",
			ck.Steps, ck.Epoch, ck.Batch, perEpoch, ck.Epoch*perEpoch+ck.Batch)
	}
	return nil
}

// wantOptimBuffers lists the buffers that an optimizer of cfg holds for n
// parameters once it has taken a step.
func wantOptimBuffers(cfg trainConfig, n int) []string {
	var kinds []string
	switch {
	case cfg.Optimizer == "adam" || cfg.Optimizer == "adamw":
		kinds = []string{"exp_avg", "exp_avg_sq"}
	case cfg.Momentum > 0:
		kinds = []string{"momentum_buffer"}
	}
	var names []string
	for i := range n {
		for _, k := range kinds {
			names = append(names, fmt.Sprintf("%d.%s", i, k))
		}
	}
	return names
}

// restore loads the checkpoint's weights, optimizer state and dropout
// counters into model and opt, which must have been built from ck.Config.
func (ck *checkpoint) restore(model *nn.Sequential, opt optim.Optimizer) error {
	if err := nn.LoadStateDict(model, &safetensors.File{Tensors: ck.Model}); err != nil {
		return err
	}
	if ck.Steps > 0 {
		var missing []string
		for _, name := range wantOptimBuffers(ck.Config, len(model.Parameters())) {
			if _, ok := ck.Optim[name]; !ok {
				missing = append(missing, "optim."+name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("after %d steps of %s the optimizer state must hold %s, but it lacks %s",
				ck.Steps, ck.Config.Optimizer, plural(len(wantOptimBuffers(ck.Config, len(model.Parameters()))), "buffer"), strings.Join(missing, ", "))
		}
	}
	if err := opt.SetState(ck.Optim, ck.Steps); err != nil {
		return err
	}
	ds := dropouts(model)
	if len(ds) != len(ck.DropoutCalls) {
		return fmt.Errorf("checkpoint has %d dropout counters, the model has %d dropout layers", len(ck.DropoutCalls), len(ds))
	}
	for i, d := range ds {
		d.Calls = ck.DropoutCalls[i]
	}
	return nil
}

// existingRunFiles lists the run files present in dir.
func existingRunFiles(dir string) ([]string, error) {
	var found []string
	for _, name := range runFiles {
		_, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err == nil:
			found = append(found, name)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return found, nil
}

// pct formats a fraction as a percentage with two decimals.
func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(100*f, 'f', 2, 64) + "%"
}
