#include "kernels/runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "kernels/error.h"
#include "kernels/memory.h"

#if defined(CAF_WITH_CUDA)
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#endif

namespace caf {

const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

bool cuda_compiled() { return kCudaBuild; }

namespace {

struct Probe {
  bool ok = false;
  std::string description = "cpu";
};

const Probe& probe() {
  static Probe p = [] {
    Probe r;
    const char* forced = std::getenv("CAF_DEVICE");
    if (forced && std::strcmp(forced, "cpu") == 0) return r;
#if defined(CAF_WITH_CUDA)
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
      std::fprintf(stderr, "caf: no usable GPU (%s); running on the CPU\n",
                   err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device");
      cudaGetLastError();
      return r;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return r;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s, %.1f GiB, sm_%d%d, %d SMs", prop.name,
                  prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor,
                  prop.multiProcessorCount);
    r.ok = true;
    r.description = buf;
#endif
    return r;
  }();
  return p;
}

}  // namespace

bool cuda_available() { return probe().ok; }

Device default_device() { return cuda_available() ? Device::cuda : Device::cpu; }

Device parse_device(const char* name) {
  if (std::strcmp(name, "cpu") == 0) return Device::cpu;
  if (std::strcmp(name, "auto") == 0) return default_device();
  if (std::strcmp(name, "cuda") == 0) {
    if (!cuda_available())
      throw ConfigError(std::string("device 'cuda' requested but ") +
                            (cuda_compiled() ? "no usable GPU was found"
                                             : "this build has no CUDA (configure with -DCAF_CUDA=ON)"),
                        "use --device cpu or auto");
    return Device::cuda;
  }
  throw ConfigError(std::string("unknown device '") + name + "'", "expected cpu, cuda or auto");
}

bool sync_debug() {
  static const bool on = [] {
    const char* v = std::getenv("CAF_SYNC_DEBUG");
    return v && v[0] && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void synchronize(Device d) {
  detail::note_synchronize();
#if defined(CAF_WITH_CUDA)
  if (d == Device::cuda) CAF_CHECK_CUDA(cudaStreamSynchronize(cuda::stream()));
#else
  (void)d;
#endif
}

namespace {
Precision& precision_slot() {
  static Precision p = [] {
    const char* v = std::getenv("CAF_TF32");
    return v && std::strcmp(v, "1") == 0 ? Precision::tf32 : Precision::fp32;
  }();
  return p;
}
}  // namespace

void set_precision(Precision p) { precision_slot() = p; }

namespace {
// CAF_FUSE=0 / CAF_RECOMPUTE=0 / CAF_WRITE_FIRST=0 / CAF_BF16_GRADS=0 in the environment turn the
// defaults off (an escape hatch for any program, e.g. `caf train` on a GPU where the fused kernels
// misbehave).
bool env_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}
bool g_deterministic = true;
bool g_timed_algorithms = true;
bool g_fused_bn_relu = !env_off("CAF_FUSE");
bool g_recompute_activations = !env_off("CAF_RECOMPUTE");
bool g_channels_last_convs = false;
bool g_bf16_activations = false;
bool g_write_first_gradients = !env_off("CAF_WRITE_FIRST");
bool g_bf16_gradients = !env_off("CAF_BF16_GRADS");
}  // namespace
void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
void set_timed_algorithms(bool on) { g_timed_algorithms = on; }
bool timed_algorithms() { return g_timed_algorithms; }
void set_fused_bn_relu(bool on) { g_fused_bn_relu = on; }
bool fused_bn_relu() { return g_fused_bn_relu; }
void set_recompute_activations(bool on) { g_recompute_activations = on; }
bool recompute_activations() { return g_recompute_activations; }
void set_channels_last_convs(bool on) { g_channels_last_convs = on; }
bool channels_last_convs() { return g_channels_last_convs; }
void set_write_first_gradients(bool on) { g_write_first_gradients = on; }
bool write_first_gradients() { return g_write_first_gradients; }
void set_bf16_gradients(bool on) { g_bf16_gradients = on; }
bool bf16_gradients() { return g_bf16_gradients; }
void set_bf16_activations(bool on) { g_bf16_activations = on; }
bool bf16_activations() { return g_bf16_activations; }
bool bf16_activations_active() {
  return g_bf16_activations && g_fused_bn_relu && precision() == Precision::bf16;
}
bool channels_last_activations() { return g_channels_last_convs && bf16_activations_active(); }

Precision precision() { return precision_slot(); }
const char* precision_name(Precision p) {
  return p == Precision::tf32 ? "tf32" : p == Precision::bf16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "tf32") return Precision::tf32;
  if (name == "bf16") return Precision::bf16;
  throw ConfigError("unknown precision '" + name + "'", "expected tf32, bf16 or fp32");
}

const char* device_description(Device d) {
  return d == Device::cuda ? probe().description.c_str() : "cpu";
}

}  // namespace caf
