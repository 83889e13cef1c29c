// nn/safetensors.h: the safetensors file format, read and written without any other library.
//
// Layout: u64 little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// then the raw little-endian tensor bytes (offsets relative to the end of the header). Files open
// in Python's safetensors and PyTorch tooling. Writing goes to "<path>.tmp", is fsynced and
// renamed over the target only when complete, so a crash never leaves a half-written checkpoint.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace caf {

struct SafeTensor {
  std::string dtype;  // "F32", "U8", "I64", ...
  Dims shape;
  std::vector<uint8_t> bytes;
};

struct SafetensorsFile {
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Tensors may live on any device; f32 and u8 tensors are supported.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Throws IoError naming the file and the problem (missing, truncated, bad header, bad offsets).
SafetensorsFile read_safetensors(const std::string& path);

// The bytes of a whole file. Any byte string either parses or throws IoError naming `name`: a
// header longer than the data or than 100 MB, a header that is not a JSON object, an unknown
// dtype, negative dims or a shape whose byte size overflows, data offsets outside the data,
// overlapping, or not shape x dtype size.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace caf
