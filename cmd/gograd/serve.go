package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/nn"
	"github.com/gograd/gograd/serve"
)

const serveExamples = `  gograd serve -model runs/mnist/model.safetensors
  gograd serve -model runs/mnist/model.safetensors -addr :8080 -max-batch 64 -max-delay 2ms
  curl -s --data-binary @digit.png localhost:8080/v1/predict

POST /v1/predict takes a PNG or JPEG body, multipart/form-data of images or
{"instances": [[...784 numbers...]], "top_k": 3} as JSON, and answers the
top classes of each input. GET /healthz, /readyz and /metrics (Prometheus)
report the server's state. SIGINT or SIGTERM stops accepting, finishes the
requests in flight and exits 0.
`

func serveCommand(ctx context.Context, args []string, e *env) (err error) {
	fs := newCommand("serve", "serve -model FILE [flags]", serveExamples, e)
	modelPath := fs.String("model", "", "model `file` written by train or a PyTorch state_dict of Linear layers in safetensors (required), e.g. runs/mnist/model.safetensors")
	act := newChoice("", activations...)
	fs.Var(act, "activation", "hidden activation `relu|sigmoid|tanh` of a model file that does not name it, such as a PyTorch state_dict")
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on (port 0 picks a free one)")
	dev := newChoice("cpu", "cpu", "cuda", "auto")
	fs.Var(dev, "device", "where to run: `cpu|cuda|auto`")
	maxBatch := fs.Int("max-batch", 32, "most inputs in one forward pass")
	maxDelay := fs.Duration("max-delay", time.Millisecond, "how long a forward pass waits for more inputs after its first (0: take what is queued)")
	maxBody := fs.Int64("max-body", 8<<20, "most `bytes` of a request body")
	maxPixels := fs.Int("max-pixels", 4<<20, "most pixels of one image, checked before decoding it")
	maxInputs := fs.Int("max-inputs", 64, "most inputs (images or JSON instances) in one request")
	maxQueue := fs.Int("max-queue", 1024, "most requests waiting for a forward pass; more are answered 503")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each request; one still queued then is dropped and answered 504")
	workers := fs.Int("workers", 1, "forward passes that may run at once (cpu only above 1)")
	threads := fs.Int("threads", 0, "CPU threads one forward pass may use (0: all); with -workers 2 -threads 1 two passes run side by side, one thread each")
	level := newChoice("info", "debug", "info", "warn", "error")
	fs.Var(level, "log-level", "least severe log `level`: debug|info|warn|error (debug logs every request)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this `file` at shutdown (for go tool pprof)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.usagef("unexpected argument %q (serve takes only flags)", fs.Arg(0))
	}
	if *modelPath == "" {
		return fs.usagef("-model FILE is required")
	}
	switch {
	case *maxBatch < 1:
		return fs.usagef("-max-batch %d: want at least 1", *maxBatch)
	case *maxDelay < 0 || *timeout <= 0:
		return fs.usagef("-max-delay must not be negative and -timeout must be positive")
	case *maxBody < 1 || *maxPixels < 1 || *maxInputs < 1 || *maxQueue < 1:
		return fs.usagef("-max-body, -max-pixels, -max-inputs and -max-queue must be positive")
	case *workers < 1:
		return fs.usagef("-workers %d: want at least 1", *workers)
	case *workers > 1 && dev.value != "cpu":
		return fs.usagef("-workers above 1 needs -device cpu")
	case *threads < 0:
		return fs.usagef("-threads %d: want 0 (all) or more", *threads)
	case *threads > 0 && dev.value != "cpu":
		return fs.usagef("-threads needs -device cpu")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level.value)); err != nil {
		return fs.usagef("-log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop(&err)
	}

	var d device.Device
	if dev.value == "cpu" {
		d = device.NewCPU(*threads)
	} else if d, err = openDevice(dev.value); err != nil {
		return err
	}
	defer closeDevice(d, &err)
	model, a, _, err := loadModel(*modelPath, d, act.value)
	if err != nil {
		return err
	}
	shape := serve.Shape{Channels: a.In.C, Height: a.In.H, Width: a.In.W}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := serve.NewMetrics(reg, *maxBatch)
	if err != nil {
		return err
	}
	b, err := serve.NewBatcher(serve.BatcherConfig{
		Model: model, Device: d, Inputs: a.Dim(), Classes: a.In.Classes,
		MaxBatch: *maxBatch, MaxDelay: *maxDelay, Workers: *workers, MaxQueue: *maxQueue,
		Metrics: metrics, Logger: log,
	})
	if err != nil {
		return err
	}
	h, err := serve.NewHandler(b, serve.HandlerConfig{
		Shape: shape, MaxBody: *maxBody, MaxPixels: *maxPixels, MaxInputs: *maxInputs,
		ClassNames: a.classNames(), Timeout: *timeout, Metrics: metrics, Gatherer: reg, Logger: log,
	})
	if err != nil {
		b.Close()
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		b.Close()
		return fmt.Errorf("-addr %s: %w", *addr, err)
	}
	log.Info("model", "file", *modelPath, "arch", a.String(), "params", nn.NumParams(model),
		"device", deviceName(d), "input", shape.String(), "max_batch", *maxBatch, "max_delay", *maxDelay)
	// Every request ends within its deadline, so that is all a shutdown
	// waits for, plus a forward pass.
	return serve.Serve(ctx, ln, h, *timeout+5*time.Second)
}

// startCPUProfile profiles the process into the file path until the
// returned function runs, which reports a failure to write it into *err.
func startCPUProfile(path string) (func(*error), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func(err *error) {
		pprof.StopCPUProfile()
		if cerr := f.Close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("-cpuprofile: %w", cerr)
		}
	}, nil
}
