#include "core/tensor.h"

#include "core/error.h"

namespace kervan {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Tensor::Tensor(std::shared_ptr<Storage> storage, size_t offset_bytes, Shape shape, DType dtype)
    : storage_(std::move(storage)),
      offset_(offset_bytes),
      shape_(std::move(shape)),
      numel_(shape_numel(shape_)),
      dtype_(dtype) {
  KERVAN_CHECK(offset_ + bytes() <= storage_->bytes(),
               "tensor " + shape_str(shape_) + " overruns its storage");
}

Tensor Tensor::view(Shape shape) const {
  KERVAN_CHECK(shape_numel(shape) == numel_, "view " + shape_str(shape) + " of " + shape_str(shape_));
  return Tensor(storage_, offset_, std::move(shape), dtype_);
}

Tensor Tensor::slice_flat(int64_t start, Shape shape) const {
  KERVAN_CHECK(start >= 0 && start + shape_numel(shape) <= numel_, "slice out of range");
  return Tensor(storage_, offset_ + start * dtype_size(dtype_), std::move(shape), dtype_);
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  KERVAN_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "rows out of range");
  Shape s = shape_;
  s[0] = end - begin;
  return slice_flat(begin * (numel_ / std::max<int64_t>(shape_[0], 1)), s);
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.bytes() == 0 || b.bytes() == 0) return false;
  const char* pa = static_cast<const char*>(a.raw());
  const char* pb = static_cast<const char*>(b.raw());
  return pa < pb + b.bytes() && pb < pa + a.bytes();
}

void Tensor::check_type(DType want) const {
  KERVAN_CHECK(dtype_ == want, "tensor holds " + std::string(dtype_name(dtype_)) + ", accessed as " +
                                   std::string(dtype_name(want)));
}

}  // namespace kervan
