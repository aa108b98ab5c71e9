#include "coordinator/journal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "datasets/format/corpus_manifest.h"

namespace kervan {

namespace v1 = coordinator::v1;

namespace {

constexpr size_t kFrameBytes = 12;              // length u32 + checksum u64
constexpr uint32_t kMaxRecordBytes = 16 << 20;  // far above any record; a larger length is damage
constexpr uint32_t kFormatVersion = 1;

uint64_t record_checksum(uint32_t length, const char* payload) {
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  XXH3_64bits_update(h, &length, sizeof length);
  XXH3_64bits_update(h, payload, length);
  const uint64_t sum = XXH3_64bits_digest(h);
  XXH3_freeState(h);
  return sum;
}

std::string errno_text() {
  return std::strerror(errno);
}

void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw EnvironmentError("write", "the journal " + path, errno_text());
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void fsync_parent(const std::string& path) {
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string describe(const v1::JournalHeader& h) {
  return "job '" + h.job_id() + "', corpora " + checksum_hex(h.corpus_fingerprint());
}

}  // namespace

std::string frame_journal_record(const Journal::Record& record) {
  const std::string payload = record.SerializeAsString();
  const auto length = static_cast<uint32_t>(payload.size());
  const uint64_t sum = record_checksum(length, payload.data());
  std::string out(kFrameBytes, '\0');
  std::memcpy(out.data(), &length, 4);
  std::memcpy(out.data() + 4, &sum, 8);
  return out + payload;
}

Journal::Journal(std::string path, const v1::JournalHeader& header,
                 const std::function<void(const Record&)>& replay, const std::string& advice)
    : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  created_ = fd_ >= 0;
  if (fd_ < 0 && errno == EEXIST) fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw UserError(path_ + ": cannot open the journal: " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    throw UserError(path_ + ": the journal is in use by another coordinator");
  }
  try {
    v1::JournalHeader h = header;
    h.set_format_version(kFormatVersion);
    replay_existing(h, replay, advice);
  } catch (...) {
    ::close(fd_);
    throw;
  }
  writer_ = std::thread([this] { write_loop(); });
}

Journal::~Journal() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (fd_ >= 0) ::close(fd_);
}

