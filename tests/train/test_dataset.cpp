// The MVTec AD loader: small synthetic classes written to temp folders exercise every error and
// warning (each must name its file), the split, the test order and both mask modes; the bottle
// data in shared/data, when present, checks real counts and that loading 900 px originals gives
// exactly the stored 256 px versions.
#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "train/dataset.h"

using namespace caf;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> serial{0};
    path = fs::temp_directory_path() / ("caf_dataset_" + std::to_string(std::random_device{}()) +
                                        "_" + std::to_string(serial++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str(const std::string& rel) const { return (path / rel).string(); }
};

Image pattern(int h, int w, int c, int seed) {
  Image im{h, w, c, std::vector<uint8_t>(size_t(h * w * c))};
  for (size_t i = 0; i < im.pixels.size(); ++i)
    im.pixels[i] = uint8_t((i * 37 + i / 5 + size_t(seed) * 101) % 256);
  return im;
}

// A gray mask of value v on rows [y0, y1) and columns [x0, x1), 0 elsewhere.
Image mask_rect(int h, int w, int y0, int y1, int x0, int x1, uint8_t v = 255) {
  Image m{h, w, 1, std::vector<uint8_t>(size_t(h * w), 0)};
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) m.at(y, x, 0) = v;
  return m;
}

void put_png(const TempDir& d, const std::string& rel, const Image& im) {
  fs::create_directories(fs::path(d.str(rel)).parent_path());
  image_write_png(d.str(rel), im);
}

// Lossy, so tests compare against the decoded file rather than the source pattern.
void put_jpg(const TempDir& d, const std::string& rel, const Image& im, int quality = 90) {
  fs::create_directories(fs::path(d.str(rel)).parent_path());
  REQUIRE(stbi_write_jpg(d.str(rel).c_str(), im.width, im.height, im.channels, im.pixels.data(),
                         quality));
}

