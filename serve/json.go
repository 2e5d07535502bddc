package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
)

// maxNesting is the deepest an instance's arrays go: [channels][height][width].
const maxNesting = 3

// jsonRequest is the decoded body of a JSON predict request:
//
//	{"instances": [INSTANCE, ...], "top_k": K}
//
// where an INSTANCE is Inputs numbers, flat, as [height][width] rows (one
// channel) or as [channels][height][width]. top_k is optional.
type jsonRequest struct {
	x    []float32 // the instances' values, one row after another
	n    int       // instances
	topK int       // 0 when absent
}

// jsonParser decodes a JSON predict request without building a generic
// tree: values go straight into a reused []float32. It accepts exactly the
// JSON that encoding/json accepts, restricted to that shape.
type jsonParser struct {
	b         []byte
	i         int
	shape     Shape
	maxInputs int
	req       jsonRequest
	dims      [maxNesting]int // the current instance's lengths by depth
	depth     int             // nesting of the current instance's leaves
	start     int             // where the current instance's values begin in req.x
}

// parseJSON decodes body into req, reusing req.x. A bad body is an
// *inputError.
func parseJSON(body []byte, shape Shape, maxInputs int, req *jsonRequest) error {
	var p jsonParser
	return p.parse(body, shape, maxInputs, req)
}

// parse is parseJSON with a parser that the caller keeps, so that it
// does not escape to the heap.
func (p *jsonParser) parse(body []byte, shape Shape, maxInputs int, req *jsonRequest) error {
	*p = jsonParser{b: body, shape: shape, maxInputs: maxInputs, req: jsonRequest{x: req.x[:0]}}
	err := p.document()
	*req = p.req
	p.b, p.req = nil, jsonRequest{}
	return err
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &inputError{status: http.StatusBadRequest, code: "malformed_json",
		msg: fmt.Sprintf("at byte %d: ", p.i) + fmt.Sprintf(format, args...)}
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// expect consumes c after optional white space.
func (p *jsonParser) expect(c byte) error {
	p.space()
	if p.i >= len(p.b) {
		return p.errorf("unexpected end, want %q", c)
	}
	if p.b[p.i] != c {
		return p.errorf("found %q, want %q", p.b[p.i], c)
	}
	p.i++
	return nil
}

// peek returns the next byte after white space, or 0 at the end.
func (p *jsonParser) peek() byte {
	p.space()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *jsonParser) document() error {
	if err := p.expect('{'); err != nil {
		return err
	}
	seenInstances, seenTopK := false, false
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			key, err := p.str()
			if err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			switch string(key) {
			case "instances":
				if seenInstances {
					return p.errorf(`"instances" given twice`)
				}
				seenInstances = true
				if err := p.instances(); err != nil {
					return err
				}
			case "top_k":
				if seenTopK {
					return p.errorf(`"top_k" given twice`)
				}
				seenTopK = true
				v, err := p.number()
				if err != nil {
					return err
				}
				if v != math.Trunc(v) || v < 1 || v > 1<<20 {
					return p.errorf("top_k %v is not a positive integer", v)
				}
				p.req.topK = int(v)
			default:
				return p.errorf("unknown field %q (want \"instances\" and optionally \"top_k\")", key)
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			if err := p.expect('}'); err != nil {
				return err
			}
			break
		}
	}
	if p.peek() != 0 {
		return p.errorf("data after the end of the object")
	}
	if !seenInstances || p.req.n == 0 {
		return p.errorf(`no inputs: want {"instances": [[...%d numbers...]]}`, p.shape.Len())
	}
	return nil
}

// str reads a string token; the result may share the body's memory.
// Strings with escapes are rare (keys here), so they go to encoding/json.
func (p *jsonParser) str() ([]byte, error) {
	if err := p.expect('"'); err != nil {
		return nil, err
	}
	start, escaped := p.i, false
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '\\':
			escaped = true
			p.i++
		case c == '"':
			p.i++
			raw := p.b[start-1 : p.i]
			if !escaped {
				return raw[1 : len(raw)-1], nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, p.errorf("bad string: %v", err)
			}
			return []byte(s), nil
		case c < 0x20:
			return nil, p.errorf("control character in a string")
		}
	}
	return nil, p.errorf("unterminated string")
}

