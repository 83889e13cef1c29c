// kernels/runtime.h: which device runs, decided once at run time.
//
// A CUDA build still runs everywhere: when no usable GPU is found it prints one line and uses the
// CPU. CAF_DEVICE=cpu forces the CPU. Nothing here touches CUDA before the first call (never from
// a static initialiser), so a CPU-only test run never loads the driver.
#pragma once

#include "kernels/common.h"

namespace caf {

bool cuda_compiled();          // built with CAF_CUDA on
bool cuda_available();         // compiled, a device answers, and CAF_DEVICE is not "cpu"
Device default_device();       // cuda when available, else cpu
Device parse_device(const char* name);  // "cpu" | "cuda" | "auto"; throws ConfigError otherwise

// CAF_SYNC_DEBUG=1: synchronise after every kernel launch so asynchronous faults surface at
// the call that caused them.
bool sync_debug();

void synchronize(Device d);

// One line describing the device that runs (name, memory, capability), for logs and JSON.
const char* device_description(Device d);

}  // namespace caf
