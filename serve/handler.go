package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gograd/gograd/data"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerConfig holds the limits of a Handler. Zero values take the
// defaults.
type HandlerConfig struct {
	// Shape is the model's input; Shape.Len() must be the Batcher's
	// Inputs. Images are accepted only for one square channel.
	Shape Shape
	// MaxBody is the most bytes of a request body (default 8 MiB).
	MaxBody int64
	// MaxPixels is the most pixels of one image (default 4 Mi), checked
	// from the image's header before it is decoded.
	MaxPixels int
	// MaxInputs is the most inputs in one request (default 64).
	MaxInputs int
	// Timeout is each request's deadline (default 10s): one still queued
	// then is dropped and answered 504.
	Timeout time.Duration
	// TopK is how many classes an answer lists when the request does not
	// say (default 3).
	TopK int
	// ClassNames, when set, names the classes, one name per class: each
	// class of an answer then has its "label" too.
	ClassNames []string
	// Metrics, when set, counts the requests; give the Batcher the same.
	Metrics *Metrics
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
	// Logger receives a warning per request answered 5xx, and a line per
	// request at debug level (default: slog.Default()).
	Logger *slog.Logger
}

// Handler is the HTTP API of a Batcher:
//
//	POST /v1/predict  a PNG or JPEG body, multipart/form-data of images,
//	                  or {"instances": [...], "top_k": K} as JSON
//	GET  /healthz     200 while the process runs
//	GET  /readyz      200 once warmed up, 503 before and while shutting down
//	GET  /metrics     Prometheus text format (with HandlerConfig.Gatherer)
//
// Every error is a JSON object {"error": {"code": ..., "message": ...}}
// with a 4xx status for bad input and 5xx for the server's own state.
type Handler struct {
	b       *Batcher
	cfg     HandlerConfig
	metrics http.Handler
	ready   atomic.Bool
	pool    sync.Pool // of *exchange
}

