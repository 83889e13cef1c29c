// train/toy.h: `caf make-toy`: caf's built-in dataset, one small procedural class in MVTec AD
// layout, so the whole pipeline (train, evaluate, preview) runs without a download.
//
// Key decision: every defect image is rendered twice from the same random draws, with and
// without its defect, and the mask is exactly the set of pixels whose 8-bit value changed by more
// than kToyMaskThreshold in some channel; every other pixel is copied from the clean render. So
// the mask never marks an unchanged pixel and never misses a changed one, and toy_render exposes
// the clean twin for tests. Each image draws from its own generator, seeded from (seed, kind,
// split, defect, index): the same seed gives byte-identical files, in any order, on any thread.
//
// Two kinds: "texture" (a plain-weave fabric of two thread colours; defects scratch, hole, stain,
// thread) and "object" (a brass washer with a notch at the top and a printed bar and dot that fix
// its orientation, on a plain background; defects scratch, hole, missing, bend, stain). All
// lengths are fractions of the image size, so a class made at 64 px looks like one made at 256
// and downscaled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "augment/image_io.h"

namespace caf {

struct ToyOptions {
  std::string kind = "texture";  // or "object"
  uint64_t seed = 0;
  int size = 256;  // square images, 32..4096 px
  int train = 64;
  int test_good = 16;
  int test_per_defect = 8;
  std::string name;  // class folder name; empty: "toy_texture" or "toy_object"
};

struct ToySummary {
  std::string class_dir;
  int64_t train = 0, test_good = 0, test_defect = 0;
  std::vector<std::string> defects;  // the test/ and ground_truth/ folders, in writing order
};

// Writes <out_root>/<name>/{train/good, test/good, test/<defect>, ground_truth/<defect>}, plus
// readme.txt (how it was made) and license.txt. The class is written into a temporary sibling
// folder and renamed into place, so a crash never leaves half a class. An existing folder of
// that name is replaced only when it is empty or was made by make-toy (its readme says so);
// otherwise IoError. Bad options: ConfigError.
ToySummary make_toy(const std::string& out_root, const ToyOptions& o);

// Throws ConfigError naming the bad option.
void toy_validate(const ToyOptions& o);

// The defect folders of a kind, in writing order. ConfigError for an unknown kind.
std::vector<std::string> toy_defects(const std::string& kind);

// The class folder name: o.name, or "toy_" + kind.
std::string toy_class_name(const ToyOptions& o);

// A changed pixel differs from the clean render by more than this (8-bit levels, any channel).
constexpr int kToyMaskThreshold = 8;

struct ToySample {
  Image image;  // RGB
  Image mask;   // 1 channel, 0 or 255, same size; empty (0 x 0) for good images
};

// One image exactly as make_toy writes it: split "train" or "test", defect "good" or one of
// toy_defects(o.kind), index 0-based. with_defect = false renders the same image without its
// defect (the clean twin its mask was computed against; the mask is then empty).
ToySample toy_render(const ToyOptions& o, const std::string& split, const std::string& defect,
                     int index, bool with_defect = true);

}  // namespace caf
