// Package verify is cnngen's independent float64 reference: every generated model is
// held to it.
//
// It has three layers:
//
//   - Reference operators (Conv2D, ReLU, MaxPool2D, AdaptiveAvgPool2D,
//     LocalResponseNorm, BatchNorm2D, Dropout, Linear, SoftmaxCrossEntropy), each
//     written as direct loops from its definition, forward and backward, with the exact
//     PyTorch semantics documented on each type.
//   - A spec interpreter, Net, that runs any spec.Model forward and backward with
//     those operators, holding parameters and batch-norm buffers by their torchvision
//     state_dict names in torchvision layout.
//   - Tests that check every backward against central finite differences.
//
// # Operator conventions
//
// Every operator is written as plain loops straight from its mathematical definition:
// no im2col, no blocking, no reordering for speed. They favour obviousness over speed.
//
//   - Tensors are flat []float64. Activations are NCHW (batch first, then channels,
//     rows, columns), or N×F for flat activations.
//   - Parameters use torchvision's layout: conv weight OIHW with I = Cin/groups,
//     linear weight out×in.
//   - An operator is a small struct of its dimensions and hyper-parameters (Conv2D,
//     MaxPool2D, ...). Its Validate method reports bad dimensions as an error; its
//     Forward and Backward methods panic if the dimensions are invalid or a slice has
//     the wrong length, since those are programming errors in the caller. (Net checks
//     everything first and returns errors instead.)
//   - Operators never modify their arguments (except BatchNorm2D.UpdateRunning, which
//     updates the running statistics in place) and return freshly allocated slices.
//   - Backward methods take dy = dL/dy for some scalar loss L and return the
//     gradients of L with respect to the operator's input and parameters.
//
// # Independence
//
// Nothing here shares code with the generator (package gen) or the runtime kernels:
// the reference is only useful if it is independent of what it checks.
//
// A typical equivalence check builds a Net from the same spec.Model as the generated
// package, copies the generated model's parameters and buffers into Net.Params and
// Net.Buffers, runs both on the same batch, and compares logits, dL/dx and every
// parameter gradient:
//
//	net := verify.NewNet(model)
//	net.InitRandom(1)                     // or copy weights in by name
//	pass, err := net.Forward(x, n, false, nil)
//	loss, dlogits, err := verify.SoftmaxCrossEntropy(pass.Logits, n, model.Classes(), labels)
//	grads, err := pass.Backward(dlogits)
package verify
