#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coordinator/coordinator_client.h"

namespace kervan {

// Bytes [begin, end) of one shard's token section.
struct ByteRange {
  uint32_t shard;
  uint64_t begin, end;
};

// A worker's local copy of the token data it reads from a coordinator: one sparse file per
// served shard in a folder of its own, memory-mapped, filled in 512-byte blocks by a background
// thread, and bounded in size (the 4 KiB pages its blocks take on disk). What a batch needs is
// fetched at once (require); what the batches after it need is fetched ahead (prefetch). When
// the pages on disk pass the bound, the least recently used segments (64 KiB) are evicted (their blocks punched out of the file), except
// segments of the latest require() of each split, which the loader may be reading.
//
// Every piece is checked against its checksum before it is written (CoordinatorClient::fetch),
// and the data is read through the same mappings the loader reads, so the loader sees exactly
// the bytes the coordinator verified. The folder is the process's own (a lock file keeps a
// second process out), emptied at start and removed at the end.
class TokenCache {
 public:
  struct Options {
    std::string dir;
    uint64_t max_bytes = 10ull << 30;
    uint64_t segment_blocks = 128;  // the eviction unit, in blocks (64 KiB); whole pages
  };
  // `max_fetch_bytes` / `max_fetch_ranges` are the server's limits per request (the manifest's).
  TokenCache(Options options, std::shared_ptr<CoordinatorClient> client, uint64_t max_fetch_bytes,
             uint32_t max_fetch_ranges);
  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // A split of served corpus `corpus`, with its shards' token-section sizes; files go to
  // dir/<subdir>/<file>. Returns the split's id for the calls below.
  int add_split(uint32_t corpus, const std::string& split, const std::string& subdir,
                const std::vector<std::string>& files, const std::vector<uint64_t>& shard_bytes);
  // Where the shard's token section is mapped (valid for the cache's life).
  const void* data(int split, uint32_t shard) const;

  // Blocks until the ranges are on disk; they stay there until the split's next require(). A
  // fetch that failed for good (the coordinator gone past its retry time, a full disk: an
  // EnvironmentError) is rethrown here; ranges larger than the whole cache are a UserError.
  void require(int split, const std::vector<ByteRange>& ranges);
  // Queues the ranges' missing blocks behind what is already queued; returns at once.
  void prefetch(int split, const std::vector<ByteRange>& ranges);

  struct Stats {
    uint64_t fetched_bytes = 0, evicted_bytes = 0;  // blocks' bytes
    uint64_t resident_bytes = 0;                    // the pages they take on disk
    uint64_t segments = 0;                  // whose state is held in memory
    uint64_t require_calls = 0, waits = 0;  // require() calls, and those that had to wait for a fetch
  };
  Stats stats() const;

  // What a fetch is rounded to. A batch's windows are isolated in a large corpus, and a window
  // of 1,025 uint16 tokens at an even offset spans 5 blocks of 512 bytes (1.25x its bytes) but
  // 1.5 blocks of 4 KiB on average (3x): with 4 KiB blocks the coordinator sent ~96 KiB per
  // gpt2-small batch of 16 instead of ~40, and on the 2-core bench machine its CPU per RPC rose
  // from ~35 to ~49 us. On disk the filesystem still allocates whole pages, which the bound counts.
  static constexpr uint64_t kBlockBytes = 512;
  static constexpr uint64_t kPageBytes = 4096;
  static constexpr uint64_t kBlocksPerPage = kPageBytes / kBlockBytes;

 private:
  enum : uint8_t { kAbsent, kFetching, kPresent };
  struct SegmentKey {
    int split;
    uint32_t shard;
    uint32_t segment;
    bool operator<(const SegmentKey& o) const {
      return split != o.split ? split < o.split : shard != o.shard ? shard < o.shard : segment < o.segment;
    }
    bool operator==(const SegmentKey&) const = default;
  };
  // A segment's state (128 bytes and its map and list nodes, ~300 bytes) exists only while the
  // segment holds, awaits or pins blocks, so the cache's memory follows what it holds, not the
  // size of the corpus: a 10 GiB cache holds at most 163,840 full segments, or ~1.6 million
  // scattered 2 KB windows (1.6 pages each) in about as many segments, ~0.5 GB of state.
  struct Segment {
    std::vector<uint8_t> blocks;  // kAbsent, kFetching or kPresent per block
    uint32_t present = 0, fetching = 0;
    uint32_t pins = 0;  // splits whose latest require() reads it
    bool in_lru = false;
    std::list<SegmentKey>::iterator lru;
  };
  struct Shard {
    std::string path;
    int fd = -1;
    void* map = nullptr;
    uint64_t bytes = 0;
    std::unordered_map<uint32_t, Segment> segments;  // node-based: references stay valid
  };
  struct Split {
    uint32_t corpus;
    std::string name;
    std::vector<Shard> shards;
    std::vector<SegmentKey> pinned;  // by the latest require()
  };
  struct Job {
    int split;
    std::vector<ByteRange> ranges;  // block-aligned (clipped to the shard), every block kFetching
  };

  Segment& segment_locked(Shard& shard, uint64_t block);
  uint8_t block_state_locked(const Shard& shard, uint64_t block) const;
  void set_block_locked(const SegmentKey& key, Shard& shard, uint64_t block, uint8_t state);
  // Forgets a segment that holds, awaits and pins nothing.
  void drop_if_empty_locked(Shard& shard, uint32_t segment);
  // Marks the ranges' absent blocks kFetching and returns them as block-aligned ranges.
  std::vector<ByteRange> claim_absent_locked(int split_id, const std::vector<ByteRange>& ranges);
  bool all_present_locked(const Split& split, const std::vector<ByteRange>& ranges) const;
  void fetch_loop();
  void fetch(const Job& job);
  // Drops least recently used unpinned segments until the bound holds; returns the byte ranges
  // to punch out of which files.
  std::vector<std::pair<int, ByteRange>> evict_locked();
  void punch(int fd, uint64_t begin, uint64_t end) const;
  uint64_t block_bytes(const Shard& shard, uint64_t block) const;
  uint64_t segment_bytes() const { return options_.segment_blocks * kBlockBytes; }

  Options options_;
  std::shared_ptr<CoordinatorClient> client_;
  uint64_t max_fetch_bytes_;
  uint32_t max_fetch_ranges_;
  int lock_fd_ = -1;

  mutable std::mutex mu_;
  std::condition_variable jobs_cv_, done_cv_;
  std::vector<std::unique_ptr<Split>> splits_;  // unique_ptr: Split addresses stay put
  std::list<SegmentKey> lru_;                   // front: least recently used
  std::deque<Job> jobs_;
  std::exception_ptr error_;
  bool stopping_ = false;
  Stats stats_;
  std::thread fetcher_;
};

}  // namespace kervan
