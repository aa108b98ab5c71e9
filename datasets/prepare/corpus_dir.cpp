#include "datasets/prepare/corpus_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <set>
#include <vector>

#include "core/error.h"
#include "datasets/prepare/unit_record.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// The names `kervan prepare` gives the files it writes in its folder (only ever applied inside a
// folder that carries kervan's marker, see CorpusDir::begin).
bool is_shard_name(const std::string& name) {
  return (name.starts_with("train-") || name.starts_with("val-")) && name.ends_with(".kvs");
}
bool is_our_temporary(const std::string& name) {
  if (!name.ends_with(".tmp")) return false;
  const std::string base = name.substr(0, name.size() - 4);
  return is_shard_name(base) || base == CorpusManifest::kFileName;
}

template <class Pred>
void remove_files_named(const fs::path& folder, Pred pred) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (e.is_regular_file(ec) && pred(e.path().filename().string())) fs::remove(e.path(), ec);
}

// Empty but for a lock file kervan left (a prepare killed before it wrote its marker).
bool is_empty_dir(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename() != kPrepareLockFile) return false;
  return !ec;
}

// A path without a trailing slash ("out/" -> "out"), for naming the sibling folder.
fs::path normalized(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  return p.has_filename() ? p : p.parent_path();
}

enum class State { Foreign, Empty, Unfinished, Complete };

// What `dir` (an existing folder) holds, as far as kervan is concerned.
State state_of(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir + "/" + CorpusManifest::kFileName, ec)) return State::Complete;
  if (fs::is_directory(dir + "/" + kUnitRecordDir, ec)) return State::Unfinished;
  return is_empty_dir(dir) ? State::Empty : State::Foreign;
}

void make_folder(const std::string& dir, const std::string& role) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec)) && !fs::is_directory(dir, ec))
    throw UserError(dir + ": " + role +
                    " exists and is not a folder (a corpus is a folder; `--out X.bin` writes an llm.c "
                    "token file, with --tokenizer bytes only)");
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw_io_error(dir, "cannot create the output folder", ec ? ec.value() : ENOTDIR);
}

void refuse_foreign(const std::string& dir, const std::string& role) {
  if (state_of(dir) == State::Foreign)
    throw UserError(
        dir + ": " + role + " is a folder with other files in it, not a kervan corpus (no " +
        CorpusManifest::kFileName + ", no " + kUnitRecordDir +
        "/ of an unfinished prepare); kervan writes only into a new or empty folder or one it made");
}

// Marks `dir` as kervan's unfinished corpus and clears the temporaries a killed run left.
void mark_unfinished(const std::string& dir) {
  const std::string records = dir + "/" + kUnitRecordDir;
  std::error_code ec;
  fs::create_directories(records, ec);  // the marker: this folder is kervan's
  if (ec) throw_io_error(records, "cannot create", ec.value());
  remove_files_named(dir, is_our_temporary);
  remove_files_named(records, [](const std::string& n) { return n.ends_with(".tmp"); });
}

// Removes, from a folder that holds a complete corpus of kervan's, the files that corpus is made of
// (its listed shards, our temporaries, the records, then the manifest last: a kill midway leaves a
// folder still marked as kervan's). Returns whether anything else is left in it.
bool remove_corpus_files(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir + "/" + CorpusManifest::kFileName, ec)) {
    try {
      const CorpusManifest old = read_corpus_manifest(dir);
      for (const auto& [split, shards] : old.splits)
        for (const ShardEntry& s : shards)
          if (s.file.find('/') == std::string::npos) fs::remove(dir + "/" + s.file, ec);
    } catch (const UserError&) {  // a damaged manifest: the shard names of this kervan-made folder
      remove_files_named(dir, is_shard_name);
    }
  }
  remove_files_named(dir, is_our_temporary);
  fs::remove_all(dir + "/" + kUnitRecordDir, ec);
  fs::remove(dir + "/" + CorpusManifest::kFileName, ec);
  return !is_empty_dir(dir);
}

}  // namespace

