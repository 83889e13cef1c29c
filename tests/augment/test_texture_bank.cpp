#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "augment/texture_bank.h"
#include "kernels/error.h"

using namespace caf;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("caf_textures_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Image flat(int h, int w, std::vector<uint8_t> colour) {
  const size_t C = colour.size();
  Image im{h, w, int(C), std::vector<uint8_t>(size_t(h * w) * C)};
  for (size_t k = 0; k < im.pixels.size(); ++k) im.pixels[k] = colour[k % C];
  return im;
}

// Texture t of a [T, 3, S, S] byte array.
std::vector<uint8_t> texture(const std::vector<uint8_t>& all, int64_t t, int S) {
  const size_t per = size_t(3 * S * S);
  return {all.begin() + std::ptrdiff_t(size_t(t) * per),
          all.begin() + std::ptrdiff_t(size_t(t + 1) * per)};
}

}  // namespace

TEST_SUITE("augment") {
TEST_CASE("texture bank: a folder of mixed gray and RGB images of any size, in path order") {
  TempDir dir;
  fs::create_directories(dir.path / "images" / "banded");
  fs::create_directories(dir.path / "images" / "dotted");
  // Sorted order: banded/a (RGB), banded/b (gray, wide), dotted/c (RGB, tall).
  image_write_png((dir.path / "images/banded/a.png").string(), flat(30, 30, {10, 120, 250}));
  image_write_png((dir.path / "images/banded/b.png").string(), flat(13, 40, {77}));
  Image tall = flat(50, 9, {0, 0, 0});
  for (int y = 25; y < 50; ++y)
    for (int x = 0; x < 9; ++x) tall.at(y, x, 1) = 255;
  image_write_png((dir.path / "images/dotted/c.png").string(), tall);
  image_write_png((dir.path / "not_an_image.txt").string(), flat(2, 2, {1}));

  const int S = 16;
  const TextureBank bank = texture_bank_load(dir.path.string(), S, Device::cpu);
  REQUIRE(bank.count() == 3);
  CHECK(bank.images.dtype() == DType::u8);
  CHECK(bank.images.shape() == Dims{3, 3, S, S});
  CHECK(bank.source == dir.path.string());
  const std::vector<uint8_t> all = bank.images.to_bytes();
  const std::vector<uint8_t> a = texture(all, 0, S), b = texture(all, 1, S), c = texture(all, 2, S);
  for (int p = 0; p < S * S; ++p) {
    CHECK(a[size_t(p)] == 10);
    CHECK(a[size_t(S * S + p)] == 120);
    CHECK(a[size_t(2 * S * S + p)] == 250);
    for (int ch = 0; ch < 3; ++ch) CHECK(b[size_t(ch * S * S + p)] == 77);
  }
  // The tall image squashed to 16 rows: green off at the top, on at the bottom, red always off.
  CHECK(c[size_t(S * S + 0)] == 0);
  CHECK(c[size_t(S * S + (S - 1) * S)] == 255);
  CHECK(*std::max_element(c.begin(), c.begin() + S * S) == 0);

  const TextureBank two = texture_bank_load(dir.path.string(), S, Device::cpu, 2);
  CHECK(two.count() == 2);
  CHECK(two.images.to_bytes() == std::vector<uint8_t>(all.begin(), all.begin() + 2 * 3 * S * S));
}

TEST_CASE("texture bank: a missing, empty or broken folder throws IoError naming the culprit") {
  TempDir dir;
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_AS(texture_bank_load((dir.path / "empty").string(), 8, Device::cpu), IoError);
  CHECK_THROWS_AS(texture_bank_load((dir.path / "absent").string(), 8, Device::cpu), IoError);
  fs::create_directories(dir.path / "broken");
  image_write_png((dir.path / "broken/good.png").string(), flat(4, 4, {9}));
  std::ofstream((dir.path / "broken/bad.jpg").string()) << "not a jpeg";
  try {
    texture_bank_load((dir.path / "broken").string(), 8, Device::cpu);
    FAIL("a broken image must throw");
  } catch (const IoError& e) {
    CHECK(std::string(e.what()).find("bad.jpg") != std::string::npos);
  }
}

TEST_CASE("texture bank: procedural textures are deterministic, varied and not degenerate") {
  const int S = 64;
  const int64_t T = 16;  // four of each kind
  const TextureBank bank = texture_bank_procedural(T, S, 42, Device::cpu);
  CHECK(bank.images.shape() == Dims{T, 3, S, S});
  CHECK(bank.images.dtype() == DType::u8);
  CHECK(bank.source == "procedural");
  const std::vector<uint8_t> all = bank.images.to_bytes();
  CHECK(texture_bank_procedural(T, S, 42, Device::cpu).images.to_bytes() == all);
  CHECK(texture_bank_procedural(T, S, 43, Device::cpu).images.to_bytes() != all);
  // Texture i depends on (seed, i) only: a smaller bank is a prefix of a larger one.
  CHECK(texture_bank_procedural(3, S, 42, Device::cpu).images.to_bytes() ==
        std::vector<uint8_t>(all.begin(), all.begin() + 3 * 3 * S * S));

  double bank_mean = 0;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<uint8_t> tex = texture(all, t, S);
    const auto range = std::minmax_element(tex.begin(), tex.end());
    const auto lo = range.first, hi = range.second;  // INFO captures: no structured bindings in C++17
    double mean = 0;
    for (uint8_t v : tex) mean += v;
    mean /= double(tex.size());
    bank_mean += mean / double(T);
    INFO("texture " << t << ": min " << int(*lo) << " max " << int(*hi) << " mean " << mean);
    CHECK(int(*hi) - int(*lo) >= 60);  // far from constant
    CHECK((mean > 20 && mean < 235));
    for (int64_t u = 0; u < t; ++u) CHECK(texture(all, u, S) != tex);
  }
  CHECK((bank_mean > 80 && bank_mean < 175));
}

TEST_CASE("texture bank: DTD thumbnails from shared/data") {
  const std::string dtd = "/work/shared/data/dtd_thumbs";
  if (!fs::exists(dtd)) {
    MESSAGE("skipped: " << dtd << " is missing");
    return;
  }
  const TextureBank bank = texture_bank_load(dtd, 64, Device::cpu, 16);
  CHECK(bank.images.shape() == Dims{16, 3, 64, 64});
  const std::vector<uint8_t> all = bank.images.to_bytes();
  CHECK(*std::max_element(all.begin(), all.end()) > *std::min_element(all.begin(), all.end()));
}
}
