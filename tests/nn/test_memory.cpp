#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/profile.h"
#include "kernels/runtime.h"
#include "nn/ops.h"
#include "nn/tensor.h"
#include "tests/test_util.h"

#if defined(CAF_WITH_CUDA)
#include "kernels/cuda/check.h"
#endif

using namespace caf;

TEST_SUITE("kernels") {
TEST_CASE("allocator: size classes bound the waste") {
  CHECK(alloc_size_class(0) == 512);
  CHECK(alloc_size_class(1) == 512);
  CHECK(alloc_size_class(513) == 1024);
  CHECK(alloc_size_class(1 << 20) == (1 << 20));
  CHECK(alloc_size_class((1 << 20) + 1) == (1 << 20) + (1 << 18));
  for (size_t b : {size_t(3'000'000), size_t(123'456'789), size_t(1) << 33}) {
    size_t c = alloc_size_class(b);
    CHECK(c >= b);
    CHECK(double(c) <= 1.25 * double(b) + 512);
    CHECK(alloc_size_class(c) == c);  // a class is its own class: cached blocks match exactly
  }
  // Above 64 MiB, 2 MiB steps: R's parameter slab at width 128 (69,048,579 floats) loses under
  // 2 MiB, not the 57 MiB of a quarter-power class.
  constexpr size_t MiB = size_t(1) << 20;
  CHECK(alloc_size_class(64 * MiB) == 64 * MiB);
  CHECK(alloc_size_class(64 * MiB + 1) == 66 * MiB);
  CHECK(alloc_size_class(size_t(69'048'579) * 4) == 264 * MiB);
  CHECK(alloc_size_class(48 * MiB + 1) == 56 * MiB);  // below, the quarter-power classes stay
}

TEST_CASE("allocator: CPU caching, counters and RAII release") {
  Allocator& a = allocator(Device::cpu);
  const size_t odd = 7'777'777;  // a size class nothing else in the tests uses
  AllocStats before = a.stats();
  {
    Buffer b(Device::cpu, odd);
    AllocStats during = a.stats();
    CHECK(during.bytes_in_use == before.bytes_in_use + int64_t(alloc_size_class(odd)));
    CHECK(during.peak_bytes >= during.bytes_in_use);
    CHECK(during.device_allocs == before.device_allocs + 1);
    Buffer moved = std::move(b);
    CHECK(b.data() == nullptr);
    CHECK(moved.bytes() == odd);
  }
  AllocStats after = a.stats();
  CHECK(after.bytes_in_use == before.bytes_in_use);
  CHECK(after.bytes_cached >= int64_t(alloc_size_class(odd)));
  { Buffer again(Device::cpu, odd - 1000); }  // same class: served from the cache
  CHECK(a.stats().device_allocs == after.device_allocs);
  CHECK(a.stats().cache_hits == after.cache_hits + 1);
  a.empty_cache();
  CHECK(a.stats().bytes_cached == 0);
}

TEST_CASE("allocator: the memory census files the bytes at the peak under their phase and op") {
  Allocator& a = allocator(Device::cpu);
  constexpr int64_t MiB = 1 << 20;  // 1, 3 and 5 MiB are their own size classes
  Buffer old(Device::cpu, 2 * MiB);  // in use before the census: its row, not a label
  const int64_t before = a.stats().bytes_in_use;
  a.set_census(true);
  struct Off {
    Allocator& a;
    ~Off() { a.set_census(false); }
  } off{a};
  Buffer kept;
  {
    profile::Scope phase("phase A");
    {
      profile::OpScope op("op1");
      kept = Buffer(Device::cpu, 3 * MiB);
    }
    {
      profile::OpScope op("op2", true);
      Buffer t(Device::cpu, 5 * MiB);
      {
        profile::Scope inner("phase B");  // the innermost phase names it; no op inside
        Buffer t2(Device::cpu, 1 * MiB);  // the peak: before + 3 + 5 + 1 MiB
      }
    }
    Buffer u(Device::cpu, 1 * MiB);  // "phase A" alone, below the peak
  }
  old = Buffer();  // released during the census: "before the census" shrinks now, not at the peak
  Buffer outside(Device::cpu, 1000);
  // label -> (bytes, blocks) of the census's rows, which must be sorted largest first and add up
  auto rows = [](const MemoryCensus& c) {
    std::map<std::string, std::pair<int64_t, int64_t>> m;
    int64_t sum = 0;
    for (size_t i = 0; i < c.rows.size(); ++i) {
      m[c.rows[i].label] = {c.rows[i].bytes, c.rows[i].blocks};
      if (c.rows[i].label != "before the census") CHECK(c.rows[i].requested <= c.rows[i].bytes);
      sum += c.rows[i].bytes;
      if (i > 0) CHECK(c.rows[i - 1].bytes >= c.rows[i].bytes);
    }
    CHECK(sum == c.peak_bytes);
    return m;
  };
  MemoryCensus c = a.census();
  REQUIRE(c.on);
  for (const CensusRow& r : c.rows)  // 1, 3 and 5 MiB are classes: nothing rounded at the peak
    if (r.label != "before the census") CHECK(r.requested == r.bytes);
  CHECK(c.peak_bytes == before + 9 * MiB);
  auto m = rows(c);
  CHECK(m.size() == 4);
  CHECK(m["phase A · bwd op2"] == std::make_pair(5 * MiB, int64_t(1)));
  CHECK(m["phase A · fwd op1"] == std::make_pair(3 * MiB, int64_t(1)));
  CHECK(m["phase B · bwd op2"] == std::make_pair(1 * MiB, int64_t(1)));  // the innermost Scope and op
  CHECK(m["before the census"].first == before);  // the 2 MiB block and whatever other tests keep
  // Per phase, the highest in use at its allocations, in the order the phases first allocated:
  // phase A's 5 MiB came with its 3 MiB block alive; its last 1 MiB came after both 5 and 1 MiB
  // were freed; the 1,000 bytes after the 2 MiB block from before the census was released.
  REQUIRE(c.phases.size() == 3);
  CHECK(c.phases[0].phase == "phase A");
  CHECK(c.phases[0].peak_bytes == before + 8 * MiB);
  CHECK(c.phases[1].phase == "phase B");
  CHECK(c.phases[1].peak_bytes == before + 9 * MiB);
  CHECK(c.phases[2].phase == "outside any phase");
  CHECK(c.phases[2].peak_bytes == before - 2 * MiB + 3 * MiB + 1024);
  // reset_peak starts the peak over from what is in use now: the kept block, the 1000 bytes (one
  // 1,024-byte class, outside any phase) and the rest of "before the census"
  a.reset_peak();
  c = a.census();
  CHECK(c.peak_bytes == a.stats().bytes_in_use);
  CHECK(c.phases.empty());  // phases start over too
  m = rows(c);
  CHECK(m.size() == (before > 2 * MiB ? 3u : 2u));
  CHECK(m["phase A · fwd op1"] == std::make_pair(3 * MiB, int64_t(1)));
  CHECK(m["outside any phase"] == std::make_pair(int64_t(1024), int64_t(1)));
  for (const CensusRow& r : c.rows)
    if (r.label == "outside any phase") CHECK(r.requested == 1000);  // 24 bytes of rounding
  CHECK(m["before the census"].first == before - 2 * MiB);
  a.set_census(false);
  CHECK_FALSE(a.census().on);
  CHECK(a.census().rows.empty());
}

#if defined(CAF_WITH_CUDA)
TEST_SUITE("gpu") {
TEST_CASE("gpu: the census files cuDNN's shared workspace under its own name, not a convolution's") {
  CAF_NEED_GPU();
  Allocator& a = allocator(Device::cuda);
  // 32 MiB of input: on the emulator larger than any earlier convolution's, so the workspace grows
  const Tensor x = Tensor::uniform({1, 32, 512, 512}, 3, -1.f, 1.f, Device::cuda);
  const Tensor w = Tensor::uniform({8, 32, 3, 3}, 4, -0.1f, 0.1f, Device::cuda);
  const size_t before = cuda::workspace_size();
  a.set_census(true);
  Tensor y;
  {
    profile::Scope phase("convolve");
    y = conv2d(x, w, Tensor());
  }
  std::map<std::string, int64_t> rows;
  for (const CensusRow& r : a.census().rows) rows[r.label] = r.bytes;
  a.set_census(false);
  const size_t after = cuda::workspace_size();
  // The convolution's row is its output and nothing else; the workspace, if it grew, is its own row.
  CHECK(rows["convolve · fwd conv2d"] == int64_t(alloc_size_class(size_t(y.numel()) * 4)));
  if (after > before)
    CHECK(rows["cuDNN workspace"] == int64_t(alloc_size_class(after)));
  else
    CHECK(rows.count("cuDNN workspace") == 0);
  MESSAGE("cuDNN workspace " << before << " -> " << after << " bytes");
}
}
#endif

TEST_CASE("runtime: device names and parsing") {
  CHECK(parse_device("cpu") == Device::cpu);
  CHECK_THROWS_AS(parse_device("tpu"), ConfigError);
  if (!cuda_available()) {
    try {
      parse_device("cuda");
      FAIL("expected a ConfigError");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("cuda") != std::string::npos);
      CHECK(!e.hint().empty());
    }
  }
}

TEST_CASE("errors: messages carry the place, the condition and the hint") {
  try {
    CAF_REQUIRE(1 + 1 == 3, "arithmetic is broken");
    FAIL("expected an Error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("test_memory.cpp:") != std::string::npos);
    CHECK(m.find("1 + 1 == 3") != std::string::npos);
    CHECK(m.find("arithmetic is broken") != std::string::npos);
  }
  IoError io("data/x.png: truncated PNG", "re-export the image");
  CHECK(describe(io) == "data/x.png: truncated PNG\n  hint: re-export the image");
}
}