// number reads a JSON number.
func (p *jsonParser) number() (float64, error) {
	p.space()
	start := p.i
	end, v, exact, _, problem := scanNumber(p.b, start)
	p.i = end
	switch {
	case problem != "":
		return 0, p.errorf("%s", problem)
	case exact:
		return v, nil
	}
	v, err := strconv.ParseFloat(string(p.b[start:end]), 64)
	if err != nil {
		return 0, p.errorf("number %s is out of range", p.b[start:end])
	}
	return v, nil
}

// pow10 are the powers of ten that a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// scanNumber scans the JSON number that starts at b[i] in one pass and
// returns where it ends, or a problem (and where it was found) if it is
// not valid. A number without an exponent and with at most 15 digits,
// such as a pixel value, is exact: m/10^k of an exact integer m and an
// exact power of ten is the correctly rounded result, as
// strconv.ParseFloat computes it, and scanNumber returns it.
//
// With 16 to 19 digits, as a client writes a float64 (0.9921568627450981
// is 253/255), m/10^k is within 3 units in the last place of that result,
// and exact32 reports that float32(v) is float32 of the correctly rounded
// float64 all the same: v is not within 4 units of a value halfway
// between two float32s, the only place where so small an error could
// round to another float32. Other numbers are left to ParseFloat.
func scanNumber(b []byte, i int) (end int, v float64, exact, exact32 bool, problem string) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	var m uint64
	lead := i
	for i < len(b) && b[i]-'0' <= 9 {
		m = m*10 + uint64(b[i]-'0')
		i++
	}
	digits := i - lead
	switch {
	case digits == 0:
		return i, 0, false, false, "want a number"
	case digits > 1 && b[lead] == '0':
		return i, 0, false, false, "number with a leading zero"
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		f0 := i
		for i < len(b) && b[i]-'0' <= 9 {
			m = m*10 + uint64(b[i]-'0')
			i++
		}
		if frac = i - f0; frac == 0 {
			return i, 0, false, false, "want digits after the decimal point"
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		e0 := i
		for i < len(b) && b[i]-'0' <= 9 {
			i++
		}
		if i == e0 {
			return i, 0, false, false, "want digits in the exponent"
		}
		return i, 0, false, false, ""
	}
	n := digits + frac
	if n > 19 || frac >= len(pow10) {
		return i, 0, false, false, ""
	}
	v = float64(m) // rounded when m > 2^53
	if frac > 0 {
		v /= pow10[frac]
	}
	if neg {
		v = -v
	}
	if n <= 15 {
		return i, v, true, true, ""
	}
	const half = 1 << 28 // a float32 midpoint, in the 29 mantissa bits float32 drops
	low := int64(math.Float64bits(v) & (1<<29 - 1))
	return i, v, false, low < half-4 || low > half+4, ""
}

// exactDecimal parses a valid JSON number b when scanNumber finds it
// exact; other numbers report false.
func exactDecimal(b []byte) (float64, bool) {
	end, v, exact, _, problem := scanNumber(b, 0)
	return v, exact && problem == "" && end == len(b)
}

func (p *jsonParser) instances() error {
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		if p.req.n == p.maxInputs {
			return &inputError{status: http.StatusRequestEntityTooLarge, code: "too_many_inputs",
				msg: fmt.Sprintf("more than %d inputs in one request", p.maxInputs)}
		}
		if err := p.instance(); err != nil {
			return err
		}
		p.req.n++
		if p.peek() == ',' {
			p.i++
			continue
		}
		return p.expect(']')
	}
}

// instance reads one input, checks its shape and appends its values.
func (p *jsonParser) instance() error {
	p.dims = [maxNesting]int{}
	p.depth = 0
	p.start = len(p.req.x)
	if err := p.array(0); err != nil {
		return err
	}
	return p.shape.check(p.req.n, p.dims[:p.depth], len(p.req.x)-p.start)
}

