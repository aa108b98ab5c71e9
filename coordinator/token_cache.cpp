#include "coordinator/token_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "coordinator/process_tuning.h"

namespace kervan {

namespace fs = std::filesystem;
namespace v1 = coordinator::v1;

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

TokenCache::TokenCache(Options options, std::shared_ptr<CoordinatorClient> client, uint64_t max_fetch_bytes,
                       uint32_t max_fetch_ranges)
    : options_(std::move(options)),
      client_(std::move(client)),
      max_fetch_bytes_(std::max<uint64_t>(max_fetch_bytes, kBlockBytes)),
      max_fetch_ranges_(std::max<uint32_t>(max_fetch_ranges, 1)) {
  KERVAN_CHECK(options_.segment_blocks > 0 && options_.segment_blocks % kBlocksPerPage == 0,
               "TokenCache: segment_blocks must be a positive number of 4 KiB pages");
  tune_process_for_grpc();
  std::error_code ec;
  const fs::path dir(options_.dir);
  fs::create_directories(dir.parent_path(), ec);
  const std::string lock_path = options_.dir + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw UserError(options_.dir + ": cannot create the token cache there: " + errno_text());
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw UserError(options_.dir + ": another process is using this token cache folder");
  }
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    ::close(lock_fd_);
    throw UserError(options_.dir + ": cannot create the token cache folder: " + ec.message());
  }
  fetcher_ = std::thread([this] { fetch_loop(); });
}

TokenCache::~TokenCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  done_cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
  for (auto& split : splits_)
    for (Shard& s : split->shards) {
      if (s.map) ::munmap(s.map, s.bytes);
      if (s.fd >= 0) ::close(s.fd);
    }
  std::error_code ec;
  fs::remove_all(options_.dir, ec);
  ::close(lock_fd_);
  ::unlink((options_.dir + ".lock").c_str());
}

int TokenCache::add_split(uint32_t corpus, const std::string& split, const std::string& subdir,
                          const std::vector<std::string>& files, const std::vector<uint64_t>& shard_bytes) {
  auto s = std::make_unique<Split>();
  s->corpus = corpus;
  s->name = split;
  const fs::path folder = fs::path(options_.dir) / subdir;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw UserError(folder.string() + ": cannot create the token cache folder: " + ec.message());
  for (size_t i = 0; i < shard_bytes.size(); ++i) {
    Shard& sh = s->shards.emplace_back();
    sh.path = (folder / files[i]).string();
    sh.bytes = shard_bytes[i];
    sh.fd = ::open(sh.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sh.fd < 0) throw UserError(sh.path + ": cannot create a token cache file: " + errno_text());
    if (::ftruncate(sh.fd, static_cast<off_t>(sh.bytes)) != 0)  // sparse: no blocks until written
      throw EnvironmentError("ftruncate", "the token cache file " + sh.path, errno_text());
    if (sh.bytes > 0) {
      sh.map = ::mmap(nullptr, sh.bytes, PROT_READ, MAP_SHARED, sh.fd, 0);
      if (sh.map == MAP_FAILED) {
        sh.map = nullptr;
        throw EnvironmentError("mmap", "the token cache file " + sh.path, errno_text());
      }
    }
  }
  std::lock_guard lock(mu_);
  splits_.push_back(std::move(s));
  return static_cast<int>(splits_.size() - 1);
}

const void* TokenCache::data(int split, uint32_t shard) const {
  std::lock_guard lock(mu_);
  return splits_.at(split)->shards.at(shard).map;
}

uint64_t TokenCache::block_bytes(const Shard& shard, uint64_t block) const {
  return std::min(kBlockBytes, shard.bytes - block * kBlockBytes);
}

TokenCache::Segment& TokenCache::segment_locked(Shard& shard, uint64_t block) {
  const auto [it, added] = shard.segments.try_emplace(static_cast<uint32_t>(block / options_.segment_blocks));
  if (added) {
    it->second.blocks.assign(options_.segment_blocks, kAbsent);
    stats_.segments++;
  }
  return it->second;
}

