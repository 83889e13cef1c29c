// train/atomic_file.h: durable whole-file writes for everything train/ produces (configs,
// metrics, arrays). Key decision: write path.tmp with POSIX calls, fsync it, rename it
// over path and fsync the folder, so a crash, a SIGKILL or a full disk leaves either the old file or
// the new one, never half of one. Checkpoints go through nn/safetensors.h, which does the same.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace caf {

// Writes the chunks, in order, as the new content of path. On failure the .tmp is removed, the old
// file is untouched, and an IoError names the path and the system's reason.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& chunks);

}  // namespace caf
