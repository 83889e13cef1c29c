// augment/image_io.cpp: stb-backed image reading and PNG writing, OpenCV-exact uint8 resizes,
// and folder listing.
//
// The bilinear resize copies OpenCV's integer arithmetic rather than computing in floating point
// and rounding: weights are quantised to 11 bits per axis and the vertical pass is the SIMD one
// OpenCV runs on x86 and ARM (products taken >> 16 then (r + 2) >> 2), so the 256-px data in
// shared/data, made with cv2.resize, is reproduced bit for bit (tests/augment/test_image_io.cpp);
// OpenCV's exactly rounded scalar formula differs there. OpenCV finishes a row whose length
// (width * channels) is not a multiple of its vector width with the scalar formula, so those last
// few values may differ from it by 1; rows of 256 RGB pixels have no such tail.
#include "augment/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <system_error>

#include "kernels/error.h"

namespace fs = std::filesystem;

namespace caf {
namespace {

constexpr int coef_bits = 11;  // OpenCV's INTER_RESIZE_COEF_BITS
constexpr int coef_one = 1 << coef_bits;

// One output position of a linear resize along an axis: two source indices and their weights
// (w0 + w1 = 2048).
struct LinearTap {
  int i0, i1, w0, w1;
};

std::vector<LinearTap> linear_taps(int src, int dst) {
  const double scale = double(src) / double(dst);
  std::vector<LinearTap> taps(static_cast<size_t>(dst));
  for (int d = 0; d < dst; ++d) {
    // OpenCV computes the position in double, then works in float from there on.
    float f = float((d + 0.5) * scale - 0.5);
    int s = int(std::floor(f));
    f -= float(s);
    if (s < 0) s = 0, f = 0.f;
    if (s >= src - 1) s = src - 1, f = 0.f;
    const int w1 = int(std::lrint(f * float(coef_one)));
    const int w0 = int(std::lrint((1.f - f) * float(coef_one)));
    taps[size_t(d)] = {s, std::min(s + 1, src - 1), w0, w1};
  }
  return taps;
}

void require_valid(const Image& im, const char* who) {
  CAF_REQUIRE(im.height > 0 && im.width > 0 && (im.channels == 1 || im.channels == 3) &&
                  im.pixels.size() == size_t(im.height) * size_t(im.width) * size_t(im.channels),
              std::string(who) +
                  ": an image needs a positive size, 1 or 3 channels, and "
                  "height * width * channels pixels");
}

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// stb_image 2.27 (Debian 12's libstb) trusts the code counts of a JPEG Huffman table: more than
// 256 codes overrun its tables (tests/fuzz/fuzz_image found it; 2.28 rejects them). So the JPEG
// segments are walked here first, as stb will read them, and such a table refused.
bool jpeg_huffman_tables_valid(const uint8_t* d, size_t n) {
  size_t p = 0;
  while (p < n && d[p] == 0xFF) ++p;  // stb takes any run of 0xFF before a marker, SOI included
  if (p == 0 || p >= n || d[p] != 0xD8) return true;  // not a JPEG
  ++p;
  while (p + 1 < n) {
    if (d[p] != 0xFF) {  // entropy-coded data after SOS: find the next marker
      ++p;
      continue;
    }
    const uint8_t m = d[p + 1];
    if (m == 0xFF || m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {
      ++p;  // fill byte, stuffed zero or a marker without a length
      continue;
    }
    if (m == 0xD9 || p + 3 >= n) return true;  // EOI, or cut off: stb reports that itself
    const size_t len = size_t(d[p + 2]) << 8 | d[p + 3];
    const size_t end = std::min(n, p + 2 + len);
    if (m == 0xC4)
      for (size_t q = p + 4; q < end;) {
        size_t codes = 0;
        for (size_t i = 0; i < 16 && q + 1 + i < n; ++i) codes += d[q + 1 + i];
        if (codes > 256) return false;
        q += 17 + codes;
      }
    p += 2 + std::max<size_t>(len, 2);
  }
  return true;
}

// stb_image 2.27 also trusts a PNG chunk's length: an IDAT claiming a gigabyte makes it allocate
// that much before it finds the file too short (tests/fuzz/fuzz_image found it). The chunk list is
// walked first; a chunk longer than the bytes left is a truncated or corrupt file.
bool png_chunks_fit(const uint8_t* d, size_t n, size_t* claimed, size_t* left) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n < 8 || std::memcmp(d, kSignature, 8) != 0) return true;  // not a PNG
  for (size_t p = 8; p + 8 <= n;) {
    const size_t len = size_t(d[p]) << 24 | size_t(d[p + 1]) << 16 | size_t(d[p + 2]) << 8 | d[p + 3];
    if (len > n - p - 8) {  // the data alone does not fit (the CRC may be cut off: stb tolerates that)
      *claimed = len;
      *left = n - p - 8;
      return false;
    }
    if (std::memcmp(d + p + 4, "IEND", 4) == 0) return true;
    p += 12 + len;
  }
  return true;
}

}  // namespace

