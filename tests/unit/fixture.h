#pragma once
// Reader for the .kvfx parity fixtures written by tests/fixtures/make_gpt_fixture.py:
// "KVFX0001", uint32 count, then per entry: uint32 name length, name, uint32 dtype (0 f32, 1 i32),
// uint32 ndim, int64 dims[ndim], raw little-endian data.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace kervan::test {

struct FixtureEntry {
  std::vector<int64_t> dims;
  std::vector<float> f32;
  std::vector<int32_t> i32;
};

inline std::map<std::string, FixtureEntry> read_fixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open fixture " + path);
  auto read = [&](void* p, size_t n) {
    in.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (!in) throw std::runtime_error("truncated fixture " + path);
  };
  char magic[8];
  read(magic, 8);
  if (std::memcmp(magic, "KVFX0001", 8) != 0) throw std::runtime_error("bad fixture magic in " + path);
  uint32_t count;
  read(&count, 4);
  std::map<std::string, FixtureEntry> out;
  for (uint32_t e = 0; e < count; ++e) {
    uint32_t len, dtype, ndim;
    read(&len, 4);
    std::string name(len, '\0');
    read(name.data(), len);
    read(&dtype, 4);
    read(&ndim, 4);
    FixtureEntry entry;
    entry.dims.resize(ndim);
    read(entry.dims.data(), 8 * ndim);
    int64_t n = 1;
    for (int64_t d : entry.dims) n *= d;
    if (dtype == 0) {
      entry.f32.resize(n);
      read(entry.f32.data(), 4 * n);
    } else {
      entry.i32.resize(n);
      read(entry.i32.data(), 4 * n);
    }
    out.emplace(std::move(name), std::move(entry));
  }
  return out;
}

}  // namespace kervan::test
