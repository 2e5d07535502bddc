package device_test

import (
	"strings"
	"testing"

	"github.com/gograd/gograd/device"
	"github.com/gograd/gograd/internal/testutil"
)

// TestChecks runs every operation with bad arguments on every device: each
// must fail with an error that names the backend, the operation and the
// offending sizes, from the one shared description of its arguments.
func TestChecks(t *testing.T) {
	testutil.ForEachDevice(t, func(t *testing.T, d device.Device) {
		alloc := func(n int) device.Buffer {
			b, err := d.Alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Free(b) })
			return b
		}
		b, b2, small := alloc(12), alloc(12), alloc(5)
		w := func(shape ...int) device.Walk {
			var x device.Walk
			for i := range device.MaxDims {
				x.Shape[i] = 1
			}
			copy(x.Shape[device.MaxDims-len(shape):], shape)
			st := 1
			for i := device.MaxDims - 1; i >= device.MaxDims-len(shape); i-- {
				x.A[i], x.B[i], x.C[i] = st, st, st
				st *= x.Shape[i]
			}
			return x
		}
		pad := w(3, 4)
		pad.Pad, pad.Lo[5], pad.Hi[5] = true, 2, 5
		for i := range 5 {
			pad.Hi[i] = pad.Shape[i]
		}
		off := w(3, 4)
		off.OffA = 1
		dstStrided := w(3, 4)
		dstStrided.D[5], dstStrided.D[4] = 1, 5
		fillStrided := w(3, 4)
		fillStrided.OffD = 1
		binaryPad := w(2)
		binaryPad.Pad = true
		cases := []struct {
			name string
			err  error
			want string
		}{
			{"fill", d.Fill(small, 6, 1), "fill: dst has 5 values, need 6"},
			{"fill negative", d.Fill(b, -1, 1), "fill: negative length -1"},
			{"copy in", d.CopyIn(small, make([]float32, 6)), "copy_in: dst has 5 values, need 6"},
			{"copy out", d.CopyOut(make([]float32, 6), small), "copy_out: src has 5 values, need 6"},
			{"copy x", d.Copy(b, small, w(2, 3)), "copy: x has 5 values, need 6"},
			{"copy offset", d.Copy(b, b2, off), "copy: x has 12 values, need 13"},
			{"copy dst strided", d.Copy(b, b2, dstStrided), "copy: dst has 12 values, need 14"},
			{"copy dst offset", d.Copy(b, b2, fillStrided), "copy: dst has 12 values, need 13"},
			{"copy pad bounds", d.Copy(b, b2, pad), "copy: padding bounds [2, 5) of axis 5"},
			{"unary", d.Unary(device.Exp, small, b, 6, 0, 0), "unary exp: dst has 5 values, need 6"},
			{"unary op", d.Unary(device.UnaryOp(99), b, b, 1, 0, 0), "unary: unknown op UnaryOp(99)"},
			{"binary", d.Binary(device.Add, b, b2, small, w(2, 3), 0, 0), "binary add: b has 5 values, need 6"},
			{"binary op", d.Binary(device.BinaryOp(-1), b, b, b, w(2), 0, 0), "binary: unknown op BinaryOp(-1)"},
			{"binary pad", d.Binary(device.Add, b, b, b, binaryPad, 0, 0), "binary add: padding and dst strides are for copy only"},
			{"ternary", d.Ternary(device.Where, b, small, b, b, w(2, 3)), "ternary where: a has 5 values, need 6"},
			{"ternary op", d.Ternary(device.TernaryOp(7), b, b, b, b, w(2)), "ternary: unknown op TernaryOp(7)"},
			{"reduce", d.Reduce(device.Sum, b, small, 2, 3, 1), "reduce sum: x has 5 values, need 6"},
			{"reduce empty", d.Reduce(device.MaxOf, b, b, 2, 0, 3), "reduce max: empty reduction axis (2 x 0 x 3)"},
			{"reduce op", d.Reduce(device.ReduceOp(9), b, b, 1, 1, 1), "reduce: unknown op ReduceOp(9)"},
			{"matmul", d.MatMul(b, small, b2, 2, 3, 2, false, false, false), "matmul: a has 5 values, need 6"},
			{"matmul alias", d.MatMul(b, b, b2, 2, 2, 2, false, false, false), "matmul: dst must not be an input"},
			{"matmul negative", d.MatMul(b, b2, b2, -1, 2, 2, false, false, false), "matmul: negative size -1"},
			{"softmax", d.Softmax(small, b, 2, 3, false), "softmax: dst has 5 values, need 6"},
			{"log softmax", d.Softmax(b, small, 2, 3, true), "log_softmax: x has 5 values, need 6"},
			{"gather", d.Gather(small, b, b2, 2, 3), "gather: dst has 5 values, need 6"},
			{"dropout", d.DropoutMask(b, 12, 1.5, 1), "dropout_mask: probability 1.5 is not in [0, 1]"},
			{"dropout size", d.DropoutMask(small, 6, 0.5, 1), "dropout_mask: dst has 5 values, need 6"},
		}
		if f, ok := d.(device.SoftmaxCE); ok {
			cases = append(cases, struct {
				name string
				err  error
				want string
			}{"softmax ce", f.SoftmaxCrossEntropy(small, b, b2, b, 6, 2, 1), "softmax_cross_entropy: loss has 5 values, need 6"})
		}
		if f, ok := d.(device.BiasAct); ok {
			cases = append(cases, struct {
				name string
				err  error
				want string
			}{"bias act", f.BiasAct(b, b2, small, 2, 6, device.ActRelu), "bias_act: bias has 5 values, need 6"},
				struct {
					name string
					err  error
					want string
				}{"bias act op", f.BiasAct(b, b2, b, 1, 1, device.Activation(9)), "bias_act: unknown activation 9"})
		}
		if f, ok := d.(device.BiasActGrad); ok {
			cases = append(cases, struct {
				name string
				err  error
				want string
			}{"bias act grad", f.BiasActGrad(b, b, b2, b2, 1, 1, device.ActRelu, false), "bias_act_grad: dbias must not be another operand"})
		}
		if f, ok := d.(device.Optimizers); ok {
			cases = append(cases, []struct {
				name string
				err  error
				want string
			}{
				{"sgd", f.SGDStep(b, small, nil, 6, device.SGDParams{LR: 1}), "sgd_step: g has 5 values, need 6"},
				{"sgd buf", f.SGDStep(b, b2, small, 6, device.SGDParams{LR: 1, Momentum: 0.9}), "sgd_step: buf has 5 values, need 6"},
				{"adam step", f.AdamStep(b, b2, b, b, nil, 12, device.AdamParams{}), "adam_step: step 0, want >= 1"},
				{"adam", f.AdamStep(b, b2, small, b, nil, 6, device.AdamParams{Step: 1}), "adam_step: m has 5 values, need 6"},
				{"adam negative", f.AdamStep(b, b2, b, b, nil, -2, device.AdamParams{Step: 1}), "adam_step: negative length -2"},
				{"amsgrad vmax", f.AdamStep(b, b2, b, b2, nil, 6, device.AdamParams{Step: 1, AMSGrad: true}), "adam_step: vmax is nil"},
				{"amsgrad vmax size", f.AdamStep(b, b2, b, b2, small, 6, device.AdamParams{Step: 1, AMSGrad: true}), "adam_step: vmax has 5 values, need 6"},
				{"vmax without amsgrad", f.AdamStep(b, b2, b, b2, small, 6, device.AdamParams{Step: 1}), "adam_step: vmax given without AMSGrad"},
			}...)
		}
		if f, ok := d.(device.MultiOptimizers); ok {
			ps, gs := []device.Buffer{b, b2}, []device.Buffer{small, small}
			cases = append(cases, []struct {
				name string
				err  error
				want string
			}{
				{"sgd multi lists", f.SGDStepMulti(ps, gs[:1], nil, []int{1, 1}, device.SGDParams{}), "sgd_step_multi: 2 parameters, 1 gradients, 0 buffers and 2 lengths"},
				{"sgd multi size", f.SGDStepMulti(ps, gs, nil, []int{1, 6}, device.SGDParams{}), "sgd_step_multi: g has 5 values, need 6 (tensor 1)"},
				{"sgd multi alias", f.SGDStepMulti([]device.Buffer{b, b}, gs, nil, []int{1, 1}, device.SGDParams{}), "sgd_step_multi: tensors 0 and 1 write the same buffer"},
				{"adam multi lists", f.AdamStepMulti(ps, gs, ps, nil, nil, []int{1, 1}, device.AdamParams{Step: 1}), "adam_step_multi: 2 parameters, 2 gradients, 2 and 0 moments, 2 lengths"},
				{"adam multi vmax", f.AdamStepMulti(ps, gs, gs, gs, nil, []int{1, 1}, device.AdamParams{Step: 1, AMSGrad: true}), "adam_step_multi: 0 vmax buffers for 2 parameters with AMSGrad true"},
				{"adam multi step", f.AdamStepMulti(ps, gs, gs, gs, nil, []int{1, 1}, device.AdamParams{}), "adam_step_multi: step 0, want >= 1"},
				{"adam multi reads", f.AdamStepMulti([]device.Buffer{b}, []device.Buffer{b}, []device.Buffer{b2}, []device.Buffer{small}, nil, []int{1}, device.AdamParams{Step: 1}), ""},
			}...)
		}
		prefix := "device: " + d.Name() + " "
		for _, c := range cases {
			if c.want == "" { // a case that must succeed
				if c.err != nil {
					t.Errorf("%s: %v", c.name, c.err)
				}
				continue
			}
			if c.err == nil || !strings.HasPrefix(c.err.Error(), prefix+c.want) {
				t.Errorf("%s: got error %v, want %q", c.name, c.err, prefix+c.want)
			}
		}
	})
}

