package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gograd/gograd/autograd"
	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/dist"
	"github.com/gograd/gograd/internal/atomicfile"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/optim"
	"github.com/gograd/gograd/safetensors"
	"github.com/gograd/gograd/tensor"
)

// trainConfig is everything that determines a training run's result. It is
// saved in the checkpoint, so that a resumed run continues the same run.
type trainConfig struct {
	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	Hidden      []int   `json:"hidden"`
	Activation  string  `json:"activation"`
	Optimizer   string  `json:"optimizer"`
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	Nesterov    bool    `json:"nesterov"`
	Schedule    string  `json:"schedule"`
	StepSize    int     `json:"step_size"`
	Gamma       float64 `json:"gamma"`
	Dropout     float64 `json:"dropout"`
	Seed        uint64  `json:"seed"`
	Val         float64 `json:"val"`
	Limit       int     `json:"limit"`
	Data        string  `json:"data"` // as given; empty for the default
	// Model is -model: mlp (or empty, in a checkpoint written before
	// -model), lenet5, cnn or a layer spec.
	Model     string    `json:"model,omitempty"`
	ImageSize imageSize `json:"image_size,omitzero"`
	Channels  int       `json:"channels,omitempty"`
	Augment   string    `json:"augment,omitempty"`
}

// Defaults of the train flags. With them, `gograd train` reaches 98% test
// accuracy on MNIST within its 10 epochs.
const (
	defaultEpochs   = 10
	defaultBatch    = 128
	defaultLRSGD    = 0.1
	defaultLRAdam   = 0.001
	defaultMomentum = 0.9
	defaultWDAdamW  = 0.01
	defaultSchedule = "cosine"
	defaultStepSize = 5
	defaultGamma    = 0.1
	defaultVal      = 0.1
	defaultSeed     = 1
)

// validate checks the ranges of the settings.
func (c *trainConfig) validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("-epochs %d: want at least 1", c.Epochs)
	case c.Batch < 1:
		return fmt.Errorf("-batch %d: want at least 1", c.Batch)
	case len(c.Hidden) == 0 && c.isMLP():
		return errors.New("-hidden: want at least one hidden layer width")
	case c.Channels != 0 && c.Channels != 1 && c.Channels != 3:
		return fmt.Errorf("-channels %d: want 1 (gray) or 3 (RGB)", c.Channels)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("-lr %v: want a positive learning rate", c.LR)
	case math.IsInf(float64(float32(c.LR)), 0) || float32(c.LR) == 0:
		return fmt.Errorf("-lr %v: outside the range of float32, the type of the weights (want about 1e-38 to 1e38)", c.LR)
	case math.IsInf(float64(float32(c.WeightDecay)), 0):
		return fmt.Errorf("-weight-decay %v: outside the range of float32", c.WeightDecay)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("-momentum %v: want a value in [0, 1)", c.Momentum)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("-weight-decay %v: want a value >= 0", c.WeightDecay)
	case c.StepSize < 1:
		return fmt.Errorf("-step-size %d: want at least 1", c.StepSize)
	case !(c.Gamma > 0 && c.Gamma <= 1):
		return fmt.Errorf("-gamma %v: want a value in (0, 1]", c.Gamma)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("-dropout %v: want a probability in [0, 1)", c.Dropout)
	case !(c.Val >= 0 && c.Val < 1):
		return fmt.Errorf("-val %v: want a fraction in [0, 1)", c.Val)
	case c.Limit < 0:
		return fmt.Errorf("-limit %d: want 0 (all) or more", c.Limit)
	}
	for _, h := range c.Hidden {
		if h < 1 {
			return fmt.Errorf("-hidden %s: widths must be positive", joinInts(c.Hidden))
		}
	}
	if !c.isMLP() {
		if _, ok := namedModels[c.Model]; !ok {
			if _, err := parseSpec(c.Model); err != nil {
				return fmt.Errorf("-model %q: want %s or a layer spec: %v", c.Model, orList(modelNames), err)
			}
		}
	}
	if _, err := augmentation(c.Augment, c.Seed); err != nil {
		return err
	}
	switch c.Activation {
	case "relu", "sigmoid", "tanh":
	default:
		return fmt.Errorf("-activation %q: want relu, sigmoid or tanh", c.Activation)
	}
	switch c.Optimizer {
	case "sgd":
	case "adam", "adamw":
		if c.Nesterov {
			return fmt.Errorf("-nesterov applies to -optimizer sgd only")
		}
	default:
		return fmt.Errorf("-optimizer %q: want sgd, adam or adamw", c.Optimizer)
	}
	if c.Nesterov && c.Momentum == 0 {
		return errors.New("-nesterov needs a -momentum above 0")
	}
	switch c.Schedule {
	case "none", "step", "cosine", "cosine-batch":
	default:
		return fmt.Errorf("-schedule %q: want none, step or cosine", c.Schedule)
	}
	return nil
}

