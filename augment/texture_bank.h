// augment/texture_bank.h: the anomaly-source textures N (METHOD 4.2), decoded and resized once,
// then uploaded as one uint8 tensor, so sampling a texture per training image is an index.
//
// Either every image of a folder (DTD in real use) or, with no folder, a procedural bank of
// noise, stripes, checkers and blotches generated from a seed by HostRng alone (no std::
// distributions, whose output varies by standard library), so the bank is reproducible anywhere.
// Dimension letters: T textures, 3 channels, S pixels.
#pragma once

#include <cstdint>
#include <string>

#include "nn/tensor.h"

namespace caf {

struct TextureBank {
  Tensor images;       // DType::u8, [T, 3, S, S], on the device given at load
  std::string source;  // the folder, or "procedural"
  int64_t count() const { return images.defined() ? images.dim(0) : 0; }
};

// Every image file under dir (recursively, sorted by path), as RGB, resized to size x size by
// image_resize_bilinear ignoring the aspect ratio. max_images > 0 keeps the first max_images
// files. Throws IoError if dir is missing, holds no images, or a file cannot be read (naming it).
TextureBank texture_bank_load(const std::string& dir, int size, Device device,
                              int64_t max_images = 0);

// `count` textures, cycling by index through fractal noise, stripes, checkerboards and blotches,
// each in random colours; texture i depends only on (seed, i).
TextureBank texture_bank_procedural(int64_t count, int size, uint64_t seed, Device device);

}  // namespace caf
