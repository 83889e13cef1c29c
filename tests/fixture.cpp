#include "tests/fixture.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "kernels/error.h"

namespace caf::test {

namespace {
template <class T>
T read_pod(std::ifstream& f, const std::string& path) {
  T v{};
  if (!f.read(reinterpret_cast<char*>(&v), sizeof v))
    throw IoError(path + ": truncated fixture file");
  return v;
}
}  // namespace

Fixture load_fixture(const std::string& path, const std::string& regenerate_hint) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path + ": cannot open fixture file", regenerate_hint);
  char magic[4];
  if (!f.read(magic, 4) || std::memcmp(magic, "CAFX", 4) != 0)
    throw IoError(path + ": not a caf fixture (bad magic)", regenerate_hint);
  uint32_t version = read_pod<uint32_t>(f, path);
  if (version != kFixtureVersion)
    throw IoError(path + ": fixture version " + std::to_string(version) + ", tests expect " +
                      std::to_string(kFixtureVersion) + " (stale fixture)",
                  regenerate_hint);
  uint32_t count = read_pod<uint32_t>(f, path);
  Fixture out;
  for (uint32_t t = 0; t < count; ++t) {
    uint32_t len = read_pod<uint32_t>(f, path);
    if (len > 4096) throw IoError(path + ": corrupt fixture (name length " + std::to_string(len) + ")");
    std::string name(len, '\0');
    if (!f.read(name.data(), len)) throw IoError(path + ": truncated fixture file");
    uint32_t ndim = read_pod<uint32_t>(f, path);
    if (ndim > 8) throw IoError(path + ": corrupt fixture (" + name + " has " + std::to_string(ndim) + " dims)");
    FixtureTensor ft;
    int64_t n = 1;
    for (uint32_t d = 0; d < ndim; ++d) {
      ft.shape.push_back(read_pod<int64_t>(f, path));
      n *= ft.shape.back();
    }
    if (n < 0 || n > (int64_t(1) << 28)) throw IoError(path + ": corrupt fixture (" + name + ")");
    ft.data.resize(size_t(n));
    if (!f.read(reinterpret_cast<char*>(ft.data.data()), n * sizeof(float)))
      throw IoError(path + ": truncated fixture file at " + name);
    out.emplace(std::move(name), std::move(ft));
  }
  return out;
}

std::string fixture_dir() {
  if (const char* e = std::getenv("CAF_FIXTURE_DIR")) return e;
  return CAF_FIXTURE_DIR_DEFAULT;
}

}  // namespace caf::test