uint8_t TokenCache::block_state_locked(const Shard& shard, uint64_t block) const {
  const auto it = shard.segments.find(static_cast<uint32_t>(block / options_.segment_blocks));
  return it == shard.segments.end() ? static_cast<uint8_t>(kAbsent)
                                    : it->second.blocks[block % options_.segment_blocks];
}

// Moves a block to `state`, keeping the segment's counts, the LRU list (segments with blocks on
// disk) and the byte counts in step.
void TokenCache::set_block_locked(const SegmentKey& key, Shard& shard, uint64_t block, uint8_t state) {
  Segment& seg = segment_locked(shard, block);
  uint8_t& b = seg.blocks[block % options_.segment_blocks];
  if (b == state) return;
  // The disk a page takes is counted while any of its blocks is present (pages never straddle
  // segments: segment_blocks is a whole number of pages).
  const uint64_t page = block / kBlocksPerPage;
  const auto page_present = [&] {
    const uint8_t* first = &seg.blocks[page * kBlocksPerPage % options_.segment_blocks];
    return std::find(first, first + kBlocksPerPage, uint8_t{kPresent}) != first + kBlocksPerPage;
  };
  const bool page_was_present = page_present();
  if (b == kPresent) seg.present--;
  if (b == kFetching) seg.fetching--;
  b = state;
  if (state == kPresent) seg.present++, stats_.fetched_bytes += block_bytes(shard, block);
  if (state == kFetching) seg.fetching++;
  if (const bool now_present = page_present(); now_present != page_was_present) {
    const uint64_t page_bytes = std::min(kPageBytes, shard.bytes - page * kPageBytes);
    if (now_present)
      stats_.resident_bytes += page_bytes;
    else
      stats_.resident_bytes -= page_bytes;
  }
  if (seg.present > 0 && !seg.in_lru) {
    seg.lru = lru_.insert(lru_.end(), key);
    seg.in_lru = true;
  }
}

void TokenCache::drop_if_empty_locked(Shard& shard, uint32_t segment) {
  const auto it = shard.segments.find(segment);
  if (it == shard.segments.end()) return;
  const Segment& seg = it->second;
  if (seg.present || seg.fetching || seg.pins) return;
  if (seg.in_lru) lru_.erase(seg.lru);
  shard.segments.erase(it);
  stats_.segments--;
}

std::vector<ByteRange> TokenCache::claim_absent_locked(int split_id, const std::vector<ByteRange>& ranges) {
  Split& split = *splits_[split_id];
  std::vector<std::pair<uint32_t, uint64_t>> claimed;  // shard, block
  for (const ByteRange& r : ranges) {
    Shard& sh = split.shards.at(r.shard);
    for (uint64_t b = r.begin / kBlockBytes; b * kBlockBytes < r.end; ++b)
      if (block_state_locked(sh, b) == kAbsent) {
        set_block_locked({split_id, r.shard, static_cast<uint32_t>(b / options_.segment_blocks)}, sh, b,
                         kFetching);
        claimed.emplace_back(r.shard, b);
      }
  }
  std::sort(claimed.begin(), claimed.end());
  std::vector<ByteRange> out;
  for (const auto& [shard, b] : claimed) {
    const uint64_t begin = b * kBlockBytes, end = begin + block_bytes(split.shards[shard], b);
    if (!out.empty() && out.back().shard == shard && out.back().end == begin)
      out.back().end = end;
    else
      out.push_back({shard, begin, end});
  }
  return out;
}

bool TokenCache::all_present_locked(const Split& split, const std::vector<ByteRange>& ranges) const {
  for (const ByteRange& r : ranges) {
    const Shard& sh = split.shards[r.shard];
    for (uint64_t b = r.begin / kBlockBytes; b * kBlockBytes < r.end; ++b)
      if (block_state_locked(sh, b) != kPresent) return false;
  }
  return true;
}

