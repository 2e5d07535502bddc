package serve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of a Batcher and a Handler. A nil
// *Metrics records nothing.
type Metrics struct {
	requests   *prometheus.CounterVec // by status code
	codes      map[int]prometheus.Counter
	latency    prometheus.Histogram
	images     prometheus.Counter
	batchSize  prometheus.Histogram
	forward    prometheus.Histogram
	queueDepth prometheus.Gauge
	drops      *prometheus.CounterVec // by reason
	cancelled  prometheus.Counter
	expired    prometheus.Counter
}

// statusCodes are the codes the Handler answers with; their counters are
// made up front so that counting one allocates nothing.
var statusCodes = []int{200, 400, 404, 405, 413, 415, 499, 500, 503, 504}

// NewMetrics registers the collectors on reg, all named gograd_serve_*:
// requests_total{code}, request_duration_seconds, images_total,
// batch_size, forward_seconds, queue_depth and dropped_total{reason}.
func NewMetrics(reg prometheus.Registerer, maxBatch int) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gograd_serve_requests_total", Help: "HTTP requests answered, by status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gograd_serve_request_duration_seconds", Help: "Time from a request's arrival to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gograd_serve_images_total", Help: "Inputs run through the model, the warm-up included.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gograd_serve_batch_size", Help: "Rows per forward pass.",
			Buckets: batchBuckets(maxBatch),
		}),
		forward: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gograd_serve_forward_seconds", Help: "Time of one forward pass.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14), // 0.1 ms to 0.8 s
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gograd_serve_queue_depth", Help: "Requests waiting for a forward pass.",
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gograd_serve_dropped_total", Help: "Requests dropped from the queue before running, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.images, m.batchSize, m.forward, m.queueDepth, m.drops} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("serve: registering metrics: %w", err)
		}
	}
	m.codes = make(map[int]prometheus.Counter, len(statusCodes))
	for _, c := range statusCodes {
		m.codes[c] = m.requests.WithLabelValues(strconv.Itoa(c))
	}
	m.cancelled = m.drops.WithLabelValues("cancelled")
	m.expired = m.drops.WithLabelValues("deadline")
	return m, nil
}

// batchBuckets are 1, 2, 4, ... up to maxBatch.
func batchBuckets(maxBatch int) []float64 {
	var b []float64
	for n := 1; n < maxBatch; n *= 2 {
		b = append(b, float64(n))
	}
	return append(b, float64(max(maxBatch, 1)))
}

func (m *Metrics) request(code int, d time.Duration) {
	if m == nil {
		return
	}
	c, ok := m.codes[code]
	if !ok {
		c = m.requests.WithLabelValues(strconv.Itoa(code))
	}
	c.Inc()
	m.latency.Observe(d.Seconds())
}

func (m *Metrics) batch(rows int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(rows))
	m.forward.Observe(d.Seconds())
	m.images.Add(float64(rows))
}

func (m *Metrics) queued(delta int) {
	if m != nil {
		m.queueDepth.Add(float64(delta))
	}
}

func (m *Metrics) dropped(err error) {
	switch {
	case m == nil:
	case errors.Is(err, context.DeadlineExceeded):
		m.expired.Inc()
	default:
		m.cancelled.Inc()
	}
}
