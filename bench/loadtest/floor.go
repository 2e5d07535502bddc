package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gograd/gograd/serve"
)

// The floor (-floor) is a server that does nothing but what every server
// of the predict API must: net/http reads the request and its whole body,
// and writes an answer as long as gograd serve's. It answers without
// parsing the body or running a model, so no server on net/http can
// answer faster on this machine: its requests per second are the ceiling
// of any -configs server's, and its CPU time per request the part of theirs
// that is net/http's.
//
// The load generator is the floor server itself: run as
// `loadtest serve -addr HOST:PORT` (how startServer runs gograd serve), it
// serves the floor until SIGTERM.

// floorClass is the class the floor answers for a body. The load test
// checks it as it checks a real server's answer.
func floorClass(body []byte) int { return len(body) % 10 }

// floorServer returns the floor's HTTP server, with the timeouts gograd
// serve sets at its default -timeout.
func floorServer() *http.Server {
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ready\n")) })
	mux.HandleFunc("POST /v1/predict", func(w http.ResponseWriter, r *http.Request) {
		b := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(b)
		b.Reset()
		if _, err := b.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// The length and layout of gograd serve's answer for one input.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprintf(w, `{"predictions":[{"top":[{"class":%d,"probability":0.26759028},{"class":5,"probability":0.24661134},{"class":3,"probability":0.1135406}]}]}`+"\n",
			floorClass(b.Bytes()))
	})
	return serve.NewHTTPServer(mux, 10*time.Second) // gograd serve's default -timeout
}

// floorMain runs the floor server with the command line startServer gives
// gograd serve (-model is ignored), logging where it listens as gograd
// serve does, until SIGTERM.
func floorMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on")
	profile := fs.String("cpuprofile", "", "write a CPU profile to this `file`")
	fs.String("model", "", "ignored: the floor runs no model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		stop, err := startProfile(*profile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := floorServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	slog.New(slog.NewTextHandler(os.Stderr, nil)).Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
