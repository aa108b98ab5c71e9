// Resharding arithmetic (checkpoint/slice_overlap.h) against brute force: for random slices of
// random global tensors, the strided copies must move exactly the shared elements, each from its
// place in the source slice to its place in the destination slice.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "checkpoint/slice_overlap.h"

namespace kervan {
namespace {

// A random box of `global`, or a random flat part of one.
TensorSlice random_slice(std::mt19937& rng, const Shape& global, bool flat_part) {
  TensorSlice s;
  s.global_shape = global;
  for (int64_t extent : global) {
    const int64_t a = std::uniform_int_distribution<int64_t>(0, extent - 1)(rng);
    const int64_t b = std::uniform_int_distribution<int64_t>(a + 1, extent)(rng);
    s.offsets.push_back(a);
    s.box.push_back(b - a);
  }
  const int64_t n = shape_numel(s.box);
  s.flat_count = n;
  if (flat_part) {
    s.flat_begin = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
    s.flat_count = std::uniform_int_distribution<int64_t>(1, n - s.flat_begin)(rng);
  }
  return s;
}

// Global index -> position in the slice's data, for every element of the slice.
std::map<int64_t, int64_t> positions(const TensorSlice& s) {
  std::map<int64_t, int64_t> m;
  for (int64_t i = 0; i < s.flat_count; ++i) m[s.global_index(i)] = i;
  return m;
}

TEST(SliceOverlap, StoredBoxesAreContiguousAndCoverTheSliceInOrder) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 500; ++trial) {
    const int dims = 1 + trial % 3;
    Shape global;
    for (int d = 0; d < dims; ++d) global.push_back(std::uniform_int_distribution<int64_t>(1, 7)(rng));
    const TensorSlice s = random_slice(rng, global, trial % 2 == 1);
    const std::vector<StoredBox> boxes = stored_boxes(s);
    ASSERT_LE(boxes.size(), static_cast<size_t>(2 * dims - 1)) << s.describe();
    int64_t local = 0;
    for (const StoredBox& b : boxes) {
      ASSERT_EQ(b.local_begin, local) << s.describe();
      const TensorSlice as_slice{global, b.offsets, b.box, 0, shape_numel(b.box)};
      for (int64_t i = 0; i < as_slice.flat_count; ++i)
        ASSERT_EQ(as_slice.global_index(i), s.global_index(local + i)) << s.describe();
      local += shape_numel(b.box);
    }
    EXPECT_EQ(local, s.flat_count) << s.describe();
  }
}

TEST(SliceOverlap, CopiesMoveExactlyTheSharedElements) {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 2000; ++trial) {
    const int dims = 1 + trial % 3;
    Shape global;
    for (int d = 0; d < dims; ++d) global.push_back(std::uniform_int_distribution<int64_t>(1, 6)(rng));
    const TensorSlice dst = random_slice(rng, global, trial % 4 >= 2),
                      src = random_slice(rng, global, trial % 2);
    // Source data: each element holds its global index; destination starts at -1.
    std::vector<float> src_data(src.flat_count), dst_data(dst.flat_count, -1.0f);
    for (int64_t i = 0; i < src.flat_count; ++i) src_data[i] = static_cast<float>(src.global_index(i));
    const std::vector<StridedCopy> copies = overlap(dst, src);
    apply_copies(copies, src_data.data(), dst_data.data(), sizeof(float));

    const std::map<int64_t, int64_t> in_src = positions(src);
    int64_t shared = 0;
    for (int64_t i = 0; i < dst.flat_count; ++i) {
      const int64_t g = dst.global_index(i);
      const float want = in_src.count(g) ? static_cast<float>(g) : -1.0f;
      shared += in_src.count(g);
      ASSERT_EQ(dst_data[i], want) << "dst " << dst.describe() << " src " << src.describe() << " element "
                                   << i;
    }
    EXPECT_EQ(copied_elements(copies), shared) << "each shared element is copied once";
    // Offsets grow on both sides (what lets a reader merge the copies into one selection).
    int64_t last_src = -1, last_dst = -1;
    for (const StridedCopy& c : copies) {
      ASSERT_GE(c.src_stride, c.block);
      ASSERT_GE(c.dst_stride, c.block);
      ASSERT_GT(c.src_begin, last_src);
      ASSERT_GT(c.dst_begin, last_dst);
      last_src = c.src_begin + (c.count - 1) * c.src_stride + c.block - 1;
      last_dst = c.dst_begin + (c.count - 1) * c.dst_stride + c.block - 1;
    }
  }
}

TEST(SliceOverlap, ColumnShardsOfAMatrixAreOneStridedCopy) {
  // [4, 6] split into column halves; the right half of TP=2 against the middle third of TP=3.
  const Shape g{4, 6};
  const TensorSlice tp2{g, {0, 3}, {4, 3}, 0, 12}, tp3{g, {0, 2}, {4, 2}, 0, 8};
  const std::vector<StridedCopy> c = overlap(tp3, tp2);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], (StridedCopy{0, 1, 1, 4, 3, 2}));  // column 3: row r at src 3r, dst 2r + 1
  // Row shards of full rows merge into one contiguous run.
  const TensorSlice rows01{g, {0, 0}, {2, 6}, 0, 12}, whole = TensorSlice::whole(g);
  const std::vector<StridedCopy> r = overlap(whole, rows01);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (StridedCopy{0, 0, 12, 1, 12, 12}));
}

}  // namespace
}  // namespace kervan
