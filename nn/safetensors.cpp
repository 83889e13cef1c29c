#include "nn/safetensors.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.h"

namespace caf {

namespace {
size_t dtype_bytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL") return 1;
  return 0;
}
}  // namespace

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CAF_REQUIRE(!header.contains(name), "safetensors: duplicate tensor name '" + name + "'");
    const uint64_t n = uint64_t(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", t.dtype() == DType::f32 ? "F32" : "U8"},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IoError(tmp + ": cannot open for writing", "check that the folder exists and is writable");
    uint64_t len = h.size();
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(len >> (8 * i));
    f.write(reinterpret_cast<const char*>(le), 8);
    f.write(h.data(), std::streamsize(h.size()));
    for (const auto& [name, t] : tensors) {
      std::vector<uint8_t> bytes(size_t(t.numel()) * dtype_size(t.dtype()));
      if (t.dtype() == DType::f32) {
        std::vector<float> v = t.to_vector();
        std::memcpy(bytes.data(), v.data(), bytes.size());
      } else {
        bytes = t.to_bytes();
      }
      f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    f.flush();
    if (!f) throw IoError(tmp + ": write failed (disk full?)", "free some space and retry");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError(path + ": cannot replace with " + tmp + ": " + std::strerror(errno));
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw IoError(path + ": cannot open", "check the path");
  const uint64_t file_size = uint64_t(f.tellg());
  f.seekg(0);
  unsigned char le[8];
  if (file_size < 8 || !f.read(reinterpret_cast<char*>(le), 8))
    throw IoError(path + ": too short to be a safetensors file");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(le[i]) << (8 * i);
  if (len > file_size - 8 || len > (uint64_t(1) << 30))
    throw IoError(path + ": header length " + std::to_string(len) + " does not fit the file (" +
                      std::to_string(file_size) + " bytes)",
                  "the file is truncated or not a safetensors file");
  std::string h(len, '\0');
  f.read(h.data(), std::streamsize(len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(h);
  } catch (const std::exception& e) {
    throw IoError(path + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw IoError(path + ": header is not a JSON object");
  const uint64_t data_size = file_size - 8 - len;
  SafetensorsFile out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m)
        out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    try {
      SafeTensor t;
      t.dtype = it->at("dtype").get<std::string>();
      t.shape = it->at("shape").get<Dims>();
      auto off = it->at("data_offsets").get<std::vector<uint64_t>>();
      const size_t esize = dtype_bytes(t.dtype);
      if (esize == 0) throw IoError("unknown dtype " + t.dtype);
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        throw IoError("data offsets outside the file");
      if (uint64_t(dims_numel(t.shape)) * esize != off[1] - off[0])
        throw IoError("shape " + dims_str(t.shape) + " does not match " +
                      std::to_string(off[1] - off[0]) + " bytes");
      t.bytes.resize(off[1] - off[0]);
      f.seekg(std::streamoff(8 + len + off[0]));
      if (!f.read(reinterpret_cast<char*>(t.bytes.data()), std::streamsize(t.bytes.size())))
        throw IoError("truncated data");
      out.tensors.emplace(it.key(), std::move(t));
    } catch (const IoError& e) {
      throw IoError(path + ": tensor '" + it.key() + "': " + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw IoError(path + ": tensor '" + it.key() + "': malformed entry (" + e.what() + ")");
    }
  }
  return out;
}

}  // namespace caf
