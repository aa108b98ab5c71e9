#include "checkpoint/durable_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "checkpoint/failpoint.h"
#include "core/error.h"
#include "core/xxh3_inline.h"

namespace kervan {

namespace {

// A full disk or an I/O error is the environment's (exit 4); no permission, a missing folder or a
// read-only file system the user's (exit 2): throw_io_error decides.
[[noreturn]] void fail(const char* call, const std::string& path) {
  throw_io_error("'" + path + "'", call, errno);
}

std::string folder_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// A file descriptor closed on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void sync_path(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail("open", path);
  if (::fsync(f.fd) != 0) fail("fsync", path);
}

void rename_durably(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw_io_error("'" + from + "' -> '" + to + "'", "rename", errno);
  sync_path(folder_of(to));
}

void write_durably(const std::string& path, std::string_view text, const char* failpoint_before_rename,
                   int64_t failpoint_at) {
  const std::string tmp = path + ".tmp";
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) fail("open", tmp);
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
      const ssize_t n = ::write(f.fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int saved = errno;
        std::remove(tmp.c_str());
        errno = saved;
        fail("write", tmp);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const int saved = errno;
      std::remove(tmp.c_str());
      errno = saved;
      fail("fsync", tmp);
    }
  }
  if (failpoint_before_rename) failpoint(failpoint_before_rename, failpoint_at);
  rename_durably(tmp, path);
}

FileDigest digest_file(const std::string& path, bool sync) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail("open", path);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buf(8 << 20);
  FileDigest d;
  while (true) {
    const ssize_t n = ::read(f.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read", path);
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buf.data(), static_cast<size_t>(n));
    d.bytes += n;
  }
  if (sync && ::fsync(f.fd) != 0) fail("fsync", path);
  d.checksum = XXH3_64bits_digest(state.get());
  return d;
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw UserError(path + ": cannot read: " + std::strerror(errno));
  return s.str();
}

}  // namespace kervan
