#include "checkpoint/slice_overlap.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kervan {

namespace {

// Row-major index of `coords - origin` in a box of extents `box`.
int64_t index_in(const std::vector<int64_t>& coords, const std::vector<int64_t>& origin, const Shape& box) {
  int64_t index = 0;
  for (size_t d = 0; d < box.size(); ++d) index = index * box[d] + (coords[d] - origin[d]);
  return index;
}

// The copies that move the box [lo, lo + ext) from `s` to `d` (both hold all of it): one strided
// copy over the two innermost dimensions per index of the outer ones.
void emit_copies(const StoredBox& d, const StoredBox& s, const std::vector<int64_t>& lo, const Shape& ext,
                 std::vector<StridedCopy>& out) {
  const size_t n = ext.size();
  if (n == 0) {  // a scalar
    out.push_back({s.local_begin, d.local_begin, 1, 1, 1, 1});
    return;
  }
  const size_t inner = n - 1;
  const int64_t block = ext[inner], count = n >= 2 ? ext[inner - 1] : 1;
  const int64_t src_stride = n >= 2 ? s.box[inner] : block, dst_stride = n >= 2 ? d.box[inner] : block;
  // Odometer over the dimensions outside the innermost two.
  const size_t outer = n >= 2 ? n - 2 : 0;
  std::vector<int64_t> coord = lo;
  while (true) {
    StridedCopy c{s.local_begin + index_in(coord, s.offsets, s.box),
                  d.local_begin + index_in(coord, d.offsets, d.box),
                  block,
                  count,
                  src_stride,
                  dst_stride};
    if (c.count == 1 || (c.block == c.src_stride && c.block == c.dst_stride)) {
      c.block *= c.count;  // whole rows on both sides: one contiguous run
      c.count = 1;
      c.src_stride = c.dst_stride = c.block;
    }
    out.push_back(c);
    size_t k = outer;
    while (k > 0) {
      --k;
      if (++coord[k] < lo[k] + ext[k]) break;
      coord[k] = lo[k];
      if (k == 0) return;
    }
    if (outer == 0) return;
  }
}

}  // namespace

std::vector<StoredBox> stored_boxes(const TensorSlice& slice) {
  const Shape& box = slice.box;
  const size_t n = box.size();
  if (slice.flat_begin == 0 && slice.flat_count == shape_numel(box)) return {{0, slice.offsets, box}};
  std::vector<int64_t> stride(n, 1);
  for (size_t d = n; d-- > 1;) stride[d - 1] = stride[d] * box[d];
  std::vector<StoredBox> out;
  const int64_t end = slice.flat_begin + slice.flat_count;
  int64_t pos = slice.flat_begin;
  while (pos < end) {
    std::vector<int64_t> c(n);
    int64_t rest = pos;
    for (size_t d = 0; d < n; ++d) {
      c[d] = rest / stride[d];
      rest %= stride[d];
    }
    // `pos` starts a whole block of dimension k0 and everything inside it (c[k0+1..] are 0); take
    // as many such blocks as fit, else fall back to smaller ones.
    size_t k0 = n - 1;
    while (k0 > 0 && c[k0] == 0) --k0;
    for (size_t k = k0; k < n; ++k) {
      const int64_t fit = std::min(box[k] - c[k], (end - pos) / stride[k]);
      if (fit < 1) continue;
      StoredBox b;
      b.local_begin = pos - slice.flat_begin;
      b.offsets.resize(n);
      b.box.resize(n);
      for (size_t d = 0; d < n; ++d) {
        b.offsets[d] = slice.offsets[d] + c[d];
        b.box[d] = d < k ? 1 : d == k ? fit : box[d];
      }
      out.push_back(std::move(b));
      pos += fit * stride[k];
      break;
    }
  }
  return out;
}

std::vector<StridedCopy> overlap(const TensorSlice& dst, const TensorSlice& src) {
  KERVAN_CHECK(dst.global_shape == src.global_shape, "overlap of slices of different tensors");
  std::vector<StridedCopy> out;
  if (dst.flat_count == 0 || src.flat_count == 0) return out;
  const std::vector<StoredBox> dst_boxes = stored_boxes(dst), src_boxes = stored_boxes(src);
  const size_t n = dst.global_shape.size();
  std::vector<int64_t> lo(n);
  Shape ext(n);
  for (const StoredBox& d : dst_boxes) {
    for (const StoredBox& s : src_boxes) {
      bool empty = false;
      for (size_t k = 0; k < n && !empty; ++k) {
        lo[k] = std::max(d.offsets[k], s.offsets[k]);
        ext[k] = std::min(d.offsets[k] + d.box[k], s.offsets[k] + s.box[k]) - lo[k];
        empty = ext[k] <= 0;
      }
      if (!empty) emit_copies(d, s, lo, ext, out);
    }
  }
  return out;
}

int64_t copied_elements(const std::vector<StridedCopy>& copies) {
  int64_t n = 0;
  for (const StridedCopy& c : copies) n += c.numel();
  return n;
}

void apply_copies(const std::vector<StridedCopy>& copies, const void* src, void* dst, size_t element_size) {
  const auto* from = static_cast<const char*>(src);
  auto* to = static_cast<char*>(dst);
  for (const StridedCopy& c : copies)
    for (int64_t k = 0; k < c.count; ++k)
      std::memcpy(to + (c.dst_begin + k * c.dst_stride) * element_size,
                  from + (c.src_begin + k * c.src_stride) * element_size, c.block * element_size);
}

}  // namespace kervan