// NewHandler returns the API of b. It is not ready until Warmup (or
// SetReady) says so.
func NewHandler(b *Batcher, cfg HandlerConfig) (*Handler, error) {
	if b == nil {
		return nil, errors.New("serve: handler needs a batcher")
	}
	if cfg.Shape.Channels <= 0 || cfg.Shape.Height <= 0 || cfg.Shape.Width <= 0 || cfg.Shape.Len() != b.cfg.Inputs {
		return nil, fmt.Errorf("serve: input shape %v does not give the batcher's %d inputs", cfg.Shape, b.cfg.Inputs)
	}
	if cfg.MaxBody < 0 || cfg.MaxPixels < 0 || cfg.MaxInputs < 0 || cfg.Timeout < 0 || cfg.TopK < 0 {
		return nil, errors.New("serve: negative handler limit")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.MaxPixels == 0 {
		cfg.MaxPixels = 4 << 20
	}
	if cfg.MaxInputs == 0 {
		cfg.MaxInputs = 64
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.TopK == 0 {
		cfg.TopK = 3
	}
	cfg.TopK = min(cfg.TopK, b.cfg.Classes)
	if cfg.ClassNames != nil && len(cfg.ClassNames) != b.cfg.Classes {
		return nil, fmt.Errorf("serve: %d class names for the batcher's %d classes", len(cfg.ClassNames), b.cfg.Classes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{b: b, cfg: cfg}
	if cfg.Gatherer != nil {
		h.metrics = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
	}
	h.pool.New = func() any { return new(exchange) }
	return h, nil
}

// Warmup runs the Batcher's warm-up and then marks the handler ready.
func (h *Handler) Warmup(ctx context.Context) error {
	if err := h.b.Warmup(ctx); err != nil {
		return err
	}
	h.ready.Store(true)
	return nil
}

// SetReady sets what /readyz answers and whether predictions are taken.
func (h *Handler) SetReady(ready bool) { h.ready.Store(ready) }

// Ready reports whether the handler takes predictions.
func (h *Handler) Ready() bool { return h.ready.Load() }

var (
	jsonType = []string{"application/json"}
	noSniff  = []string{"nosniff"}
)

// ServeHTTP routes the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		writeStatus(w, http.StatusOK, "ok")
	case "/readyz":
		if h.ready.Load() {
			writeStatus(w, http.StatusOK, "ready")
		} else {
			writeStatus(w, http.StatusServiceUnavailable, "not ready")
		}
	case "/metrics":
		if h.metrics == nil {
			h.fail(w, r, time.Now(), &inputError{http.StatusNotFound, "not_found", "no metrics here"})
			return
		}
		h.metrics.ServeHTTP(w, r)
	case "/v1/predict":
		h.predict(w, r)
	default:
		h.fail(w, r, time.Now(), &inputError{http.StatusNotFound, "not_found",
			"no such endpoint (want POST /v1/predict, GET /healthz, /readyz or /metrics)"})
	}
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// inputError is an error answered with its status and code.
type inputError struct {
	status int
	code   string
	msg    string
}

func (e *inputError) Error() string { return e.msg }

// exchange holds the buffers of one request, reused by later ones.
type exchange struct {
	body    bytes.Buffer
	lim     io.LimitedReader
	rd      bytes.Reader
	json    jsonRequest
	parser  jsonParser
	timer   *time.Timer // the request's deadline
	x       []float32
	probs   []float32
	names   []string
	flags   []bool // inverted, per image input
	isImage bool
	idx     []int
	out     []byte
}

func (h *Handler) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, start, &inputError{http.StatusMethodNotAllowed, "method_not_allowed", "use POST for /v1/predict"})
		return
	}
	if !h.ready.Load() {
		h.fail(w, r, start, &inputError{http.StatusServiceUnavailable, "not_ready", "the model is not ready; see /readyz"})
		return
	}
	ex := h.pool.Get().(*exchange)
	defer h.release(ex)
	h.b.arrive(1)
	n, k, err := h.decode(r, ex)
	if err != nil {
		h.b.arrive(-1)
		h.fail(w, r, start, err)
		return
	}
	c := h.b.cfg.Classes
	ex.probs = grow(ex.probs, n*c)
	if ex.timer == nil {
		ex.timer = time.NewTimer(time.Hour)
		ex.timer.Stop()
	}
	err = h.b.predict(r.Context(), start.Add(h.cfg.Timeout), ex.timer, ex.x[:n*h.b.cfg.Inputs], ex.probs, true)
	if err != nil {
		h.fail(w, r, start, h.predictError(r, err))
		return
	}
	ex.out, err = h.answer(ex.out[:0], ex, n, k)
	if err != nil {
		h.fail(w, r, start, err)
		return
	}
	w.Header()["Content-Type"] = jsonType
	w.Header()["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusOK)
	w.Write(ex.out)
	h.done(r, start, http.StatusOK, n, nil)
}

// maxPooledBody is the largest body buffer kept for the next request: one
// large request must not keep its memory in every pooled exchange.
const maxPooledBody = 1 << 20

func (h *Handler) release(ex *exchange) {
	if ex.body.Cap() > maxPooledBody {
		ex.body = bytes.Buffer{}
	}
	clear(ex.names)
	h.pool.Put(ex)
}

// predictError maps the Batcher's errors to answers.
func (h *Handler) predictError(r *http.Request, err error) error {
	switch {
	case errors.Is(err, ErrQueueFull):
		return &inputError{http.StatusServiceUnavailable, "queue_full", "the queue is full; retry later"}
	case errors.Is(err, ErrClosed):
		return &inputError{http.StatusServiceUnavailable, "shutting_down", "the server is shutting down"}
	case errors.Is(err, context.DeadlineExceeded):
		return &inputError{http.StatusGatewayTimeout, "timeout", fmt.Sprintf("not answered within %v", h.cfg.Timeout)}
	case r.Context().Err() != nil:
		return &inputError{499, "cancelled", "the client went away"}
	}
	return &inputError{http.StatusInternalServerError, "internal", err.Error()}
}

// fail answers err as JSON; an error that is not an *inputError is a 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, start time.Time, err error) {
	var ie *inputError
	if !errors.As(err, &ie) {
		ie = &inputError{http.StatusInternalServerError, "internal", err.Error()}
	}
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": ie.code, "message": ie.msg}})
	w.Header()["Content-Type"] = jsonType
	w.Header()["X-Content-Type-Options"] = noSniff
	if ie.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(ie.status)
	w.Write(append(body, '\n'))
	h.done(r, start, ie.status, 0, ie)
}

