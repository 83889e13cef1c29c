// train/atomic_file.cpp: see atomic_file.h.
#include "train/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "kernels/error.h"

namespace caf {

namespace fs = std::filesystem;

namespace {

// The hint every failed write carries: the rename never happened, so what was there before is intact.
const char* kWriteHint = "disk full or read-only? the previous file is unchanged";

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& chunks) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw IoError(path + ": " + what + " (" + tmp + ": " + std::strerror(err) + ")", kWriteHint);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", errno);
  for (std::string_view c : chunks) {
    while (!c.empty()) {
      const ssize_t n = ::write(fd, c.data(), c.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : ENOSPC;
        ::close(fd);
        fail("cannot write", err);
      }
      c.remove_prefix(size_t(n));
    }
  }
  if (::fsync(fd) != 0 && errno != EINVAL) {  // EINVAL: a special file that cannot be synced
    const int err = errno;
    ::close(fd);
    fail("cannot sync", err);
  }
  if (::close(fd) != 0) fail("cannot close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename the .tmp onto it", errno);
  // Best effort: make the rename itself durable. A folder that cannot be opened or synced leaves
  // a complete file either way.
  const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace caf
