// Command gograd trains a multi-layer perceptron on MNIST, evaluates it and
// classifies PNG and JPEG images of digits with it.
//
//	gograd train -out runs/mnist
//	gograd eval -model runs/mnist/model.safetensors
//	gograd predict -model runs/mnist/model.safetensors digit.png
//
// Run `gograd -h` or `gograd <command> -h` for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1   // a runtime error: missing data, a corrupt file, no GPU
	exitUsage       = 2   // a command line error
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM after saving a checkpoint
)

const usageText = `gograd trains a multi-layer perceptron on MNIST and uses it.

Usage:
  gograd <command> [flags] [arguments]

Commands:
  train     train a model and write a run directory (model, checkpoint, metrics, plots)
  eval      test accuracy, per-class precision and recall, and confusion matrix of a model
  predict   classify PNG or JPEG images of digits
  serve     answer predictions over HTTP, batching concurrent requests

Examples:
  gograd train -out runs/mnist                      train with the default settings
  gograd train -resume runs/mnist                   continue an interrupted run
  gograd eval -model runs/mnist/model.safetensors
  gograd predict -model runs/mnist/model.safetensors digit.png
  gograd serve -model runs/mnist/model.safetensors -addr 127.0.0.1:8080

Run 'gograd <command> -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code. SIGINT and
// SIGTERM stop training at the end of the current batch.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	return runCommand(ctx, args, &env{stdout: stdout, stderr: stderr})
}

// env is what a command writes to, and the hooks tests use.
type env struct {
	stdout, stderr io.Writer
	// onStep, when set, runs after every training step with the epoch and
	// the number of batches done in it.
	onStep func(epoch, batch int)
}

// note tells the user about something the command did on its own, such as
// cleaning up after a run that was killed.
func (e *env) note(msg string) { fmt.Fprintf(e.stderr, "gograd: %s\n", msg) }

func runCommand(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usageText)
		return exitUsage
	}
	var err error
	switch cmd := args[0]; cmd {
	case "train":
		err = trainCommand(ctx, args[1:], e)
	case "eval":
		err = evalCommand(args[1:], e)
	case "predict":
		err = predictCommand(args[1:], e)
	case "serve":
		err = serveCommand(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return runCommand(ctx, []string{args[1], "-h"}, e)
		}
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "gograd: unknown command %q\nRun 'gograd -h' for usage.\n", cmd)
		return exitUsage
	}
	return report(err, e)
}

// usageError is a command line mistake: it exits 2 with a hint to -h.
type usageError struct {
	cmd string
	msg string
}

func (u *usageError) Error() string { return u.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errInterrupted is returned by train after it saved its state on a signal.
var errInterrupted = errors.New("interrupted")

// report prints err and turns it into an exit code.
func report(err error, e *env) int {
	var u *usageError
	var q quietError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &q):
		return q.code // printed already, by this process or rank 0 of a -dist job
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &u):
		fmt.Fprintf(e.stderr, "gograd %s: %s\nRun 'gograd %s -h' for usage.\n", u.cmd, u.msg, u.cmd)
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	fmt.Fprintf(e.stderr, "gograd: %s\n", oneLine(err.Error()))
	return exitError
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// command is a subcommand's flag set with its usage text.
type command struct {
	*flag.FlagSet
	name     string
	synopsis string
	examples string
	env      *env
}

// newCommand returns the flag set of the subcommand name. The flag package
// prints nothing itself: parse reports errors as usage errors, and prints
// the usage, the flags and the examples to stdout for -h.
func newCommand(name, synopsis, examples string, e *env) *command {
	fs := flag.NewFlagSet("gograd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, name: name, synopsis: synopsis, examples: examples, env: e}
}

// parse parses args. It returns flag.ErrHelp after printing the usage for
// -h, and a usage error for a bad flag or value.
func (c *command) parse(args []string) error {
	err := c.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		w := c.env.stdout
		fmt.Fprintf(w, "Usage: gograd %s\n\nFlags:\n", c.synopsis)
		c.SetOutput(w)
		c.PrintDefaults()
		c.SetOutput(io.Discard)
		fmt.Fprintf(w, "\nExamples:\n%s", c.examples)
		return flag.ErrHelp
	}
	return c.usagef("%v", err)
}

// usagef returns a usage error of the command.
func (c *command) usagef(format string, args ...any) error {
	return usagef(c.name, format, args...)
}