// done counts and logs one request.
func (h *Handler) done(r *http.Request, start time.Time, code, n int, err *inputError) {
	d := time.Since(start)
	h.cfg.Metrics.request(code, d)
	log := h.cfg.Logger
	level := slog.LevelDebug // bad requests too: a client's flood must not flood the log
	if code >= 500 {
		level = slog.LevelWarn
	}
	if !log.Enabled(r.Context(), level) {
		return
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "code", code, "inputs", n, "duration", d, "remote", r.RemoteAddr}
	if err != nil {
		attrs = append(attrs, "error", err.code, "message", err.msg)
	}
	log.Log(r.Context(), level, "request", attrs...)
}

// decode reads the request's inputs into ex.x and returns how many there
// are and how many classes to list for each.
func (h *Handler) decode(r *http.Request, ex *exchange) (n, k int, err error) {
	k = h.cfg.TopK
	if q := r.URL.RawQuery; q != "" {
		v := r.URL.Query().Get("top_k")
		if v != "" {
			if k, err = strconv.Atoi(v); err != nil || k < 1 {
				return 0, 0, &inputError{http.StatusBadRequest, "bad_top_k", fmt.Sprintf("top_k=%q is not a positive integer", v)}
			}
		}
	}
	if r.ContentLength > h.cfg.MaxBody {
		return 0, 0, h.tooLarge()
	}
	ex.body.Reset()
	ex.lim = io.LimitedReader{R: r.Body, N: h.cfg.MaxBody + 1}
	if _, err := ex.body.ReadFrom(&ex.lim); err != nil {
		return 0, 0, &inputError{http.StatusBadRequest, "bad_body", fmt.Sprintf("reading the body: %v", err)}
	}
	ex.lim.R = nil
	if int64(ex.body.Len()) > h.cfg.MaxBody {
		return 0, 0, h.tooLarge()
	}
	ct := r.Header.Get("Content-Type")
	ex.names, ex.flags, ex.isImage = ex.names[:0], ex.flags[:0], false
	switch {
	case hasMediaType(ct, "application/json"):
		ex.json.x = ex.x
		err = ex.parser.parse(ex.body.Bytes(), h.cfg.Shape, h.cfg.MaxInputs, &ex.json)
		ex.x = ex.json.x
		n = ex.json.n
		if ex.json.topK > 0 {
			k = ex.json.topK
		}
	case hasMediaType(ct, "multipart/form-data"):
		n, err = h.decodeMultipart(ct, ex)
	default:
		ex.x = ex.x[:0]
		err = h.decodeImage(ex, ex.body.Bytes(), "")
		n = 1
	}
	if err != nil {
		return 0, 0, err
	}
	return n, min(k, h.b.cfg.Classes), nil
}

func (h *Handler) tooLarge() error {
	return &inputError{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is over the limit of %d bytes", h.cfg.MaxBody)}
}

// hasMediaType reports whether the Content-Type ct is of type t.
func hasMediaType(ct, t string) bool {
	if len(ct) < len(t) || !strings.EqualFold(ct[:len(t)], t) {
		return false
	}
	return len(ct) == len(t) || ct[len(t)] == ';' || ct[len(t)] == ' '
}

func (h *Handler) decodeMultipart(ct string, ex *exchange) (int, error) {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		return 0, &inputError{http.StatusBadRequest, "malformed_multipart", "multipart/form-data without a boundary"}
	}
	ex.rd.Reset(ex.body.Bytes())
	mr := multipart.NewReader(&ex.rd, params["boundary"])
	ex.x = ex.x[:0]
	n := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, &inputError{http.StatusBadRequest, "malformed_multipart", fmt.Sprintf("part %d: %v", n, err)}
		}
		if n == h.cfg.MaxInputs {
			return 0, &inputError{http.StatusRequestEntityTooLarge, "too_many_inputs", fmt.Sprintf("more than %d inputs in one request", h.cfg.MaxInputs)}
		}
		name := part.FileName()
		if name == "" {
			name = part.FormName()
		}
		img, err := io.ReadAll(part)
		if err != nil {
			return 0, &inputError{http.StatusBadRequest, "malformed_multipart", fmt.Sprintf("part %d (%q): %v", n, name, err)}
		}
		if err := h.decodeImage(ex, img, name); err != nil {
			return 0, err
		}
		n++
	}
	if n == 0 {
		return 0, &inputError{http.StatusBadRequest, "malformed_multipart", "no parts: want one image per part"}
	}
	return n, nil
}

