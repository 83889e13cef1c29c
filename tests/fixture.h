// tests/fixture.h: reader for the PyTorch reference fixtures written by tests/reference/*.py.
//
// Format (little-endian): "CAFX", u32 version, u32 count, then per tensor: u32 name length, name,
// u32 ndim, i64 dims[ndim], f32 data. A version mismatch means the fixture predates the script
// that the tests expect: the error says how to regenerate it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace caf::test {

inline constexpr uint32_t kFixtureVersion = 1;

struct FixtureTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

using Fixture = std::map<std::string, FixtureTensor>;

// Throws caf::IoError naming the file and the problem (missing, truncated, wrong magic, stale).
Fixture load_fixture(const std::string& path, const std::string& regenerate_hint);

// Folder of the committed fixtures (set by CMake; CAF_FIXTURE_DIR overrides at run time).
std::string fixture_dir();

}  // namespace caf::test