// schedule returns the learning rate schedule.
func (c *trainConfig) schedule() optim.Schedule {
	lr := float32(c.LR)
	switch c.Schedule {
	case "step":
		return optim.StepLR{Base: lr, StepSize: c.StepSize, Gamma: float32(c.Gamma)}
	case "cosine", "cosine-batch":
		// cosine-batch: the rate of each epoch's first batch; train sets
		// the others.
		return optim.CosineAnnealing{Base: lr, TMax: c.Epochs}
	}
	return optim.Constant{Base: lr}
}

// optimizer returns the optimizer over model's parameters.
func (c *trainConfig) optimizer(model nn.Module) (optim.Optimizer, error) {
	params := nn.Vars(model.Parameters())
	switch c.Optimizer {
	case "adam":
		return optim.NewAdam(params, optim.AdamConfig{LR: float32(c.LR), WeightDecay: float32(c.WeightDecay)})
	case "adamw":
		return optim.NewAdamW(params, optim.AdamConfig{LR: float32(c.LR), WeightDecay: float32(c.WeightDecay)})
	}
	return optim.NewSGD(params, optim.SGDConfig{LR: float32(c.LR), Momentum: float32(c.Momentum),
		WeightDecay: float32(c.WeightDecay), Nesterov: c.Nesterov})
}

func (c *trainConfig) arch(in, out int) arch {
	return arch{In: in, Hidden: c.Hidden, Out: out, Activation: c.Activation, Dropout: c.Dropout}
}

// isMLP reports whether the model is the MLP of -hidden.
func (c *trainConfig) isMLP() bool { return c.Model == "" || c.Model == "mlp" }

func (c *trainConfig) describe() string {
	s := fmt.Sprintf("%s lr %g", c.Optimizer, c.LR)
	if c.Optimizer == "sgd" {
		s += fmt.Sprintf(" momentum %g", c.Momentum)
		if c.Nesterov {
			s += " (Nesterov)"
		}
	}
	if c.WeightDecay > 0 {
		s += fmt.Sprintf(" weight decay %g", c.WeightDecay)
	}
	switch c.Schedule {
	case "cosine":
		s += fmt.Sprintf(", cosine schedule over %d epochs", c.Epochs)
	case "cosine-batch":
		s += fmt.Sprintf(", cosine schedule over the batches of %d epochs", c.Epochs)
	case "step":
		s += fmt.Sprintf(", lr x%g every %d epochs", c.Gamma, c.StepSize)
	}
	return s + fmt.Sprintf(", batch %d, seed %d", c.Batch, c.Seed)
}

const trainExamples = `  gograd train -out runs/mnist
      train with the defaults (about 98.4% test accuracy after 10 epochs)
  gograd train -optimizer adam -dropout 0.2 -epochs 20 -out runs/adam
  gograd train -hidden 128 -activation tanh -schedule step -step-size 3 -gamma 0.5
  gograd train -limit 5000 -epochs 1 -out /tmp/smoke
      a quick smoke run on the first 5000 training images
  gograd train -resume runs/mnist
      continue an interrupted run where it stopped, with its own settings
  gograd train -resume runs/adam -epochs 30
      train a finished run (without a cosine schedule) for more epochs

Ctrl-C (or SIGTERM) stops at the end of the current batch and saves the
training state; -resume then continues exactly where it stopped, and gives the
same weights as a run that was never interrupted.
`

// resumeFlags are the flags that -resume accepts; every other setting
// comes from the checkpoint.
var resumeFlags = map[string]bool{"resume": true, "epochs": true, "device": true, "data": true,
	"dist": true, "dist-timeout": true}

