package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewHTTPServer returns the http.Server that Serve runs h in, for requests
// whose deadline is timeout: a client that sends its body or reads its
// answer too slowly is cut off some time after that deadline.
func NewHTTPServer(h http.Handler, timeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       timeout + 10*time.Second,
		WriteTimeout:      timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// Serve answers h's API on ln until ctx ends, then shuts down gracefully:
// it stops accepting connections and reporting ready, lets every request
// in flight finish (waiting at most grace), and closes the Batcher. The
// handler becomes ready once the Batcher's warm-up has run; a failed
// warm-up stops the server and is returned. Serve returns nil after a
// clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h *Handler, grace time.Duration) error {
	log := h.cfg.Logger
	srv := NewHTTPServer(h, h.cfg.Timeout)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	warm := make(chan error, 1)
	go func() {
		start := time.Now()
		err := h.Warmup(ctx)
		if err == nil {
			log.Info("ready", "warmup", time.Since(start))
		}
		warm <- err
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case err = <-warm:
		if err == nil {
			select {
			case <-ctx.Done():
			case err = <-served:
				err = fmt.Errorf("serve: %w", err)
			}
		} else if ctx.Err() != nil {
			err = nil // the warm-up was interrupted by the shutdown
		}
	}
	h.SetReady(false)
	log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
		err = errors.Join(err, fmt.Errorf("serve: requests still running after %v: %w", grace, serr))
	}
	h.b.Close()
	if err == nil {
		log.Info("stopped")
	}
	return err
}
