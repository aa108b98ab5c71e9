#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kervan {

// A block of device memory. Backends allocate it; tensors share it through views.
class Storage {
 public:
  Storage(void* data, size_t bytes, Device device, void (*release)(void*))
      : data_(data), bytes_(bytes), device_(device), release_(release) {}
  ~Storage() { release_(data_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t bytes_;
  Device device_;
  void (*release_)(void*);
};

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);

// shape + dtype + device + storage. Always contiguous (row-major); a view is a byte offset into
// shared storage with its own shape. Copying a Tensor copies the handle, not the data.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, size_t offset_bytes, Shape shape, DType dtype);

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t bytes() const { return numel_ * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::CPU; }
  bool defined() const { return storage_ != nullptr; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <typename T>
  T* data() const {
    check_type(dtype_of<T>());
    return static_cast<T*>(raw());
  }

  // Same storage, new shape with the same number of elements.
  Tensor view(Shape shape) const;
  // Elements [start, start + count) of the flattened tensor, shaped as `shape`.
  Tensor slice_flat(int64_t start, Shape shape) const;
  // Rows [begin, end) along the first dimension.
  Tensor rows(int64_t begin, int64_t end) const;

 private:
  void check_type(DType want) const;

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

// Whether the bytes of a and b overlap (the "must not alias" checks of the kernels).
bool overlaps(const Tensor& a, const Tensor& b);

}  // namespace kervan