func trainCommand(ctx context.Context, args []string, e *env) (err error) {
	fs := newCommand("train", "train [flags]", trainExamples, e)
	dev := newChoice("cpu", "cpu", "cuda", "auto")
	fs.Var(dev, "device", "where to train: `cpu|cuda|auto` (auto: cuda in a build with -tags cuda, else cpu)")
	var cfg trainConfig
	fs.IntVar(&cfg.Epochs, "epochs", defaultEpochs, "number of passes over the training set")
	fs.IntVar(&cfg.Batch, "batch", defaultBatch, "mini-batch size (the last partial batch of an epoch is dropped)")
	hidden := intList{512, 256}
	fs.Var(&hidden, "hidden", "hidden layer `widths`, comma-separated")
	act := newChoice("relu", "relu", "sigmoid", "tanh")
	fs.Var(act, "activation", "hidden layer activation: `relu|sigmoid|tanh`")
	opt := newChoice("sgd", "sgd", "adam", "adamw")
	fs.Var(opt, "optimizer", "optimizer: `sgd|adam|adamw`")
	fs.Float64Var(&cfg.LR, "lr", 0, fmt.Sprintf("learning rate (default %g for sgd, %g for adam and adamw)", defaultLRSGD, defaultLRAdam))
	fs.Float64Var(&cfg.Momentum, "momentum", defaultMomentum, "SGD momentum")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", 0, fmt.Sprintf("L2 penalty; decoupled for adamw (default 0, %g for adamw)", defaultWDAdamW))
	fs.BoolVar(&cfg.Nesterov, "nesterov", false, "use Nesterov momentum (sgd)")
	sched := newChoice(defaultSchedule, "none", "step", "cosine", "cosine-batch")
	fs.Var(sched, "schedule", "learning rate schedule: `none|step|cosine|cosine-batch` (step: x gamma every step-size epochs; cosine: to 0 over the epochs; cosine-batch: the same curve, updated every batch)")
	fs.IntVar(&cfg.StepSize, "step-size", defaultStepSize, "epochs between learning rate drops of -schedule step")
	fs.Float64Var(&cfg.Gamma, "gamma", defaultGamma, "learning rate factor of -schedule step")
	fs.Float64Var(&cfg.Dropout, "dropout", 0, "dropout probability after each hidden activation of -model mlp")
	fs.StringVar(&cfg.Model, "model", "mlp", "the network: `mlp|lenet5|cnn|SPEC`, where mlp is made by -hidden, -activation and -dropout, and SPEC is a layer spec such as conv32k3p1,bn,relu,pool2,flatten,fc128,relu,fc (see the README)")
	fs.Var(&cfg.ImageSize, "image-size", "size `HxW` the images of an image folder are resized to (default 28x28)")
	fs.IntVar(&cfg.Channels, "channels", 0, "channels of an image folder's images: `1|3`, gray or RGB (default 1)")
	fs.StringVar(&cfg.Augment, "augment", "", "training augmentation: `none|cropN[,flip]` (default none): random crops with N pixels of zero padding, random horizontal flips (leave flip off for digits)")
	fs.Uint64Var(&cfg.Seed, "seed", defaultSeed, "seeds the initialisation, the validation split, the batch order and dropout")
	fs.StringVar(&cfg.Data, "data", "", "training data: `mnist|fashion-mnist|DIR`, where DIR holds the four MNIST-layout IDX files or is an image folder (DIR/train/<class>/*.png and DIR/test/<class>/*.png, or DIR/<class>/*.png split by the seed) (default: MNIST, from $MNIST_DIR or the GoMNIST module in the Go module cache)")
	fs.Float64Var(&cfg.Val, "val", defaultVal, "fraction of the training set held out for validation")
	fs.IntVar(&cfg.Limit, "limit", 0, "use only `N` training images (0: all), for quick runs: the first N of IDX files, N drawn by -seed from an image folder (whose files come in class order)")
	out := fs.String("out", "", "run `directory` to write (default runs/<date>-<time>)")
	overwrite := fs.Bool("overwrite", false, "replace a run already in -out")
	resume := fs.String("resume", "", "continue the run in `directory` from its checkpoint")
	df := addDistFlags(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.usagef("unexpected argument %q (train takes only flags)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// -dist: the communicator, before the device (see dist.go).
	job, e, err := openJob(df, dev.value, fs, set, e)
	if err != nil {
		return err
	}
	defer job.close(&err)

	var ck *checkpoint
	dir := *out
	if *resume != "" {
		var bad []string
		fs.Visit(func(f *flag.Flag) {
			if !resumeFlags[f.Name] {
				bad = append(bad, "-"+f.Name)
			}
		})
		if len(bad) > 0 {
			return fs.usagef("%s cannot be used with -resume: a resumed run keeps the settings in its checkpoint (only -epochs, -device, -data, -dist and -dist-timeout may be given)", strings.Join(bad, ", "))
		}
		if fi, err := os.Stat(*resume); err == nil && fi.IsDir() && job.leader() {
			release, err := lockRun(*resume)
			if err != nil {
				return err
			}
			defer release()
			if err := tidyRun(*resume, e.note); err != nil {
				return err
			}
		}
		// The other ranks read the checkpoint once rank 0 has tidied the run.
		if err := job.agree(nil); err != nil {
			return err
		}
		var err error
		if ck, err = readCheckpoint(filepath.Join(*resume, checkpointFile)); err != nil {
			return err
		}
		if err := job.checkWorldSize(fs, ck, *resume); err != nil {
			return err
		}
		epochs := cfg.Epochs
		data := cfg.Data
		cfg = ck.Config
		if set["data"] {
			cfg.Data = data
		}
		if set["epochs"] && epochs != cfg.Epochs {
			if epochs < ck.Epoch {
				return fs.usagef("-epochs %d: the run in %s has already trained %d epochs", epochs, *resume, ck.Epoch)
			}
			if cfg.Schedule == "cosine" || cfg.Schedule == "cosine-batch" {
				return fs.usagef("-epochs %d: the run in %s anneals its learning rate to 0 over %d epochs (-schedule cosine), so it cannot be extended; start a new run instead", epochs, *resume, cfg.Epochs)
			}
			cfg.Epochs = epochs
		}
		dir = *resume
		if ck.Epoch >= cfg.Epochs && runUpToDate(dir, ck) {
			fmt.Fprintf(e.stdout, "The run in %s has finished its %d epochs; nothing to do.\n", dir, cfg.Epochs)
			return nil
		}
	} else {
		if cfg.Model == "mlp" {
			cfg.Model = "" // as before -model, so that an MLP's checkpoint is unchanged
		}
		cfg.Hidden = hidden
		cfg.Activation = act.value
		cfg.Optimizer = opt.value
		cfg.Schedule = sched.value
		if !set["lr"] {
			cfg.LR = defaultLRSGD
			if cfg.Optimizer != "sgd" {
				cfg.LR = defaultLRAdam
			}
		}
		if !set["weight-decay"] && cfg.Optimizer == "adamw" {
			cfg.WeightDecay = defaultWDAdamW
		}
		if cfg.Optimizer != "sgd" && (set["momentum"] || set["nesterov"]) {
			return fs.usagef("-momentum and -nesterov apply to -optimizer sgd only")
		}
		if err := cfg.validate(); err != nil {
			return fs.usagef("%v", err)
		}
		if dir == "" {
			dir = filepath.Join("runs", time.Now().Format("20060102-150405"))
		}
		if err := job.refuseExisting(dir, *overwrite); err != nil {
			return err
		}
	}

	d, err := job.openDevice(dev.value)
	if err != nil {
		return err
	}
	defer job.closeDevice(d, &err)
	t := &trainer{cfg: cfg, dir: dir, dev: d, env: e, resume: ck, job: job}
	if err := t.load(); err != nil {
		return err
	}
	if err := checkTrainMemory(&cfg, t.train, t.desc); err != nil {
		return err
	}
	if ck == nil && job.leader() {
		// A new run: create and lock its directory, and check again, now
		// that no other train can write there, that it holds no run.
		release, err := prepareNewRun(t, *overwrite)
		if err != nil {
			return err
		}
		defer release()
	}
	var runErr error
	catchErr := tensor.Catch(func() { runErr = t.run(ctx) })
	t.release()
	return cmp.Or(catchErr, runErr)
}

// openDevice opens the named device, explaining a missing CUDA backend.
func openDevice(name string) (device.Device, error) {
	d, err := device.Open(name)
	if errors.Is(err, device.ErrNoCUDA) {
		return nil, fmt.Errorf("-device %s: this gograd binary was built without CUDA; rebuild with -tags cuda (see the README) on a machine with an NVIDIA GPU", name)
	}
	if err != nil {
		return nil, fmt.Errorf("-device %s: %w", name, err)
	}
	return d, nil
}

// closeDevice releases d, if it holds resources beyond memory (a CUDA
// context), reporting a failure in *err unless it already holds one.
func closeDevice(d device.Device, err *error) {
	if c, ok := d.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("closing device %s: %w", d.Name(), cerr)
		}
	}
}

