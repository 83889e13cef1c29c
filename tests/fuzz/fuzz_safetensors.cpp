// tests/fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (nn/safetensors.h).
//
// Any byte string must parse or throw caf::IoError; what parses must be self-consistent (every
// tensor's bytes are its shape times its dtype size).
#include <cstddef>
#include <cstdint>

#include "kernels/error.h"
#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const caf::SafetensorsFile f = caf::parse_safetensors(data, size, "fuzz");
    for (const auto& [name, t] : f.tensors) {
      const size_t esize = t.dtype == "F64" || t.dtype == "I64" || t.dtype == "U64"   ? 8
                           : t.dtype == "F32" || t.dtype == "I32" || t.dtype == "U32" ? 4
                           : t.dtype == "U8" || t.dtype == "I8" || t.dtype == "BOOL"  ? 1
                                                                                      : 2;
      if (uint64_t(caf::dims_numel(t.shape)) * esize != t.bytes.size()) __builtin_trap();
    }
  } catch (const caf::IoError&) {
  }
  return 0;
}
