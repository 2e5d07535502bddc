// Package serve runs a trained model behind HTTP, batching concurrent
// requests into shared forward passes.
//
// A Batcher is the model side, usable without HTTP: Predict queues the
// rows of a request, and a worker runs up to MaxBatch queued rows as one
// forward pass under NoGrad, waiting at most MaxDelay after the first (as
// Triton's dynamic batcher, TorchServe's batch_size and max_batch_delay,
// and KServe's maxBatchSize and maxLatency do). A request whose context
// ends, or whose deadline passes, while it is queued is dropped without
// running. The Batcher needs only an nn.Module, its device, and the
// number of inputs and classes.
//
// A Handler is the HTTP API of a Batcher (POST /v1/predict, GET /healthz,
// /readyz, /metrics), with limits on body size, pixels and inputs per
// request; every bad request gets a 4xx JSON error before it reaches the
// model. NewMetrics registers its Prometheus collectors. Serve runs a
// Handler on a listener with a warm-up before readiness and a graceful
// shutdown; NewHTTPServer gives its timeouts to a program that mounts the
// Handler in a server of its own.
//
// Buffers live in the Batcher's workers and in pooled per-request state,
// so that a steady load of JSON requests allocates nothing per request;
// the model's forward pass allocates per pass, shared by its rows.
package serve
