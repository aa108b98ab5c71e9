#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/state.h"

namespace kervan {

// Resharding arithmetic on TensorSlice, independent of files and layouts: which elements two
// slices of one global tensor share, and where each sits in either slice's own data. A checkpoint
// saved under one (DP, TP, ZeRO) layout loads under another by copying, for every slice a rank
// needs, the overlap with every saved slice.

// A box of the global tensor that a slice stores contiguously (row-major) from element
// `local_begin` of its data.
struct StoredBox {
  int64_t local_begin = 0;
  std::vector<int64_t> offsets;  // in the global tensor
  Shape box;
};

// A slice's elements as boxes, each contiguous in the slice's own row-major order: the slice's box
// itself when the slice is all of it, and for a flat part (a ZeRO-1 chunk) at most 2 * dims - 1
// boxes: a partial innermost row, whole rows, ..., a partial innermost row.
std::vector<StoredBox> stored_boxes(const TensorSlice& slice);

// `count` runs of `block` elements: run k starts at src_begin + k * src_stride in the source's data
// and at dst_begin + k * dst_stride in the destination's.
struct StridedCopy {
  int64_t src_begin = 0, dst_begin = 0;
  int64_t block = 0, count = 0;
  int64_t src_stride = 0, dst_stride = 0;
  int64_t numel() const { return block * count; }
  bool operator==(const StridedCopy&) const = default;
};

// The elements of `dst` that `src` also holds, as copies from src's data into dst's. Both must be
// slices of the same global shape (checked by the caller, which names the tensor). Each copy is a
// regular pattern; within one copy and across copies, source and destination offsets grow with the
// global index, so the copies may be applied in any order or merged into one selection.
std::vector<StridedCopy> overlap(const TensorSlice& dst, const TensorSlice& src);

// Elements the copies move in all.
int64_t copied_elements(const std::vector<StridedCopy>& copies);

// Applies copies between host buffers of `element_size`-byte elements.
void apply_copies(const std::vector<StridedCopy>& copies, const void* src, void* dst, size_t element_size);

}  // namespace kervan
