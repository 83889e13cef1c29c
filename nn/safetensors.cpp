// nn/safetensors.cpp: safetensors reading and writing. Reading parses the whole file in memory
// (parse_safetensors), which is what the fuzzer drives: every check happens before any copy.
#include "nn/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

// The byte size of a tensor, or false when a dim is negative or the product overflows 2^62.
bool tensor_bytes(const Dims& shape, size_t esize, uint64_t& bytes) {
  constexpr uint64_t limit = uint64_t(1) << 62;
  bytes = esize;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && bytes > limit / uint64_t(d)) return false;
    bytes *= uint64_t(d);
  }
  return true;
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw IoError(path + ": cannot reopen to sync: " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL;  // EINVAL: this file system cannot sync
  const int err = errno;
  ::close(fd);
  if (!ok)
    throw IoError(path + ": fsync failed: " + std::strerror(err), "free some space and retry");
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
    if (!f)
      throw IoError(tmp + ": cannot open for writing",
                    "check that the folder exists and is writable");
    uint64_t len = h.size();
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(len >> (8 * i));
    f.write(reinterpret_cast<const char*>(le), 8);
    f.write(h.data(), std::streamsize(h.size()));
    for (const auto& [name, t] : tensors) {
      std::vector<uint8_t> bytes(size_t(t.numel()) * dtype_size(t.dtype()));
      if (t.dtype() == DType::f32) {
        std::vector<float> v = t.to_vector();
        if (!bytes.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());  // empty: null
      } else {
        bytes = t.to_bytes();
      }
      f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    f.flush();
    if (!f) throw IoError(tmp + ": write failed (disk full?)", "free some space and retry");
  }
  sync_file(tmp);  // durable before the rename makes it visible
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError(path + ": cannot replace with " + tmp + ": " + std::strerror(errno));
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))  // a folder opens, and seeks to 2^63 - 1
    throw IoError(path + ": cannot open: not a file", "check the path");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = f ? std::streamoff(f.tellg()) : -1;
  if (size < 0) throw IoError(path + ": cannot open", "check the path");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size())))
    throw IoError(path + ": read failed");
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 8) throw IoError(name + ": too short to be a safetensors file");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(data[i]) << (8 * i);
  // 100 MB: the limit Python's safetensors sets; no header of ours comes near.
  if (len > size - 8 || len > uint64_t(100) << 20)
    throw IoError(name + ": header length " + std::to_string(len) + " does not fit the file (" +
                      std::to_string(size) + " bytes)",
                  "the file is truncated or not a safetensors file");
  const char* h = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(h, h + len);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(name + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw IoError(name + ": header is not a JSON object");
  const uint8_t* body = data + 8 + len;
  const uint64_t data_size = size - 8 - len;
  SafetensorsFile out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // to find overlaps
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw IoError(name + ": __metadata__ is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m)
        out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    try {
      if (!it->is_object()) throw IoError("not a JSON object");
      SafeTensor t;
      t.dtype = it->at("dtype").get<std::string>();
      const nlohmann::json& shape = it->at("shape");
      const nlohmann::json& offsets = it->at("data_offsets");
      if (!shape.is_array() || !offsets.is_array() || offsets.size() != 2)
        throw IoError("shape must be a list and data_offsets a pair");
      for (const nlohmann::json& d : shape)
        if (!d.is_number_integer()) throw IoError("shape " + shape.dump() + " is not integers");
      for (const nlohmann::json& o : offsets)
        if (!o.is_number_unsigned())
          throw IoError("data offsets " + offsets.dump() + " are not unsigned");
      t.shape = shape.get<Dims>();
      const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
      const size_t esize = dtype_bytes(t.dtype);
      if (esize == 0) throw IoError("unknown dtype " + t.dtype);
      uint64_t n = 0;
      if (!tensor_bytes(t.shape, esize, n))
        throw IoError("shape " + shape.dump() + " has a negative dim or is too large");
      if (begin > end || end > data_size)
        throw IoError("data offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] outside the " + std::to_string(data_size) + " data bytes");
      if (n != end - begin)
        throw IoError("shape " + dims_str(t.shape) + " does not match " +
                      std::to_string(end - begin) + " bytes");
      t.bytes.assign(body + begin, body + end);
      if (begin != end) ranges.emplace_back(begin, end);  // empty tensors overlap nothing
      out.tensors.emplace(it.key(), std::move(t));
    } catch (const IoError& e) {
      throw IoError(name + ": tensor '" + it.key() + "': " + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw IoError(name + ": tensor '" + it.key() + "': malformed entry (" + e.what() + ")");
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      throw IoError(name + ": two tensors overlap in the data (bytes " +
                    std::to_string(ranges[i].first) + " to " +
                    std::to_string(ranges[i - 1].second) + ")");
  return out;
}

}  // namespace caf
