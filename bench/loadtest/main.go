// Command loadtest measures `gograd serve` on the loopback interface.
//
// It starts the server itself (a gograd binary given by -gograd) on
// 127.0.0.1 with a free port, and stops it at the end. Every phase is
// bounded in requests and in time, so that a run stops by itself.
//
// The load test (the default) runs each -configs server configuration
// (dynamic batching, and -max-batch 1) at each -concurrency, for at most
// -requests requests or -duration, whichever comes first, after a short
// warm-up, and prints a Markdown table of requests per second and p50/p99
// latency:
//
//	go build -o /tmp/gograd ./cmd/gograd
//	go run ./bench/loadtest -gograd /tmp/gograd -model runs/mnist/model.safetensors
//
// With -floor it also measures a server that answers without parsing the
// body or running a model (floor.go): no server on net/http answers
// faster on the machine, so its requests per second bound every ratio.
//
// The soak (-soak N) sends N requests, three quarters good (single images
// and multipart pairs) and a quarter bad requests of every kind, checks each answer (good ones against what
// `gograd predict` prints for the same image files), counts the lost and
// wrong ones, and samples the server's resident memory:
//
//	go run ./bench/loadtest -gograd /tmp/gograd -model runs/mnist/model.safetensors -soak 100000
//
// It exits 1 if any request was lost or answered wrongly, or if resident
// memory grew by more than -rss-growth after the warm-up.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		// Started by another load test as its floor server (floor.go).
		if err := floorMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest serve:", err)
			os.Exit(1)
		}
		return
	}
	gograd := flag.String("gograd", "gograd", "the gograd `binary` to run")
	model := flag.String("model", "", "model `file` to serve (required)")
	concurrency := flag.String("concurrency", "1,16,64,256", "comma-separated numbers of concurrent clients")
	configs := flag.String("configs", "dynamic=-max-batch 32 -max-delay 1ms;batch1=-max-batch 1",
		"semicolon-separated `name=serve flags` server configurations")
	requests := flag.Int("requests", 20000, "most requests per concurrency level")
	duration := flag.Duration("duration", 5*time.Second, "most time per concurrency level")
	clientKind := flag.String("client", "raw", "HTTP client of the load test: `raw|net/http` (a minimal HTTP/1.1 client, or net/http's; the soak uses net/http)")
	rounds := flag.Int("rounds", 1, "measure every level this many times, the servers alternating at each, and print the median req/s")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "unmeasured load before each level")
	payload := flag.String("payload", "png", "request body of the load test: `png|json` (a 28x28 PNG, or its pixels as JSON)")
	soak := flag.Int("soak", 0, "run the soak with this many requests instead of the load test")
	soakTime := flag.Duration("soak-time", 30*time.Minute, "most time for the soak")
	soakClients := flag.Int("soak-concurrency", 32, "concurrent clients of the soak")
	rssGrowth := flag.Float64("rss-growth", 0.2, "most relative growth of resident memory after the soak's warm-up")
	floor := flag.Bool("floor", false, "also measure the floor: a server on net/http that answers without parsing the body or running a model, the ceiling of any server's req/s here (see floor.go)")
	profile := flag.String("profile", "", "write CPU profiles of the load test into this `directory`: loadtest.prof for the load generator, server-NAME.prof for each server (for go tool pprof)")
	flag.Parse()
	if *model == "" {
		fmt.Fprintln(os.Stderr, "loadtest: -model FILE is required")
		os.Exit(2)
	}
	err := func() error {
		if *soak > 0 {
			return runSoak(*gograd, *model, *soak, *soakClients, *soakTime, *rssGrowth)
		}
		if *profile != "" {
			stop, err := startProfile(filepath.Join(*profile, "loadtest.prof"))
			if err != nil {
				return err
			}
			defer stop()
		}
		return runLoad(*gograd, *model, *configs, *concurrency, *payload, *clientKind, *profile, *floor, *rounds, *requests, *duration, *warmup)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// startProfile writes a CPU profile of the process into the file path
// until stop is called.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// server is a running `gograd serve`, or the floor server.
type server struct {
	cmd   *exec.Cmd
	url   string
	log   *tail
	floor bool
}

// tail keeps the last lines the server logged.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 50 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs gograd serve on a free loopback port and waits until
// it is ready.
func startServer(gograd, model string, flags []string) (*server, error) {
	args := append([]string{"serve", "-model", model, "-addr", "127.0.0.1:0"}, flags...)
	cmd := exec.Command(gograd, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", gograd, err)
	}
	s := &server{cmd: cmd, log: &tail{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.log.add(sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("gograd serve exited:\n%s", s.log)
		}
		s.url = "http://" + a
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, errors.New("gograd serve did not listen within 60s")
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("gograd serve was not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; the server must exit 0.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("gograd serve after SIGTERM: %w\n%s", err, s.log)
		}
		return nil
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("gograd serve did not exit within 60s of SIGTERM")
	}
}

// rss is the server's resident memory in bytes, from /proc.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// metric reads one sample of the server's /metrics.
func (s *server) metric(name string) float64 {
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return math.NaN()
}

// newClient returns a client that keeps a connection per concurrent
// client alive. It asks for no compression: the server sends none, and
// the header and the response wrapper would only cost the client time.
func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute,
		DisableCompression: true}}
}

