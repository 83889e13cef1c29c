#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"

using namespace caf;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("caf_image_io_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

Image pattern(int h, int w, int c) {
  Image im{h, w, c, std::vector<uint8_t>(size_t(h * w * c))};
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = uint8_t((i * 37 + i / 7) % 256);
  return im;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The message of the IoError that f throws ("" if it throws none).
template <class F>
std::string io_error_of(F f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

// A 2 x 2 16-bit gray PNG built by hand (stb_image_write only writes 8 bits): one stored
// (uncompressed) deflate block, real CRCs and Adler-32.
std::vector<uint8_t> png16_gray_2x2(const uint16_t v[4]) {
  auto be32 = [](std::vector<uint8_t>& o, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) o.push_back(uint8_t(x >> s));
  };
  auto crc32 = [](const uint8_t* p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
      c ^= p[i];
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    be32(png, uint32_t(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    be32(png, crc32(body.data(), body.size()));
  };
  std::vector<uint8_t> ihdr;
  be32(ihdr, 2);
  be32(ihdr, 2);
  ihdr.insert(ihdr.end(), {16, 0, 0, 0, 0});  // 16 bits, gray, deflate, no filter, no interlace
  chunk("IHDR", ihdr);
  const std::vector<uint8_t> raw = {
      0, uint8_t(v[0] >> 8), uint8_t(v[0]), uint8_t(v[1] >> 8), uint8_t(v[1]),
      0, uint8_t(v[2] >> 8), uint8_t(v[2]), uint8_t(v[3] >> 8), uint8_t(v[3])};
  std::vector<uint8_t> z = {0x78, 0x01, 0x01, uint8_t(raw.size()), 0, uint8_t(~raw.size()), 0xFF};
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;
  for (uint8_t x : raw) a = (a + x) % 65521, b = (b + a) % 65521;
  be32(z, (b << 16) | a);
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

const char* shared_data = "/work/shared/data";

}  // namespace

TEST_SUITE("augment") {
TEST_CASE("image_io: PNG round trips are exact and leave no temporary file") {
  TempDir dir;
  for (int c : {1, 3}) {
    const Image im = pattern(7, 5, c);
    const std::string path = dir.file("round" + std::to_string(c) + ".png");
    image_write_png(path, im);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    const Image back = image_read(path);
    CHECK(back.height == 7);
    CHECK(back.width == 5);
    CHECK(back.channels == c);
    CHECK(back.pixels == im.pixels);
  }
  CHECK(io_error_of([&] { image_write_png(dir.file("no/such/dir/x.png"), pattern(2, 2, 1)); })
            .find("x.png") != std::string::npos);
}

TEST_CASE("image_io: JPEG, alpha and 16-bit PNGs read as 1 or 3 channels of 8 bits") {
  TempDir dir;
  const std::vector<uint8_t> rgb(size_t(12 * 20 * 3), 200);
  REQUIRE(stbi_write_jpg(dir.file("c.JPG").c_str(), 20, 12, 3, rgb.data(), 95));
  const Image jpg = image_read(dir.file("c.JPG"));
  CHECK(jpg.height == 12);
  CHECK(jpg.width == 20);
  CHECK(jpg.channels == 3);
  for (uint8_t v : jpg.pixels) CHECK(std::abs(int(v) - 200) <= 2);  // a flat JPEG is near lossless

  const std::vector<uint8_t> gray_alpha = {10, 255, 20, 0, 30, 128, 40, 1};
  REQUIRE(stbi_write_png(dir.file("ga.png").c_str(), 2, 2, 2, gray_alpha.data(), 4));
  CHECK(image_read(dir.file("ga.png")).pixels == std::vector<uint8_t>{10, 20, 30, 40});
  const std::vector<uint8_t> rgba = {1, 2, 3, 255, 4, 5, 6, 0};
  REQUIRE(stbi_write_png(dir.file("rgba.png").c_str(), 2, 1, 4, rgba.data(), 8));
  const Image three = image_read(dir.file("rgba.png"));
  CHECK(three.channels == 3);
  CHECK(three.pixels == std::vector<uint8_t>{1, 2, 3, 4, 5, 6});

  const uint16_t v16[4] = {0x0000, 0x1234, 0xFF00, 0xFFFF};
  write_bytes(dir.file("deep.png"), png16_gray_2x2(v16));
  const Image deep = image_read(dir.file("deep.png"));
  CHECK(deep.channels == 1);
  CHECK(deep.pixels == std::vector<uint8_t>{0x00, 0x12, 0xFF, 0xFF});  // the high byte
}

TEST_CASE("image_io: missing, garbage and truncated files throw IoError naming the file") {
  TempDir dir;
  const std::string missing = io_error_of([&] { image_read(dir.file("absent.png")); });
  CHECK(missing.find("absent.png") != std::string::npos);
  CHECK(missing.find("missing") != std::string::npos);

  write_bytes(dir.file("garbage.png"), std::vector<uint8_t>(300, 0xAB));
  CHECK(io_error_of([&] { image_read(dir.file("garbage.png")); }).find("garbage.png") !=
        std::string::npos);

  Image noisy = pattern(64, 64, 3);
  std::mt19937 gen(3);
  for (uint8_t& v : noisy.pixels) v = uint8_t(gen());  // incompressible, so half the file is data
  image_write_png(dir.file("whole.png"), noisy);
  std::vector<uint8_t> bytes = read_bytes(dir.file("whole.png"));
  REQUIRE(bytes.size() > 1000);
  bytes.resize(bytes.size() / 2);
  write_bytes(dir.file("half.png"), bytes);
  const std::string half = io_error_of([&] { image_read(dir.file("half.png")); });
  MESSAGE("truncated PNG: " << half);
  CHECK(half.find("half.png") != std::string::npos);
}

TEST_CASE("image_io: a top-down BMP claiming 3x16777214 pixels in 78 bytes is refused, not decoded") {
  // Found by fuzz_image in CI: stb's header probe reports a top-down BMP's height as negative, so
  // the size check passed; stb then decoded 16.7 M rows of zeros and a resize asked for 3 GB.
  std::vector<uint8_t> bmp(78, 0);
  const uint8_t header[] = {'B', 'M', 0x4e, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0,
                            3, 0, 0, 0,            // width 3
                            0x02, 0, 0, 0xff,      // height 0xff000002: -16777214, top-down
                            1, 0, 0x18, 0};        // 1 plane, 24 bits
  std::copy(std::begin(header), std::end(header), bmp.begin());
  std::string what;
  try {
    image_decode(bmp.data(), bmp.size(), "tall.bmp", int64_t(1) << 20);
  } catch (const IoError& e) {
    what = e.what();
  }
  MESSAGE(what);
  CHECK(what.find("tall.bmp") != std::string::npos);
  CHECK(what.find("3x16777214 is larger than 1048576 pixels") != std::string::npos);
}

TEST_CASE("image_io: formats caf does not read are refused by name, before any parser runs") {
  // Found by fuzz_image in CI: a PNM header with a 33-digit width overflowed an int inside stb's
  // PNM reader (undefined behaviour, reported by UBSan). stb is now built with PNG, JPEG, BMP and
  // TGA only, so these bytes, like a GIF's or a PSD's, are an unknown image type.
  const std::string pnm = "P6666666666666666666666666666666#5\x82" "4\n\n000";
  const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  const std::string psd = std::string("8BPS\x00\x01", 6) + std::string(20, '\0');
  for (const std::string& bytes : {pnm, gif, psd}) {
    std::string what;
    try {
      image_decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "odd.ppm", int64_t(1) << 20);
    } catch (const IoError& e) {
      what = e.what();
    }
    CAPTURE(bytes.substr(0, 4));
    CHECK(what.find("odd.ppm") != std::string::npos);
    CHECK(what.find("not of any known type") != std::string::npos);
  }
}

TEST_CASE("image_io: gray to RGB replicates; planar conversions invert each other") {
  const Image gray = pattern(3, 4, 1);
  const Image rgb = image_to_rgb(gray);
  REQUIRE(rgb.channels == 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) CHECK(rgb.at(y, x, c) == gray.at(y, x, 0));
  CHECK(image_to_rgb(rgb).pixels == rgb.pixels);

  const std::vector<uint8_t> chw = image_to_planar(rgb);
  CHECK(chw[size_t(2 * 12 + 1 * 4 + 3)] == rgb.at(1, 3, 2));  // c = 2, y = 1, x = 3
  CHECK(image_from_planar(chw.data(), 3, 3, 4).pixels == rgb.pixels);
}

TEST_CASE("image_io: bilinear resize follows OpenCV INTER_LINEAR") {
  const Image im = pattern(5, 6, 3);
  CHECK(image_resize_bilinear(im, 5, 6).pixels == im.pixels);

  Image flat{9, 7, 3, std::vector<uint8_t>(9 * 7 * 3, 173)};
  for (auto [h, w] : {std::pair{13, 4}, std::pair{3, 11}, std::pair{256, 255}})
    for (uint8_t v : image_resize_bilinear(flat, h, w).pixels) REQUIRE(v == 173);

  // Row [0, 255] to 4 columns: source x = 0.25 * (2 * dst + 1) - 0.5 = -0.25 (clamped), 0.25,
  // 0.75, 1.25 (clamped): 0, 63.75, 191.25, 255, rounded.
  const Image two{2, 2, 1, {0, 255, 0, 255}};
  const Image up = image_resize_bilinear(two, 4, 4);
  for (int y = 0; y < 4; ++y)
    CHECK(std::vector<uint8_t>(up.pixels.begin() + 4 * y, up.pixels.begin() + 4 * y + 4) ==
          std::vector<uint8_t>{0, 64, 191, 255});

  // Halving samples at source 0.5, 2.5: the mean of each 2 x 2 block, rounded half up.
  const Image four = pattern(4, 4, 1);
  const Image down = image_resize_bilinear(four, 2, 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) {
      const int sum = four.at(2 * y, 2 * x, 0) + four.at(2 * y, 2 * x + 1, 0) +
                      four.at(2 * y + 1, 2 * x, 0) + four.at(2 * y + 1, 2 * x + 1, 0);
      CHECK(int(down.at(y, x, 0)) == (sum + 2) / 4);
    }
}

TEST_CASE("image_io: nearest resize picks floor(dst * scale)") {
  Image im{6, 6, 1, std::vector<uint8_t>(36)};
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) im.at(y, x, 0) = uint8_t(10 * y + x);
  const Image down = image_resize_nearest(im, 4, 4);  // scale 1.5: rows and columns 0, 1, 3, 4
  const int pick[4] = {0, 1, 3, 4};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(int(down.at(y, x, 0)) == 10 * pick[y] + pick[x]);
  const Image up = image_resize_nearest(Image{1, 2, 1, {7, 9}}, 1, 4);
  CHECK(up.pixels == std::vector<uint8_t>{7, 7, 9, 9});
}

TEST_CASE("image_io: resizes reproduce the cv2.resize outputs in shared/data") {
  const fs::path full = fs::path(shared_data) / "mvtec_bottle_full_sample/bottle";
  const fs::path small = fs::path(shared_data) / "mvtec_bottle_256/bottle";
  if (!fs::exists(full) || !fs::exists(small)) {
    MESSAGE("skipped: " << full << " or " << small << " is missing");
    return;
  }
  for (const char* name : {"train/good/000.png", "test/broken_large/000.png"}) {
    const Image src = image_read((full / name).string());
    const Image want = image_read((small / name).string());
    CHECK(image_resize_bilinear(src, 256, 256).pixels == want.pixels);
  }
  const char* mask = "ground_truth/broken_large/000_mask.png";
  CHECK(image_resize_nearest(image_read((full / mask).string()), 256, 256).pixels ==
        image_read((small / mask).string()).pixels);
}

TEST_CASE("image_io: list_images filters by extension, sorts, and recurses on request") {
  TempDir dir;
  fs::create_directories(dir.path / "sub" / "deeper");
  for (const char* name : {"b.png", "a.JPEG", "notes.txt", "sub/c.bmp", "sub/deeper/d.tga",
                           "sub/e.jpg.bak"})
    write_bytes(dir.file(name), {0});
  fs::create_directories(dir.path / "folder.png");  // a directory named like an image
  CHECK(list_images(dir.path.string(), false) ==
        std::vector<std::string>{dir.file("a.JPEG"), dir.file("b.png")});
  CHECK(list_images(dir.path.string(), true) ==
        std::vector<std::string>{dir.file("a.JPEG"), dir.file("b.png"), dir.file("sub/c.bmp"),
                                 dir.file("sub/deeper/d.tga")});
  CHECK(is_image_file("x/y.Jpg"));
  CHECK_FALSE(is_image_file("x/png"));
  CHECK(io_error_of([&] { list_images(dir.file("nope"), true); }).find("nope") !=
        std::string::npos);
  CHECK(io_error_of([&] { list_images(dir.file("b.png"), true); }).find("not a directory") !=
        std::string::npos);
}
}
