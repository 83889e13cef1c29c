#include <doctest/doctest.h>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

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