// deviceName describes d for the log.
func deviceName(d device.Device) string {
	if c, ok := d.(interface{ Threads() int }); ok {
		return fmt.Sprintf("%s (%d threads)", d.Name(), c.Threads())
	}
	return d.Name()
}

// trainer holds a training run: its data and model on the device.
type trainer struct {
	cfg    trainConfig
	dir    string
	dev    device.Device
	env    *env
	resume *checkpoint
	job    *job               // the processes of a -dist job; one otherwise
	dp     *dist.DataParallel // averages the gradients in a -dist job
	waited time.Duration      // dp's wait time at the end of the last epoch
	// commitTo is the run directory that an -overwrite run replaces once
	// its first epoch is saved in dir, a staging directory; empty otherwise.
	commitTo string
	// saved is the last epoch whose model and checkpoint are on disk.
	saved int

	dataDir          string
	train, val, test *data.Set
	desc             *modelDesc
	aug              *data.Augment
	// at is the epoch and batch of the step, which the augmentation of
	// its batch depends on; hostX and augX hold that batch on the host.
	at          [2]int
	hostX, augX []float32

	model *nn.Sequential
	opt   optim.Optimizer

	// On the device: every training image and label, the evaluation sets,
	// and the reused batch buffers.
	images, labels *tensor.Tensor
	valX, testX    *tensor.Tensor
	xb, yb, idx    *tensor.Tensor
	lossSum        *tensor.Tensor
	hostIdx        []float32
}

