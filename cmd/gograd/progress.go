package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far an epoch has got. On a terminal it is a live bar
// with the running loss, samples/s and the time left; elsewhere (a CI log, a
// file, a test) it shows nothing, and the epoch's summary line is the only
// output.
type progress struct {
	bar      *progressbar.ProgressBar
	label    string
	lastLoss time.Time
}

// refresh is how often the bar is redrawn and the running loss read.
const refresh = 150 * time.Millisecond

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts a bar over total samples, done of them already done.
func newProgress(w io.Writer, label string, total, done int) *progress {
	p := &progress{label: label}
	if !isTerminal(w) {
		return p
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("samples"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(refresh),
		progressbar.OptionClearOnFinish(),
	)
	if done > 0 {
		p.bar.Set(done)
	}
	return p
}

// wantsLoss reports whether the bar is due a new running loss; reading it
// waits for the device, so it happens only as often as the bar redraws.
func (p *progress) wantsLoss() bool {
	return p.bar != nil && time.Since(p.lastLoss) >= refresh
}

// add advances the bar by n samples; loss, when not negative, is the new
// running loss to show.
func (p *progress) add(n int, loss float64) {
	if p.bar == nil {
		return
	}
	if loss >= 0 {
		p.lastLoss = time.Now()
		p.bar.Describe(fmt.Sprintf("%s loss %.4f", p.label, loss))
	}
	p.bar.Add(n)
}

// finish removes the bar.
func (p *progress) finish() {
	if p.bar == nil {
		return
	}
	p.bar.Exit()
	p.bar.Clear()
}
