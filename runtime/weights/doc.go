// Package weights loads and saves the weights of any runtime.Model by torchvision
// state_dict names, from and to the two formats PyTorch users have:
//
//   - safetensors (https://github.com/huggingface/safetensors): an 8-byte
//     little-endian header length, a JSON header {name: {dtype, shape,
//     data_offsets}, "__metadata__": {...}} and raw little-endian data. F32 loads as
//     is; F16 and BF16 are widened to float32. Save writes F32.
//   - PyTorch's own state_dict file, as torch.save(model.state_dict(), path) writes it
//     since PyTorch 1.6: a zip archive holding PREFIX/data.pkl (a pickle) and the raw
//     storages PREFIX/data/N. It is read with github.com/nlpodyssey/gopickle and
//     nothing in it is executed: the pickle may name only collections.OrderedDict,
//     torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and
//     torch.FloatStorage, HalfStorage, BFloat16Storage and LongStorage (the last for
//     num_batches_tracked); any other class is an error naming it. Before gopickle
//     runs, every opcode of the pickle is checked (lengths inside the data, bounded
//     nesting, no module that gopickle would resolve by itself), so a hostile file
//     cannot make it allocate without bound.
//
// Loading is strict by default: a tensor of the model missing from the file, a tensor
// of the file the model does not have, a wrong shape or dtype and every kind of
// malformed file is an *Error naming the file and, where there is one, the tensor.
// Options.NonStrict instead loads what matches and lists the rest in the Report;
// a wrong shape or dtype is an error even then.
//
// A load never leaves a model half loaded: every tensor is decoded into scratch
// memory first, then all values are copied into the model at once and Sync is
// called. Memory: LoadFile maps the file (mmap) where the platform can, so the file's
// bytes are never copied to the heap; the scratch holds one float32 copy of the
// tensors being loaded, freed when the load returns.
//
// Not supported, each with an error saying so: the legacy (pre-1.6, non-zip) torch.save
// format, TorchScript archives, big-endian archives, a tensor that is not a contiguous
// view of its storage (save tensor.contiguous()), a data.pkl over 4 MiB (a state_dict
// of ten thousand tensors takes about 1 MiB), and dtypes other than F32, F16, BF16
// (and I64 for num_batches_tracked) for the tensors that are loaded. If m.Sync itself
// fails after the values were copied, its error is returned and the values stay.
//
// num_batches_tracked: batch norm's int64 step counter, which torch.save writes for
// every BatchNorm layer, only matters to PyTorch's momentum=None mode. A model that
// keeps no buffer of that name (the generated models keep none) ignores it, in
// strict mode too, and the Report lists it under Ignored. A model that has such a
// buffer gets the value converted to float32.
package weights
