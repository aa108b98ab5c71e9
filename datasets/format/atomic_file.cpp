#include "datasets/format/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace kervan {

void write_file_atomically(const std::string& path, std::string_view text) {
  write_file_atomically(path, std::initializer_list<std::string_view>{text});
}

void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> pieces) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw_io_error(tmp, "cannot create", errno);
  bool ok = true;
  int err = 0;
  const auto check = [&](bool step) {
    if (ok && !step) err = errno;
    ok = ok && step;
  };
  for (std::string_view piece : pieces) check(std::fwrite(piece.data(), 1, piece.size(), f) == piece.size());
  check(std::fflush(f) == 0);
  check(ok && ::fsync(fileno(f)) == 0);
  check(std::fclose(f) == 0);
  check(ok && std::rename(tmp.c_str(), path.c_str()) == 0);
  if (!ok) {
    std::remove(tmp.c_str());
    throw_io_error(path, "write failed", err ? err : EIO);
  }
}

}  // namespace kervan
