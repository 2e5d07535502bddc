package device

import "fmt"

//go:generate go run ../internal/opsgen -o ../cuda/ops.h

// OpKind is the family of an operation: the Device method that runs it.
type OpKind int

// Operation families.
const (
	KindUnary      OpKind = iota // Device.Unary: one input and the scalars alpha, beta
	KindBinary                   // Device.Binary: two inputs over a Walk, and alpha, beta
	KindTernary                  // Device.Ternary: three inputs over a Walk
	KindReduce                   // Device.Reduce: one axis of one input
	KindActivation               // the fused BiasAct and BiasActGrad
)

var kindNames = [...]string{"unary", "binary", "ternary", "reduce", "activation"}

// String returns the family's name.
func (k OpKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// OpInfo describes one operation. The tables below are the only definition
// of the operations: the CPU backend and the CUDA op codes (cuda/ops.h,
// written by `go generate ./device`) are derived from them, and a test
// fails when kernels.cu lacks a case for one of them.
type OpInfo struct {
	Kind   OpKind
	Code   int    // the value of the op's enum constant, and its CUDA op code
	Name   string // for String and errors: "relu"
	Arity  int    // number of tensor inputs
	Const  string // the CUDA enum constant, in cuda/ops.h: "U_RELU"
	Kernel string // the CUDA entry point that runs it: "unary_f32"
	Doc    string // what it computes
	Cost   int    // CPU work per element, relative to an addition (threading threshold)
}

// UnaryOp names an elementwise operation of one input and the scalars
// alpha and beta.
type UnaryOp int

// Unary operations. Alpha and beta are ignored unless named.
const (
	Neg       UnaryOp = iota // -x
	Exp                      // e^x
	Log                      // ln x
	Relu                     // max(x, 0)
	Sigmoid                  // 1/(1+e^-x)
	Tanh                     // tanh x
	Sqrt                     // sqrt x
	AddScalar                // x + alpha
	MulScalar                // x * alpha
	PowScalar                // x ^ alpha
	Square                   // x * x
	Abs                      // |x|
	LeakyRelu                // x if x > 0 else alpha*x
	GeluTanh                 // GELU, tanh approximation
	GeluErf                  // GELU, exact: x*Φ(x)
	Silu                     // x*sigmoid(x)
	Softplus                 // ln(1+e^x), x above 20
	Clamp                    // min(max(x, alpha), beta), NaN kept
	Sign                     // -1, 0 or 1 (0 for NaN, as PyTorch)
	numUnary
)

var unaryOps = [numUnary]OpInfo{
	Neg:       {Name: "neg", Doc: "-x", Cost: 1},
	Exp:       {Name: "exp", Doc: "e^x", Cost: 8},
	Log:       {Name: "log", Doc: "ln x", Cost: 8},
	Relu:      {Name: "relu", Doc: "max(x, 0)", Cost: 1},
	Sigmoid:   {Name: "sigmoid", Doc: "1/(1+e^-x)", Cost: 8},
	Tanh:      {Name: "tanh", Doc: "tanh x", Cost: 8},
	Sqrt:      {Name: "sqrt", Doc: "sqrt x", Cost: 2},
	AddScalar: {Name: "add_scalar", Doc: "x + alpha", Cost: 1},
	MulScalar: {Name: "mul_scalar", Doc: "x * alpha", Cost: 1},
	PowScalar: {Name: "pow_scalar", Doc: "x ^ alpha", Cost: 8},
	Square:    {Name: "square", Doc: "x * x", Cost: 1},
	Abs:       {Name: "abs", Doc: "|x|", Cost: 1},
	LeakyRelu: {Name: "leaky_relu", Doc: "x if x > 0 else alpha*x", Cost: 1},
	GeluTanh:  {Name: "gelu_tanh", Doc: "0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))", Cost: 8},
	GeluErf:   {Name: "gelu_erf", Doc: "0.5x(1+erf(x/sqrt 2))", Cost: 8},
	Silu:      {Name: "silu", Doc: "x/(1+e^-x)", Cost: 8},
	Softplus:  {Name: "softplus", Doc: "ln(1+e^x), or x when x > 20", Cost: 8},
	Clamp:     {Name: "clamp", Doc: "min(max(x, alpha), beta)", Cost: 1},
	Sign:      {Name: "sign", Doc: "-1, 0 or 1", Cost: 1},
}

// String returns the operation's name.
func (op UnaryOp) String() string {
	if op >= 0 && op < numUnary {
		return unaryOps[op].Name
	}
	return fmt.Sprintf("UnaryOp(%d)", int(op))
}

// BinaryOp names an elementwise operation of two inputs and the scalars
// alpha and beta. The *Grad operations take a function's input (or, where
// named, its output) as a and the upstream gradient as b.
type BinaryOp int

// Binary operations. Alpha and beta are ignored unless named.
const (
	Add           BinaryOp = iota // a + b
	Sub                           // a - b
	Mul                           // a * b
	Div                           // a / b
	Pow                           // a ^ b
	Max                           // max(a, b)
	GreaterEq                     // 1 if a >= b else 0
	ReluGrad                      // b if a > 0 else 0 (a: relu input, b: upstream gradient)
	SigmoidGrad                   // b * a * (1 - a) (a: sigmoid output)
	TanhGrad                      // b * (1 - a*a) (a: tanh output)
	Greater                       // 1 if a > b else 0
	Equal                         // 1 if a == b else 0
	AbsGrad                       // b * sign(a)
	LeakyReluGrad                 // b if a > 0 else alpha*b
	GeluTanhGrad                  // b * gelu_tanh'(a)
	GeluErfGrad                   // b * gelu_erf'(a)
	SiluGrad                      // b * silu'(a)
	SoftplusGrad                  // b * sigmoid(a), or b when a > 20
	ClampGrad                     // b if alpha <= a <= beta else 0
	numBinary
)

var binaryOps = [numBinary]OpInfo{
	Add:           {Name: "add", Doc: "a + b", Cost: 1},
	Sub:           {Name: "sub", Doc: "a - b", Cost: 1},
	Mul:           {Name: "mul", Doc: "a * b", Cost: 1},
	Div:           {Name: "div", Doc: "a / b", Cost: 1},
	Pow:           {Name: "pow", Doc: "a ^ b", Cost: 8},
	Max:           {Name: "max", Doc: "max(a, b), NaN wins", Cost: 1},
	GreaterEq:     {Name: "greater_eq", Doc: "1 if a >= b else 0", Cost: 1},
	ReluGrad:      {Name: "relu_grad", Doc: "b if a > 0 else 0", Cost: 1},
	SigmoidGrad:   {Name: "sigmoid_grad", Doc: "b * a * (1 - a), a the output", Cost: 1},
	TanhGrad:      {Name: "tanh_grad", Doc: "b * (1 - a*a), a the output", Cost: 1},
	Greater:       {Name: "greater", Doc: "1 if a > b else 0", Cost: 1},
	Equal:         {Name: "equal", Doc: "1 if a == b else 0", Cost: 1},
	AbsGrad:       {Name: "abs_grad", Doc: "b * sign(a)", Cost: 1},
	LeakyReluGrad: {Name: "leaky_relu_grad", Doc: "b if a > 0 else alpha*b", Cost: 1},
	GeluTanhGrad:  {Name: "gelu_tanh_grad", Doc: "b * d/da gelu_tanh(a)", Cost: 8},
	GeluErfGrad:   {Name: "gelu_erf_grad", Doc: "b * d/da gelu_erf(a)", Cost: 8},
	SiluGrad:      {Name: "silu_grad", Doc: "b * s(1 + a(1-s)), s = sigmoid(a)", Cost: 8},
	SoftplusGrad:  {Name: "softplus_grad", Doc: "b * sigmoid(a), or b when a > 20", Cost: 8},
	ClampGrad:     {Name: "clamp_grad", Doc: "b if alpha <= a <= beta else 0", Cost: 1},
}

// String returns the operation's name.
func (op BinaryOp) String() string {
	if op >= 0 && op < numBinary {
		return binaryOps[op].Name
	}
	return fmt.Sprintf("BinaryOp(%d)", int(op))
}

// TernaryOp names an elementwise operation of three inputs.
type TernaryOp int

// Ternary operations.
const (
	Where TernaryOp = iota // b if a != 0 else c; the other side is never read into the result
	numTernary
)

var ternaryOps = [numTernary]OpInfo{
	Where: {Name: "where", Doc: "b if a != 0 else c", Cost: 1},
}

// String returns the operation's name.
func (op TernaryOp) String() string {
	if op >= 0 && op < numTernary {
		return ternaryOps[op].Name
	}
	return fmt.Sprintf("TernaryOp(%d)", int(op))
}

// ReduceOp names a reduction along one axis.
type ReduceOp int

// Reductions.
const (
	Sum    ReduceOp = iota // sum
	Mean                   // arithmetic mean
	MaxOf                  // largest value
	ArgMax                 // index of the first largest value, as a float32
	numReduce
)

var reduceOps = [numReduce]OpInfo{
	Sum:    {Name: "sum", Doc: "sum, accumulated in double"},
	Mean:   {Name: "mean", Doc: "arithmetic mean"},
	MaxOf:  {Name: "max", Doc: "largest value; NaN wins; an empty axis is an error"},
	ArgMax: {Name: "argmax", Doc: "index of the first largest value; an empty axis is an error"},
}

// String returns the reduction's name.
func (op ReduceOp) String() string {
	if op >= 0 && op < numReduce {
		return reduceOps[op].Name
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// Activation selects the function applied by a fused bias + activation.
type Activation int

// Activations for BiasAct. Identity adds the bias only.
const (
	Identity Activation = iota
	ActRelu
	ActSigmoid
	ActTanh
	numActivation
)

var activations = [numActivation]OpInfo{
	Identity:   {Name: "identity", Doc: "x"},
	ActRelu:    {Name: "relu", Doc: "max(x, 0)"},
	ActSigmoid: {Name: "sigmoid", Doc: "1/(1+e^-x)"},
	ActTanh:    {Name: "tanh", Doc: "tanh x"},
}

// String returns the activation's name.
func (a Activation) String() string {
	if a >= 0 && a < numActivation {
		return activations[a].Name
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// opPrefix and opKernel are the CUDA constant prefix and entry point of
// each family.
var (
	opPrefix = [...]string{KindUnary: "U_", KindBinary: "B_", KindTernary: "T_", KindReduce: "R_", KindActivation: "A_"}
	opKernel = [...]string{KindUnary: "unary_f32", KindBinary: "binary_walk_f32", KindTernary: "ternary_walk_f32",
		KindReduce: "reduce_rows_f32", KindActivation: "bias_act_f32"}
)

// Ops returns the description of every operation, family by family in
// the order of OpKind, each family in the order of its enum.
func Ops() []OpInfo {
	var out []OpInfo
	for k, table := range [][]OpInfo{unaryOps[:], binaryOps[:], ternaryOps[:], reduceOps[:], activations[:]} {
		for i, op := range table {
			op.Kind, op.Code = OpKind(k), i
			if op.Arity == 0 {
				op.Arity = [...]int{1, 2, 3, 1, 1}[k]
			}
			op.Const = opPrefix[k] + upper(op.Name)
			op.Kernel = opKernel[k]
			out = append(out, op)
		}
	}
	return out
}

// upper returns s in ASCII upper case.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