// TestMultiDisjoint checks which buffers the tensors of one multi-tensor
// step may share: a device updates them all at once, so a buffer that one
// tensor writes must not be another's; gradients may be shared, and one
// tensor's own buffers may coincide.
func TestMultiDisjoint(t *testing.T) {
	d := device.NewCPU(1)
	buf := make([]device.Buffer, 12)
	for i := range buf {
		b, err := d.Alloc(5)
		if err != nil {
			t.Fatal(err)
		}
		buf[i] = b
	}
	hp := device.SGDParams{LR: 0.1, Momentum: 0.9, First: true}
	ns := []int{5, 5, 5}
	cases := []struct {
		name            string
		ps, gs, bufs    []device.Buffer
		want            string
		withoutMomentum bool
	}{
		{"distinct", buf[0:3], buf[3:6], buf[6:9], "", false},
		{"no momentum", buf[0:3], buf[3:6], nil, "", true},
		{"shared gradient", buf[0:3], []device.Buffer{buf[3], buf[3], buf[3]}, buf[6:9], "", false},
		{"in place in one tensor", []device.Buffer{buf[0], buf[1], buf[2]}, []device.Buffer{buf[0], buf[4], buf[5]}, []device.Buffer{buf[0], buf[7], buf[8]}, "", false},
		{"same parameter", []device.Buffer{buf[0], buf[1], buf[0]}, buf[3:6], buf[6:9], "tensors 0 and 2 write the same buffer", false},
		{"state is another's parameter", buf[0:3], buf[3:6], []device.Buffer{buf[6], buf[0], buf[8]}, "tensors 0 and 1 write the same buffer", false},
		{"gradient is another's state", buf[0:3], []device.Buffer{buf[7], buf[4], buf[5]}, buf[6:9], "tensor 0 reads a buffer that tensor 1 writes", false},
	}
	for _, c := range cases {
		h := hp
		if c.withoutMomentum {
			h.Momentum = 0
		}
		err := d.SGDStepMulti(c.ps, c.gs, c.bufs, ns, h)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
