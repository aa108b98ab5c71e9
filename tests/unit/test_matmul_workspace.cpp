// The bf16 operand workspace's layout and the alignment cuBLASLt is told (core/matmul_workspace.h):
// host arithmetic that the CUDA backend allocates by and the memory plan counts by.
#include <gtest/gtest.h>

#include "core/matmul_workspace.h"

namespace kervan {
namespace {

TEST(MatmulWorkspace, CopiesStartAligned256AndDoNotOverlap) {
  struct Case {
    int64_t a, b;
  };
  for (const Case c :
       {Case{1, 1}, Case{7, 129}, Case{128, 128}, Case{129, 1000}, Case{16384 * 50304LL, 50304 * 768LL}}) {
    const Bf16OperandLayout l = bf16_operand_layout(c.a, c.b);
    EXPECT_EQ(l.b_offset % kMatmulOperandAlign, 0) << c.a;
    EXPECT_GE(l.b_offset, 2 * c.a) << c.a;                        // a's copy ends before b's begins
    EXPECT_LT(l.b_offset, 2 * c.a + kMatmulOperandAlign) << c.a;  // with less than one granule between
    EXPECT_GE(l.bytes, l.b_offset + 2 * c.b) << c.b;
    EXPECT_LT(l.bytes, l.b_offset + 2 * c.b + kMatmulOperandAlign) << c.b;
    EXPECT_EQ(l.bytes % kMatmulOperandAlign, 0);
  }
  // 128 bf16 values are exactly one 256-byte granule: b follows with no gap.
  EXPECT_EQ(bf16_operand_layout(128, 1).b_offset, 256);
  EXPECT_EQ(bf16_operand_layout(128, 1).bytes, 512);
}

TEST(MatmulWorkspace, AddressAlignmentIsTheLargestPowerOfTwoUpTo256) {
  EXPECT_EQ(address_alignment(0x7f0000000000), 256);  // a cudaMalloc'd block
  EXPECT_EQ(address_alignment(0x7f0000000000 + 512), 256);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 128), 128);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 4 * 7), 4);  // a view 7 floats in
  EXPECT_EQ(address_alignment(0x7f0000000000 + 4 * 6), 8);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 16 * 3), 16);
  EXPECT_EQ(address_alignment(2), 2);
}

}  // namespace
}  // namespace kervan
