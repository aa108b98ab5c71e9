#include "core/paths.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "core/error.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// What kind of thing is at `path`, in words, for messages.
std::string kind_of(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "a file";
  if (S_ISDIR(st.st_mode)) return "a folder";
  if (S_ISFIFO(st.st_mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "a device";
  return "not a regular file";
}

void require(const std::string& path, const std::string& what, bool file_ok, bool dir_ok) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw UserError(path + ": cannot open " + what + ": " + std::strerror(errno));
    std::error_code ec;
    if (fs::is_symlink(fs::symlink_status(path, ec)))
      throw UserError(path + ": " + what + " is a broken symbolic link (or a loop of them)");
    throw UserError(path + ": cannot open " + what + ": no such file or folder");
  }
  const bool ok = (file_ok && S_ISREG(st.st_mode)) || (dir_ok && S_ISDIR(st.st_mode));
  if (!ok)
    throw UserError(path + ": " + what + " must be " +
                    (file_ok && dir_ok ? "a file or a folder"
                     : file_ok         ? "a file"
                                       : "a folder") +
                    ", but it is " + kind_of(st));
}

bool identity(const std::string& path, struct stat& st) {
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

void require_file(const std::string& path, const std::string& what) {
  require(path, what, true, false);
}
void require_dir(const std::string& path, const std::string& what) {
  require(path, what, false, true);
}
void require_file_or_dir(const std::string& path, const std::string& what) {
  require(path, what, true, true);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return identity(a, sa) && identity(b, sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool inside(const std::string& path, const std::string& dir) {
  struct stat sd {};
  if (!identity(dir, sd) || !S_ISDIR(sd.st_mode)) return false;
  // Walk up from the path (or, when it does not exist yet, from its nearest existing parent), with
  // its ".." resolved first: "ck/../x" is not inside ck.
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) p = fs::absolute(path, ec).lexically_normal();
  while (!p.empty()) {
    struct stat sp {};
    if (identity(p.string(), sp) && sp.st_dev == sd.st_dev && sp.st_ino == sd.st_ino) return true;
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return false;
}

void refuse_output_over_input(const std::string& output, const std::string& what,
                              const std::vector<std::string>& inputs) {
  for (const std::string& in : inputs) {
    if (same_file(output, in))
      throw UserError(output + ": " + what + " is one of the run's inputs (" + in +
                      "); writing it would destroy it");
    if (inside(output, in))
      throw UserError(output + ": " + what + " lies inside the input folder " + in +
                      "; choose a path outside it");
  }
}

void refuse_repeated_files(const std::vector<std::string>& files, const std::string& what,
                           const std::vector<std::string>& given) {
  std::map<std::pair<dev_t, ino_t>, std::string> seen;  // a file's identity -> how it was given
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& f = files[i];
    const std::string how = i < given.size() ? given[i] : "as " + f;
    struct stat st {};
    if (!identity(f, st)) continue;  // (the caller says what is wrong with a missing one)
    const auto [it, first] = seen.emplace(std::make_pair(st.st_dev, st.st_ino), how);
    if (first) continue;
    std::error_code ec;
    const std::string canonical = fs::canonical(f, ec).string();
    throw UserError(f + ": " + what + " given twice (" + it->second + ", and " + how + "; the file " +
                    (canonical.empty() ? f : canonical) +
                    "); it would be read and counted twice: give it once (check the folders and "
                    "symbolic links among the inputs)");
  }
}

}  // namespace kervan
