package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// flatten appends the numbers of the nested arrays v to out, or reports
// false for anything else.
func flatten(v any, out []float32) ([]float32, bool) {
	switch v := v.(type) {
	case float64:
		return append(out, float32(v)), true
	case []any:
		for _, e := range v {
			var ok bool
			if out, ok = flatten(e, out); !ok {
				return out, false
			}
		}
		return out, true
	}
	return out, false
}

// FuzzParseJSON checks the JSON request parser against encoding/json: it
// never panics, accepts only valid JSON, and what it accepts has the same
// numbers in the same order, instances of the right size and a top_k
// that encoding/json reads too. Every refusal is a 4xx inputError.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"instances": [[0, 0.5, 1, 0.25]]}`,
		`{"instances": [[[0, 1], [1, 0]]], "top_k": 2}`,
		`{"instances": [[[[0, 1], [1, 0]]]]}`,
		`{"top_k": 1, "instances": [[1e-3, -2E+1, 0.0, 1], [0,0,0,0]]}`,
		`{"\u0069nstances": [[1, 2, 3, 4]]}`,
		`{"instances": [[1, 2,]]}`,
		`{"instances": [[01, 2, 3, 4]]}`,
		`{"instances": [[1, 2, 3, 4]]} x`,
		`{"instances": [[1, [2], 3, 4]]}`,
		`{"instances": [[1e999, 2, 3, 4]]}`,
		`{"instances": [["1", 2, 3, 4]]}`,
		`{"instances": [[1, 2, 3, 4]], "instances": [[1, 2, 3, 4]]}`,
		`{"instances": [[1, 2, 3, 4]], "top_k": 0}`,
		"{\"instances\": [[1, 2, 3, 4]]\n}\t",
		`{}`, `[]`, `{"instances": []}`, ``, `{"instances": [[-]]}`, `{"a\"b": 1}`,
	} {
		f.Add([]byte(s))
	}
	shape := Shape{Channels: 1, Height: 2, Width: 2}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req jsonRequest
		err := parseJSON(body, shape, 8, &req)
		if err != nil {
			var ie *inputError
			if !errors.As(err, &ie) || ie.status < 400 || ie.status > 499 || ie.code == "" {
				t.Fatalf("refusal %v is not a 4xx inputError", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		want, ok := flatten(doc["instances"], nil)
		if !ok || req.n < 1 || req.n > 8 || len(req.x) != req.n*shape.Len() || len(want) != len(req.x) {
			t.Fatalf("%q: %d instances of %d values; encoding/json finds %d values", body, req.n, len(req.x), len(want))
		}
		for i, v := range want {
			if v != req.x[i] || math.IsInf(float64(v), 0) {
				t.Fatalf("%q: value %d is %v, encoding/json reads %v", body, i, req.x[i], v)
			}
		}
		if k, ok := doc["top_k"].(float64); ok != (req.topK > 0) || (ok && int(k) != req.topK) {
			t.Fatalf("%q: top_k %d, encoding/json reads %v", body, req.topK, doc["top_k"])
		}
	})
}

