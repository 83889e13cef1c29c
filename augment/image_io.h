// augment/image_io.h: host-side 8-bit images: reading (stb_image), PNG writing, resizing, and
// folder listing, for datasets and the texture bank.
//
// Key decision: the resizes reproduce OpenCV's uint8 INTER_LINEAR and INTER_NEAREST, because
// DRAEM's loader (and the 256-px data in shared/data) went through cv2.resize; a different
// interpolation would shift every input by a pixel fraction and every value by a rounding.
// Layout: interleaved rows, HWC (H rows, W columns, C = 1 or 3 channels); planar CHW helpers
// convert to the tensor layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace caf {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels

  uint8_t& at(int y, int x, int c) { return pixels[index(y, x, c)]; }
  uint8_t at(int y, int x, int c) const { return pixels[index(y, x, c)]; }

 private:
  size_t index(int y, int x, int c) const {
    return (size_t(y) * size_t(width) + size_t(x)) * size_t(channels) + size_t(c);
  }
};

// Any 8- or 16-bit PNG, JPEG, BMP or TGA stb reads (16 bits are reduced to 8). Gray and
// gray+alpha give 1 channel, RGB and RGBA give 3 (alpha dropped). Throws IoError naming the file.
Image image_read(const std::string& path);

// image_read on the bytes of a file already in memory (fuzzers, archives): the same rules, and
// images over max_pixels are refused before decoding (a 300-byte BMP header can claim 16k x 16k,
// which stb would allocate and fill). `name` only labels the errors.
constexpr int64_t kImageMaxPixels = int64_t(1) << 26;  // 8192 x 8192, 64x a 1024-px MVTec image
Image image_decode(const uint8_t* data, size_t size, const std::string& name,
                   int64_t max_pixels = kImageMaxPixels);

// 1 channel replicated to 3; 3 channels returned as is.
Image image_to_rgb(const Image& im);

// OpenCV INTER_LINEAR on uint8: src = (dst + 0.5) * scale - 0.5 clamped to the border, 11-bit
// fixed-point weights per axis, rounded to nearest as cv2.resize does on x86 and ARM (see the
// .cpp). Same size returns a copy.
Image image_resize_bilinear(const Image& im, int height, int width);

// OpenCV INTER_NEAREST: src = floor(dst * scale), clamped. For masks.
Image image_resize_nearest(const Image& im, int height, int width);

// Writes path + ".tmp", fsyncs it, then renames it to path, so neither a crash nor a power cut
// leaves a half-written PNG behind.
void image_write_png(const std::string& path, const Image& im);

std::vector<uint8_t> image_to_planar(const Image& im);  // HWC -> CHW bytes
Image image_from_planar(const uint8_t* chw, int channels, int height, int width);

// Extension .png .jpg .jpeg .bmp .tga, case-insensitive.
bool is_image_file(const std::string& path);

// The image files in dir (and its subfolders when recursive), full paths, sorted. Throws IoError
// if dir is missing or not a directory.
std::vector<std::string> list_images(const std::string& dir, bool recursive);

}  // namespace caf