Image image_decode(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
  const std::string hint = "the file is not an image stb can decode, or it is truncated or corrupt";
  if (size > size_t(std::numeric_limits<int>::max()))
    throw IoError("image_read: " + name + ": " + std::to_string(size) + " bytes: too large", hint);
  if (size == 0) throw IoError("image_read: " + name + ": empty file", hint);
  if (!jpeg_huffman_tables_valid(data, size))
    throw IoError("image_read: " + name + ": a JPEG Huffman table has more than 256 codes", hint);
  size_t claimed = 0, left = 0;
  if (!png_chunks_fit(data, size, &claimed, &left))
    throw IoError("image_read: " + name + ": truncated or corrupt PNG: a chunk claims " + std::to_string(claimed) +
                      " bytes, " + std::to_string(left) + " are left",
                  hint);
  int w = 0, h = 0, n = 0;
  const auto refuse_if_too_large = [&](int64_t width, int64_t height) {
    if (width * height > max_pixels)
      throw IoError("image_read: " + name + ": " + std::to_string(width) + "x" + std::to_string(height) +
                        " is larger than " + std::to_string(max_pixels) + " pixels",
                    hint);
  };
  // The header first: stb would otherwise allocate whatever a corrupt header claims. stb's probe
  // reports a top-down BMP's height as negative (its loader then flips the sign), hence the magnitudes.
  // A header stb cannot read is refused here, before its loader allocates anything.
  if (!stbi_info_from_memory(data, int(size), &w, &h, &n)) {
    const char* reason = stbi_failure_reason();
    throw IoError("image_read: " + name + ": " + (reason ? reason : "unreadable header"), hint);
  }
  refuse_if_too_large(std::llabs(int64_t(w)), std::llabs(int64_t(h)));
  // stbi_load reduces 16-bit PNGs to 8 bits itself.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, int(size), &w, &h, &n, 0), stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw IoError("image_read: " + name + ": " + (reason ? reason : "unreadable"), hint);
  }
  if (w <= 0 || h <= 0 || n < 1 || n > 4)
    throw IoError("image_read: " + name + ": decoded to " + std::to_string(w) + "x" +
                      std::to_string(h) + "x" + std::to_string(n),
                  hint);
  // Again after decoding, whatever the probe said: callers size their buffers from these numbers.
  refuse_if_too_large(w, h);
  Image im;
  im.height = h;
  im.width = w;
  im.channels = n <= 2 ? 1 : 3;  // alpha is dropped: gray+alpha -> gray, RGBA -> RGB
  const size_t count = size_t(h) * size_t(w);
  im.pixels.resize(count * size_t(im.channels));
  for (size_t p = 0; p < count; ++p)
    for (int c = 0; c < im.channels; ++c)
      im.pixels[p * size_t(im.channels) + size_t(c)] = pixels.get()[p * size_t(n) + size_t(c)];
  return im;
}

Image image_read(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw IoError("image_read: " + path + ": " + (fs::exists(path, ec) ? "not a file" : "missing"),
                  "check the path; the dataset and texture folders are given on the command line");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = f ? std::streamoff(f.tellg()) : -1;
  std::vector<uint8_t> bytes(size > 0 ? static_cast<size_t>(size) : 0);
  f.seekg(0);
  if (size < 0 || !f ||
      !f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size())))
    throw IoError("image_read: " + path + ": cannot read", "check the file's permissions");
  return image_decode(bytes.data(), bytes.size(), path);
}

Image image_to_rgb(const Image& im) {
  if (im.channels == 3) return im;
  require_valid(im, "image_to_rgb");
  Image out{im.height, im.width, 3, std::vector<uint8_t>(im.pixels.size() * 3)};
  for (size_t p = 0; p < im.pixels.size(); ++p)
    std::fill_n(out.pixels.begin() + std::ptrdiff_t(3 * p), 3, im.pixels[p]);
  return out;
}