// load reads the data, checks that there is at least one batch, and
// checks a resumed run's data.
func (t *trainer) load() error {
	ds, err := resolveData(t.cfg.Data, folderOptions(t.cfg.ImageSize, t.cfg.Channels, t.cfg.Seed), t.env.stderr)
	if err != nil {
		return err
	}
	train, test, dir := ds.Train, ds.Test, ds.Dir
	t.dataDir = dir
	if n := train.NumClasses(); n < 2 {
		// The cross-entropy of one output is always 0: nothing is learnt.
		return fmt.Errorf("%s has only %d class %q: a classifier needs at least 2 classes to train", dir, n, train.Classes)
	}
	if !t.cfg.isMLP() {
		// An MLP's memory is checked before its spec (checkTrainMemory).
		if err := t.describe(train); err != nil {
			return err
		}
	}
	if t.aug, err = augmentation(t.cfg.Augment, t.cfg.Seed); err != nil {
		return err
	}
	if t.cfg.Limit > 0 {
		if ds.Name == "folder" { // in class order: draw the images
			train = data.Sample(train, t.cfg.Limit, t.cfg.Seed)
		} else {
			train = train.Subset(t.cfg.Limit)
		}
	}
	t.train, t.val = data.Split(train, t.cfg.Val, t.cfg.Seed)
	t.test = test
	if t.train.N < t.cfg.Batch {
		return fmt.Errorf("the training set has %d images, fewer than one batch of %d", t.train.N, t.cfg.Batch)
	}
	if t.resume != nil && t.resume.TrainN != t.train.N {
		return fmt.Errorf("the run in %s was trained on %d images, but %s gives %d: resume with the same -data", t.dir, t.resume.TrainN, dir, t.train.N)
	}
	return nil
}

// release frees the device memory of the run.
func (t *trainer) release() {
	for _, x := range []*tensor.Tensor{t.images, t.labels, t.valX, t.testX, t.xb, t.yb, t.idx, t.lossSum} {
		x.Free()
	}
	if t.opt != nil {
		bufs, _ := t.opt.State()
		for _, b := range bufs {
			b.Free()
		}
	}
	if t.model != nil {
		for _, p := range t.model.Parameters() {
			p.Free()
		}
		for _, b := range nn.Buffers(t.model) {
			b.Value.Free()
		}
	}
}

