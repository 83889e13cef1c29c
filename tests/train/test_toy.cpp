// tests/train/test_toy.cpp: the make-toy class: MVTec layout and counts, binary masks that are
// exactly the changed pixels, determinism from the seed, and the overwrite policy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "train/toy.h"

namespace fs = std::filesystem;
using namespace caf;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() /
             ("caf_toy_" + tag + "_" + std::to_string(std::random_device{}()))) {
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

ToyOptions small(const std::string& kind, int size = 64) {
  ToyOptions o;
  o.kind = kind;
  o.seed = 7;
  o.size = size;
  o.train = 3;
  o.test_good = 2;
  o.test_per_defect = 3;
  return o;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every regular file under dir, relative paths, sorted.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> numbered(int n, const char* suffix) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%03d%s.png", i, suffix);
    out.push_back(buf);
  }
  return out;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const std::string& p : list_images(dir.string(), false))
    out.push_back(fs::path(p).filename().string());
  return out;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("toy: MVTec layout, counts, sizes and binary masks of both kinds") {
    for (const std::string kind : {"texture", "object"}) {
      CAPTURE(kind);
      TempDir tmp("layout");
      const ToyOptions o = small(kind, 80);
      const ToySummary s = make_toy(tmp.path.string(), o);
      const fs::path cls = tmp.path / ("toy_" + kind);
      CHECK(fs::path(s.class_dir) == cls);
      CHECK(s.train == 3);
      CHECK(s.test_good == 2);
      CHECK(s.defects == toy_defects(kind));
      CHECK(s.test_defect == 3 * int64_t(s.defects.size()));
      // Nothing but the class folder is left in the output root (no temporary folders).
      CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 1);
      CHECK(names_in(cls / "train" / "good") == numbered(3, ""));
      CHECK(names_in(cls / "test" / "good") == numbered(2, ""));
      CHECK(!fs::exists(cls / "ground_truth" / "good"));
      const std::string readme = read_bytes(cls / "readme.txt");
      CHECK(readme.rfind("caf make-toy", 0) == 0);
      CHECK(readme.find("kind: " + kind) != std::string::npos);
      CHECK(readme.find("seed: 7") != std::string::npos);
      CHECK(fs::exists(cls / "license.txt"));

      for (const std::string& p : list_images((cls / "train").string(), true)) {
        const Image im = image_read(p);
        CHECK(im.height == 80);
        CHECK(im.width == 80);
        CHECK(im.channels == 3);
      }
      for (const std::string& d : s.defects) {
        CAPTURE(d);
        CHECK(names_in(cls / "test" / d) == numbered(3, ""));
        CHECK(names_in(cls / "ground_truth" / d) == numbered(3, "_mask"));
        for (int i = 0; i < 3; ++i) {
          const Image im = image_read((cls / "test" / d / numbered(3, "")[size_t(i)]).string());
          const Image mask =
              image_read((cls / "ground_truth" / d / numbered(3, "_mask")[size_t(i)]).string());
          CHECK(im.height == 80);
          CHECK(im.channels == 3);
          CHECK(mask.height == 80);
          CHECK(mask.width == 80);
          CHECK(mask.channels == 1);
          size_t on = 0, other = 0;
          for (uint8_t v : mask.pixels) on += v == 255, other += v != 0 && v != 255;
          CHECK(other == 0);
          const double frac = double(on) / double(mask.pixels.size());
          CHECK(frac >= 0.001);
          CHECK(frac <= 0.10);
        }
      }
    }
  }

  TEST_CASE("toy: a mask is exactly the set of pixels its defect changed") {
    for (const std::string kind : {"texture", "object"})
      for (int size : {48, 160}) {
        const ToyOptions o = small(kind, size);
        for (const std::string& d : toy_defects(kind))
          for (int i = 0; i < 4; ++i) {
            CAPTURE(kind);
            CAPTURE(size);
            CAPTURE(d);
            CAPTURE(i);
            const ToySample with = toy_render(o, "test", d, i, true);
            const ToySample clean = toy_render(o, "test", d, i, false);
            REQUIRE(with.mask.pixels.size() == size_t(size) * size_t(size));
            CHECK(clean.mask.pixels.empty());
            size_t unchanged_in_mask = 0, changed_outside = 0;
            for (size_t p = 0; p < with.mask.pixels.size(); ++p) {
              int diff = 0;
              for (size_t k = 0; k < 3; ++k)
                diff = std::max(diff, std::abs(int(with.image.pixels[p * 3 + k]) -
                                               int(clean.image.pixels[p * 3 + k])));
              if (with.mask.pixels[p])
                unchanged_in_mask += diff <= kToyMaskThreshold;
              else
                changed_outside += diff != 0;
            }
            CHECK(unchanged_in_mask == 0);
            CHECK(changed_outside == 0);
          }
      }
  }

  TEST_CASE("toy: normal images share one appearance, defects stand out from it") {
    // Per-channel means of the normal images stay within a few levels of each other (small
    // per-image variation), and inside its mask a defect moves the image well past the
    // threshold on average, so it is visible, not a faint trace.
    for (const std::string kind : {"texture", "object"}) {
      CAPTURE(kind);
      const ToyOptions o = small(kind, 96);
      auto means = [](const Image& im) {
        std::vector<double> m(3, 0.0);
        for (size_t p = 0; p < im.pixels.size(); ++p) m[p % 3] += im.pixels[p];
        for (double& v : m) v /= double(im.pixels.size() / 3);
        return m;
      };
      const std::vector<double> ref = means(toy_render(o, "train", "good", 0).image);
      for (int i = 1; i < 8; ++i) {
        const std::vector<double> m =
            means(toy_render(o, i < 4 ? "train" : "test", "good", i).image);
        for (size_t k = 0; k < 3; ++k) CHECK(std::fabs(m[k] - ref[k]) < 8.0);
      }
      for (const std::string& d : toy_defects(kind)) {
        CAPTURE(d);
        const ToySample with = toy_render(o, "test", d, 0, true);
        const ToySample clean = toy_render(o, "test", d, 0, false);
        double sum = 0;
        size_t n = 0;
        for (size_t p = 0; p < with.mask.pixels.size(); ++p)
          if (with.mask.pixels[p]) {
            int diff = 0;
            for (size_t k = 0; k < 3; ++k)
              diff = std::max(diff, std::abs(int(with.image.pixels[p * 3 + k]) -
                                             int(clean.image.pixels[p * 3 + k])));
            sum += diff;
            ++n;
          }
        REQUIRE(n > 0);
        CHECK(sum / double(n) > 3.0 * kToyMaskThreshold);
      }
    }
  }

  TEST_CASE("toy: the same seed writes byte-identical files, another seed other images") {
    TempDir a("det_a"), b("det_b"), c("det_c");
    ToyOptions o = small("object");
    make_toy(a.path.string(), o);
    make_toy(b.path.string(), o);
    const std::vector<std::string> files = files_under(a.path);
    REQUIRE(files == files_under(b.path));
    CHECK(files.size() == size_t(3 + 2 + 2 * 5 * 3 + 2));
    for (const std::string& f : files) {
      CAPTURE(f);
      CHECK(read_bytes(a.path / f) == read_bytes(b.path / f));
    }
    o.seed = 8;
    make_toy(c.path.string(), o);
    for (const char* f : {"train/good/000.png", "test/good/001.png", "test/bend/002.png",
                          "ground_truth/missing/000_mask.png"}) {
      CAPTURE(f);
      CHECK(read_bytes(a.path / "toy_object" / f) != read_bytes(c.path / "toy_object" / f));
    }
    // Within one class, every image is its own draw.
    CHECK(read_bytes(a.path / "toy_object/train/good/000.png") !=
          read_bytes(a.path / "toy_object/test/good/000.png"));
    CHECK(read_bytes(a.path / "toy_object/train/good/000.png") !=
          read_bytes(a.path / "toy_object/train/good/001.png"));
  }

  TEST_CASE("toy: refuses a foreign folder, fills an empty one, replaces its own") {
    TempDir tmp("overwrite");
    const ToyOptions o = small("texture", 48);
    const fs::path cls = tmp.path / "toy_texture";
    fs::create_directories(cls);
    std::ofstream(cls / "notes.txt") << "mine";
    CHECK_THROWS_AS(make_toy(tmp.path.string(), o), IoError);
    CHECK(read_bytes(cls / "notes.txt") == "mine");
    CHECK(files_under(cls).size() == 1);

    fs::remove(cls / "notes.txt");  // an empty folder is fine
    make_toy(tmp.path.string(), o);
    CHECK(fs::exists(cls / "train/good/002.png"));

    // Our own class is replaced wholesale: stray files go, new images come, nothing is left over.
    std::ofstream(cls / "stray.txt") << "x";
    const std::string before = read_bytes(cls / "train/good/000.png");
    ToyOptions o2 = o;
    o2.seed = 99;
    o2.train = 2;
    make_toy(tmp.path.string(), o2);
    CHECK(!fs::exists(cls / "stray.txt"));
    CHECK(!fs::exists(cls / "train/good/002.png"));
    CHECK(read_bytes(cls / "train/good/000.png") != before);
    CHECK(read_bytes(cls / "readme.txt").find("seed: 99") != std::string::npos);
    CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 1);

    // A file where the class folder should be.
    ToyOptions o3 = o;
    o3.name = "plain_file";
    std::ofstream(tmp.path / "plain_file") << "x";
    CHECK_THROWS_AS(make_toy(tmp.path.string(), o3), IoError);
  }

  TEST_CASE("toy: bad options are ConfigErrors") {
    ToyOptions o = small("texture");
    o.kind = "fabric";
    CHECK_THROWS_AS(toy_validate(o), ConfigError);
    CHECK_THROWS_AS(toy_defects("fabric"), ConfigError);
    o = small("texture");
    o.size = 16;
    CHECK_THROWS_AS(toy_validate(o), ConfigError);
    o = small("texture");
    o.train = 0;
    CHECK_THROWS_AS(toy_validate(o), ConfigError);
    o = small("texture");
    o.name = "a/b";
    CHECK_THROWS_AS(toy_validate(o), ConfigError);
    o = small("texture");
    CHECK(toy_class_name(o) == "toy_texture");
    CHECK_THROWS_AS(toy_render(o, "val", "good", 0), ConfigError);
    CHECK_THROWS_AS(toy_render(o, "train", "scratch", 0), ConfigError);
    CHECK_THROWS_AS(toy_render(o, "test", "missing", 0), ConfigError);  // an object defect
    TempDir tmp("bad");
    o.kind = "object";
    o.size = 8;
    CHECK_THROWS_AS(make_toy(tmp.path.string(), o), ConfigError);
    CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 0);
  }
}
