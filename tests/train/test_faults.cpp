// tests/train/test_faults.cpp: the trainer and evaluator under faults a long run meets: a full
// disk while a checkpoint, config or log is written, an output path that cannot be a folder, and
// an allocation the machine cannot satisfy. A full disk is /dev/full behind a symlink at the
// .tmp path (root ignores permissions, so read-only cannot be simulated with chmod). Each case
// checks the message names the file and that what was on disk before is unchanged.
// The SIGKILL-and-resume case is tests/kill_resume.sh; NaN losses are in test_trainer.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "kernels/memory.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/model.h"
#include "train/trainer.h"

using namespace caf;
namespace fs = std::filesystem;

namespace {

// A class folder of 6 smooth 32 x 32 training images, removed on destruction.
struct FaultClass {
  fs::path root;
  explicit FaultClass(const std::string& tag) {
    root = fs::temp_directory_path() / ("caf_faults_" + tag);
    fs::remove_all(root);
    fs::create_directories(root / "toy" / "train" / "good");
    for (int i = 0; i < 6; ++i) {
      Image im;
      im.height = im.width = 32;
      im.channels = 3;
      im.pixels.resize(32 * 32 * 3);
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          for (int c = 0; c < 3; ++c)
            im.at(y, x, c) = uint8_t(127 + 100 * std::sin(0.1 * (i + 1) * x + 0.2 * y + c));
      image_write_png(
          (root / "toy" / "train" / "good" / ("00" + std::to_string(i) + ".png")).string(), im);
    }
  }
  ~FaultClass() { fs::remove_all(root); }
};

TrainConfig micro_config() {
  TrainConfig c = TrainConfig::preset_named("tiny");
  c.size = 32;
  c.model.recon_width = 4;
  c.model.discr_width = 2;
  c.batch = 2;
  c.epochs = 2;  // 6 images, batch 2: 6 steps, a checkpoint at step 4
  c.log_every = 1;
  c.checkpoint_every = 4;
  c.procedural_textures = 4;
  return c;
}

TrainOptions options(const FaultClass& data, const fs::path& out) {
  TrainOptions opt;
  opt.data = data.root.string();
  opt.class_name = "toy";
  opt.out_dir = out.string();
  opt.print = [](const std::string&) {};
  return opt;
}

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The IoError message of f(), or "" when it throws none.
template <class F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return std::string(e.what()) + " [" + e.hint() + "]";
  }
  return "";
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE(
      "faults: a full disk while writing the checkpoint leaves the previous checkpoint intact") {
    FaultClass data("ckpt");
    const fs::path out = data.root / "run";
    train(micro_config(), options(data, out));
    const fs::path ckpt = out / "checkpoint.safetensors";
    const std::string before = bytes_of(ckpt);
    REQUIRE(!before.empty());

    fs::create_symlink("/dev/full", out / "checkpoint.safetensors.tmp");
    const std::string what = io_error_of([&] { train(micro_config(), options(data, out)); });
    MESSAGE(what);
    CHECK(what.find("checkpoint.safetensors") != std::string::npos);
    CHECK(bytes_of(ckpt) == before);
    Model m(micro_config().model, Device::cpu);
    load_checkpoint(ckpt.string(), m);  // still whole: it loads
    CHECK(m.step == 6);
  }

  TEST_CASE("faults: a full disk while writing config.json or the evaluator's files names them") {
    FaultClass data("config");
    const fs::path out = data.root / "run";
    fs::create_directories(out);
    std::ofstream(out / "config.json") << "{\"previous\": true}\n";
    fs::create_symlink("/dev/full", out / "config.json.tmp");
    const std::string what = io_error_of([&] { train(micro_config(), options(data, out)); });
    MESSAGE(what);
    CHECK(what.find("config.json") != std::string::npos);
    CHECK(what.find(std::strerror(ENOSPC)) != std::string::npos);
    CHECK(what.find("previous file is unchanged") != std::string::npos);
    CHECK(bytes_of(out / "config.json") == "{\"previous\": true}\n");
    CHECK(!fs::exists(fs::symlink_status(out / "config.json.tmp")));  // the failed .tmp is removed

    // The evaluator's arrays go through the same write.
    const fs::path npy = out / "scores.npy";
    write_npy(npy.string(), {1.f, 2.f}, {2});
    const std::string good = bytes_of(npy);
    CHECK(good.size() == 128 + 8);  // 64-byte aligned header, then two floats
    fs::create_symlink("/dev/full", out / "scores.npy.tmp");
    const std::string npy_what = io_error_of([&] {
      write_npy(npy.string(), {3.f, 4.f, 5.f}, {3});
    });
    CHECK(npy_what.find("scores.npy") != std::string::npos);
    CHECK(bytes_of(npy) == good);
  }

  TEST_CASE(
      "faults: a full disk while appending to train_log.jsonl stops the run, naming the log") {
    FaultClass data("log");
    const fs::path out = data.root / "run";
    fs::create_directories(out);
    fs::create_symlink("/dev/full", out / "train_log.jsonl");
    const std::string what = io_error_of([&] { train(micro_config(), options(data, out)); });
    MESSAGE(what);
    CHECK(what.find("train_log.jsonl") != std::string::npos);
    CHECK(what.find("resume") != std::string::npos);
  }

  TEST_CASE("faults: an output folder below a regular file is an IoError naming it") {
    FaultClass data("notdir");
    std::ofstream(data.root / "a_file") << "x";
    const fs::path out = data.root / "a_file" / "run";
    const std::string what = io_error_of([&] { train(micro_config(), options(data, out)); });
    MESSAGE(what);
    CHECK(what.find(out.string()) != std::string::npos);
    CHECK(what.find("cannot create the output folder") != std::string::npos);
  }

  TEST_CASE(
      "faults: an impossible allocation is OutOfMemory naming the size, with a batch-size hint") {
    try {
      Buffer b(Device::cpu, size_t(1) << 62);
      FAIL("a 4 EiB allocation succeeded");
    } catch (const OutOfMemory& e) {
      const std::string what = e.what();
      MESSAGE(what << " [" << e.hint() << "]");
      CHECK(what.find(std::to_string(size_t(1) << 62)) !=
            std::string::npos);  // the bytes asked for
      CHECK(what.find(std::to_string((size_t(1) << 62) >> 20) + " MiB") != std::string::npos);
      CHECK(e.hint().find("batch") != std::string::npos);
    }
  }

  TEST_CASE(
      "faults: a checkpoint with a corrupt header is an IoError naming the file and the header") {
    FaultClass data("header");
    const fs::path bad = data.root / "bad.safetensors";
    Model m(micro_config().model, Device::cpu);
    auto load_error = [&](const std::string& bytes) {
      std::ofstream(bad, std::ios::binary) << bytes;
      return io_error_of([&] { load_checkpoint(bad.string(), m); });
    };
    const std::string not_json = load_error(std::string("\x0a\0\0\0\0\0\0\0{not json!", 18));
    CHECK(not_json.find(bad.string()) != std::string::npos);
    CHECK(not_json.find("header is not valid JSON") != std::string::npos);
    const std::string too_long = load_error(std::string("\xff\xff\xff\xff\0\0\0\0{}", 10));
    CHECK(too_long.find("header length") != std::string::npos);
    CHECK(load_error("").find("too short") != std::string::npos);
  }

  TEST_CASE("faults: training images of wildly different sizes all load at the model's size") {
    FaultClass data("sizes");
    const fs::path good = data.root / "toy" / "train" / "good";
    const int sizes[][2] = {{1, 1}, {2, 700}, {900, 3}, {301, 17}};
    for (int i = 0; i < 4; ++i) {
      Image im;
      im.height = sizes[i][0];
      im.width = sizes[i][1];
      im.channels = 3;
      im.pixels.assign(size_t(im.height * im.width * 3), uint8_t(40 * i));
      image_write_png((good / ("odd" + std::to_string(i) + ".png")).string(), im);
    }
    std::vector<std::string> warnings;
    const TrainSet set = load_train_set((data.root / "toy").string(), 32, &warnings);
    CHECK(set.images.shape() == Dims{10, 3, 32, 32});
    const std::vector<uint8_t> bytes = set.images.to_bytes();
    for (int i = 0; i < 4; ++i) {  // a flat image stays flat at any scale; the odd ones sort last
      const auto first = bytes.begin() + (6 + i) * 3 * 32 * 32;
      CHECK(std::all_of(first, first + 3 * 32 * 32, [&](uint8_t v) { return v == 40 * i; }));
    }
  }
}
