#include "kernels/profile.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

#if defined(CAF_WITH_CUDA)
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include "kernels/cuda/check.h"
#endif

namespace caf::profile {

namespace {

struct Mark {
  std::string name;
  int depth = 0;
  bool closed = false;    // a Scope still open at stop() has no end: dropped
  double t0 = 0, t1 = 0;  // CPU: ms since start
#if defined(CAF_WITH_CUDA)
  cudaEvent_t e0 = nullptr, e1 = nullptr;
#endif
};

struct Collection {
  bool open = false;
  Device device = Device::cpu;
  std::chrono::steady_clock::time_point origin;
  std::vector<Mark> marks;
  int depth = 0;
  int generation = 0;  // bumped by start(): a Scope from an older collection is ignored
#if defined(CAF_WITH_CUDA)
  cudaEvent_t base = nullptr;
  std::vector<cudaEvent_t> pool;  // events created once and reused across collections
  size_t used = 0;
  cudaEvent_t event() {
    if (used == pool.size()) {
      cudaEvent_t e;
      CAF_CHECK_CUDA(cudaEventCreate(&e));
      pool.push_back(e);
    }
    return pool[used++];
  }
#endif
};

Collection& col() {
  static Collection* c = new Collection();  // leaked: events must outlive static destructors
  return *c;
}
std::mutex g_mutex;
thread_local const char* g_tag = nullptr;

double now_ms(const Collection& c) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.origin).count();
}

}  // namespace

void start(Device d) {
  std::lock_guard<std::mutex> lock(g_mutex);
  Collection& c = col();
  c.open = true;
  c.device = d;
  c.marks.clear();
  c.depth = 0;
  ++c.generation;
  c.origin = std::chrono::steady_clock::now();
#if defined(CAF_WITH_CUDA)
  c.used = 0;
  if (d == Device::cuda) {
    c.base = c.event();
    CAF_CHECK_CUDA(cudaEventRecord(c.base, cuda::stream()));
  }
#endif
}

bool collecting() { return col().open; }

std::vector<Range> stop() {
  std::lock_guard<std::mutex> lock(g_mutex);
  Collection& c = col();
  CAF_REQUIRE(c.open, "profile::stop() without start()");
  c.open = false;
  synchronize(c.device);
  std::vector<Range> out;
  for (const Mark& m : c.marks) {
    if (!m.closed) continue;
    Range r{m.name, m.depth, m.t0, m.t1 - m.t0};
#if defined(CAF_WITH_CUDA)
    if (c.device == Device::cuda) {
      float a = 0, b = 0;
      CAF_CHECK_CUDA(cudaEventElapsedTime(&a, c.base, m.e0));
      CAF_CHECK_CUDA(cudaEventElapsedTime(&b, c.base, m.e1));
      r.start_ms = a;
      r.duration_ms = b - a;
    }
#endif
    out.push_back(r);
  }
  c.marks.clear();
  return out;
}

Scope::Scope(std::string name, const char* tag) {
#if defined(CAF_WITH_CUDA)
  nvtxRangePushA(name.c_str());
#endif
  if (tag) {
    previous_tag_ = g_tag;
    g_tag = tag;
    sets_tag_ = true;
  }
  label_ = name;
  previous_label_ = census_label().phase;
  census_label().phase = &label_;
  std::lock_guard<std::mutex> lock(g_mutex);
  Collection& c = col();
  if (!c.open) return;
  Mark m;
  m.name = std::move(name);
  m.depth = c.depth++;
#if defined(CAF_WITH_CUDA)
  if (c.device == Device::cuda) {
    m.e0 = c.event();
    m.e1 = c.event();
    CAF_CHECK_CUDA(cudaEventRecord(m.e0, cuda::stream()));
  }
#endif
  m.t0 = now_ms(c);
  index_ = int(c.marks.size());
  generation_ = c.generation;
  c.marks.push_back(std::move(m));
}

Scope::~Scope() {
  if (sets_tag_) g_tag = previous_tag_;
  census_label().phase = previous_label_;
#if defined(CAF_WITH_CUDA)
  nvtxRangePop();
#endif
  std::lock_guard<std::mutex> lock(g_mutex);
  Collection& c = col();
  if (index_ < 0 || !c.open || generation_ != c.generation) return;
  Mark& m = c.marks[size_t(index_)];
  --c.depth;
#if defined(CAF_WITH_CUDA)
  if (c.device == Device::cuda) CAF_WARN_CUDA(cudaEventRecord(m.e1, cuda::stream()));
#endif
  m.t1 = now_ms(c);
  m.closed = true;
}

const char* current_tag() { return g_tag; }

OpScope::OpScope(const char* op, bool backward)
    : previous_op_(census_label().op), previous_backward_(census_label().backward) {
  if (op_ranges()) scope_.emplace(std::string(backward ? "bwd " : "fwd ") + op);
  census_label().op = op;
  census_label().backward = backward;
}

OpScope::~OpScope() {
  census_label().op = previous_op_;
  census_label().backward = previous_backward_;
}

namespace {
std::atomic<bool> g_op_ranges{false};
}
void set_op_ranges(bool on) { g_op_ranges = on; }
bool op_ranges() { return g_op_ranges.load(std::memory_order_relaxed); }

std::string chrome_trace(const std::vector<Range>& ranges) {
  std::string s = "[\n";
  char buf[512];
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    std::string name;
    for (char ch : r.name) name += (ch == '"' || ch == '\\') ? '_' : ch;
    std::snprintf(buf, sizeof buf,
                  "  {\"name\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": 1, \"ts\": %.3f, "
                  "\"dur\": %.3f}%s\n",
                  name.c_str(), r.start_ms * 1e3, r.duration_ms * 1e3, i + 1 < ranges.size() ? "," : "");
    s += buf;
  }
  return s + "]\n";
}

}  // namespace caf::profile
