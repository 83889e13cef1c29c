// tests/fuzz/fuzz_dataset.cpp: libFuzzer target for the MVTec AD folder loaders (train/dataset.h).
//
// The bytes are a tiny archive of at most 8 entries, each
//   [1 byte kind][1 byte name length][name][2 bytes content length, little-endian][content]
// kind % 3 picks the root (train/good, test/<x>, ground_truth/<x>) and (kind / 3) % 3 the folder
// <x> (good, crack, hole). Names are mapped onto [a-z0-9_.] so every entry lands inside a fresh
// temporary class folder; both loaders then run on it at S = 32 and must load or throw caf::Error.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "train/dataset.h"

namespace fs = std::filesystem;

namespace {

std::string entry_name(const uint8_t* p, size_t n) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789_.";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[p[i] % (sizeof alphabet - 1)];
  if (s.find_first_not_of('.') == std::string::npos) s = "f" + s;  // never "", "." or ".."
  return s;
}

// Removes the folder however the loaders left.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/caf_fuzz_dataset_XXXXXX";
    if (!mkdtemp(tmpl)) __builtin_trap();
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const roots[] = {"train", "test", "ground_truth"};
  static const char* const folders[] = {"good", "crack", "hole"};
  TempDir dir;
  size_t at = 0;
  for (int entry = 0; entry < 8 && at + 2 <= size; ++entry) {
    const uint8_t kind = data[at], name_len = data[at + 1];
    at += 2;
    if (at + name_len + 2 > size) break;
    const std::string name = entry_name(data + at, name_len);
    at += name_len;
    const size_t len = size_t(data[at]) | size_t(data[at + 1]) << 8;
    at += 2;
    const size_t take = len < size - at ? len : size - at;
    const char* root = roots[kind % 3];
    const fs::path folder = dir.path / root / (kind % 3 == 0 ? "good" : folders[(kind / 3) % 3]);
    std::error_code ec;
    fs::create_directories(folder, ec);
    std::ofstream(folder / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(data + at), std::streamsize(take));
    at += take;
  }
  std::vector<std::string> warnings;
  try {
    const caf::TrainSet t = caf::load_train_set(dir.path.string(), 32, &warnings);
    if (t.images.dim(0) != int64_t(t.files.size())) __builtin_trap();
  } catch (const caf::Error&) {
  }
  try {
    const caf::TestSet t =
        caf::load_test_set(dir.path.string(), 32, caf::MaskResize::nearest, &warnings);
    if (t.images.dim(0) != int64_t(t.items.size()) || t.masks.dim(0) != t.images.dim(0))
      __builtin_trap();
    caf::load_test_set(dir.path.string(), 32, caf::MaskResize::draem, &warnings);
  } catch (const caf::Error&) {
  }
  return 0;
}