// run trains the remaining epochs, saving the run directory after each.
func (t *trainer) run(ctx context.Context) error {
	cfg := &t.cfg
	dim := t.train.Dim()
	if t.desc == nil {
		if err := t.describe(t.train); err != nil {
			return err
		}
	}
	a := t.desc
	var err error
	if t.model, err = a.build(t.dev, cfg.Seed); err != nil {
		return err
	}
	if t.opt, err = cfg.optimizer(t.model); err != nil {
		return err
	}
	start := 0
	if ck := t.resume; ck != nil {
		if err := ck.restore(t.model, t.opt); err != nil {
			return fmt.Errorf("checkpoint %s: %w", filepath.Join(t.dir, checkpointFile), err)
		}
		start = ck.Epoch
		t.saved = ck.Epoch
	}
	if err := t.startDataParallel(); err != nil {
		return err
	}
	batches, err := t.job.batches(t.train.N, cfg.Batch, cfg.Seed)
	if err != nil {
		return err
	}
	ranks := t.job.size()

	w := t.env.stdout
	fmt.Fprintf(w, "device: %s\n", deviceName(t.dev))
	valN := 0
	if t.val != nil {
		valN = t.val.N
	}
	fmt.Fprintf(w, "data: %s: %d training, %d validation, %d test images of %s\n",
		t.dataDir, t.train.N, valN, t.test.N, imageShape(t.train))
	if t.aug != nil {
		fmt.Fprintf(w, "augmentation: %s\n", describeAugment(t.aug))
	}
	fmt.Fprintf(w, "model: %s, %d parameters\n%v\n", a, nn.NumParams(t.model), t.model)
	fmt.Fprintf(w, "training: %s\n", cfg.describe())
	t.describeJob(w)
	if t.resume != nil {
		fmt.Fprintf(w, "resuming %s at epoch %d, batch %d of %d\n", t.dir, start+1, t.resume.Batch, batches.Len())
	} else if t.commitTo != "" {
		fmt.Fprintf(w, "run directory: %s (replacing its run after the first epoch)\n", t.commitTo)
	} else {
		fmt.Fprintf(w, "run directory: %s\n", t.dir)
	}

	// The data goes to the device once; batches are gathered there. The
	// device takes the host arrays over (the CPU uses them in place), so that
	// the images are not held twice.
	t.images = tensor.Adopt(t.dev, t.train.Images, t.train.N, dim)
	t.labels = tensor.Adopt(t.dev, labelsOf(t.train), t.train.N)
	t.train.Images = nil
	if t.val != nil {
		t.valX = tensor.Adopt(t.dev, t.val.Images, t.val.N, dim)
		t.val.Images = nil
	}
	t.testX = tensor.Adopt(t.dev, t.test.Images, t.test.N, dim)
	t.test.Images = nil
	t.xb = tensor.New(t.dev, cfg.Batch, dim)
	t.yb = tensor.New(t.dev, cfg.Batch)
	t.idx = tensor.New(t.dev, cfg.Batch)
	t.lossSum = tensor.Zeros(t.dev)
	t.hostIdx = make([]float32, cfg.Batch)

	var metrics []metricsRow
	if ck := t.resume; ck != nil {
		metrics = ck.Metrics
		if !runUpToDate(t.dir, ck) {
			// A kill between the checkpoint and the other files of an
			// epoch left them behind; the checkpoint has what they need.
			if err := t.saveRun(ck, confusion(t.desc.In.Classes, predictAll(t.model, t.testX), t.test.Labels)); err != nil {
				return err
			}
			t.env.note(fmt.Sprintf("rewrote the model and metrics of epoch %d in %s, which an interruption had left behind the checkpoint", ck.Epoch, t.dir))
		}
	}
	runStart := time.Now()
	// Each step is a pass on the tape: its nodes live in one slab and its
	// buffers return to the device pool when Backward ends, and the input
	// leaf always holds the batch buffer, so a step allocates almost
	// nothing.
	tape := autograd.NewTape()
	defer tape.Free()
	x := tape.Var(t.xb, false)
	for epoch := start; epoch < cfg.Epochs; epoch++ {
		lr := cfg.schedule().LR(epoch)
		t.opt.SetLR(lr)
		order := batches.Epoch(epoch)
		first, prior := 0, partialEpoch{}
		if ck := t.resume; ck != nil && epoch == ck.Epoch {
			first, prior = ck.Batch, ck.Partial
		}
		t.lossSum.Fill(float32(prior.LossSum))
		label := fmt.Sprintf("epoch %d/%d", epoch+1, cfg.Epochs)
		bar := newProgress(t.env.stderr, label, len(order)*cfg.Batch*ranks, first*cfg.Batch*ranks)
		began := time.Now()
		for b := first; b < len(order); b++ {
			stop, err := t.stopAt(ctx, epoch, b)
			if err != nil {
				bar.finish()
				return err
			}
			if stop {
				bar.finish()
				return t.interrupted(epoch, b, float64(prior.Seconds)+time.Since(began).Seconds(), metrics)
			}
			t.at = [2]int{epoch, b}
			if cfg.Schedule == "cosine-batch" {
				t.opt.SetLR(batchCosine(cfg.LR, epoch*len(order)+b, cfg.Epochs*len(order)))
			}
			if err := t.step(x, order[b]); err != nil {
				bar.finish()
				return err
			}
			if err := t.checkLoss(epoch, b, len(order)); err != nil {
				bar.finish()
				return err
			}
			if t.env.onStep != nil {
				t.env.onStep(epoch, b+1)
			}
			loss := -1.0
			if bar.wantsLoss() {
				loss = float64(t.lossSum.Item()) / float64(b+1)
			}
			bar.add(cfg.Batch*ranks, loss)
		}
		if err := t.dev.Sync(); err != nil {
			bar.finish()
			return err
		}
		seconds := float64(prior.Seconds) + time.Since(began).Seconds()
		bar.finish()
		if err := t.endEpoch(epoch, len(order)); err != nil {
			return err
		}
		row := metricsRow{Epoch: epoch + 1, LR: float64(lr), TrainLoss: float64(t.lossSum.Item()) / float64(len(order)), Seconds: seconds,
			SamplesPerSec: float64(len(order)*cfg.Batch*ranks) / seconds}
		if t.val != nil {
			row.ValAcc = accuracy(predictAll(t.model, t.valX), t.val.Labels)
		}
		testPred := predictAll(t.model, t.testX)
		row.TestAcc = accuracy(testPred, t.test.Labels)
		metrics = append(metrics, row)
		fmt.Fprintf(w, "epoch %*d/%d  lr %.4g  loss %.4f  val %s  test %s  %.1fs  %.0f samples/s\n",
			len(fmt.Sprint(cfg.Epochs)), row.Epoch, cfg.Epochs, row.LR, row.TrainLoss, valText(row, t.val != nil),
			pct(row.TestAcc), row.Seconds, row.SamplesPerSec)
		ck := newCheckpoint(*cfg, t.model, t.opt)
		ck.Epoch, ck.Metrics, ck.TrainN = epoch+1, metrics, t.train.N
		ck.WorldSize = ranks
		if err := t.job.agree(t.saveRun(ck, confusion(t.desc.In.Classes, testPred, t.test.Labels))); err != nil {
			return err
		}
		t.saved = epoch + 1
		if t.commitTo != "" {
			if err := t.commit(); err != nil {
				return err
			}
		}
	}
	last := metrics[len(metrics)-1]
	fmt.Fprintf(w, "done: test accuracy %s after %s (%s this session)\n", pct(last.TestAcc), plural(cfg.Epochs, "epoch"),
		time.Since(runStart).Round(time.Second))
	fmt.Fprintf(w, "wrote %s: %s\n", t.dir, strings.Join(runFiles, ", "))
	return nil
}

