// tests/fuzz/make_corpus.cpp: writes the seed corpus of tests/fuzz/corpus/<target>/ (committed; run
// again only to change it): tiny PNG, JPEG and BMP images from stb_image_write, a checkpoint from
// write_safetensors, JSON configs, and dataset archives in fuzz_dataset.cpp's format.
// Usage: make_corpus <corpus folder>
#include <stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

void put(const fs::path& path, const Bytes& b) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
void put(const fs::path& path, const std::string& s) {
  put(path, Bytes(s.begin(), s.end()));
}

Bytes slurp(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void to_bytes(void* ctx, void* data, int size) {
  auto* out = static_cast<Bytes*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// A w x h gradient with c channels, encoded as "png", "jpg" or "bmp".
Bytes image(const char* format, int w, int h, int c, int seed) {
  Bytes px(size_t(w) * size_t(h) * size_t(c));
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 37 + size_t(seed) * 91);
  Bytes out;
  const std::string f = format;
  if (f == "png") stbi_write_png_to_func(to_bytes, &out, w, h, c, px.data(), w * c);
  if (f == "jpg") stbi_write_jpg_to_func(to_bytes, &out, w, h, c, px.data(), 80);
  if (f == "bmp") stbi_write_bmp_to_func(to_bytes, &out, w, h, c, px.data());
  return out;
}

// A white w x h mask with a black border, as PNG.
Bytes mask(int w, int h) {
  Bytes px(size_t(w) * size_t(h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      px[size_t(y * w + x)] = (x > 1 && y > 1 && x < w - 2 && y < h - 2) ? 255 : 0;
  Bytes out;
  stbi_write_png_to_func(to_bytes, &out, w, h, 1, px.data(), w);
  return out;
}

// One archive entry of fuzz_dataset.cpp: kind % 3 = root, (kind / 3) % 3 = good, crack, hole.
void entry(Bytes& a, uint8_t kind, const std::string& name, const Bytes& content) {
  a.push_back(kind);
  a.push_back(uint8_t(name.size()));
  a.insert(a.end(), name.begin(), name.end());
  a.push_back(uint8_t(content.size() & 0xff));
  a.push_back(uint8_t(content.size() >> 8));
  a.insert(a.end(), content.begin(), content.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus folder>\n");
    return 2;
  }
  const fs::path root = argv[1];
  try {
    const fs::path im = root / "fuzz_image";
    put(im / "rgb.png", image("png", 5, 4, 3, 1));
    put(im / "gray_alpha.png", image("png", 3, 3, 2, 2));
    put(im / "rgba.png", image("png", 4, 2, 4, 3));
    put(im / "rgb.jpg", image("jpg", 9, 7, 3, 4));
    put(im / "gray.jpg", image("jpg", 8, 8, 1, 5));
    put(im / "rgb.bmp", image("bmp", 3, 2, 3, 6));
    Bytes truncated = image("png", 6, 6, 3, 7);
    truncated.resize(truncated.size() / 2);
    put(im / "truncated.png", truncated);
    put(im / "not_an_image", std::string("hello"));

    const fs::path st = root / "fuzz_safetensors";
    const fs::path tmp = fs::temp_directory_path() / "caf_make_corpus.safetensors";
    caf::write_safetensors(tmp.string(),
                           {{"w", caf::Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6})},
                            {"b", caf::Tensor::from_bytes({4}, {1, 2, 3, 4})},
                            {"e", caf::Tensor::from_vector({0, 2}, {})}},
                           {{"format", "pt"}, {"config", "{\"widths\": [8, 4]}"}});
    const Bytes good = slurp(tmp);
    fs::remove(tmp);
    put(st / "valid.safetensors", good);
    Bytes cut = good;
    cut.resize(cut.size() - 5);
    put(st / "truncated.safetensors", cut);
    const std::string overlap =
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}";
    Bytes ov = {uint8_t(overlap.size()), 0, 0, 0, 0, 0, 0, 0};
    ov.insert(ov.end(), overlap.begin(), overlap.end());
    ov.insert(ov.end(), {1, 2, 3, 4});
    put(st / "overlap.safetensors", ov);
    put(st / "short", std::string("\x10\0\0\0", 4));

    const fs::path cf = root / "fuzz_config";
    put(cf / "train.json",
        std::string(R"({"preset": "tiny", "size": 64, "batch": 4, "epochs": 2, "mode": "split",)"
                    R"( "simulation": {"p_anomaly": 0.7, "beta": [0.1, 0.9], "ndaa_block": 4}})"));
    put(cf / "sim.json",
        std::string(R"({"p_anomaly": 0.5, "rotation_fill": "zero", "ndaa_size": [0.2, 0.4],)"
                    R"( "ndaa_amplitude": [2, 8], "ndaa_tau": 0.05})"));
    put(cf / "classes.json",
        std::string(
            R"({"default": {"generators": ["transparent", "opaque"], "rotation": false},)"
            R"( "classes": {"bottle": {"generators": ["ndaa"], "rotation": true, "note": "x"}}})"));
    put(cf / "paper.json", std::string(R"({"preset": "paper", "lr": 1e-4, "size": 1e12})"));
    put(cf / "bad.json", std::string(R"({"size": "big", "simulation": [1, 2]})"));
    put(cf / "broken.json", std::string("{\"a\": [1, 2"));

    const fs::path ds = root / "fuzz_dataset";
    Bytes a;
    entry(a, 0, "000.png", image("png", 6, 6, 3, 8));
    entry(a, 0, "001.jpg", image("jpg", 8, 5, 3, 9));
    entry(a, 1, "000.png", image("png", 6, 6, 1, 10));  // test/good
    entry(a, 4, "000.png", image("png", 6, 6, 3, 11));  // test/crack
    entry(a, 5, "000_mask.png", mask(6, 6));            // ground_truth/crack
    entry(a, 7, "001.bmp", image("bmp", 4, 4, 3, 12));  // test/hole
    entry(a, 8, "001.png", mask(3, 3));                 // ground_truth/hole, another size
    entry(a, 0, "notes.txt", Bytes{'h', 'i'});
    put(ds / "full_class", a);
    Bytes b;
    entry(b, 0, "000.png", image("png", 4, 4, 3, 13));
    entry(b, 4, "000.png", image("png", 4, 4, 3, 14));  // test/crack without its mask
    put(ds / "missing_mask", b);
  } catch (const caf::Error& e) {
    std::fprintf(stderr, "make_corpus: %s\n", caf::describe(e).c_str());
    return 1;
  }
  return 0;
}
