#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kervan {

// Element types a tensor can hold. Kernels compute in F32; F64 carries reductions that must not
// lose precision across ranks (the global gradient norm); BF16 is reserved for device storage and
// no CPU kernel takes it.
enum class DType : uint8_t { F32, F64, BF16, I32, U16 };

enum class Device : uint8_t { CPU, CUDA };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::U16:
      return 2;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
    case DType::U16:
      return "u16";
  }
  return "?";
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::U16;
}

}  // namespace kervan
