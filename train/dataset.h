// train/dataset.h: the MVTec AD class folder (METHOD 8) loaded into uint8 tensors: train/good for
// training, test/* with ground_truth/* for evaluation.
//
// Key decision: everything is decoded, converted to RGB and resized to S x S once, on the host, in
// parallel, and kept as uint8 (N, 3, S, S) on the CPU; the trainer uploads the whole set once and
// scales to [0, 1] on the device. A class of 900 px MVTec images at S = 256 is about 40 MB.
// Loading validates as it goes: every error names the file or folder at fault; recoverable
// oddities (masks of another size, empty masks, stray folders) come back as warning strings for
// the caller to print, one per kind, never printed here.
// Letters: N train images, M test images, S the side after resizing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace caf {

// Resolves --data DIR --class NAME: DIR/NAME if DIR/NAME/train/good exists, else DIR if
// DIR/train/good exists and DIR's folder name is NAME (or NAME is empty); otherwise IoError naming
// the paths tried.
std::string resolve_class_dir(const std::string& data, const std::string& class_name);

struct TrainSet {
  std::string class_dir;
  std::vector<std::string> files;         // full paths, sorted by name
  Tensor images;                          // u8 [N, 3, S, S] on the CPU
  std::vector<int64_t> x_index, y_index;  // METHOD 3.2, 0-based: X = 0, 2, 4, ...; Y = 1, 3, 5, ...
};

// Loads class_dir/train/good (PNG, JPEG, BMP or TGA; 8/16-bit gray or RGB, alpha dropped; any
// size): to RGB, then bilinear (cv2 INTER_LINEAR) to size x size. IoError for a missing folder,
// no images, fewer than 2 images (the split needs both halves), or an unreadable file (the first in
// sorted order, named).
TrainSet load_train_set(const std::string& class_dir, int size,
                        std::vector<std::string>* warnings = nullptr);

struct TestItem {
  std::string file;
  std::string defect;      // "good" or the test/ folder name
  bool anomalous = false;  // defect != "good"
  std::string mask_file;   // empty for good images
};

struct TestSet {
  std::string class_dir;
  std::vector<TestItem> items;  // sorted(glob(test/*/*)) as DRAEM: by path, so folder then file
  Tensor images;                // u8 [M, 3, S, S]
  Tensor masks;                 // u8 [M, 1, S, S], 0/1 (1 = anomalous); zeros for good images
  std::vector<std::string> defect_types;  // sorted, without "good"
};

// How ground-truth masks reach S x S (METHOD 6). nearest: nearest neighbour, then > 127 is
// anomalous [proposed, the default]. draem: bilinear, then only pixels still exactly 255 count,
// as DRAEM's evaluation did (uint8 truncation of mask / 255); it erodes borders slightly.
enum class MaskResize { nearest, draem };
const char* mask_resize_name(MaskResize mode);          // "nearest", "draem"
MaskResize mask_resize_parse(const std::string& name);  // throws ConfigError naming the choices

// Loads class_dir/test/<folder>/* and, for every folder but good, the mask of each image from
// class_dir/ground_truth/<folder>/: <stem>_mask.<ext>, else <stem>.<ext>, ext one of png bmp jpg
// jpeg tga (any case). Multi-channel masks use their first channel. IoError for a missing test
// folder, no test images, a defect image without a mask (naming both), or an unreadable file.
// Warnings: masks of another size than their image (resized anyway), anomalous images whose mask
// is empty at S x S, ground_truth folders without a test folder, empty test folders, files that
// are not images, no good or no anomalous images. ground_truth/good is ignored.
TestSet load_test_set(const std::string& class_dir, int size, MaskResize mode = MaskResize::nearest,
                      std::vector<std::string>* warnings = nullptr);

}  // namespace caf
