#include "checkpoint/checkpoint_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "checkpoint/durable_io.h"
#include "checkpoint/format.h"
#include "core/error.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// "WHAT: strerror": the user's (exit 2) or, for a full disk or an I/O error, the environment's (exit 4).
[[noreturn]] void throw_dir_error(const std::string& what, int err) {
  const std::string message = what + ": " + std::strerror(err);
  if (is_environment_errno(err)) throw EnvironmentError(message);
  throw UserError(message);
}

}  // namespace

std::string step_folder(const std::string& dir, int64_t step) {
  return dir + "/" + step_folder_name(step);
}

std::vector<int64_t> committed_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::optional<int64_t> step = parse_step_folder(e.path().filename().string());
    if (step && fs::exists(e.path() / kManifestFile, ec)) steps.push_back(*step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string resolve_checkpoint_folder(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw UserError(what + ": no such checkpoint '" + path + "'");
  // A step folder (committed or not) is taken as meant: the reader then says what is wrong with it.
  std::string name = fs::path(path).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
  if (name.ends_with(kTmpSuffix)) name.resize(name.size() - std::string(kTmpSuffix).size());
  if (fs::exists(path + "/" + kManifestFile, ec) || parse_step_folder(name)) return path;
  const std::vector<int64_t> steps = committed_steps(path);
  if (steps.empty()) throw UserError(what + ": '" + path + "' is not a committed checkpoint and holds none");
  return step_folder(path, steps.back());
}

std::optional<int64_t> read_latest(const std::string& dir) {
  const std::string path = dir + "/" + kLatestFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::string text = read_small_file(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const std::optional<int64_t> step = parse_step_folder(text);
  if (!step) throw UserError(path + ": names '" + text + "', not a step folder (step_NNNNNNNN)");
  if (!fs::exists(step_folder(dir, *step) + "/" + kManifestFile, ec))
    throw UserError(path + ": names " + text + ", which is not a committed checkpoint in " + dir);
  return step;
}

void write_latest(const std::string& dir, int64_t step) {
  write_durably(dir + "/" + kLatestFile, step_folder_name(step) + "\n", "ckpt_before_latest_rename", step);
}

std::vector<int64_t> steps_to_delete(const std::vector<int64_t>& steps, int64_t keep_last,
                                     int64_t keep_every) {
  std::vector<int64_t> out;
  const int64_t n = static_cast<int64_t>(steps.size());
  for (int64_t i = 0; i < n - keep_last; ++i)
    if (keep_every <= 0 || steps[i] % keep_every != 0) out.push_back(steps[i]);
  return out;
}

void delete_checkpoint(const std::string& dir, int64_t step) {
  const std::string trash = dir + "/" + kTrashPrefix + step_folder_name(step);
  rename_durably(step_folder(dir, step), trash);
  std::error_code ec;
  fs::remove_all(trash, ec);
  if (ec) throw EnvironmentError("remove", "'" + trash + "'", ec.message());
}

void claim_checkpoint_dir(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_dir_error(what + ": cannot create '" + dir + "'", ec.value());
  if (!fs::is_directory(dir, ec)) throw UserError(what + ": '" + dir + "' is not a folder");
  const std::string marker = dir + "/" + kOwnerFile;
  if (fs::exists(marker, ec)) return;
  std::string foreign;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    foreign = e.path().filename().string();
    break;
  }
  if (!foreign.empty() && committed_steps(dir).empty())
    throw UserError(what + ": '" + dir + "' holds files kervan did not write (" + foreign +
                    "); give a new or empty folder (kervan never deletes or replaces what is not its own)");
  write_durably(marker, "This folder holds kervan checkpoints (docs/checkpoint-format.md).\n");
}

int remove_stale_parts(const std::string& dir) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const bool tmp_step = name.size() > 4 && name.ends_with(kTmpSuffix) &&
                          parse_step_folder(name.substr(0, name.size() - 4)).has_value();
    const bool latest_tmp = name == std::string(kLatestFile) + kTmpSuffix;
    if (tmp_step || latest_tmp || name.starts_with(kTrashPrefix)) stale.push_back(e.path());
  }
  for (const fs::path& p : stale) {
    fs::remove_all(p, ec);
    if (ec) throw EnvironmentError("remove", "'" + p.string() + "'", ec.message());
  }
  return static_cast<int>(stale.size());
}

DirLock::DirLock(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_dir_error(what + ": cannot create '" + dir + "'", ec.value());
  const std::string path = dir + "/" + kLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_dir_error(what + ": '" + dir + "' is not writable", errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[256] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && who.back() == '\n') who.pop_back();
    throw UserError(what + ": '" + dir + "' is in use by another job (" + who + ", holding " + path +
                    "); give each job its own checkpoint folder");
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string me = "pid " + std::to_string(::getpid()) + " on " + host + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw_dir_error(what + ": '" + dir + "' is not writable", err);
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

void check_writable(const std::string& dir, const std::string& what, int rank) {
  const std::string probe = dir + "/.probe_rank_" + std::to_string(rank);
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw_dir_error(what + ": rank " + std::to_string(rank) + " cannot create files in '" + dir + "'", errno);
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace kervan