// FuzzPredictRequest sends arbitrary bodies to the predict endpoint as
// each kind of content (with the model replaced by a tiny one, which the
// fuzzer's bodies rarely reach) and checks that nothing panics, that every
// answer is JSON, and that refusals are 4xx with an error code.
func FuzzPredictRequest(f *testing.F) {
	model, dev := trained(f)
	b := newBatcher(f, BatcherConfig{Model: model, Device: dev, MaxBatch: 4})
	h, err := NewHandler(b, HandlerConfig{Shape: testShape, MaxBody: 1 << 16, MaxPixels: 1 << 12, MaxInputs: 4,
		Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	h.SetReady(true)
	zeros := make([]float32, inputs)
	f.Add(uint8(0), pngOf(f, zeros, false))
	f.Add(uint8(0), pngBomb(1<<20, 1<<20))
	f.Add(uint8(1), instancesJSON(zeros, 2))
	f.Add(uint8(2), []byte("--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"+string(pngOf(f, zeros, false))+"\r\n--B--\r\n"))
	f.Add(uint8(2), []byte("--B\r\n\r\nhello\r\n--B--\r\n"))
	f.Add(uint8(0), []byte("\xff\xd8\xff\xe0garbage"))
	types := []string{"image/png", "application/json", "multipart/form-data; boundary=B", ""}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		req := httptest.NewRequest("POST", "/v1/predict", bytes.NewReader(body))
		if ct := types[int(kind)%len(types)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		if rec.Code == http.StatusOK {
			return
		}
		var e apiError
		if json.Unmarshal(rec.Body.Bytes(), &e); rec.Code < 400 || rec.Code > 499 || e.Error.Code == "" {
			t.Fatalf("status %d, body %s: want 200 or a 4xx error", rec.Code, rec.Body.Bytes())
		}
	})
}

// TestExactDecimal checks the fast path of number parsing against
// strconv.ParseFloat on random decimals of up to 15 digits.
func TestExactDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for range 200000 {
		digits := 1 + rng.IntN(15)
		m := rng.Uint64N(uint64(math.Pow10(digits)))
		s := strconv.FormatUint(m, 10)
		if k := rng.IntN(len(s) + 1); k > 0 && k < len(s) {
			s = s[:len(s)-k] + "." + s[len(s)-k:]
		}
		if rng.IntN(2) == 0 {
			s = "-" + s
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := exactDecimal([]byte(s)); !ok || got != want {
			t.Fatalf("exactDecimal(%s) = %v, %v; ParseFloat gives %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"1e5", "1234567890123456", "0.1234567890123456"} {
		if _, ok := exactDecimal([]byte(s)); ok {
			t.Errorf("exactDecimal(%s) took the fast path", s)
		}
	}
}

// TestExact32 checks the float32 fast path of numbers of 16 to 19 digits
// against float32 of strconv.ParseFloat: on random decimals, on float64
// values as a client writes them, and on decimals as close as 19 digits
// get to a value halfway between two float32s, where a wrong fast path
// would round the other way. It also checks that the fast path is taken
// for nearly all of the random ones.
func TestExact32(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var inputs []string
	for range 100000 {
		digits := 16 + rng.IntN(4)
		s := strconv.FormatUint(rng.Uint64N(uint64(math.Pow10(digits))), 10)
		if k := rng.IntN(len(s) + 1); k > 0 && k < len(s) {
			s = s[:len(s)-k] + "." + s[len(s)-k:]
		}
		inputs = append(inputs, s, "-"+s)
	}
	for i := range 256 {
		inputs = append(inputs, strconv.FormatFloat(float64(i)/255, 'f', -1, 64))
	}
	for range 100000 {
		f := float32(0.001 + rng.Float64()*1000)
		mid := (float64(f) + float64(math.Nextafter32(f, 2*f))) / 2
		s := strconv.FormatFloat(mid, 'f', -1, 64)
		if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-1 > 19 {
			s = strconv.FormatFloat(mid, 'f', max(0, 19-i), 64) // 19 digits, rounded
		}
		inputs = append(inputs, s)
	}
	fast := 0
	for _, s := range inputs {
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		end, v, _, exact32, problem := scanNumber([]byte(s), 0)
		if end != len(s) || problem != "" {
			t.Fatalf("scanNumber(%s) ends at %d of %d: %q", s, end, len(s), problem)
		}
		if !exact32 {
			continue
		}
		fast++
		if float32(v) != float32(want) {
			t.Fatalf("scanNumber(%s): float32 %v, ParseFloat's float32 %v", s, float32(v), float32(want))
		}
	}
	if rnd := 2*100000 + 256; fast < rnd*99/100 {
		t.Errorf("the fast path took %d of %d numbers, want nearly all of the %d random ones", fast, len(inputs), rnd)
	}
}