// An exclusive flock on DIR/.kervan-prepare.lock. The file names its holder (pid and host) for the
// message a second prepare gets; it is removed when the lock is released. A process that opened
// the file before it was removed sees, once it holds the lock, that the path no longer names its
// file, and starts over, so two processes never both believe they hold the folder.
class CorpusDir::Lock {
 public:
  Lock(const std::string& dir, const std::string& role) : path_(dir + "/" + kPrepareLockFile) {
    for (int attempt = 0;; ++attempt) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) throw_io_error(path_, role + ": cannot create the lock file", errno);
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        char holder[256] = {};
        const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
        ::close(fd_);
        fd_ = -1;
        std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
        while (!who.empty() && who.back() == '\n') who.pop_back();
        throw UserError(dir + ": " + role + " is in use by another kervan prepare (" +
                        (who.empty() ? std::string("its lock file is ") + path_ : who + ", holding " + path_) +
                        "); wait for it to end, or choose another --out");
      }
      struct stat mine {}, named {};
      if (::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &named) == 0 && mine.st_ino == named.st_ino &&
          mine.st_dev == named.st_dev)
        break;
      ::close(fd_);  // removed (or replaced) by its last holder while we waited: try again
      fd_ = -1;
      if (attempt == 100) throw EnvironmentError("flock", path_, "the lock file keeps being replaced");
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string me = "pid " + std::to_string(::getpid()) + " on " + host + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
      const int err = errno;
      release();
      throw_io_error(path_, "cannot write the lock file", err);
    }
  }
  ~Lock() { release(); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  // The folder holding the lock file was renamed to `dir`.
  void moved_to(const std::string& dir) { path_ = dir + "/" + kPrepareLockFile; }

 private:
  void release() {
    if (fd_ < 0) return;
    struct stat mine {}, named {};
    if (::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &named) == 0 && mine.st_ino == named.st_ino &&
        mine.st_dev == named.st_dev)
      ::unlink(path_.c_str());
    ::close(fd_);  // releases the flock
    fd_ = -1;
  }
  std::string path_;
  int fd_ = -1;
};

std::string CorpusDir::aside_dir(const std::string& dir) {
  const fs::path p = normalized(dir);
  const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::string name = ".";  // built in steps: GCC 12 warns (-Wrestrict) on "." + string
  name += p.filename().string();
  name += ".kervan-overwrite";
  return (parent / name).string();
}

CorpusDir::~CorpusDir() {
  // A build that failed (an exception is on its way out) into a folder that held no earlier work
  // is undone: the folder aside of a rebuild (--out still holds the old corpus), or a new or empty
  // --out, held nothing but what this prepare wrote. Earlier work (an unfinished prepare being
  // resumed) stays for the next resume, and so does everything after a kill (no unwinding).
  if (complete_ || finished_ || std::uncaught_exceptions() == 0 || !fresh_) return;
  std::unique_ptr<Lock>& lock = replacing() ? aside_lock_ : lock_;
  if (!lock) return;  // never without holding the folder
  std::error_code ec;
  remove_files_named(build_dir_, [](const std::string& n) { return is_shard_name(n) || is_our_temporary(n); });
  fs::remove_all(build_dir_ + "/" + kUnitRecordDir, ec);
  lock.reset();
  if (replacing() || created_) fs::remove(build_dir_, ec);  // only when empty
}