// array reads an array at nesting depth d (0 for the instance itself).
// Every array at one depth must have the same length, and numbers must be
// at the deepest level only.
func (p *jsonParser) array(d int) error {
	if d == maxNesting {
		return &inputError{status: http.StatusBadRequest, code: "wrong_shape",
			msg: fmt.Sprintf("input %d nests arrays more than %d deep (want [channels][height][width] at most)", p.req.n, maxNesting)}
	}
	if err := p.expect('['); err != nil {
		return err
	}
	n := 0
	if p.peek() == ']' {
		p.i++
	} else {
		for {
			if c := p.peek(); c == '[' {
				if p.depth != 0 && p.depth <= d+1 {
					return p.ragged()
				}
				if err := p.array(d + 1); err != nil {
					return err
				}
			} else {
				if p.depth != 0 && p.depth != d+1 {
					return p.ragged()
				}
				p.depth = d + 1
				k, err := p.numbers()
				if err != nil {
					return err
				}
				n += k - 1
			}
			n++
			if p.peek() == ',' {
				p.i++
				continue
			}
			if err := p.expect(']'); err != nil {
				return err
			}
			break
		}
	}
	if n == 0 {
		return &inputError{status: http.StatusBadRequest, code: "wrong_shape", msg: fmt.Sprintf("input %d has an empty array", p.req.n)}
	}
	if p.dims[d] != 0 && p.dims[d] != n {
		return p.ragged()
	}
	p.dims[d] = n
	return nil
}

// numbers reads a number, and the numbers after it for as long as each
// follows a comma at once (as in [0,1,0.5]), and appends them to the
// instance. It returns how many it read: the common case of an instance
// runs here, one number after the other, without going back to array.
func (p *jsonParser) numbers() (int, error) {
	// Room for a few channels too many, to say so.
	limit := p.shape.Len() * max(p.maxInputs, 4)
	for k := 1; ; k++ {
		p.space()
		var v float64
		if i := p.i; i+1 < len(p.b) && p.b[i] == '0' && (p.b[i+1] == ',' || p.b[i+1] == ']') {
			p.i++ // a lone 0, most pixels of a digit
		} else if end, w, _, exact32, _ := scanNumber(p.b, i); exact32 {
			p.i, v = end, w // at most 19 digits and no exponent: it fits a float32
		} else {
			var err error
			if v, err = p.number(); err != nil {
				return 0, err
			}
			if math.Abs(v) > math.MaxFloat32 {
				return 0, p.errorf("number %g does not fit a float32", v)
			}
		}
		if len(p.req.x)-p.start >= limit {
			return 0, &inputError{status: http.StatusBadRequest, code: "wrong_shape",
				msg: fmt.Sprintf("input %d has more than %d values; want %d", p.req.n, limit, p.shape.Len())}
		}
		p.req.x = append(p.req.x, float32(v))
		if i := p.i; i+1 >= len(p.b) || p.b[i] != ',' || (p.b[i+1]-'0' > 9 && p.b[i+1] != '-') {
			return k, nil
		}
		p.i++
	}
}

func (p *jsonParser) ragged() error {
	return &inputError{status: http.StatusBadRequest, code: "wrong_shape",
		msg: fmt.Sprintf("input %d is ragged: its arrays differ in length or mix numbers and arrays", p.req.n)}
}

// Shape is the input of a model: Channels × Height × Width values.
type Shape struct {
	Channels, Height, Width int
}

// Len is the number of values of one input.
func (s Shape) Len() int { return s.Channels * s.Height * s.Width }

// String formats the shape as channels x height x width.
func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.Channels, s.Height, s.Width) }

// check accepts the shape dims of input i holding n values: flat, [H][W]
// for one channel, or [C][H][W].
func (s Shape) check(i int, dims []int, n int) error {
	ok := false
	switch len(dims) {
	case 1:
		ok = n == s.Len()
	case 2:
		ok = s.Channels == 1 && dims[0] == s.Height && dims[1] == s.Width
	case 3:
		if dims[1] == s.Height && dims[2] == s.Width && dims[0] != s.Channels {
			return &inputError{status: http.StatusBadRequest, code: "wrong_channels",
				msg: fmt.Sprintf("input %d has %d channels; the model takes %d", i, dims[0], s.Channels)}
		}
		ok = slices.Equal(dims, []int{s.Channels, s.Height, s.Width})
	}
	if ok {
		return nil
	}
	return &inputError{status: http.StatusBadRequest, code: "wrong_shape",
		msg: fmt.Sprintf("input %d has shape %v; want %d values, flat or as [channels][height][width] = %v", i, dims, s.Len(), []int{s.Channels, s.Height, s.Width})}
}