// plural formats n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func valText(r metricsRow, hasVal bool) string {
	if !hasVal {
		return "-"
	}
	return pct(r.ValAcc)
}

// step trains on the examples idx: forward, loss, backward, update.
func (t *trainer) step(x *autograd.Var, idx []int) error {
	for i, j := range idx {
		t.hostIdx[i] = float32(j)
	}
	t.idx.CopyFrom(t.hostIdx)
	tensor.GatherInto(t.xb, t.images, t.idx)
	tensor.GatherInto(t.yb, t.labels, t.idx)
	if t.aug != nil {
		t.augment()
	}
	logits := t.model.Forward(x)
	loss := nn.CrossEntropyLoss(logits, t.yb)
	if err := loss.Backward(); err != nil {
		return err
	}
	t.lossSum.AddInPlace(loss.Value)
	loss.Value.Free()
	if err := t.syncGrads(); err != nil {
		return err
	}
	if err := t.opt.Step(); err != nil {
		return err
	}
	nn.ZeroGrad(t.model)
	return nil
}

// lossCheckEvery is how many steps apart a device other than the CPU has
// its running loss checked: the check waits for the device.
const lossCheckEvery = 16

// checkLoss stops a diverged run: it checks the running loss of epoch
// after batch b of n (every step on the CPU, every lossCheckEvery steps and
// at the epoch's end elsewhere).
func (t *trainer) checkLoss(epoch, b, n int) error {
	if t.job.distributed() {
		return nil // checked by stopAt and endEpoch, with the other ranks
	}
	if t.dev.Name() != "cpu" && (b+1)%lossCheckEvery != 0 && b+1 != n {
		return nil
	}
	return t.lossError(epoch, b+1)
}

