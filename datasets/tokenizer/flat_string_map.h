#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace kervan {

// Byte string -> uint32 hash map with open addressing, keys packed in one arena. The tokenizer
// looks up every pre-token piece here (vocabulary, then cache); std::unordered_map's node per key
// and std::hash made that the largest cost of encoding.
class FlatStringMap {
 public:
  static uint64_t hash(std::string_view key) {
    const auto* p = reinterpret_cast<const unsigned char*>(key.data());
    size_t n = key.size();
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = mix(h ^ w);
      p += 8;
      n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; ++i) w |= uint64_t{p[i]} << (8 * i);
    h = mix(h ^ w);
    return h | 1;  // 0 marks an empty slot
  }

  explicit FlatStringMap(size_t expected = 16) { rehash(capacity_for(expected)); }

  size_t size() const { return size_; }
  size_t arena_bytes() const { return arena_.size(); }

  const uint32_t* find(std::string_view key, uint64_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.len == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), s.len) == 0)
        return &s.value;
    }
  }
  const uint32_t* find(std::string_view key) const { return find(key, hash(key)); }

  // Inserts key -> value unless the key is present; returns whether it inserted.
  bool insert(std::string_view key, uint64_t h, uint32_t value) {
    if (find(key, h)) return false;
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.size() * 2);
    place(Slot{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), value});
    arena_.append(key);
    ++size_;
    return true;
  }
  bool insert(std::string_view key, uint32_t value) { return insert(key, hash(key), value); }

  // Calls fn(key, value) for every entry, in slot order (not insertion order).
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.hash) fn(std::string_view(arena_.data() + s.offset, s.len), s.value);
  }

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    arena_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, len = 0, value = 0;
  };
  static uint64_t mix(uint64_t x) {
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
  }
  static size_t capacity_for(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
  }
  void place(const Slot& s) {
    size_t i = s.hash & mask_;
    while (slots_[i].hash != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
  void rehash(size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (const Slot& s : old)
      if (s.hash) place(s);
  }

  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0, mask_ = 0;
};

}  // namespace kervan
