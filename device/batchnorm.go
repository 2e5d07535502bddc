package device

// BatchNorm is implemented by devices with fused batch normalisation in
// training mode. x is viewed as [outer, c, inner] (N, C and H·W of an
// image batch, or N, C and L); each of the c channels is normalised over
// its m = outer·inner values, as torch.nn.functional.batch_norm with
// training=True. With act ActRelu the kernels fuse the ReLU that follows:
// the forward pass writes y = max(BN(x), 0) and the backward pass masks
// the gradient by y > 0 in the same passes over the data.
type BatchNorm interface {
	// BatchNormForward computes, per channel and in one pass over x, the
	// mean and the biased variance; it stores the mean in mean and
	// 1/sqrt(var+eps) in invstd (c values each), and writes
	// y = (x - mean)·invstd·weight + bias. When runMean and runVar are not
	// nil it updates them in place with the momentum, PyTorch's running
	// estimates: run = (1-momentum)·run + momentum·stat, with the unbiased
	// variance var·m/(m-1). m must be at least 2. y may be x. act is
	// Identity or ActRelu, which writes max(y, 0) instead, as cpuRelu: a
	// NaN stays NaN and -0 becomes +0.
	BatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias Buffer, outer, c, inner int, eps, momentum float32, act Activation) error
	// BatchNormBackward is the backward pass of BatchNormForward, in two
	// passes over the data: from g, the gradient with respect to y, and
	// the saved mean and invstd, it computes per channel
	// dbias = Σ g and dweight = Σ g·x̂, with x̂ = (x - mean)·invstd, stores
	// them (or adds them when accumulate) into dweight and dbias, and
	// stores dx = weight·invstd·(g - dbias/m - x̂·dweight/m), with this
	// batch's sums. Any of dx, dweight and dbias may be nil; dx may be g.
	// With act ActRelu, y is the forward pass's output and g·[y > 0] (g
	// where y > 0, else 0; a NaN y is not positive) takes the place of g
	// everywhere, the gradient through the ReLU; dx may also be y. With
	// Identity, y is not read and may be nil.
	BatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g Buffer, outer, c, inner int, act Activation, accumulate bool) error
}

// CheckBatchNormForward validates the arguments of BatchNormForward;
// runMean and runVar are both nil or both given.
func CheckBatchNormForward(y, mean, invstd, runMean, runVar, x, weight, bias Buffer, outer, c, inner int, eps, momentum float32, act Activation) error {
	name := opName{kind: "batch_norm"}
	total, err := size(name, outer, c, inner)
	if err != nil {
		return err
	}
	if err := checkBNAct(name, act); err != nil {
		return err
	}
	if total > 0 && outer*inner < 2 {
		return argErr(name, "expected more than 1 value per channel when training, got input of [%d, %d, %d]", outer, c, inner)
	}
	if !(eps >= 0) || !(momentum >= 0 && momentum <= 1) {
		return argErr(name, "eps %g must be non-negative and momentum %g in [0, 1]", eps, momentum)
	}
	for i, b := range []Buffer{y, x} {
		if err := need(name, [...]string{"y", "x"}[i], b, total); err != nil {
			return err
		}
	}
	for i, b := range []Buffer{mean, invstd, weight, bias} {
		if err := need(name, [...]string{"mean", "invstd", "weight", "bias"}[i], b, c); err != nil {
			return err
		}
	}
	if isNil(runMean) != isNil(runVar) {
		return argErr(name, "running_mean and running_var must both be given or both be nil")
	}
	if !isNil(runMean) {
		if err := need(name, "running_mean", runMean, c); err != nil {
			return err
		}
		if err := need(name, "running_var", runVar, c); err != nil {
			return err
		}
	}
	return nil
}

// checkBNAct accepts the activations the BatchNorm kernels fuse.
func checkBNAct(name opName, act Activation) error {
	if act != Identity && act != ActRelu {
		return argErr(name, "activation %v is not fused: want identity or relu", act)
	}
	return nil
}

// CheckBatchNormBackward validates the arguments of BatchNormBackward; y
// is needed with ActRelu only.
func CheckBatchNormBackward(dx, dweight, dbias, x, y, mean, invstd, weight, g Buffer, outer, c, inner int, act Activation) error {
	name := opName{kind: "batch_norm_grad"}
	total, err := size(name, outer, c, inner)
	if err != nil {
		return err
	}
	if err := checkBNAct(name, act); err != nil {
		return err
	}
	if act == ActRelu {
		if err := need(name, "y", y, total); err != nil {
			return err
		}
	}
	if total > 0 && outer*inner < 2 {
		return argErr(name, "expected more than 1 value per channel, got input of [%d, %d, %d]", outer, c, inner)
	}
	for i, b := range []Buffer{x, g} {
		if err := need(name, [...]string{"x", "g"}[i], b, total); err != nil {
			return err
		}
	}
	for i, b := range []Buffer{mean, invstd, weight} {
		if err := need(name, [...]string{"mean", "invstd", "weight"}[i], b, c); err != nil {
			return err
		}
	}
	if !isNil(dx) {
		if err := need(name, "dx", dx, total); err != nil {
			return err
		}
	}
	for i, b := range []Buffer{dweight, dbias} {
		if isNil(b) {
			continue
		}
		if err := need(name, [...]string{"dweight", "dbias"}[i], b, c); err != nil {
			return err
		}
		if b == dx || b == x || b == g || b == weight || b == mean || b == invstd || (act == ActRelu && b == y) {
			return argErr(name, "%s must not be another operand", [...]string{"dweight", "dbias"}[i])
		}
	}
	if !isNil(dweight) && dweight == dbias {
		return argErr(name, "dweight and dbias must differ")
	}
	return nil
}
