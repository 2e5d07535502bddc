package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gograd/gograd/data"
)

// mlpParams is the number of parameters of an MLP, as a float64 so that
// absurd widths do not overflow.
func mlpParams(in int, hidden []int, out int) float64 {
	n, prev := 0.0, float64(in)
	for _, h := range append(hidden[:len(hidden):len(hidden)], out) {
		n += prev*float64(h) + float64(h)
		prev = float64(h)
	}
	return n
}

// trainMemory estimates the bytes that training an MLP of in inputs and
// classes outputs needs beyond its data: the weights, their gradients, the
// optimizer's buffers, the host copies of all three that a checkpoint
// takes, and the activations of a training batch and of an evaluation
// batch, forward and backward.
func trainMemory(cfg *trainConfig, in, classes int) float64 {
	bufs := 0.0
	switch {
	case cfg.Optimizer == "adam" || cfg.Optimizer == "adamw":
		bufs = 2
	case cfg.Momentum > 0:
		bufs = 1
	}
	params := mlpParams(in, cfg.Hidden, classes)
	width := float64(in + classes)
	for _, h := range cfg.Hidden {
		width += float64(h)
	}
	acts := 4*float64(cfg.Batch)*width + 2*evalBatch*width
	return 4 * (params*(2+bufs)*2 + acts)
}

// checkTrainMemory refuses a run whose model cannot fit in the memory
// available, before anything is allocated for it.
func checkTrainMemory(cfg *trainConfig, train *data.Set, d *modelDesc) error {
	if d != nil && d.MLP == nil {
		need := netMemory(cfg, d)
		avail, ok := availableMemory()
		if !ok || need <= avail {
			return nil
		}
		return fmt.Errorf("the model (%s, %.4g parameters) needs about %s of memory to train, but only %s is available: choose a smaller -model or a smaller -batch",
			d.Spec(), d.params(), bytesText(need), bytesText(avail))
	}
	need := trainMemory(cfg, train.Dim(), train.NumClasses())
	avail, ok := availableMemory()
	if !ok || need <= avail {
		return nil
	}
	return fmt.Errorf("the model (-hidden %s, %.4g parameters) needs about %s of memory to train, but only %s is available: choose smaller -hidden widths or a smaller -batch",
		joinInts(cfg.Hidden), mlpParams(train.Dim(), cfg.Hidden, train.NumClasses()), bytesText(need), bytesText(avail))
}

// availableMemory is the memory this process may still allocate: the
// system's available memory, or the room left under the cgroup's limit if
// that is smaller. ok is false where neither can be read.
func availableMemory() (bytes float64, ok bool) {
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, found := strings.CutPrefix(sc.Text(), "MemAvailable:"); found {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				if err == nil {
					bytes, ok = kb*1024, true
				}
			}
		}
		f.Close()
	}
	limit, err1 := os.ReadFile("/sys/fs/cgroup/memory.max")
	used, err2 := os.ReadFile("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil {
		l, errl := strconv.ParseFloat(strings.TrimSpace(string(limit)), 64) // "max" fails: no limit
		u, erru := strconv.ParseFloat(strings.TrimSpace(string(used)), 64)
		if errl == nil && erru == nil && (!ok || l-u < bytes) {
			bytes, ok = max(0, l-u), true
		}
	}
	return bytes, ok
}

// bytesText formats a byte count with a binary unit.
func bytesText(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return strconv.FormatFloat(b, 'f', 1, 64) + " " + units[i]
}