void TokenCache::require(int split_id, const std::vector<ByteRange>& ranges) {
  std::unique_lock lock(mu_);
  if (error_) std::rethrow_exception(error_);
  stats_.require_calls++;
  Split& split = *splits_.at(split_id);
  std::vector<SegmentKey> previous = std::move(split.pinned);
  split.pinned.clear();
  uint64_t needed = 0;
  for (const ByteRange& r : ranges) {
    KERVAN_CHECK(r.shard < split.shards.size() && r.begin <= r.end && r.end <= split.shards[r.shard].bytes,
                 "TokenCache: range outside its shard");
    for (uint64_t seg = r.begin / segment_bytes(); seg * segment_bytes() < r.end; ++seg)
      split.pinned.push_back({split_id, r.shard, static_cast<uint32_t>(seg)});
    needed += r.end - r.begin;
  }
  std::sort(split.pinned.begin(), split.pinned.end());
  split.pinned.erase(std::unique(split.pinned.begin(), split.pinned.end()), split.pinned.end());
  uint64_t pinned_bytes = 0;
  for (const SegmentKey& k : split.pinned)
    pinned_bytes += std::min(segment_bytes(), split.shards[k.shard].bytes - k.segment * segment_bytes());
  if (pinned_bytes > options_.max_bytes)
    throw UserError(
        fmt::format("{}: the token cache ({} bytes) cannot hold one batch's data (it reads {} bytes from "
                    "{} bytes of cache segments); give it more room (data.cache_gb)",
                    options_.dir, options_.max_bytes, needed, pinned_bytes));
  for (const SegmentKey& k : split.pinned) {
    Segment& seg = segment_locked(split.shards[k.shard], uint64_t{k.segment} * options_.segment_blocks);
    seg.pins++;
    if (seg.in_lru) lru_.splice(lru_.end(), lru_, seg.lru);  // most recently used
  }
  for (const SegmentKey& k : previous) {  // after pinning the new ones: a segment in both stays
    split.shards[k.shard].segments.at(k.segment).pins--;
    drop_if_empty_locked(split.shards[k.shard], k.segment);
  }
  if (std::vector<ByteRange> missing = claim_absent_locked(split_id, ranges); !missing.empty()) {
    jobs_.push_front({split_id, std::move(missing)});  // the batch being read goes first
    jobs_cv_.notify_one();
  }
  if (!all_present_locked(split, ranges)) {
    stats_.waits++;
    done_cv_.wait(lock, [&] { return error_ || stopping_ || all_present_locked(split, ranges); });
  }
  if (error_) std::rethrow_exception(error_);
}

void TokenCache::prefetch(int split_id, const std::vector<ByteRange>& ranges) {
  std::lock_guard lock(mu_);
  if (error_ || stopping_) return;  // the next require() reports the error
  if (std::vector<ByteRange> missing = claim_absent_locked(split_id, ranges); !missing.empty()) {
    jobs_.push_back({split_id, std::move(missing)});
    jobs_cv_.notify_one();
  }
}

void TokenCache::fetch_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      jobs_cv_.wait(lock, [&] { return stopping_ || (!jobs_.empty() && !error_); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::exception_ptr failed;
    try {
      fetch(job);
    } catch (...) {
      failed = std::current_exception();
    }
    std::vector<std::pair<int, ByteRange>> punches;
    {
      std::lock_guard lock(mu_);
      Split& split = *splits_[job.split];
      for (const ByteRange& r : job.ranges) {
        Shard& sh = split.shards[r.shard];
        for (uint64_t b = r.begin / kBlockBytes; b * kBlockBytes < r.end; ++b) {
          const auto seg = static_cast<uint32_t>(b / options_.segment_blocks);
          set_block_locked({job.split, r.shard, seg}, sh, b, failed ? kAbsent : kPresent);
          if (failed) drop_if_empty_locked(sh, seg);
        }
      }
      if (failed) error_ = failed;
      punches = evict_locked();
    }
    // Outside the lock: only this thread writes the files, so a block evicted here cannot be
    // fetched again before its hole is punched.
    for (const auto& [fd, r] : punches) {
      try {
        punch(fd, r.begin, r.end);
      } catch (...) {
        std::lock_guard lock(mu_);
        error_ = std::current_exception();
      }
    }
    done_cv_.notify_all();
  }
}

