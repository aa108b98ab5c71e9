#include "core/cuda/device_allocator.h"

#include <cuda_runtime.h>

#include <string>

#include "core/cuda/cuda_check.h"

namespace kervan::cuda {

namespace {
std::string gb(int64_t bytes) {
  return std::to_string(bytes / 1'000'000) + " MB";
}
}  // namespace

size_t DeviceAllocator::round(size_t bytes) {
  // 512-byte granules under 1 MiB, 2 MiB granules above: few distinct sizes, little waste.
  constexpr size_t kSmall = 512, kLarge = 2 << 20;
  if (bytes == 0) bytes = 1;
  return bytes < (1 << 20) ? (bytes + kSmall - 1) / kSmall * kSmall : (bytes + kLarge - 1) / kLarge * kLarge;
}

void* DeviceAllocator::allocate(size_t bytes, const char* what_for) {
  const size_t size = round(bytes);
  std::lock_guard lock(mu_);
  void* p = nullptr;
  if (auto it = free_.find(size); it != free_.end()) {
    p = it->second;
    free_.erase(it);
    cached_ -= size;
  } else {
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error before retrying
      for (auto& [s, block] : free_) {
        check(cudaFree(block), "cudaFree", "a cached block of " + std::to_string(s) + " bytes");
        sizes_.erase(block);
      }
      free_.clear();
      cached_ = 0;
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      throw EnvironmentError(
          "cudaMalloc", std::string(what_for) + " of " + gb(size),
          "out of device memory: " + gb(in_use_) + " in use by kervan, " + gb(static_cast<int64_t>(free_b)) +
              " free of " + gb(static_cast<int64_t>(total_b)) +
              ". Try a smaller train.micro_batch (more gradient accumulation steps) or ZeRO-1 "
              "(parallel.zero = 1) with more data-parallel ranks");
    }
    check(err, "cudaMalloc", std::string(what_for) + " of " + std::to_string(size) + " bytes");
    sizes_[p] = size;
  }
  in_use_ += size;
  if (in_use_ > peak_) peak_ = in_use_;
  return p;
}

void DeviceAllocator::release(void* p) {
  std::lock_guard lock(mu_);
  const auto it = sizes_.find(p);
  if (it == sizes_.end()) return;  // not ours: never happens, and nothing safe to do at exit
  in_use_ -= it->second;
  cached_ += it->second;
  free_.emplace(it->second, p);
}

void DeviceAllocator::empty_cache() {
  std::lock_guard lock(mu_);
  for (auto& [size, block] : free_) {
    check(cudaFree(block), "cudaFree", "a cached block of " + std::to_string(size) + " bytes");
    sizes_.erase(block);
  }
  free_.clear();
  cached_ = 0;
}

int64_t DeviceAllocator::in_use_bytes() const {
  std::lock_guard lock(mu_);
  return in_use_;
}
int64_t DeviceAllocator::peak_bytes() const {
  std::lock_guard lock(mu_);
  return peak_;
}
int64_t DeviceAllocator::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_;
}

DeviceAllocator& device_allocator() {
  // Never destroyed: tensors may be released after main returns, when the CUDA runtime is already
  // being torn down; the driver reclaims the memory with the process.
  static DeviceAllocator* a = new DeviceAllocator;
  return *a;
}

}  // namespace kervan::cuda
