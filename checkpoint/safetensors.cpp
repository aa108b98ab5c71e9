#include "checkpoint/safetensors.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kervan {

using nlohmann::json;

namespace {

float from_f16(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400u) == 0);
    bits = sign | ((112 - e) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float from_bf16(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, HostTensor>& tensors) {
  json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t n = text.size();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), static_cast<std::streamsize>(n));
  for (const auto& [name, t] : tensors)
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  out.close();
  if (!out) throw_io_error("'" + path + "'", "write", errno ? errno : EIO);
}

std::map<std::string, HostTensor> read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot read: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t n = 0;
  if (size < 8 || !in.read(reinterpret_cast<char*>(&n), 8) || n > size - 8)
    throw UserError(path + ": not a safetensors file (bad header length)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw UserError(path + ": not a safetensors file (header: " + e.what() + ")");
  }
  const uint64_t data_start = 8 + n;
  std::map<std::string, HostTensor> out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      const std::string dtype = info.at("dtype").get<std::string>();
      HostTensor t{info.at("shape").get<Shape>(), {}};
      const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      const uint64_t count = static_cast<uint64_t>(shape_numel(t.shape));
      const size_t width = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
      if (width == 0)
        throw UserError(path + ": tensor " + name + " is " + dtype + "; kervan reads F32, F16 and BF16");
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != count * width ||
          data_start + offsets[1] > size)
        throw UserError(path + ": tensor " + name +
                        ": data_offsets do not match its shape and the file size");
      std::vector<char> raw(offsets[1] - offsets[0]);
      in.seekg(static_cast<std::streamoff>(data_start + offsets[0]));
      if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size())))
        throw UserError(path + ": tensor " + name + ": cannot read its data");
      t.data.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        if (width == 4) {
          std::memcpy(&t.data[i], raw.data() + 4 * i, 4);
        } else {
          uint16_t h;
          std::memcpy(&h, raw.data() + 2 * i, 2);
          t.data[i] = dtype == "F16" ? from_f16(h) : from_bf16(h);
        }
      }
      out.emplace(name, std::move(t));
    } catch (const json::exception& e) {
      throw UserError(path + ": tensor " + name + ": " + e.what());
    }
  }
  return out;
}

}  // namespace kervan
