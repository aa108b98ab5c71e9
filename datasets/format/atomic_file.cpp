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
  if (!f) throw UserError(tmp + ": cannot create: " + std::strerror(errno));
  bool ok = true;
  for (std::string_view piece : pieces) ok = ok && std::fwrite(piece.data(), 1, piece.size(), f) == piece.size();
  ok = std::fflush(f) == 0 && ok && ::fsync(fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw UserError(path + ": write failed: " + std::strerror(errno));
  }
}

}  // namespace kervan