// lossError is the error for a running loss that is not finite after
// batch batches of epoch; nil while it is finite.
func (t *trainer) lossError(epoch, batch int) error {
	v := float64(t.lossSum.Item())
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		return nil
	}
	where := fmt.Sprintf("in epoch %d, batch %d", epoch+1, batch)
	if t.dev.Name() != "cpu" || t.job.distributed() {
		where = fmt.Sprintf("in epoch %d, by batch %d", epoch+1, batch)
	}
	kept := "nothing was saved"
	switch {
	case t.commitTo != "":
		kept = fmt.Sprintf("the run in %s is unchanged", t.commitTo)
	case t.saved > 0:
		kept = fmt.Sprintf("%s keeps its last good model (epoch %d) and checkpoint", t.dir, t.saved)
	}
	return fmt.Errorf("training diverged: the loss became %v %s; %s. Train again with a lower learning rate than -lr %g (such as -lr %g)",
		v, where, kept, t.cfg.LR, t.cfg.LR/10)
}

// interrupted saves the state in the middle of epoch, before batch, and
// tells how to resume.
func (t *trainer) interrupted(epoch, batch int, seconds float64, metrics []metricsRow) error {
	if err := t.lossError(epoch, batch); err != nil {
		return err
	}
	if err := t.averageLoss(); err != nil {
		return err
	}
	if !t.job.leader() {
		return errInterrupted // rank 0 saves
	}
	if t.commitTo != "" {
		fmt.Fprintf(t.env.stderr, "gograd: interrupted in epoch 1, before the new run had a complete epoch; the run in %s is unchanged\n", t.commitTo)
		return errInterrupted
	}
	ck := newCheckpoint(t.cfg, t.model, t.opt)
	ck.Epoch, ck.Batch, ck.Metrics, ck.TrainN = epoch, batch, metrics, t.train.N
	ck.WorldSize = t.job.size()
	ck.Partial = partialEpoch{LossSum: jsonFloat(t.lossSum.Item()), Seconds: jsonFloat(seconds)}
	path := filepath.Join(t.dir, checkpointFile)
	if err := ck.save(path); err != nil {
		return err
	}
	fmt.Fprintf(t.env.stderr, "gograd: interrupted in epoch %d after batch %d; saved the training state to %s\n", epoch+1, batch, path)
	fmt.Fprintf(t.env.stderr, "Resume with: %s\n", t.job.resumeCommand(t.dir))
	return errInterrupted
}

// save writes the model, the checkpoint, the metrics and the plots.
func (t *trainer) save(ck *checkpoint, conf *confusionMatrix) error {
	md := t.desc.metadata()
	if t.cfg.Data != "" {
		md[mdData] = t.cfg.Data
	}
	last := ck.Metrics[len(ck.Metrics)-1]
	md["epochs"] = fmt.Sprint(ck.Epoch)
	md["test_accuracy"] = fmt.Sprintf("%.4f", last.TestAcc)
	if n, first := nonFinite(ck.Model); n > 0 {
		return fmt.Errorf("refusing to save epoch %d: %d weights are NaN or infinite (the first in %s); train again with a lower -lr", ck.Epoch, n, first)
	}
	// The checkpoint goes first: a kill after it leaves a run that -resume
	// completes (it rewrites the files that follow from the checkpoint).
	if err := ck.save(filepath.Join(t.dir, checkpointFile)); err != nil {
		return err
	}
	// The checkpoint's copy of the weights is the model's state_dict.
	if err := safetensors.WriteFile(filepath.Join(t.dir, modelFile), &safetensors.File{Tensors: ck.Model, Metadata: md}); err != nil {
		return err
	}
	hasVal := t.val != nil
	if err := atomicfile.Write(filepath.Join(t.dir, metricsFile), func(w io.Writer) error {
		return writeMetrics(w, ck.Metrics, hasVal)
	}); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(t.dir, curvesFile), func(w io.Writer) error {
		return plotCurves(w, ck.Metrics, hasVal)
	}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(t.dir, confusionFile), func(w io.Writer) error {
		return plotConfusion(w, conf, t.desc.classNames(), fmt.Sprintf("epoch %d", ck.Epoch))
	})
}

func labelsOf(s *data.Set) []float32 {
	y := make([]float32, s.N)
	for i, l := range s.Labels {
		y[i] = float32(l)
	}
	return y
}