std::unique_ptr<CorpusDir> CorpusDir::begin(const std::string& dir, bool overwrite, const std::string& request) {
  std::unique_ptr<CorpusDir> out(new CorpusDir);
  out->dir_ = out->build_dir_ = dir;
  std::error_code ec;
  const bool existed = fs::exists(fs::symlink_status(dir, ec));
  make_folder(dir, "--out");
  refuse_foreign(dir, "--out");  // before the lock file is written into it
  out->lock_ = std::make_unique<Lock>(dir, "--out");
  const State state = state_of(dir);  // again, now that no other prepare can change it
  if (state == State::Foreign) refuse_foreign(dir, "--out");
  if (state == State::Complete && !overwrite) {
    const CorpusManifest m = read_corpus_manifest(dir);
    if (m.request == request) {
      out->complete_ = true;
      return out;
    }
    throw UserError(dir + ": already holds a complete corpus made " +
                    (m.request.empty() ? std::string("by an older kervan") : "from other inputs or options") +
                    (m.created_by.empty() ? "" : " (" + m.created_by + ")") +
                    "; --overwrite replaces it, or choose another --out");
  }
  if (state != State::Complete) {
    out->fresh_ = state == State::Empty;
    out->created_ = !existed;
    mark_unfinished(dir);
    return out;
  }
  // --overwrite of a complete corpus: the new one is built aside; the old one stays until then.
  const std::string aside = aside_dir(dir);
  make_folder(aside, "the folder aside for --overwrite");
  refuse_foreign(aside, "the folder aside for --overwrite");
  out->aside_lock_ = std::make_unique<Lock>(aside, "the folder aside for --overwrite");
  // A complete corpus there is an old one whose removal was interrupted after the swap.
  if (state_of(aside) == State::Complete && remove_corpus_files(aside))
    throw UserError(aside + ": holds files kervan did not write; move them away (kervan rebuilds --out " + dir +
                    " here)");
  mark_unfinished(aside);
  out->build_dir_ = aside;
  out->fresh_ = true;  // (a rebuild's earlier work there, if any, is not worth keeping after an error)
  return out;
}

void CorpusDir::finish(const CorpusManifest& manifest) {
  std::set<std::string> listed;
  for (const auto& [split, shards] : manifest.splits)
    for (const ShardEntry& s : shards) listed.insert(s.file);
  remove_files_named(build_dir_, [&](const std::string& n) { return is_shard_name(n) && !listed.contains(n); });
  write_corpus_manifest(build_dir_, manifest);
  finished_ = true;
  std::error_code ec;
  fs::remove_all(build_dir_ + "/" + kUnitRecordDir, ec);
  if (!replacing()) return;

  // The swap: one atomic exchange of the two folders, so --out always holds a complete corpus.
  // (A file system without the exchange gets three renames; a kill between them leaves the old
  // corpus complete under a third name, .NAME.kervan-overwrite.old.)
  if (::renameat2(AT_FDCWD, build_dir_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS) throw_io_error(dir_, "cannot swap in the rebuilt corpus from " + build_dir_, errno);
    const std::string third = build_dir_ + ".old";
    if (std::rename(dir_.c_str(), third.c_str()) != 0) throw_io_error(dir_, "cannot move aside", errno);
    if (std::rename(build_dir_.c_str(), dir_.c_str()) != 0) {
      const int err = errno;
      std::rename(third.c_str(), dir_.c_str());
      throw_io_error(build_dir_, "cannot move the rebuilt corpus into place", err);
    }
    if (std::rename(third.c_str(), build_dir_.c_str()) != 0) throw_io_error(third, "cannot rename", errno);
  }
  lock_->moved_to(build_dir_);
  aside_lock_->moved_to(dir_);
  // build_dir_ now holds the old corpus: its files go; anything else in it (the user's own files,
  // which were in --out) goes back into --out, unless the new corpus has a file of that name.
  const std::string old = build_dir_;
  if (remove_corpus_files(old)) {
    std::vector<std::string> names, kept;
    for (const auto& e : fs::directory_iterator(old, ec))
      if (e.path().filename() != kPrepareLockFile) names.push_back(e.path().filename().string());
    for (const std::string& name : names) {
      const std::string from = old + "/" + name, to = dir_ + "/" + name;
      if (fs::exists(fs::symlink_status(to, ec)) || std::rename(from.c_str(), to.c_str()) != 0)
        kept.push_back(name);
    }
    if (!kept.empty())
      std::fprintf(stderr,
                   "kervan: warning: %s: %zu file(s) of yours that were in --out (%s...) clash with the new "
                   "corpus's names and stay here\n",
                   old.c_str(), kept.size(), kept.front().c_str());
  }
  lock_.reset();  // removes the old folder's lock file
  fs::remove(old, ec);  // only when empty
}

}  // namespace kervan