// poster sends requests to one URL, reusing its request, body reader and
// answer buffer from one request to the next: one goroutine's client.
type poster struct {
	client *http.Client
	req    *http.Request
	ct     string
	cur    []byte // the body being sent
	body   bytes.Reader
	// rc is body as the request's Body: an io.NopCloser, which net/http
	// knows to be in memory and so writes with the header, in one write.
	rc     io.ReadCloser
	answer bytes.Buffer
}

func newPoster(c *http.Client, url string) *poster {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		panic(err) // the URL is the server's own
	}
	p := &poster{client: c, req: req}
	p.rc = io.NopCloser(&p.body)
	// A retry on a new connection (after an idle one was closed) sends
	// the body again.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(p.cur)), nil }
	return p
}

// post sends body and returns the status and the answer, which is valid
// until the next post.
func (p *poster) post(contentType string, body []byte) (int, []byte, error) {
	if contentType != p.ct {
		p.req.Header.Set("Content-Type", contentType)
		p.ct = contentType
	}
	p.cur = body
	p.body.Reset(body)
	p.req.Body, p.req.ContentLength = p.rc, int64(len(body))
	resp, err := p.client.Do(p.req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	p.answer.Reset()
	_, err = p.answer.ReadFrom(resp.Body)
	return resp.StatusCode, p.answer.Bytes(), err
}

// rawPoster is a minimal HTTP/1.1 client of one keep-alive connection,
// for the load test: it writes each request, header and body, in one
// write, and reads the answer, which must have a Content-Length (the
// server's answers are small). It costs the load generator a fraction of
// what net/http's Transport does per request, so that more of the shared
// cores go to the server; the soak uses net/http.
type rawPoster struct {
	addr, path string
	conn       net.Conn
	br         *bufio.Reader
	req        []byte
	answer     []byte
}

func newRawPoster(url string) *rawPoster {
	hostPath := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(hostPath, "/")
	return &rawPoster{addr: host, path: "/" + path}
}

// post sends body and returns the status and the answer, which is valid
// until the next post. After an error the connection is closed, and the
// next post opens a new one.
func (p *rawPoster) post(contentType string, body []byte) (code int, answer []byte, err error) {
	if p.conn == nil {
		if p.conn, err = net.Dial("tcp", p.addr); err != nil {
			return 0, nil, err
		}
		if p.br == nil {
			p.br = bufio.NewReaderSize(p.conn, 4096)
		} else {
			p.br.Reset(p.conn)
		}
	}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	b := append(p.req[:0], "POST "...)
	b = append(b, p.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, p.addr...)
	b = append(b, "\r\nUser-Agent: gograd-loadtest\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	p.req = b
	if _, err := p.conn.Write(b); err != nil {
		return 0, nil, err
	}
	line, err := p.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("reading the status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("status line %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, fmt.Errorf("status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err := p.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("reading the header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, fmt.Errorf("header line %q", line)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, fmt.Errorf("answer with Transfer-Encoding %q: this client reads only Content-Length", value)
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		}
	}
	if length < 0 {
		return 0, nil, errors.New("answer without Content-Length")
	}
	if cap(p.answer) < length {
		p.answer = make([]byte, length)
	}
	p.answer = p.answer[:length]
	if _, err := io.ReadFull(p.br, p.answer); err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if !keep {
		p.close()
	}
	return code, p.answer, nil
}

func (p *rawPoster) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// sender is one client of the load test: a poster (net/http) or a
// rawPoster.
type sender interface {
	post(contentType string, body []byte) (int, []byte, error)
	close()
}

func (p *poster) close() {}

// senders returns c clients of url of the kind -client names.
func senders(kind, url string, c int) ([]sender, func()) {
	ss := make([]sender, c)
	var client *http.Client
	for i := range ss {
		if kind == "raw" {
			ss[i] = newRawPoster(url)
			continue
		}
		if client == nil {
			client = newClient(c)
		}
		ss[i] = newPoster(client, url)
	}
	return ss, func() {
		for _, s := range ss {
			s.close()
		}
		if client != nil {
			client.CloseIdleConnections()
		}
	}
}

// topClass returns the first class an answer names, or -1.
func topClass(answer []byte) int {
	const key = `"class":`
	i := bytes.Index(answer, []byte(key))
	if i < 0 {
		return -1
	}
	c, ok := 0, false
	for _, d := range answer[i+len(key):] {
		if d < '0' || d > '9' {
			break
		}
		c, ok = 10*c+int(d-'0'), true
	}
	if !ok {
		return -1
	}
	return c
}

// digitPNG draws a digit-like 28x28 image: a few thick random strokes.
func digitPNG(rng *rand.Rand) []byte {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for range 2 + rng.IntN(3) {
		x0, y0 := 6+rng.Float64()*16, 4+rng.Float64()*20
		x1, y1 := 6+rng.Float64()*16, 4+rng.Float64()*20
		for t := 0.0; t <= 1; t += 0.02 {
			cx, cy := x0+(x1-x0)*t, y0+(y1-y0)*t
			for dy := -2; dy <= 2; dy++ {
				for dx := -2; dx <= 2; dx++ {
					x, y := int(cx)+dx, int(cy)+dy
					if x >= 0 && x < 28 && y >= 0 && y < 28 && dx*dx+dy*dy <= 4 {
						img.SetGray(x, y, color.Gray{Y: 255})
					}
				}
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// pixelsJSON is the JSON request of the 28x28 grayscale PNG b's pixels.
func pixelsJSON(b []byte) []byte {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	px := make([]float64, 0, 784)
	for y := range 28 {
		for x := range 28 {
			px = append(px, float64(img.(*image.Gray).GrayAt(x, y).Y)/255)
		}
	}
	out, _ := json.Marshal(map[string]any{"instances": [][]float64{px}})
	return out
}

func runLoad(gograd, model, configs, concurrency, payload, clientKind, profile string, floor bool, rounds, requests int, duration, warmup time.Duration) error {
	contentType := "image/png"
	switch payload {
	case "png":
	case "json":
		contentType = "application/json"
	default:
		return fmt.Errorf("-payload %q: want png or json", payload)
	}
	if rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", rounds)
	}
	if clientKind != "raw" && clientKind != "net/http" {
		return fmt.Errorf("-client %q: want raw or net/http", clientKind)
	}
	var levels []int
	for f := range strings.SplitSeq(concurrency, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency: %q is not a positive integer", f)
		}
		levels = append(levels, n)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = digitPNG(rng)
		if payload == "json" {
			bodies[i] = pixelsJSON(bodies[i])
		}
	}
	fmt.Println("| server | concurrency | requests | req/s | p50 ms | p99 ms | mean batch | ms/pass | server µs/req | client µs/req | errors |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	// Every server runs at once, and each concurrency level measures them
	// one after the other, so that they see the same machine.
	var names []string
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	start := func(bin, name string, args []string) error {
		if profile != "" {
			args = append(args, "-cpuprofile", filepath.Join(profile, "server-"+name+".prof"))
		}
		s, err := startServer(bin, model, args)
		if err != nil {
			return err
		}
		names, servers = append(names, name), append(servers, s)
		return nil
	}
	for cfg := range strings.SplitSeq(configs, ";") {
		name, flags, _ := strings.Cut(cfg, "=")
		if err := start(gograd, name, strings.Fields(flags)); err != nil {
			return err
		}
	}
	ref := len(servers) - 1 // the last configuration: the ratios' denominator
	if floor {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("-floor: %w", err)
		}
		if err := start(self, "floor", nil); err != nil {
			return err
		}
		servers[len(servers)-1].floor = true
	}
	want, err := expectedClasses(servers, names, contentType, bodies)
	if err != nil {
		return err
	}
	floorWant := make([]int, len(bodies))
	for k, b := range bodies {
		floorWant[k] = floorClass(b)
	}
	// rps[level][server] are the rounds' requests per second.
	rps := make([][][]float64, len(levels))
	for range rounds {
		for li, c := range levels {
			rps[li] = slices.Grow(rps[li], len(servers))[:len(servers)]
			for i, s := range servers {
				clients, closeClients := senders(clientKind, s.url+"/v1/predict", c)
				want := want
				if s.floor {
					want = floorWant
				}
				level(clients, contentType, bodies, want, 1<<30, warmup)
				rows0, passes0 := s.metric("gograd_serve_batch_size_sum"), s.metric("gograd_serve_batch_size_count")
				fwd0 := s.metric("gograd_serve_forward_seconds_sum")
				cpu0, err := s.cpu()
				if err != nil {
					return err
				}
				own0 := ownCPU()
				r := level(clients, contentType, bodies, want, requests, duration)
				own := ownCPU() - own0
				cpu, err := s.cpu()
				if err != nil {
					return err
				}
				cpu -= cpu0
				rows, passes := s.metric("gograd_serve_batch_size_sum")-rows0, s.metric("gograd_serve_batch_size_count")-passes0
				fwd := s.metric("gograd_serve_forward_seconds_sum") - fwd0
				closeClients()
				fmt.Printf("| %s | %d | %d | %.0f | %.2f | %.2f | %s | %s | %.0f | %.0f | %d |\n", names[i], c, r.n, r.rps,
					ms(r.quantile(0.5)), ms(r.quantile(0.99)), orDash("%.1f", rows/passes), orDash("%.3f", 1e3*fwd/passes),
					us(cpu)/float64(r.n), us(own)/float64(r.n), r.errors)
				if r.errors > 0 {
					fmt.Printf("first error: %s\n", r.firstErr)
				}
				rps[li][i] = append(rps[li][i], r.rps)
			}
		}
	}
	if rounds > 1 && len(servers) > 1 {
		var ratios []string
		for i, n := range names {
			if i != ref {
				ratios = append(ratios, n+"/"+names[ref])
			}
		}
		fmt.Printf("\nMedian req/s of %d rounds, and the ratios of the medians to %s's:\n\n", rounds, names[ref])
		fmt.Printf("| concurrency | %s | %s |\n|---:|%s\n", strings.Join(names, " | "), strings.Join(ratios, " | "),
			strings.Repeat("---:|", len(names)+len(ratios)))
		for li, c := range levels {
			fmt.Printf("| %d |", c)
			var med []float64
			for i := range servers {
				med = append(med, median(rps[li][i]))
				fmt.Printf(" %.0f |", med[i])
			}
			for i := range servers {
				if i != ref {
					fmt.Printf(" %.2f |", med[i]/med[ref])
				}
			}
			fmt.Println()
		}
	}
	for _, s := range servers {
		if err := s.stop(); err != nil {
			return err
		}
	}
	servers = nil
	return nil
}

// expectedClasses asks each server, unloaded, for the top class of each
// body: they must agree, and the load test then checks every answer
// against it.
func expectedClasses(servers []*server, names []string, contentType string, bodies [][]byte) ([]int, error) {
	want := make([]int, len(bodies))
	for i, s := range servers {
		if s.floor {
			continue // it answers floorClass
		}
		p := newPoster(newClient(1), s.url+"/v1/predict")
		for k, b := range bodies {
			code, answer, err := p.post(contentType, b)
			if err != nil || code != 200 {
				return nil, fmt.Errorf("%s: request %d: status %d (%v): %.200s", names[i], k, code, err, answer)
			}
			c := topClass(answer)
			switch {
			case c < 0:
				return nil, fmt.Errorf("%s: request %d: no class in %.200s", names[i], k, answer)
			case i == 0:
				want[k] = c
			case c != want[k]:
				return nil, fmt.Errorf("request %d: %s answers class %d, %s %d", k, names[i], c, names[0], want[k])
			}
		}
		p.client.CloseIdleConnections()
	}
	return want, nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpu is the CPU time the server has used, from /proc.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which is in parentheses:
	// utime and stime are the 14th and 15th fields of the line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", s.cmd.Process.Pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is the unit of /proc's CPU times, USER_HZ, which Linux fixes
// at 100 on every architecture.
const clockTicks = 100

// ownCPU is the CPU time the load generator has used.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// orDash formats v, or a dash where it is NaN (a metric the floor does not have).
func orDash(format string, v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// result is what one level measured.
type result struct {
	n, errors int
	firstErr  string
	rps       float64
	lat       []time.Duration // sorted
}

func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

// level runs the clients until n requests were sent or d has passed. An
// answer counts as an error unless it is a 200 that names want[k] as the
// top class of body k.
func level(clients []sender, contentType string, bodies [][]byte, want []int, n int, d time.Duration) result {
	c := len(clients)
	var sent, errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, c)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range c {
		wg.Go(func() {
			p := clients[i]
			lats[i] = make([]time.Duration, 0, min(n/c+1, 4096))
			for k := i; ctx.Err() == nil && sent.Add(1) <= int64(n); k++ {
				t := time.Now()
				b := k % len(bodies)
				code, answer, err := p.post(contentType, bodies[b])
				if err == nil && code == 200 {
					if got := topClass(answer); got != want[b] {
						err = fmt.Errorf("request %d answered class %d, unloaded %d: %.200s", b, got, want[b], answer)
					}
				} else if err == nil {
					err = fmt.Errorf("status %d: %.200s", code, answer)
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[i] = append(lats[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := result{n: len(all) + int(errs.Load()), errors: int(errs.Load()), rps: float64(len(all)) / elapsed.Seconds(), lat: all}
	if e, ok := firstErr.Load().(string); ok {
		r.firstErr = e
	}
	return r
}

// expectation is a request of the soak and what its answer must be.
type expectation struct {
	name        string
	contentType string
	body        []byte
	status      int
	code        string    // the error code, for a 4xx
	classes     []int     // top-1 class of each input, for a 200
	probs       []float64 // its probability, as predict printed it (percent)
}

var predictLine = regexp.MustCompile(`^(.*): (\d+) \(([0-9.e+-]+)%\)`)

// soakRequests builds the mix: good images (checked against predict),
// multipart pairs, and bad requests of each kind.
func soakRequests(gograd, model, dir string) ([]expectation, error) {
	rng := rand.New(rand.NewPCG(2, 2))
	const images = 200
	var paths []string
	files := map[string][]byte{}
	for i := range images {
		b := digitPNG(rng)
		p := filepath.Join(dir, fmt.Sprintf("digit%03d.png", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
		files[p] = b
	}
	out, err := exec.Command(gograd, append([]string{"predict", "-model", model}, paths...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("gograd predict: %w", err)
	}
	var reqs []expectation
	want := map[string]expectation{}
	for line := range strings.Lines(string(out)) {
		m := predictLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("gograd predict printed %q", line)
		}
		c, _ := strconv.Atoi(m[2])
		p, _ := strconv.ParseFloat(m[3], 64)
		e := expectation{name: "png", contentType: "image/png", body: files[m[1]], status: 200, classes: []int{c}, probs: []float64{p}}
		want[m[1]] = e
		reqs = append(reqs, e)
	}
	if len(want) != images {
		return nil, fmt.Errorf("gograd predict answered %d of %d images", len(want), images)
	}
	for i := 0; i+1 < images; i += 2 {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, p := range paths[i : i+2] {
			w, _ := mw.CreateFormFile("image", filepath.Base(p))
			w.Write(files[p])
		}
		mw.Close()
		a, c := want[paths[i]], want[paths[i+1]]
		reqs = append(reqs, expectation{name: "multipart", contentType: mw.FormDataContentType(), body: b.Bytes(), status: 200,
			classes: []int{a.classes[0], c.classes[0]}, probs: []float64{a.probs[0], c.probs[0]}})
	}
	good := files[paths[0]]
	bomb := pngHeader(1<<16, 1<<16)
	three, _ := json.Marshal(map[string]any{"instances": [][3][28][28]float32{{}}}) // an RGB input
	reqs = append(reqs,
		expectation{name: "corrupt", contentType: "image/png", body: good[:len(good)/2], status: 400, code: "bad_image"},
		expectation{name: "bomb", contentType: "image/png", body: bomb, status: 413, code: "too_many_pixels"},
		expectation{name: "text", contentType: "text/plain", body: []byte("a seven"), status: 415, code: "unsupported_format"},
		expectation{name: "big", contentType: "image/png", body: append(slices.Clip(good), make([]byte, 70<<10)...), status: 413, code: "body_too_large"},
		expectation{name: "badjson", contentType: "application/json", body: []byte(`{"instances": [[0, 1,]]}`), status: 400, code: "malformed_json"},
		expectation{name: "shortjson", contentType: "application/json", body: []byte(`{"instances": [[0, 1]]}`), status: 400, code: "wrong_shape"},
		expectation{name: "channels", contentType: "application/json", body: three, status: 400, code: "wrong_channels"},
	)
	return reqs, nil
}

// pngHeader is a PNG signature and header announcing w x h pixels.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := []byte("IHDR\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x00")
	binary.BigEndian.PutUint32(chunk[4:], w)
	binary.BigEndian.PutUint32(chunk[8:], h)
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// check compares an answer with its expectation.
func (e expectation) check(code int, body []byte) error {
	if code != e.status {
		return fmt.Errorf("%s: status %d, want %d: %.200s", e.name, code, e.status, body)
	}
	if e.status != 200 {
		var a struct{ Error struct{ Code string } }
		if err := json.Unmarshal(body, &a); err != nil || a.Error.Code != e.code {
			return fmt.Errorf("%s: error %.200s, want code %s", e.name, body, e.code)
		}
		return nil
	}
	var a struct {
		Predictions []struct {
			Top []struct {
				Class       int
				Probability float64
			}
		}
	}
	if err := json.Unmarshal(body, &a); err != nil || len(a.Predictions) != len(e.classes) {
		return fmt.Errorf("%s: answer %.200s (%v)", e.name, body, err)
	}
	for i, p := range a.Predictions {
		// predict prints 4 significant digits of the percentage.
		got, want := 100*p.Top[0].Probability, e.probs[i]
		if p.Top[0].Class != e.classes[i] || math.Abs(got-want) > 5e-4*want {
			return fmt.Errorf("%s: input %d is class %d (%.4g%%), predict says %d (%.4g%%)", e.name, i, p.Top[0].Class, got, e.classes[i], want)
		}
	}
	return nil
}

func runSoak(gograd, model string, n, clients int, limit time.Duration, growth float64) error {
	dir, err := os.MkdirTemp("", "gograd-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	reqs, err := soakRequests(gograd, model, dir)
	if err != nil {
		return err
	}
	// A quarter of the requests are bad, of every kind alike.
	split := slices.IndexFunc(reqs, func(e expectation) bool { return e.status != 200 })
	good, bad := reqs[:split], reqs[split:]
	s, err := startServer(gograd, model, []string{"-max-body", strconv.Itoa(64 << 10), "-max-pixels", strconv.Itoa(1 << 20)})
	if err != nil {
		return err
	}
	var sent, answered, lost, wrong atomic.Int64
	byName := sync.Map{}
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	client := newClient(clients)
	var rss []int64
	var rssMu sync.Mutex
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for ctx.Err() == nil && answered.Load() < int64(n) {
			if v, err := s.rss(); err == nil {
				rssMu.Lock()
				rss = append(rss, v)
				rssMu.Unlock()
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			p := newPoster(client, s.url+"/v1/predict")
			for ctx.Err() == nil {
				k := sent.Add(1)
				if k > int64(n) {
					return
				}
				e := good[rng.IntN(len(good))]
				if rng.IntN(4) == 0 {
					e = bad[rng.IntN(len(bad))]
				}
				code, body, err := p.post(e.contentType, e.body)
				if err != nil {
					lost.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				answered.Add(1)
				c, _ := byName.LoadOrStore(e.name, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
				if err := e.check(code, body); err != nil {
					wrong.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-samplerDone
	served := s.metric(`gograd_serve_requests_total{code="200"}`)
	stopErr := s.stop()

	fmt.Printf("soak: %d requests sent in %.1fs (%.0f/s) by %d clients: %d answered, %d lost, %d wrong; server counted %.0f answered 200\n",
		min(sent.Load(), int64(n)), elapsed.Seconds(), float64(answered.Load())/elapsed.Seconds(), clients, answered.Load(), lost.Load(), wrong.Load(), served)
	var kinds []string
	byName.Range(func(k, v any) bool {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(kinds)
	fmt.Printf("soak: by kind: %s\n", strings.Join(kinds, ", "))
	if e := firstErr.Load(); e != nil {
		fmt.Printf("soak: first error: %s\n", e)
	}
	var problems []string
	if lost.Load() > 0 || wrong.Load() > 0 || answered.Load() < int64(n) {
		problems = append(problems, fmt.Sprintf("%d of %d requests answered, %d lost, %d wrong", answered.Load(), n, lost.Load(), wrong.Load()))
	}
	if len(rss) >= 8 {
		// Warm-up: the first fifth of the samples.
		after := rss[len(rss)/5:]
		first, last := after[0], after[len(after)-1]
		peak := slices.Max(after)
		fmt.Printf("soak: resident memory after warm-up %.1f MiB, peak %.1f MiB, at the end %.1f MiB (%d samples)\n",
			mib(first), mib(peak), mib(last), len(rss))
		if float64(last) > float64(first)*(1+growth) {
			problems = append(problems, fmt.Sprintf("resident memory grew from %.1f to %.1f MiB", mib(first), mib(last)))
		}
	} else {
		fmt.Printf("soak: too short to sample resident memory (%d samples)\n", len(rss))
	}
	if stopErr != nil {
		problems = append(problems, stopErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
