// train/dataset.cpp: MVTec AD folders to uint8 tensors, with validation that names the file.
//
// Folders are scanned serially (cheap, and every layout error is found before any decoding);
// decoding and resizing run in an OpenMP loop over images. A failure inside the loop is kept
// only if it is the lowest-numbered one so far, so the error a user sees is the first bad file in
// sorted order whatever the thread timing. Warnings are gathered per kind and reported once with a
// count and the first file, so a class with 60 odd masks gives one line, not 60.
#include "train/dataset.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "augment/image_io.h"
#include "kernels/error.h"

namespace fs = std::filesystem;

namespace caf {
namespace {

const char* const layout_hint =
    "an MVTec AD class folder holds train/good/*.png, test/<good or defect>/*.png and "
    "ground_truth/<defect>/<name>_mask.png";
const char* const image_extensions = ".png .jpg .jpeg .bmp .tga";

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

std::string size_str(int height, int width) {
  return std::to_string(width) + "x" + std::to_string(height);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void warn(std::vector<std::string>* warnings, std::string text) {
  if (warnings) warnings->push_back(std::move(text));
}

// A count of like problems, reported as one warning naming the first.
struct Tally {
  int64_t count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ == 0) first = what;
  }
};

// One folder's entries, sorted: image files, subfolders, and other files (hidden ones skipped,
// so .DS_Store and the like pass silently).
struct FolderScan {
  std::vector<std::string> images, folders, others;
};

FolderScan scan_folder(const fs::path& dir) {
  FolderScan s;
  try {
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string path = e.path().string(), name = e.path().filename().string();
      if (e.is_directory())
        s.folders.push_back(path);
      else if (!e.is_regular_file() || name.empty() || name[0] == '.')
        continue;
      else if (is_image_file(path))
        s.images.push_back(path);
      else
        s.others.push_back(path);
    }
  } catch (const fs::filesystem_error& e) {
    throw IoError(dir.string() + ": cannot list: " + e.what());
  }
  for (auto* v : {&s.images, &s.folders, &s.others}) std::sort(v->begin(), v->end());
  return s;
}

void warn_not_images(std::vector<std::string>* warnings, const Tally& t, const std::string& where) {
  if (t.count)
    warn(warnings, std::to_string(t.count) + " files in " + where + " are not images (" +
                       image_extensions + ") (first: " + t.first + "); ignored");
}

