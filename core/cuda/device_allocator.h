#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace kervan::cuda {

// A caching allocator for device memory: cudaMalloc and cudaFree synchronise the device and cost
// tens of microseconds, so a freed block is kept and handed out again for a request of the same
// rounded size. All kernels of a backend run on one stream, so a block reused in stream order is
// safe without events. When cudaMalloc fails, the cache is released and the call retried once;
// if it fails again, the error names the request, what is in use, what is cached and the hint
// (a smaller micro-batch, ZeRO-1).
class DeviceAllocator {
 public:
  void* allocate(size_t bytes, const char* what_for);
  void release(void* p);
  // Frees every cached block back to the device.
  void empty_cache();

  int64_t in_use_bytes() const;
  int64_t peak_bytes() const;    // the most ever in use at once (what a run must fit)
  int64_t cached_bytes() const;  // held for reuse, not in use

  static size_t round(size_t bytes);

 private:
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;        // rounded size -> block
  std::unordered_map<void*, size_t> sizes_;  // every live or cached block
  int64_t in_use_ = 0, peak_ = 0, cached_ = 0;
};

// The process's allocator (Storage's release function has no context, so it is one per process;
// kervan drives one device per process).
DeviceAllocator& device_allocator();

}  // namespace kervan::cuda