// Signatures of the image formats read.
const (
	pngSignature  = "\x89PNG\r\n\x1a\n"
	jpegSignature = "\xff\xd8\xff"
)

// decodeImage appends the model input of the PNG or JPEG image b to ex.x.
func (h *Handler) decodeImage(ex *exchange, b []byte, name string) error {
	where := "the image"
	if name != "" {
		where = strconv.Quote(name)
	}
	s := h.cfg.Shape
	digits := s.Channels == 1 && s.Height == s.Width // read as predict reads digits
	if !bytes.HasPrefix(b, []byte(pngSignature)) && !bytes.HasPrefix(b, []byte(jpegSignature)) {
		return &inputError{http.StatusUnsupportedMediaType, "unsupported_format",
			fmt.Sprintf("%s is %s, not a PNG or JPEG image (or send application/json or multipart/form-data)", where, http.DetectContentType(b))}
	}
	ex.rd.Reset(b)
	img, err := data.DecodeImage(&ex.rd, h.cfg.MaxPixels)
	if err == nil {
		var px []float32
		var inverted bool
		if digits {
			px, inverted, err = data.DigitInput(img, s.Width)
		} else {
			px, err = data.ImageInput(img, s.Channels, s.Height, s.Width)
		}
		if err == nil {
			ex.x = append(ex.x, px...)
			ex.names = append(ex.names, name)
			ex.flags = append(ex.flags, inverted)
			ex.isImage = true
			return nil
		}
	}
	if errors.Is(err, data.ErrTooLarge) {
		return &inputError{http.StatusRequestEntityTooLarge, "too_many_pixels", fmt.Sprintf("%s: %v", where, err)}
	}
	return &inputError{http.StatusBadRequest, "bad_image", fmt.Sprintf("%s: %v", where, err)}
}

// answer appends the JSON answer for the n inputs to b:
//
//	{"predictions":[{"name":"a.png","inverted":false,"top":[{"class":7,"probability":0.98},...]},...]}
//
// name and inverted are given for images only; each class has its "label"
// after "class" when the handler has class names.
func (h *Handler) answer(b []byte, ex *exchange, n, k int) ([]byte, error) {
	c := h.b.cfg.Classes
	ex.idx = grow(ex.idx, k)
	b = append(b, `{"predictions":[`...)
	for i := range n {
		p := ex.probs[i*c : (i+1)*c]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if ex.isImage {
			b = append(b, `"name":`...)
			b = appendJSONString(b, ex.names[i])
			b = append(b, `,"inverted":`...)
			b = strconv.AppendBool(b, ex.flags[i])
			b = append(b, ',')
		}
		b = append(b, `"top":[`...)
		for j, cls := range topK(ex.idx, p) {
			v := float64(p[cls])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return b, fmt.Errorf("serve: the model gave input %d a probability of %v", i, v)
			}
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"class":`...)
			b = strconv.AppendInt(b, int64(cls), 10)
			if h.cfg.ClassNames != nil {
				b = append(b, `,"label":`...)
				b = appendJSONString(b, h.cfg.ClassNames[cls])
			}
			b = append(b, `,"probability":`...)
			b = strconv.AppendFloat(b, v, 'g', -1, 32)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}\n"...), nil
}

// topK fills idx with the classes of the len(idx) largest values of p,
// largest first, the lower class first among equal values.
func topK(idx []int, p []float32) []int {
	for j := range idx {
		best := -1
		for c, v := range p {
			taken := false
			for _, t := range idx[:j] {
				if t == c {
					taken = true
					break
				}
			}
			if !taken && (best < 0 || v > p[best]) {
				best = c
			}
		}
		idx[j] = best
	}
	return idx
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	if isPlain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// isPlain reports whether s needs no escaping in JSON.
func isPlain(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// grow returns s resized to n, reusing its array when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