void TokenCache::fetch(const Job& job) {
  const Split* split;
  {
    std::lock_guard lock(mu_);
    split = splits_[job.split].get();
  }
  // Requests within the server's limits; a range longer than the byte limit is cut.
  size_t i = 0;
  uint64_t done_in_range = 0;
  while (i < job.ranges.size()) {
    v1::FetchRequest req;
    req.set_corpus(split->corpus);
    req.set_split(split->name);
    uint64_t bytes = 0;
    while (i < job.ranges.size() && static_cast<uint32_t>(req.ranges_size()) < max_fetch_ranges_ &&
           bytes < max_fetch_bytes_) {
      const ByteRange& r = job.ranges[i];
      const uint64_t n = std::min(r.end - r.begin - done_in_range, max_fetch_bytes_ - bytes);
      v1::TokenRange* t = req.add_ranges();
      t->set_shard(r.shard);
      t->set_offset(r.begin + done_in_range);
      t->set_length(n);
      bytes += n;
      done_in_range += n;
      if (r.begin + done_in_range == r.end) ++i, done_in_range = 0;
    }
    // The shards' fds and paths do not change after add_split: written without the lock.
    client_->fetch(req, [&](const v1::TokenChunk& piece) {
      const v1::TokenRange& r = req.ranges(static_cast<int>(piece.range()));
      if (piece.offset() < r.offset() || piece.offset() + piece.data().size() > r.offset() + r.length())
        throw EnvironmentError("FetchTokens", "the coordinator at " + client_->address(),
                               "it sent bytes outside the range asked for");
      const Shard& sh = split->shards[r.shard()];
      const char* p = piece.data().data();
      size_t left = piece.data().size();
      auto offset = static_cast<off_t>(piece.offset());
      while (left > 0) {
        const ssize_t w = ::pwrite(sh.fd, p, left, offset);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
          throw EnvironmentError("write", "the token cache file " + sh.path,
                                 errno_text() +
                                     " (free space there, lower data.cache_gb, or set data.cache_dir "
                                     "elsewhere)");
        p += w;
        left -= static_cast<size_t>(w);
        offset += w;
      }
    });
  }
}

std::vector<std::pair<int, ByteRange>> TokenCache::evict_locked() {
  std::vector<std::pair<int, ByteRange>> punches;
  for (auto it = lru_.begin(); stats_.resident_bytes > options_.max_bytes && it != lru_.end();) {
    const SegmentKey k = *it++;
    Shard& sh = splits_[k.split]->shards[k.shard];
    Segment& seg = sh.segments.at(k.segment);
    if (seg.pins > 0) continue;
    const uint64_t first = uint64_t{k.segment} * options_.segment_blocks;
    const uint64_t end_block =
        std::min(first + options_.segment_blocks, (sh.bytes + kBlockBytes - 1) / kBlockBytes);
    for (uint64_t b = first; b < end_block; ++b)
      if (seg.blocks[b - first] == kPresent) {
        stats_.evicted_bytes += block_bytes(sh, b);
        set_block_locked(k, sh, b, kAbsent);
      }
    lru_.erase(seg.lru);
    seg.in_lru = false;
    punches.push_back({sh.fd, {k.shard, first * kBlockBytes, std::min(end_block * kBlockBytes, sh.bytes)}});
    drop_if_empty_locked(sh, k.segment);
  }
  return punches;
}

void TokenCache::punch(int fd, uint64_t begin, uint64_t end) const {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(begin),
                  static_cast<off_t>(end - begin)) != 0)
    throw EnvironmentError(
        "fallocate(PUNCH_HOLE)", "the token cache in " + options_.dir,
        errno_text() +
            " (it frees evicted blocks; set data.cache_dir to a folder on ext4, xfs, btrfs or tmpfs)");
}

TokenCache::Stats TokenCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kervan