void put_bytes(const TempDir& d, const std::string& rel, const std::string& bytes) {
  fs::create_directories(fs::path(d.str(rel)).parent_path());
  std::ofstream(d.str(rel), std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The IoError message f throws ("" if none).
template <class F>
std::string io_error_of(F f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The one warning containing part ("" when none or several do).
std::string warning_with(const std::vector<std::string>& warnings, const std::string& part) {
  std::string found;
  int n = 0;
  for (const std::string& w : warnings)
    if (has(w, part)) found = w, ++n;
  return n == 1 ? found : "";
}

// Item i of a u8 tensor [N, ...] as bytes.
std::vector<uint8_t> slice(const Tensor& t, int64_t i) {
  const std::vector<uint8_t> all = t.to_bytes();
  const size_t per = all.size() / size_t(t.dim(0));
  return {all.begin() + std::ptrdiff_t(size_t(i) * per),
          all.begin() + std::ptrdiff_t(size_t(i + 1) * per)};
}

// What the loader must produce for an image: RGB, bilinear to S x S, planar.
std::vector<uint8_t> expected_rgb(const Image& im, int S) {
  return image_to_planar(image_resize_bilinear(image_to_rgb(im), S, S));
}

std::vector<uint8_t> threshold(const Image& m, int S, bool draem) {
  const Image r = draem ? image_resize_bilinear(m, S, S) : image_resize_nearest(m, S, S);
  std::vector<uint8_t> out(r.pixels.size());
  for (size_t p = 0; p < out.size(); ++p)
    out[p] = uint8_t(draem ? r.pixels[p] == 255 : r.pixels[p] > 127);
  return out;
}

const fs::path shared_data = "/work/shared/data";

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("dataset: resolve_class_dir takes DIR/NAME or DIR itself and names the paths tried") {
    TempDir d;
    fs::create_directories(d.path / "root/bottle/train/good");
    fs::create_directories(d.path / "root/bottle_only/train");
    const std::string root = d.str("root"), bottle = d.str("root/bottle");
    CHECK(resolve_class_dir(root, "bottle") == (fs::path(root) / "bottle").string());
    CHECK(resolve_class_dir(bottle, "bottle") == bottle);
    CHECK(resolve_class_dir(bottle + "/", "bottle") == bottle + "/");
    CHECK(resolve_class_dir(bottle, "") == bottle);
    // The class folder given with the wrong class: both paths, and the class it holds.
    const std::string wrong = io_error_of([&] { resolve_class_dir(bottle, "cable"); });
    CHECK(has(wrong, bottle + "/cable/train/good"));
    CHECK(has(wrong, bottle + "/train/good"));
    CHECK(has(wrong, "'bottle'"));
    const std::string missing = io_error_of([&] { resolve_class_dir(root, "cable"); });
    CHECK(has(missing, root + "/cable/train/good"));
    CHECK(has(missing, root + "/train/good"));
    CHECK(has(io_error_of([&] { resolve_class_dir(d.str("root/bottle_only"), ""); }),
              "bottle_only/train/good"));
  }

  TEST_CASE(
      "dataset: train/good of gray, RGB, RGBA, non-square PNG and JPEG loads sorted, split by "
      "parity") {
    TempDir d;
    const int S = 8;
    const Image gray = pattern(10, 12, 1, 1), rgb = pattern(12, 10, 3, 2),
                same = pattern(8, 8, 3, 3);
    put_png(d, "c/train/good/000.png", gray);
    put_png(d, "c/train/good/001.png", rgb);
    put_jpg(d, "c/train/good/002.jpg", pattern(16, 16, 3, 4));
    put_png(d, "c/train/good/003.png", same);
    // RGBA: the alpha channel is dropped.
    Image rgba{9, 7, 4, pattern(9, 7, 4, 5).pixels};
    REQUIRE(
        stbi_write_png(d.str("c/train/good/004.png").c_str(), 7, 9, 4, rgba.pixels.data(), 7 * 4));
    put_bytes(d, "c/train/good/notes.txt", "not an image");
    put_bytes(d, "c/train/good/.DS_Store", "hidden, skipped silently");

    std::vector<std::string> warnings;
    const TrainSet set = load_train_set(d.str("c"), S, &warnings);
    const std::string good = d.str("c/train/good/");
    CHECK(set.class_dir == d.str("c"));
    CHECK(set.files == std::vector<std::string>{good + "000.png", good + "001.png",
                                                good + "002.jpg", good + "003.png",
                                                good + "004.png"});
    CHECK(set.images.shape() == Dims{5, 3, S, S});
    CHECK(set.images.dtype() == DType::u8);
    CHECK(set.images.device() == Device::cpu);
    CHECK(set.x_index == std::vector<int64_t>{0, 2, 4});
    CHECK(set.y_index == std::vector<int64_t>{1, 3});

    CHECK(slice(set.images, 0) == expected_rgb(gray, S));
    CHECK(slice(set.images, 1) == expected_rgb(rgb, S));
    CHECK(slice(set.images, 2) == expected_rgb(image_read(good + "002.jpg"), S));  // JPEG is lossy
    CHECK(slice(set.images, 3) == image_to_planar(same));  // already S x S: an exact copy
    Image rgb_of_rgba{9, 7, 3, std::vector<uint8_t>(9 * 7 * 3)};
    for (size_t p = 0; p < size_t(9 * 7); ++p)
      for (size_t c = 0; c < 3; ++c) rgb_of_rgba.pixels[3 * p + c] = rgba.pixels[4 * p + c];
    CHECK(slice(set.images, 4) == expected_rgb(rgb_of_rgba, S));
    // A gray image gives three equal planes.
    const std::vector<uint8_t> g = slice(set.images, 0);
    CHECK(std::equal(g.begin(), g.begin() + S * S, g.begin() + S * S));
    CHECK(std::equal(g.begin(), g.begin() + S * S, g.begin() + 2 * S * S));

    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == "1 files in " + d.str("c/train/good") +
                             " are not images (.png .jpg .jpeg .bmp .tga) (first: " + good +
                             "notes.txt); ignored");

    // Without a warnings vector the loader still runs.
    CHECK(load_train_set(d.str("c"), 4).images.shape() == Dims{5, 3, 4, 4});
  }

  TEST_CASE("dataset: train/good errors name the folder or the first bad file in sorted order") {
    TempDir d;
    CHECK(io_error_of([&] { load_train_set(d.str("nope"), 8); }) ==
          d.str("nope") + "/train/good: missing: is this an MVTec AD class folder?");
    fs::create_directories(d.path / "c/train/good");
    put_bytes(d, "c/train/good/readme.txt", "no images here");
    CHECK(has(io_error_of([&] { load_train_set(d.str("c"), 8); }),
              d.str("c/train/good") + ": no images"));
    put_png(d, "c/train/good/000.png", pattern(8, 8, 3, 0));
    const std::string one = io_error_of([&] { load_train_set(d.str("c"), 8); });
    CHECK(has(one, d.str("c/train/good") + ": only one image"));
    CHECK(has(one, "000.png"));

    // A garbage file and, later in order, a truncated PNG: the garbage one is reported, every time.
    put_bytes(d, "c/train/good/001.png", "this is not a PNG");
    for (int i = 2; i < 30; ++i)
      put_png(d, "c/train/good/" + std::to_string(1000 + i).substr(1) + ".png",
              pattern(20, 20, 3, i));
    const std::string full = read_bytes(d.str("c/train/good/020.png"));
    put_bytes(d, "c/train/good/020.png", full.substr(0, full.size() / 2));
    for (int run = 0; run < 5; ++run) {
      const std::string bad = io_error_of([&] { load_train_set(d.str("c"), 8); });
      CHECK(has(bad, d.str("c/train/good/001.png")));
    }
    fs::remove(d.path / "c/train/good/001.png");
    CHECK(has(io_error_of([&] { load_train_set(d.str("c"), 8); }), d.str("c/train/good/020.png")));
    CHECK_THROWS_AS(load_train_set(d.str("c"), 0), ConfigError);
  }

  TEST_CASE("dataset: the test set in DRAEM's order with labels, masks and defect types") {
    TempDir d;
    const int S = 8;
    const Image good0 = pattern(8, 8, 3, 10), good1 = pattern(8, 8, 1, 11);
    const Image crack0 = pattern(12, 9, 1, 12), crack1 = pattern(8, 8, 3, 13);
    const Image big0 = pattern(16, 16, 3, 14), hole0 = pattern(8, 8, 3, 15);
    put_png(d, "c/test/good/000.png", good0);
    put_png(d, "c/test/good/001.png", good1);
    put_png(d, "c/test/crack/000.png", crack0);
    put_png(d, "c/test/crack/001.png", crack1);
    // '-' sorts before '/', so DRAEM's sorted paths put hole-big/ before hole/.
    put_png(d, "c/test/hole-big/000.png", big0);
    put_jpg(d, "c/test/hole/000.jpg", hole0);
    const Image m_crack0 = mask_rect(12, 9, 2, 7, 1, 5), m_crack1 = mask_rect(8, 8, 0, 3, 4, 8);
    const Image m_big0 = mask_rect(16, 16, 4, 12, 4, 12), m_hole0 = mask_rect(8, 8, 5, 8, 0, 2);
    put_png(d, "c/ground_truth/crack/000_mask.png", m_crack0);
    // A JPEG beside the PNG of the same stem: the lossless one is taken.
    const Image black(mask_rect(12, 9, 0, 0, 0, 0));
    put_jpg(d, "c/ground_truth/crack/000_mask.jpg", black);
    put_png(d, "c/ground_truth/crack/001.png", m_crack1);  // the <stem>.png form
    put_png(d, "c/ground_truth/hole-big/000_mask.png", m_big0);
    fs::create_directories(d.path / "c/ground_truth/hole");
    REQUIRE(stbi_write_bmp(d.str("c/ground_truth/hole/000_mask.bmp").c_str(), 8, 8, 1,
                           m_hole0.pixels.data()));
    put_png(d, "c/ground_truth/good/000_mask.png", mask_rect(8, 8, 0, 8, 0, 8));  // ignored

    std::vector<std::string> warnings;
    const TestSet set = load_test_set(d.str("c"), S, MaskResize::nearest, &warnings);
    CHECK(warnings.empty());
    const std::string t = d.str("c/test/"), g = d.str("c/ground_truth/");
    REQUIRE(set.items.size() == 6);
    struct Want {
      std::string file, defect;
      bool anomalous;
      std::string mask;
    };
    const std::vector<Want> want = {
        {t + "crack/000.png", "crack", true, g + "crack/000_mask.png"},
        {t + "crack/001.png", "crack", true, g + "crack/001.png"},
        {t + "good/000.png", "good", false, ""},
        {t + "good/001.png", "good", false, ""},
        {t + "hole-big/000.png", "hole-big", true, g + "hole-big/000_mask.png"},
        {t + "hole/000.jpg", "hole", true, g + "hole/000_mask.bmp"},
    };
    for (size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      CHECK(set.items[i].file == want[i].file);
      CHECK(set.items[i].defect == want[i].defect);
      CHECK(set.items[i].anomalous == want[i].anomalous);
      CHECK(set.items[i].mask_file == want[i].mask);
    }
    CHECK(set.class_dir == d.str("c"));
    CHECK(set.defect_types == std::vector<std::string>{"crack", "hole", "hole-big"});
    CHECK(set.images.shape() == Dims{6, 3, S, S});
    CHECK(set.masks.shape() == Dims{6, 1, S, S});
    CHECK(set.masks.dtype() == DType::u8);

    CHECK(slice(set.images, 0) == expected_rgb(crack0, S));
    CHECK(slice(set.images, 1) == expected_rgb(crack1, S));
    CHECK(slice(set.images, 2) == expected_rgb(good0, S));
    CHECK(slice(set.images, 3) == expected_rgb(good1, S));
    CHECK(slice(set.images, 4) == expected_rgb(big0, S));
    CHECK(slice(set.images, 5) == expected_rgb(image_read(t + "hole/000.jpg"), S));
    const std::vector<uint8_t> zeros(size_t(S * S), 0);
    CHECK(slice(set.masks, 0) == threshold(m_crack0, S, false));
    CHECK(slice(set.masks, 1) == threshold(m_crack1, S, false));
    CHECK(slice(set.masks, 2) == zeros);  // good: zeros, whatever ground_truth/good holds
    CHECK(slice(set.masks, 3) == zeros);
    CHECK(slice(set.masks, 4) == threshold(m_big0, S, false));
    CHECK(slice(set.masks, 5) == threshold(m_hole0, S, false));
    CHECK(slice(set.masks, 0) != zeros);
    for (uint8_t v : set.masks.to_bytes()) CHECK(v <= 1);
  }

  TEST_CASE("dataset: a defect image without a mask names the image and the mask path looked for") {
    TempDir d;
    put_png(d, "c/test/good/000.png", pattern(8, 8, 3, 0));
    put_png(d, "c/test/crack/000.png", pattern(8, 8, 3, 1));
    put_png(d, "c/test/crack/001.png", pattern(8, 8, 3, 2));
    // No ground_truth/crack at all: the folder is said to be missing.
    const std::string none = io_error_of([&] { load_test_set(d.str("c"), 8); });
    CHECK(has(none, d.str("c/test/crack/000.png")));
    CHECK(has(none, d.str("c/ground_truth/crack/000_mask.png")));
    CHECK(has(none, "folder itself is missing"));
    // 000 has its mask, 001 has none (a mask of another stem does not count).
    put_png(d, "c/ground_truth/crack/000_mask.png", mask_rect(8, 8, 0, 2, 0, 2));
    put_png(d, "c/ground_truth/crack/010_mask.png", mask_rect(8, 8, 0, 2, 0, 2));
    const std::string one = io_error_of([&] { load_test_set(d.str("c"), 8); });
    CHECK(has(one, d.str("c/test/crack/001.png") + ": anomalous test image without a mask"));
    CHECK(has(one, "looked for " + d.str("c/ground_truth/crack/001_mask.png")));
    CHECK_FALSE(has(one, "folder itself is missing"));
  }

  TEST_CASE(
      "dataset: test set warnings: resized masks, empty masks, stray folders and files; once "
      "each") {
    TempDir d;
    const int S = 8;
    for (int i = 0; i < 5; ++i)
      put_png(d, "c/test/crack/00" + std::to_string(i) + ".png", pattern(8, 8, 3, i));
    put_png(d, "c/test/good/000.png", pattern(8, 8, 3, 9));
    const std::string g = d.str("c/ground_truth/crack/");
    const Image small = mask_rect(4, 4, 0, 2, 0, 2), large = mask_rect(16, 16, 8, 16, 8, 16);
    put_png(d, "c/ground_truth/crack/000_mask.png", small);  // 4 x 4 for an 8 x 8 image
    put_png(d, "c/ground_truth/crack/001_mask.png", large);  // 16 x 16
    put_png(d, "c/ground_truth/crack/002_mask.png", mask_rect(8, 8, 0, 0, 0, 0));  // empty
    Image values = mask_rect(8, 8, 0, 0, 0, 0);
    values.at(1, 1, 0) = 200, values.at(2, 2, 0) = 100, values.at(3, 3, 0) = 128,
                    values.at(4, 4, 0) = 127;
    put_png(d, "c/ground_truth/crack/003_mask.png", values);
    put_png(d, "c/ground_truth/crack/004_mask.png", mask_rect(8, 8, 0, 8, 0, 8, 100));  // all 100
    put_png(d, "c/ground_truth/scratch/000_mask.png", small);  // no test/scratch
    fs::create_directories(d.path / "c/test/empty");
    put_bytes(d, "c/test/readme.txt", "x");
    put_bytes(d, "c/test/crack/Thumbs.db", "x");
    put_png(d, "c/test/loose.png", pattern(8, 8, 3, 0));

    std::vector<std::string> warnings;
    const TestSet set = load_test_set(d.str("c"), S, MaskResize::nearest, &warnings);
    REQUIRE(set.items.size() == 6);
    CHECK(slice(set.masks, 0) == threshold(small, S, false));
    CHECK(slice(set.masks, 1) == threshold(large, S, false));
    std::vector<uint8_t> want(size_t(S * S), 0);
    want[1 * S + 1] = 1, want[3 * S + 3] = 1;  // 200 and 128 count, 100 and 127 do not
    CHECK(slice(set.masks, 3) == want);

    CHECK(warnings.size() == 6);
    CHECK(warning_with(warnings, "differ in size") ==
          "2 masks differ in size from their images (first: " + g +
              "000_mask.png 4x4 vs 8x8); resized");
    const std::string empty = warning_with(warnings, "empty mask");
    CHECK(has(empty, "2 anomalous images have an empty mask at 8x8 with nearest resizing"));
    CHECK(has(empty, "(first: " + d.str("c/test/crack/002.png") + ")"));
    CHECK(has(warning_with(warnings, d.str("c/ground_truth/scratch")),
              "masks for a defect with no test images"));
    CHECK(warning_with(warnings, d.str("c/test/empty")) ==
          d.str("c/test/empty") + ": no images; ignored");
    const std::string not_images = warning_with(warnings, "are not images");
    CHECK(has(not_images, "2 files"));
    CHECK(has(not_images, "(first: " + d.str("c/test/readme.txt") + ")"));
    CHECK(has(warning_with(warnings, "directly in"), d.str("c/test/loose.png")));

    // No good folder, or only good images: one warning each.
    TempDir e;
    put_png(e, "c/test/crack/000.png", pattern(8, 8, 3, 0));
    put_png(e, "c/ground_truth/crack/000_mask.png", mask_rect(8, 8, 0, 4, 0, 4));
    warnings.clear();
    load_test_set(e.str("c"), S, MaskResize::nearest, &warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(has(warnings[0], e.str("c/test/good") + ": no images"));
    fs::remove_all(e.path / "c/test/crack");
    put_png(e, "c/test/good/000.png", pattern(8, 8, 3, 0));
    warnings.clear();
    const TestSet only_good = load_test_set(e.str("c"), S, MaskResize::nearest, &warnings);
    CHECK(only_good.defect_types.empty());
    CHECK(warning_with(warnings, "only good images") != "");
  }

  TEST_CASE("dataset: mask modes: nearest counts > 127; draem only what stays 255 after bilinear") {
    TempDir d;
    // Same size as S: a 255 block with a 128 pixel on its border and a 254 pixel.
    put_png(d, "a/test/crack/000.png", pattern(8, 8, 3, 0));
    Image m = mask_rect(8, 8, 0, 2, 0, 2);
    m.at(2, 0, 0) = 128, m.at(6, 6, 0) = 254;
    put_png(d, "a/ground_truth/crack/000_mask.png", m);
    // A multi-channel mask: only the first channel counts.
    put_png(d, "a/test/crack/001.png", pattern(8, 8, 3, 1));
    Image rgb{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, 0)};
    rgb.at(0, 0, 0) = 255;
    rgb.at(1, 1, 1) = 255, rgb.at(1, 1, 2) = 255;
    put_png(d, "a/ground_truth/crack/001_mask.png", rgb);

    const TestSet nearest = load_test_set(d.str("a"), 8, MaskResize::nearest);
    const TestSet draem = load_test_set(d.str("a"), 8, MaskResize::draem);
    std::vector<uint8_t> block(64, 0);
    for (int p : {0, 1, 8, 9}) block[size_t(p)] = 1;
    std::vector<uint8_t> with_border = block;
    with_border[2 * 8 + 0] = 1, with_border[6 * 8 + 6] = 1;
    CHECK(slice(nearest.masks, 0) == with_border);
    CHECK(slice(draem.masks, 0) == block);
    std::vector<uint8_t> first(64, 0);
    first[0] = 1;
    CHECK(slice(nearest.masks, 1) == first);
    CHECK(slice(draem.masks, 1) == first);

    // 8 -> 4 halves: each output blends source columns 2x and 2x + 1 equally. A 255 region over
    // columns 0-4 keeps output column 2 (source 4) with nearest, but blends it with column 5 (0)
    // to 128 with bilinear, so DRAEM's mode drops that edge.
    put_png(d, "b/test/crack/000.png", pattern(8, 8, 3, 2));
    const Image edge = mask_rect(8, 8, 0, 4, 0, 5);
    put_png(d, "b/ground_truth/crack/000_mask.png", edge);
    CHECK(image_resize_bilinear(edge, 4, 4).at(0, 2, 0) == 128);
    const std::vector<uint8_t> near4 = {1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const std::vector<uint8_t> draem4 = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(slice(load_test_set(d.str("b"), 4, MaskResize::nearest).masks, 0) == near4);
    CHECK(slice(load_test_set(d.str("b"), 4, MaskResize::draem).masks, 0) == draem4);

    CHECK(std::string(mask_resize_name(MaskResize::draem)) == "draem");
    CHECK(mask_resize_parse("nearest") == MaskResize::nearest);
    CHECK(mask_resize_parse("draem") == MaskResize::draem);
    CHECK_THROWS_AS(mask_resize_parse("bilinear"), ConfigError);
  }

  TEST_CASE("dataset: test set errors name the folder, the image or the mask") {
    TempDir d;
    CHECK(io_error_of([&] { load_test_set(d.str("c"), 8); }) ==
          d.str("c/test") + ": missing: is this an MVTec AD class folder?");
    fs::create_directories(d.path / "c/test/good");
    CHECK(has(io_error_of([&] { load_test_set(d.str("c"), 8); }), d.str("c/test") + ": no images"));
    put_png(d, "c/test/good/000.png", pattern(8, 8, 3, 0));
    put_png(d, "c/test/crack/000.png", pattern(8, 8, 3, 1));
    put_bytes(d, "c/ground_truth/crack/000_mask.png", "not a PNG");
    CHECK(has(io_error_of([&] { load_test_set(d.str("c"), 8); }),
              d.str("c/ground_truth/crack/000_mask.png")));
    put_png(d, "c/ground_truth/crack/000_mask.png", mask_rect(8, 8, 0, 4, 0, 4));
    const std::string png = read_bytes(d.str("c/test/good/000.png"));
    put_bytes(d, "c/test/good/000.png", png.substr(0, png.size() / 2));
    CHECK(has(io_error_of([&] { load_test_set(d.str("c"), 8); }), d.str("c/test/good/000.png")));
    CHECK_THROWS_AS(load_test_set(d.str("c"), -1), ConfigError);
  }

  TEST_CASE("dataset: bottle at 256: counts, labels and masks; no warnings") {
    const fs::path bottle = shared_data / "mvtec_bottle_256/bottle";
    if (!fs::exists(bottle)) {
      MESSAGE("skipped: " << bottle << " is missing");
      return;
    }
    std::vector<std::string> warnings;
    const TrainSet train = load_train_set(bottle.string(), 256, &warnings);
    CHECK(train.images.shape() == Dims{209, 3, 256, 256});
    CHECK(train.x_index.size() == 105);
    CHECK(train.y_index.size() == 104);
    CHECK(train.files.front() == (bottle / "train/good/000.png").string());
    CHECK(slice(train.images, 208) ==
          image_to_planar(image_read((bottle / "train/good/208.png").string())));

    const TestSet test = load_test_set(bottle.string(), 256, MaskResize::nearest, &warnings);
    CHECK(warnings.empty());
    REQUIRE(test.items.size() == 83);
    CHECK(test.defect_types ==
          std::vector<std::string>{"broken_large", "broken_small", "contamination"});
    std::map<std::string, int> per_defect;
    for (const TestItem& it : test.items) ++per_defect[it.defect];
    CHECK(per_defect ==
          std::map<std::string, int>{
              {"broken_large", 20}, {"broken_small", 22}, {"contamination", 21}, {"good", 20}});
    CHECK(test.items[0].file == (bottle / "test/broken_large/000.png").string());
    CHECK(test.items[0].mask_file == (bottle / "ground_truth/broken_large/000_mask.png").string());
    CHECK(test.items[63].file == (bottle / "test/good/000.png").string());
    // Every defect image has anomalous pixels, every good one none.
    const std::vector<uint8_t> masks = test.masks.to_bytes();
    for (size_t i = 0; i < test.items.size(); ++i) {
      const auto begin = masks.begin() + std::ptrdiff_t(i * 256 * 256);
      const bool any = std::any_of(begin, begin + 256 * 256, [](uint8_t v) { return v != 0; });
      CHECK(any == test.items[i].anomalous);
    }
  }

  TEST_CASE("dataset: bottle originals at 900 px load to exactly the stored 256 px version") {
    const fs::path full = shared_data / "mvtec_bottle_full_sample/bottle";
    const fs::path small = shared_data / "mvtec_bottle_256/bottle";
    if (!fs::exists(full) || !fs::exists(small)) {
      MESSAGE("skipped: " << full << " or " << small << " is missing");
      return;
    }
    std::vector<std::string> warnings;
    const TrainSet train = load_train_set(full.string(), 256, &warnings);
    REQUIRE(train.files.size() >= 2);
    for (size_t i = 0; i < train.files.size(); ++i) {
      const std::string rel = fs::relative(train.files[i], full).string();
      CAPTURE(rel);
      CHECK(slice(train.images, int64_t(i)) == image_to_planar(image_read((small / rel).string())));
    }
    const TestSet test = load_test_set(full.string(), 256, MaskResize::nearest, &warnings);
    CHECK(warnings.empty());
    REQUIRE(test.items.size() >= 2);
    for (size_t i = 0; i < test.items.size(); ++i) {
      const TestItem& it = test.items[i];
      const std::string rel = fs::relative(it.file, full).string();
      CAPTURE(rel);
      CHECK(slice(test.images, int64_t(i)) == image_to_planar(image_read((small / rel).string())));
      if (!it.anomalous) continue;
      const Image stored = image_read((small / fs::relative(it.mask_file, full)).string());
      std::vector<uint8_t> want(stored.pixels.size());
      for (size_t p = 0; p < want.size(); ++p) want[p] = uint8_t(stored.pixels[p] > 127);
      CHECK(slice(test.masks, int64_t(i)) == want);
    }
  }
}
