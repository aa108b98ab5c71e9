// The CUDA backend's bf16 matmul (core/cuda/matmul_bf16.cu) against the CPU backend's fp32 matmul,
// on fresh random inputs at shapes odd and even, every transpose pairing, several alpha and beta.
// Two references, two bounds on ||gpu - ref|| / ||ref||:
//   - the fp32 product of the inputs as given: rounding to bf16's 8 significant bits is a relative
//     error of at most 2^-8 per operand (3.9e-3), about 1.6e-3 on average, so about 2e-3 in the
//     norm for two operands on random data and at most 7.8e-3 for a single product; METHOD.md's band
//     for bf16 operands is 1e-3 to 1e-2. Required: under 1e-2, and over 1e-4 where the output has at
//     least 64 elements (enough rounding errors for the norm to settle near 2e-3), so that a product
//     that silently stayed fp32 (1e-6) fails too;
//   - the fp32 product of the inputs rounded to bf16 on the host (round to nearest even): the same
//     operands the tensor cores see, so only the order of fp32 sums differs. Required: under 1e-4
//     (the fp32 GEMM's bound, 1e-5, with room for the tensor cores' own accumulation); a cast that
//     truncated instead would land near 2e-3.
// The output lies between two sentinel rows of a larger buffer (an offset of n floats, so the output
// is aligned to as little as 4 bytes when n is odd), which must come back untouched; with beta = 0
// it starts as NaN, which must not leak into the result.
#include <cstring>

#include "gpu_test.h"

namespace kervan::gpu_test {
namespace {

constexpr double kBf16Upper = 1e-2, kBf16Lower = 1e-4, kSameOperands = 1e-4;
constexpr float kSentinel = 1234.5f;

// bf16(x), round to nearest even, as __float2bfloat16_rn does (NaN stays NaN).
float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return x;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = round_bf16(x);
  return v;
}

// ||got - want|| / ||want|| in double; infinity on any non-finite value.
double rel(const std::vector<float>& got, const std::vector<float>& want) {
  double d2 = 0, w2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return std::numeric_limits<double>::infinity();
    d2 += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    w2 += static_cast<double>(want[i]) * want[i];
  }
  return w2 == 0 ? std::sqrt(d2) : std::sqrt(d2 / w2);
}

TEST(Bf16Rounding, HostReferenceRoundsToNearestEven) {
  EXPECT_EQ(round_bf16(1.0f), 1.0f);
  // bf16 keeps 8 significant bits: neighbours of 1 are 2^-7 apart.
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);                // a tie, down to the even neighbour
  EXPECT_EQ(round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);  // a tie, up to the even one
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
  EXPECT_EQ(round_bf16(-1.0f - 0x1p-9f), -1.0f);
  EXPECT_TRUE(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
}