// f(i) for i in [0, n) on all threads; rethrows the failure with the lowest i.
template <class F>
void parallel_for_first_error(int64_t n, const F& f) {
  std::atomic<int64_t> failed_at{n};
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    if (i > failed_at.load(std::memory_order_relaxed)) continue;  // a lower one failed already
    try {
      f(i);
    } catch (...) {
#pragma omp critical(caf_dataset_error)
      if (i < failed_at.load()) failed_at = i, failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Decodes one image into S x S planar RGB at dst; returns its original size.
std::pair<int, int> load_rgb(const std::string& file, int S, uint8_t* dst) {
  const Image im = image_read(file);
  const std::vector<uint8_t> chw = image_to_planar(image_resize_bilinear(image_to_rgb(im), S, S));
  std::copy(chw.begin(), chw.end(), dst);
  return {im.height, im.width};
}

// Decodes a mask (first channel) into S x S 0/1 at dst; returns its original size and whether any
// pixel is anomalous.
struct MaskInfo {
  int height = 0, width = 0;
  bool any = false;
};

MaskInfo load_mask(const std::string& file, int S, MaskResize mode, uint8_t* dst) {
  const Image m = image_read(file);
  Image gray{m.height, m.width, 1, std::vector<uint8_t>(size_t(m.height) * size_t(m.width))};
  for (size_t p = 0; p < gray.pixels.size(); ++p) gray.pixels[p] = m.pixels[p * size_t(m.channels)];
  MaskInfo info{m.height, m.width, false};
  const bool nearest = mode == MaskResize::nearest;
  const Image r = nearest ? image_resize_nearest(gray, S, S) : image_resize_bilinear(gray, S, S);
  for (size_t p = 0; p < r.pixels.size(); ++p) {
    dst[p] = uint8_t(nearest ? r.pixels[p] > 127 : r.pixels[p] == 255);
    info.any = info.any || dst[p];
  }
  return info;
}

// Lossless formats first when one stem has several masks.
int mask_extension_rank(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  const char* const order[] = {".png", ".bmp", ".tga", ".jpg", ".jpeg"};
  for (int r = 0; r < 5; ++r)
    if (ext == order[r]) return r;
  return 5;
}

// The masks of one ground_truth/<defect> folder by file stem ("000_mask", "000").
std::map<std::string, std::string> masks_by_stem(const fs::path& dir) {
  std::map<std::string, std::string> best;
  if (!is_dir(dir)) return best;
  for (const std::string& path : scan_folder(dir).images) {
    const std::string stem = fs::path(path).stem().string();
    auto it = best.find(stem);
    if (it == best.end() || mask_extension_rank(path) < mask_extension_rank(it->second))
      best[stem] = path;
  }
  return best;
}

std::string folder_name(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  if (ec) a = p;
  a = a.lexically_normal();
  if (a.filename().empty()) a = a.parent_path();  // "a/b/" keeps its separator: no file name
  return a.filename().string();
}

}  // namespace

std::string resolve_class_dir(const std::string& data, const std::string& class_name) {
  const fs::path root(data);
  std::string tried;
  if (!class_name.empty()) {
    const fs::path sub = root / class_name;
    if (is_dir(sub / "train" / "good")) return sub.string();
    tried = (sub / "train" / "good").string() + " and ";
  }
  const fs::path own = root / "train" / "good";
  if (is_dir(own)) {
    const std::string name = folder_name(root);
    if (class_name.empty() || name == class_name) return data;
    throw IoError("class '" + class_name + "': tried " + tried + own.string() + ": the first is " +
                      "missing and the second belongs to class '" + name + "'",
                  "give --class " + name + ", or --data the folder that holds " + class_name + "/");
  }
  throw IoError("no MVTec AD class folder" +
                    (class_name.empty() ? std::string() : " for class '" + class_name + "'") +
                    ": tried " + tried + own.string() + ": missing",
                std::string("--data is the dataset root (holding <class>/) or the class folder "
                            "itself; ") +
                    layout_hint);
}

const char* mask_resize_name(MaskResize mode) {
  return mode == MaskResize::nearest ? "nearest" : "draem";
}

MaskResize mask_resize_parse(const std::string& name) {
  if (name == "nearest") return MaskResize::nearest;
  if (name == "draem") return MaskResize::draem;
  throw ConfigError("mask resize '" + name + "': unknown",
                    "nearest (nearest neighbour, > 127; the default) or draem (bilinear, only "
                    "pixels that stay 255, as DRAEM evaluated)");
}

TrainSet load_train_set(const std::string& class_dir, int size,
                        std::vector<std::string>* warnings) {
  CAF_REQUIRE_T(ConfigError, size > 0, "load_train_set: the image size must be positive");
  const fs::path good = fs::path(class_dir) / "train" / "good";
  if (!is_dir(good))
    throw IoError(good.string() + ": missing: is this an MVTec AD class folder?",
                  is_dir(class_dir) ? layout_hint : class_dir + " itself does not exist");
  const FolderScan scan = scan_folder(good);
  Tally others;
  for (const std::string& f : scan.others) others.add(f);
  warn_not_images(warnings, others, good.string());
  if (scan.images.empty())
    throw IoError(good.string() + ": no images (" + image_extensions + ")", layout_hint);
  if (scan.images.size() < 2)
    throw IoError(good.string() + ": only one image (" + scan.images[0] +
                      "); split training needs at least 2, one for each half",
                  "METHOD 3.2: files 1, 3, 5, ... in name order train the reconstruction, "
                  "2, 4, 6, ... the segmentation");

  TrainSet set;
  set.class_dir = class_dir;
  set.files = scan.images;
  const int64_t N = int64_t(set.files.size()), per = int64_t(3) * size * size;
  std::vector<uint8_t> bytes(size_t(N * per));
  parallel_for_first_error(
      N, [&](int64_t i) { load_rgb(set.files[size_t(i)], size, bytes.data() + i * per); });
  set.images = Tensor::from_bytes({N, 3, size, size}, bytes);
  for (int64_t i = 0; i < N; ++i) (i % 2 == 0 ? set.x_index : set.y_index).push_back(i);
  return set;
}

TestSet load_test_set(const std::string& class_dir, int size, MaskResize mode,
                      std::vector<std::string>* warnings) {
  CAF_REQUIRE_T(ConfigError, size > 0, "load_test_set: the image size must be positive");
  const fs::path root(class_dir), test = root / "test", truth = root / "ground_truth";
  if (!is_dir(test))
    throw IoError(test.string() + ": missing: is this an MVTec AD class folder?",
                  is_dir(root) ? layout_hint : class_dir + " itself does not exist");

  // The folders of test/ and their images; files outside a folder and non-images are reported.
  const FolderScan top = scan_folder(test);
  Tally others, loose;
  for (const std::string& f : top.others) others.add(f);
  for (const std::string& f : top.images) loose.add(f);
  std::vector<std::string> files;
  std::set<std::string> folder_names;
  for (const std::string& folder : top.folders) {
    const FolderScan s = scan_folder(folder);
    for (const std::string& f : s.others) others.add(f);
    if (s.images.empty())
      warn(warnings, folder + ": no images; ignored");
    else
      folder_names.insert(fs::path(folder).filename().string());
    files.insert(files.end(), s.images.begin(), s.images.end());
  }
  warn_not_images(warnings, others, test.string() + "/*");
  if (loose.count)
    warn(warnings, std::to_string(loose.count) + " images directly in " + test.string() +
                       " are not in a good or defect folder (first: " + loose.first + "); ignored");
  if (files.empty())
    throw IoError(test.string() + ": no images in its folders (" + image_extensions + ")",
                  layout_hint);
  // DRAEM's sorted(glob(test/*/*.png)): the full paths, so by folder name, then file name.
  std::sort(files.begin(), files.end());

  TestSet set;
  set.class_dir = class_dir;
  std::map<std::string, std::map<std::string, std::string>> masks;  // defect -> stem -> file
  int64_t good_count = 0;
  for (const std::string& file : files) {
    const fs::path p(file);
    TestItem item{file, p.parent_path().filename().string(), false, {}};
    item.anomalous = item.defect != "good";
    if (!item.anomalous) {
      ++good_count;
    } else {
      auto it = masks.find(item.defect);
      if (it == masks.end())
        it = masks.emplace(item.defect, masks_by_stem(truth / item.defect)).first;
      const std::string stem = p.stem().string();
      for (const std::string& key : {stem + "_mask", stem})
        if (auto m = it->second.find(key); m != it->second.end() && item.mask_file.empty())
          item.mask_file = m->second;
      if (item.mask_file.empty())
        throw IoError(
            file + ": anomalous test image without a mask: looked for " +
                (truth / item.defect / (stem + "_mask.png")).string() + " (also .bmp .tga .jpg " +
                ".jpeg, and " + stem + ".png)" +
                (is_dir(truth / item.defect) ? "" : "; the folder itself is missing"),
            "every image of test/<defect> needs its mask in ground_truth/<defect>; an image with "
            "no visible defect takes an all-black mask");
    }
    set.items.push_back(std::move(item));
  }
  for (const auto& [defect, unused] : masks) set.defect_types.push_back(defect);
  if (is_dir(truth))
    for (const std::string& folder : scan_folder(truth).folders) {
      const std::string name = fs::path(folder).filename().string();
      if (name != "good" && !folder_names.count(name))
        warn(warnings, folder + ": masks for a defect with no test images (" +
                           (test / name).string() + "); ignored");
    }
  if (good_count == 0)
    warn(warnings, (test / "good").string() +
                       ": no images: image-level AUROC and AP need normal test images");
  if (good_count == int64_t(set.items.size()))
    warn(warnings, test.string() + ": only good images: the metrics need anomalous ones");

  const int64_t M = int64_t(set.items.size()), plane = int64_t(size) * size;
  std::vector<uint8_t> image_bytes(size_t(M * 3 * plane)), mask_bytes(size_t(M * plane), 0);
  std::vector<std::pair<int, int>> image_sizes(static_cast<size_t>(M));
  std::vector<MaskInfo> mask_info(static_cast<size_t>(M));
  parallel_for_first_error(M, [&](int64_t i) {
    const TestItem& item = set.items[size_t(i)];
    image_sizes[size_t(i)] = load_rgb(item.file, size, image_bytes.data() + i * 3 * plane);
    if (item.anomalous)
      mask_info[size_t(i)] = load_mask(item.mask_file, size, mode, mask_bytes.data() + i * plane);
  });
  set.images = Tensor::from_bytes({M, 3, size, size}, image_bytes);
  set.masks = Tensor::from_bytes({M, 1, size, size}, mask_bytes);

  Tally resized, empty;
  std::string resized_sizes;
  for (size_t i = 0; i < size_t(M); ++i) {
    const TestItem& item = set.items[i];
    if (!item.anomalous) continue;
    const MaskInfo& m = mask_info[i];
    const auto [h, w] = image_sizes[i];
    if (m.height != h || m.width != w) {
      if (resized.count == 0) resized_sizes = size_str(m.height, m.width) + " vs " + size_str(h, w);
      resized.add(item.mask_file);
    }
    if (!m.any) empty.add(item.file);
  }
  if (resized.count)
    warn(warnings, std::to_string(resized.count) + " masks differ in size from their images " +
                       "(first: " + resized.first + " " + resized_sizes + "); resized");
  if (empty.count)
    warn(warnings, std::to_string(empty.count) + " anomalous images have an empty mask at " +
                       size_str(size, size) + " with " + mask_resize_name(mode) +
                       " resizing (first: " + empty.first +
                       "); they count for image metrics and add no anomalous pixels");
  return set;
}

}  // namespace caf
