// tests/emu/include/nvtx3/nvToolsExt.h: NVTX ranges for the CPU emulator: nothing to mark.
#pragma once
inline int nvtxRangePushA(const char*) { return 0; }
inline int nvtxRangePop() { return 0; }