TEST_F(GpuTest, MatmulBf16AgainstFp32) {
  gpu->set_precision(Precision::BF16);
  struct Case {
    int64_t m, k, n;
  };
  int compared = 0;
  for (const Case c : {Case{1, 1, 1}, Case{3, 7, 5}, Case{7, 1, 129}, Case{1, 768, 1000}, Case{129, 1000, 7},
                       Case{1000, 129, 257}, Case{64, 768, 2304}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto [alpha, beta] : {std::pair{0.5f, 0.0f}, {1.0f, 1.0f}, {-1.5f, 0.75f}}) {
          const std::string what = shape_name({c.m, c.k, c.n}) + " ta " + std::to_string(ta) + " tb " +
                                   std::to_string(tb) + " alpha " + std::to_string(alpha) + " beta " +
                                   std::to_string(beta);
          const Shape as = ta ? Shape{c.k, c.m} : Shape{c.m, c.k},
                      bs = tb ? Shape{c.n, c.k} : Shape{c.k, c.n};
          const std::vector<float> av = normal(shape_numel(as)), bv = normal(shape_numel(bs));
          const std::vector<float> y0 =
              beta == 0.0f ? std::vector<float>(c.m * c.n, std::numeric_limits<float>::quiet_NaN())
                           : normal(c.m * c.n);
          // The references on the CPU: the inputs as given, and rounded to bf16.
          std::vector<std::vector<float>> refs;
          for (bool round : {false, true}) {
            Tensor a = cpu->empty(as, DType::F32), b = cpu->empty(bs, DType::F32),
                   y = cpu->empty({c.m, c.n}, DType::F32);
            cpu->copy_from_host(a, (round ? rounded(av) : av).data());
            cpu->copy_from_host(b, (round ? rounded(bv) : bv).data());
            cpu->copy_from_host(y, y0.data());
            cpu->matmul(y, a, ta, b, tb, alpha, beta);
            refs.push_back(cpu->to_host<float>(y));
          }
          // The GPU: y is rows [1, m] of an [m + 2, n] buffer whose first and last rows are sentinels.
          Tensor a = gpu->empty(as, DType::F32), b = gpu->empty(bs, DType::F32);
          gpu->copy_from_host(a, av.data());
          gpu->copy_from_host(b, bv.data());
          std::vector<float> framed(c.n, kSentinel);
          framed.insert(framed.end(), y0.begin(), y0.end());
          framed.insert(framed.end(), c.n, kSentinel);
          Tensor buf = gpu->empty({c.m + 2, c.n}, DType::F32);
          gpu->copy_from_host(buf, framed.data());
          Tensor y = buf.rows(1, c.m + 1);
          gpu->matmul(y, a, ta, b, tb, alpha, beta);
          const std::vector<float> all = gpu->to_host<float>(buf);
          const std::vector<float> got(all.begin() + c.n, all.end() - c.n);
          for (int64_t j = 0; j < c.n; ++j) {
            ASSERT_EQ(all[j], kSentinel) << "the row before the output was written: " << what;
            ASSERT_EQ(all[all.size() - 1 - j], kSentinel) << "the row after the output was written: " << what;
          }
          const double err = rel(got, refs[0]), same = rel(got, refs[1]);
          EXPECT_LT(err, kBf16Upper) << what;
          if (c.m * c.n >= 64) {
            EXPECT_GT(err, kBf16Lower) << "not rounded to bf16? " << what;
          }
          EXPECT_LT(same, kSameOperands) << "operands rounded otherwise than to nearest even? " << what;
          ++compared;
        }
  EXPECT_EQ(compared, 7 * 4 * 3);
}

// The product's plan is cached per shape: the same shapes again, with other values, and then the
// fp32 path once more, each still right.
TEST_F(GpuTest, MatmulBf16RepeatsAndSwitchesBackToFp32) {
  for (Precision p : {Precision::BF16, Precision::BF16, Precision::F32}) {
    gpu->set_precision(p);
    Twin a = rand({257, 33}), b = rand({1000, 33}), y = poisoned({257, 1000});
    cpu->matmul(y.cpu, a.cpu, false, b.cpu, true, 1.0f, 0.0f);
    gpu->matmul(y.gpu, a.gpu, false, b.gpu, true, 1.0f, 0.0f);
    EXPECT_LT(rel_err(y), p == Precision::BF16 ? kBf16Upper : 1e-5) << precision_name(p);
    if (p == Precision::BF16) {
      EXPECT_GT(rel_err(y), kBf16Lower);
    }
  }
}

// Backend::linear_backward rounds dy once for both products at bf16 (CudaBackend's override): the
// same roundings and the same cached algorithms as two matmul calls, so the same bits; and against
// the CPU within the bf16 bound. Shapes: a layer (odd widths, the workspace grown by the pair's
// larger second operand) and an LM head's (alpha != 1, dw accumulating), then a call without dx.
TEST_F(GpuTest, LinearBackwardRoundsDyOnceAndEqualsTwoProducts) {
  gpu->set_precision(Precision::BF16);
  struct Case {
    int64_t N, in, out;
    float alpha;
    bool with_dx;
  };
  for (const Case c : {Case{129, 33, 1000, 1.0f, true}, Case{64, 96, 515, 0.5f, true}, Case{7, 40, 24, 1.0f, false}}) {
    SCOPED_TRACE("N " + std::to_string(c.N) + " in " + std::to_string(c.in) + " out " + std::to_string(c.out));
    Twin dy = rand({c.N, c.out}), x = rand({c.N, c.in}), w = rand({c.out, c.in});
    const std::vector<float> dw0 = normal(c.out * c.in);
    Twin dw = from_host({c.out, c.in}, dw0), dx = poisoned({c.N, c.in});
    Tensor dw_apart = gpu->empty({c.out, c.in}, DType::F32), dx_apart = gpu->empty({c.N, c.in}, DType::F32);
    gpu->copy_from_host(dw_apart, dw0.data());
    cpu->linear_backward(dw.cpu, c.with_dx ? &dx.cpu : nullptr, dy.cpu, x.cpu, w.cpu, c.alpha, 1.0f);
    gpu->linear_backward(dw.gpu, c.with_dx ? &dx.gpu : nullptr, dy.gpu, x.gpu, w.gpu, c.alpha, 1.0f);
    gpu->matmul(dw_apart, dy.gpu, true, x.gpu, false, c.alpha, 1.0f);
    EXPECT_EQ(gpu->to_host<float>(dw.gpu), gpu->to_host<float>(dw_apart));
    EXPECT_LT(rel_err(dw), kBf16Upper);
    if (c.with_dx) {
      gpu->matmul(dx_apart, dy.gpu, false, w.gpu, false, c.alpha, 0.0f);
      EXPECT_EQ(gpu->to_host<float>(dx.gpu), gpu->to_host<float>(dx_apart));
      EXPECT_LT(rel_err(dx), kBf16Upper);
      EXPECT_GT(rel_err(dx), kBf16Lower);
    }
  }
}

}  // namespace
}  // namespace kervan::gpu_test