Image image_resize_bilinear(const Image& im, int height, int width) {
  require_valid(im, "image_resize_bilinear");
  CAF_REQUIRE(height > 0 && width > 0, "image_resize_bilinear: the target size must be positive");
  if (height == im.height && width == im.width) return im;
  const int C = im.channels;
  const std::vector<LinearTap> tx = linear_taps(im.width, width),
                               ty = linear_taps(im.height, height);
  // The horizontal pass of every source row (exact ints, at most 255 * 2048), then the vertical.
  std::vector<int> rows(size_t(im.height) * size_t(width) * size_t(C));
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < C; ++c) {
        const LinearTap& t = tx[size_t(x)];
        rows[(size_t(y) * size_t(width) + size_t(x)) * size_t(C) + size_t(c)] =
            im.at(y, t.i0, c) * t.w0 + im.at(y, t.i1, c) * t.w1;
      }
  Image out{height, width, C, std::vector<uint8_t>(size_t(height) * size_t(width) * size_t(C))};
  const size_t row_len = size_t(width) * size_t(C);
  for (int y = 0; y < height; ++y) {
    const LinearTap& t = ty[size_t(y)];
    const int* r0 = rows.data() + size_t(t.i0) * row_len;
    const int* r1 = rows.data() + size_t(t.i1) * row_len;
    uint8_t* dst = out.pixels.data() + size_t(y) * row_len;
    for (size_t k = 0; k < row_len; ++k) {
      // OpenCV's vectorised vertical pass: 16-bit high products, then a rounding shift by 2.
      const int v = (((r0[k] >> 4) * t.w0) >> 16) + (((r1[k] >> 4) * t.w1) >> 16);
      dst[k] = uint8_t(std::clamp((v + 2) >> 2, 0, 255));
    }
  }
  return out;
}

Image image_resize_nearest(const Image& im, int height, int width) {
  require_valid(im, "image_resize_nearest");
  CAF_REQUIRE(height > 0 && width > 0, "image_resize_nearest: the target size must be positive");
  // OpenCV multiplies by the inverse of the inverse scale; kept so rounding matches it exactly.
  const double fy = 1.0 / (double(height) / double(im.height));
  const double fx = 1.0 / (double(width) / double(im.width));
  Image out{height, width, im.channels,
            std::vector<uint8_t>(size_t(height) * size_t(width) * size_t(im.channels))};
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(int(std::floor(y * fy)), im.height - 1);
    for (int x = 0; x < width; ++x) {
      const int sx = std::min(int(std::floor(x * fx)), im.width - 1);
      for (int c = 0; c < im.channels; ++c) out.at(y, x, c) = im.at(sy, sx, c);
    }
  }
  return out;
}

void image_write_png(const std::string& path, const Image& im) {
  require_valid(im, "image_write_png");
  const std::string tmp = path + ".tmp";
  if (!stbi_write_png(tmp.c_str(), im.width, im.height, im.channels, im.pixels.data(),
                      im.width * im.channels)) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw IoError("image_write_png: " + path + ": cannot write " + tmp,
                  "check that the folder exists, is writable, and the disk is not full");
  }
  // Durable before it becomes visible: without the fsync a power cut after the rename can leave
  // an empty file under the final name. EINVAL: the file system cannot sync (fine, nothing to do).
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && (::fsync(fd) == 0 || errno == EINVAL);
  const int sync_errno = errno;
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  if (!synced) {
    fs::remove(tmp, ec);
    throw IoError("image_write_png: " + path + ": cannot sync " + tmp + ": " +
                  std::strerror(sync_errno));
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError("image_write_png: " + path + ": cannot rename " + tmp + ": " + ec.message());
  }
}

std::vector<uint8_t> image_to_planar(const Image& im) {
  const size_t plane = size_t(im.height) * size_t(im.width);
  std::vector<uint8_t> chw(plane * size_t(im.channels));
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < im.channels; ++c)
      chw[size_t(c) * plane + p] = im.pixels[p * size_t(im.channels) + size_t(c)];
  return chw;
}

Image image_from_planar(const uint8_t* chw, int channels, int height, int width) {
  Image im{height, width, channels,
           std::vector<uint8_t>(size_t(height) * size_t(width) * size_t(channels))};
  const size_t plane = size_t(height) * size_t(width);
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c)
      im.pixels[p * size_t(channels) + size_t(c)] = chw[size_t(c) * plane + p];
  return im;
}

bool is_image_file(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tga";
}

std::vector<std::string> list_images(const std::string& dir, bool recursive) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(
        "list_images: " + dir + ": " + (fs::exists(dir, ec) ? "not a directory" : "missing"),
        "give the folder that holds the images");
  std::vector<std::string> paths;
  auto take = [&](const fs::directory_entry& e) {
    if (e.is_regular_file() && is_image_file(e.path().string())) paths.push_back(e.path().string());
  };
  try {
    if (recursive)
      for (const auto& e : fs::recursive_directory_iterator(dir)) take(e);
    else
      for (const auto& e : fs::directory_iterator(dir)) take(e);
  } catch (const fs::filesystem_error& e) {
    throw IoError("list_images: " + dir + ": " + e.what());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace caf
