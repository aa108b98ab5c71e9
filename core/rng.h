#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>

namespace kervan {

// Counter-based random numbers: element i of a stream is a pure function of (key, i). A tensor
// initialised from stream `key` therefore has the same values whatever slice of it a process
// owns, which is what lets every parallel layout start from the single-process model.

constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a of a name, mixed with a seed: the key of a named stream.
constexpr uint64_t stream_key(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return splitmix64(h ^ splitmix64(seed));
}

// Uniform in (0, 1), never exactly 0 (safe under log).
inline double uniform_at(uint64_t key, uint64_t i) {
  return (static_cast<double>(splitmix64(key ^ splitmix64(i)) >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal via Box-Muller on two independent uniforms of element i.
inline float normal_at(uint64_t key, uint64_t i) {
  const double u1 = uniform_at(key, 2 * i), u2 = uniform_at(key, 2 * i + 1);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace kervan