// Reads the whole file (journals hold registrations, commits and leases, not heartbeats: small),
// checks the header, replays the records and cuts off a torn tail.
void Journal::replay_existing(const v1::JournalHeader& header,
                              const std::function<void(const Record&)>& replay, const std::string& advice) {
  struct stat st {};
  ::fstat(fd_, &st);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  for (size_t got = 0; got < data.size();) {
    const ssize_t r = ::pread(fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (r <= 0)
      throw EnvironmentError("read", "the journal " + path_, r == 0 ? "it shrank while read" : errno_text());
    got += static_cast<size_t>(r);
  }
  const auto start_fresh = [&] {
    if (::ftruncate(fd_, 0) != 0) throw EnvironmentError("ftruncate", "the journal " + path_, errno_text());
    Record r;
    *r.mutable_header() = header;
    const std::string bytes = std::string(kMagic, sizeof kMagic) + frame_journal_record(r);
    write_all(fd_, bytes.data(), bytes.size(), path_);
    if (::fsync(fd_) != 0) throw EnvironmentError("fsync", "the journal " + path_, errno_text());
    fsync_parent(path_);
  };
  // A file shorter than the magic that starts like it is a journal whose creation was cut short.
  if (data.size() < sizeof kMagic) {
    if (std::memcmp(data.data(), kMagic, data.size()) != 0)
      throw UserError(path_ +
                      ": not a kervan coordinator journal (no KVJRNL01 magic); refusing to overwrite it");
    if (!data.empty())
      spdlog::warn("{}: an incomplete journal ({} bytes) from a crash at creation; starting it anew", path_,
                   data.size());
    start_fresh();
    return;
  }
  if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    throw UserError(path_ +
                    ": not a kervan coordinator journal (no KVJRNL01 magic); refusing to overwrite it");

  size_t off = sizeof kMagic;
  bool have_header = false;
  while (off < data.size()) {
    const size_t rest = data.size() - off;
    const bool rest_is_zero =
        std::all_of(data.begin() + static_cast<ptrdiff_t>(off), data.end(), [](char c) { return c == 0; });
    uint32_t length = 0;
    uint64_t sum = 0;
    bool intact = rest >= kFrameBytes;
    if (intact) {
      std::memcpy(&length, data.data() + off, 4);
      std::memcpy(&sum, data.data() + off + 4, 8);
      intact = length <= kMaxRecordBytes && kFrameBytes + length <= rest &&
               record_checksum(length, data.data() + off + kFrameBytes) == sum;
    }
    Record record;
    if (intact && !record.ParseFromArray(data.data() + off + kFrameBytes, static_cast<int>(length)))
      intact = false;
    if (!intact) {
      // Torn: the last frame, or zeros to the end (a file extended before its data reached disk).
      const bool torn =
          rest < kFrameBytes || length > kMaxRecordBytes || kFrameBytes + length >= rest || rest_is_zero;
      if (!torn)
        throw UserError(path_ + ": the journal record at offset " + std::to_string(off) + " is damaged and " +
                        std::to_string(rest - kFrameBytes - length) +
                        " bytes of records follow it (not a torn last write); refusing to guess the state");
      if (!have_header) {
        spdlog::warn(
            "{}: the journal's header record at offset {} is torn (a crash at creation); starting it anew",
            path_, off);
        start_fresh();
        return;
      }
      spdlog::warn(
          "{}: dropping a torn last record at offset {} ({} bytes; the coordinator died while writing it)",
          path_, off, rest);
      if (::ftruncate(fd_, static_cast<off_t>(off)) != 0 || ::fsync(fd_) != 0)
        throw EnvironmentError("ftruncate", "the journal " + path_,
                               "cutting off a torn record: " + errno_text());
      break;
    }
    if (!have_header) {
      if (!record.has_header())
        throw UserError(path_ + ": the journal's first record is not its header; refusing to use it");
      const v1::JournalHeader& h = record.header();
      if (h.job_id() != header.job_id() || h.corpus_fingerprint() != header.corpus_fingerprint())
        throw UserError(path_ + ": the journal belongs to " + describe(h) + ", not to this coordinator's " +
                        describe(header) + " (" + advice + ")");
      if (h.format_version() > kFormatVersion)
        throw UserError(path_ + ": journal format " + std::to_string(h.format_version()) +
                        " is newer than this coordinator's (" + std::to_string(kFormatVersion) + ")");
      have_header = true;
    } else {
      replay(record);
      replayed_++;
    }
    off += kFrameBytes + length;
  }
  if (!have_header) start_fresh();
  if (::lseek(fd_, 0, SEEK_END) < 0) throw EnvironmentError("lseek", "the journal " + path_, errno_text());
}

void Journal::append(const Record& record, std::function<void()> on_durable) {
  std::string bytes = frame_journal_record(record);
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(bytes), std::move(on_durable)});
  }
  cv_.notify_one();
}

void Journal::write_loop() {
  std::string buffer;
  for (;;) {
    std::deque<Pending> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      batch.swap(queue_);
    }
    buffer.clear();
    for (const Pending& p : batch) buffer += p.bytes;
    try {
      write_all(fd_, buffer.data(), buffer.size(), path_);
    } catch (const EnvironmentError& e) {
      fail(e.what());
    }
    if (::fdatasync(fd_) != 0) fail("fdatasync on the journal " + path_ + ": " + errno_text());
    for (Pending& p : batch)
      if (p.on_durable) p.on_durable();
  }
}

void Journal::fail(const std::string& what) {
  spdlog::critical("{} (the coordinator stops: its state must not run ahead of its journal)", what);
  spdlog::shutdown();
  std::fprintf(stderr, "kervan: error: %s\n", what.c_str());
  ::_exit(kExitEnvironment);
}

}  // namespace kervan
