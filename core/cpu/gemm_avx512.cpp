#include "core/cpu/gemm_avx512.h"

// GCC 12 warns that _mm512_undefined_ps's deliberately undefined value is uninitialised when the
// intrinsics are used under a target attribute rather than -mavx512f; the warning is about the
// header's idiom, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu/cpu_backend.h"

// A blocked GEMM in the manner of BLIS/GotoBLAS, for CPUs with AVX-512. Threads first split C
// into a grid of blocks (gemm_block, one per thread, no barriers); each block is then
//
//   for jc over its columns in kNC           (B panel kKC x kNC, packed, in L2)
//     for pc over k in kKC                   (one rank-kKC update of C)
//       pack B[pc:pc+kc, jc:jc+nc] into kNR-column micro-panels
//       for ib over its rows in kMC
//         pack A[ib:ib+mc, pc:pc+kc] into kMR-row micro-panels
//         for q over B's micro-panels, ir over A's: C[ir, q] += A_ir * B_q   (micro-kernel)
//
// The micro-kernel keeps a kMR x kNR tile of C in 24 zmm registers; per k it loads one row of the
// B micro-panel (three zmm) and broadcasts kMR values of A. The B micro-panel (kKC x kNR, 48 KB)
// stays in L1 while the kMC x kKC block of A streams from L2. No loop splits k, so each element of
// C is summed over k in one order whatever the thread count. A product of few rows with B^T skips
// packing altogether (dot_tile, below).
namespace kervan {
namespace {

constexpr int kMR = 8;
constexpr int kNR = 48;
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 64;
constexpr int64_t kNC = 3072;
// A product of few rows with B^T goes through dot products of kDotTile x kDotTile (no packing):
// up to kSmallM rows always, up to kStreamM rows when B^T has at least kStreamB elements (more than
// the last-level cache: packing it would stream it from memory twice more). Measured here, against
// the packed kernel: 1.7-3.5x at 1 to 4 rows; slower from about 8 rows on a B^T that fits in
// cache (the lane sums cost more than the packing saves), faster on an output layer's 50257 x 768.
constexpr int64_t kSmallM = 4;
constexpr int64_t kStreamM = 16;
constexpr int64_t kStreamB = int64_t{8} << 20;
constexpr int kDotTile = 4;

#define KERVAN_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

KERVAN_AVX512 inline __mmask16 mask_first(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Transposes a 16 x 16 block held as 16 rows: afterwards r[c] holds what was column c.
// Three rounds: pairs of floats (unpack), 4 x 4 blocks within 128-bit lanes (shuffle), then lanes.
KERVAN_AVX512 void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // Lane l of r[4i + c] now holds column 4l + c of rows 4i..4i+3.
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88),
                 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    const __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    t[8 + c] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    t[4 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Reads up to 16 x 16 of a row-major source (rows x cols valid, the rest read as zero), transposed:
// r[c] holds source column c.
KERVAN_AVX512 void load_transposed(__m512 r[16], const float* src, int64_t ld, int rows, int cols) {
  const __mmask16 m = mask_first(cols);
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + i * ld) : _mm512_setzero_ps();
  transpose16(r);
}

// C[0:rows, 0:cols] = alpha * (A_panel * B_panel) + beta * C, for one kMR x kNR tile.
// a: kc x kMR (k-major), b: kc rows of kNR floats, zero-padded beyond rows/cols.
// read_c = false means beta is 0 and C is not read.
KERVAN_AVX512 void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                                int64_t ldc, int rows, int cols, float alpha, float beta, bool read_c) {
  __m512 acc[kMR][3];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) acc[i][j] = _mm512_setzero_ps();

  // The tile of C is read (or written) only after the loop; fetching it now hides that miss.
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; j += 16)
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + j), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(ai, b2, acc[i][2]);
    }
    a += kMR;
    b += kNR;
  }

  const __mmask16 mask[3] = {mask_first(cols), mask_first(cols - 16), mask_first(cols - 32)};
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) {
    if (i >= rows) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) {
      __m512 r = _mm512_mul_ps(acc[i][j], valpha);
      if (read_c) r = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask[j], ci + 16 * j), r);
      _mm512_mask_storeu_ps(ci + 16 * j, mask[j], r);
    }
  }
}

// Element (i, p) of op(A) is a[i*lda + p], or a[p*lda + i] when transposed; likewise op(B)'s (p, j).
struct Operand {
  const float* data;
  int64_t ld;
  bool trans;
};

// Packs op(A)[i0:i0+mc, p0:p0+kc] into kMR-row micro-panels, each kc x kMR, rows past mc zero.
KERVAN_AVX512 void pack_a(float* __restrict dst, const Operand& a, int64_t i0, int64_t mc, int64_t p0,
                          int64_t kc) {
  for (int64_t ir = 0; ir < mc; ir += kMR) {
    const int rows = int(std::min<int64_t>(kMR, mc - ir));
    float* d = dst + ir * kc;
    if (a.trans) {
      const __mmask8 m = __mmask8(mask_first(rows));
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a.data + (p0 + p) * a.ld + i0 + ir;
        _mm256_storeu_ps(d + p * kMR, _mm256_maskz_loadu_ps(m, src));
      }
    } else {
      // Rows of A become columns of the panel: 16 values of k at a time, through a transpose.
      const float* src = a.data + (i0 + ir) * a.ld + p0;
      for (int64_t p = 0; p < kc; p += 16) {
        const int depth = int(std::min<int64_t>(16, kc - p));
        __m512 r[16];
        load_transposed(r, src + p, a.ld, rows, depth);
        for (int i = 0; i < depth; ++i) _mm256_storeu_ps(d + (p + i) * kMR, _mm512_castps512_ps256(r[i]));
      }
    }
  }
}

// Packs micro-panel q of op(B)[p0:p0+kc, j0:j0+nc] (columns j0 + q*kNR ...) as kc rows of kNR floats.
KERVAN_AVX512 void pack_b_panel(float* __restrict dst, const Operand& b, int64_t p0, int64_t kc, int64_t j0,
                                int64_t nc, int64_t q) {
  const int64_t jr = q * kNR;
  const int cols = int(std::min<int64_t>(kNR, nc - jr));
  float* d = dst + jr * kc;
  if (!b.trans) {
    const __mmask16 m[3] = {mask_first(cols), mask_first(cols - 16), mask_first(cols - 32)};
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b.data + (p0 + p) * b.ld + j0 + jr;
      for (int v = 0; v < 3; ++v)
        _mm512_store_ps(d + p * kNR + 16 * v, _mm512_maskz_loadu_ps(m[v], src + 16 * v));
    }
  } else {
    // op(B) = B^T: rows of B become columns of the panel, 16 x 16 at a time.
    for (int v = 0; v < 3; ++v) {
      const float* src = b.data + (j0 + jr + 16 * v) * b.ld + p0;
      const int rows = std::max(0, std::min(16, cols - 16 * v));
      for (int64_t p = 0; p < kc; p += 16) {
        const int depth = int(std::min<int64_t>(16, kc - p));
        __m512 r[16];
        load_transposed(r, src + p, b.ld, rows, depth);
        for (int i = 0; i < depth; ++i) _mm512_store_ps(d + (p + i) * kNR + 16 * v, r[i]);
      }
    }
  }
}

struct Problem {
  Operand a, b;
  int64_t k;
  float alpha, beta;
  float* c;
  int64_t ldc;
};

float* aligned_buffer(std::vector<float>& v, size_t floats) {
  if (v.size() < floats + 16) v.resize(floats + 16);
  auto addr = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - addr % 64) % 64) / sizeof(float);
}

// The product for the block C[i0:i0+m, j0:j0+n] on the calling thread alone, with its own packed
// copies of A and B: threads computing different blocks never wait for each other.
void gemm_block(const Problem& pr, int64_t i0, int64_t m, int64_t j0, int64_t n) {
  thread_local std::vector<float> abuf, bbuf;
  float* apack = aligned_buffer(abuf, size_t(kMC * kKC));
  float* bpack = aligned_buffer(bbuf, size_t(kKC * ((std::min(n, kNC) + kNR - 1) / kNR * kNR)));
  for (int64_t jc = j0; jc < j0 + n; jc += kNC) {
    const int64_t nc = std::min(kNC, j0 + n - jc);
    const int64_t panels = (nc + kNR - 1) / kNR;
    for (int64_t pc = 0; pc < pr.k; pc += kKC) {
      const int64_t kc = std::min(kKC, pr.k - pc);
      for (int64_t q = 0; q < panels; ++q) pack_b_panel(bpack, pr.b, pc, kc, jc, nc, q);
      const bool first = pc == 0;
      const bool read_c = !first || pr.beta != 0.0f;
      const float beta = first ? pr.beta : 1.0f;
      for (int64_t ib = i0; ib < i0 + m; ib += kMC) {
        const int64_t mc = std::min(kMC, i0 + m - ib);
        pack_a(apack, pr.a, ib, mc, pc, kc);
        for (int64_t q = 0; q < panels; ++q) {
          const int cols = int(std::min<int64_t>(kNR, nc - q * kNR));
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            float* c = pr.c + (ib + ir) * pr.ldc + jc + q * kNR;
            micro_kernel(kc, apack + ir * kc, bpack + q * kNR * kc, c, pr.ldc,
                         int(std::min<int64_t>(kMR, mc - ir)), cols, pr.alpha, beta, read_c);
          }
        }
      }
    }
  }
}

// Few rows of A against B^T (a linear layer's x W^T when decoding, an LSTM's h W_hh^T): each
// C[i, j] is the dot product of row i of A and row j of B, both contiguous in k, so nothing is
// packed (packing all of B for a handful of rows costs as much as the product). Up to 4 x 4 dot
// products at a time, each over 16 lanes of k, summed across the lanes at the end; rows and
// columns past the tile's edge load as zeros.
KERVAN_AVX512 void dot_tile(int64_t k, const float* a, int64_t lda, int rows, const float* b, int64_t ldb,
                            int cols, float* c, int64_t ldc, float alpha, float beta) {
  __m512 acc[kDotTile][kDotTile];
  for (int i = 0; i < kDotTile; ++i)
    for (int j = 0; j < kDotTile; ++j) acc[i][j] = _mm512_setzero_ps();
  // Rows past the edge read their tile's last row with an empty mask: a masked load from an address
  // outside the matrix can cost a microcode assist per load (fault suppression), ~10x the product.
  const float* arow[kDotTile];
  const float* brow[kDotTile];
  for (int i = 0; i < kDotTile; ++i) arow[i] = a + std::min(i, rows - 1) * lda;
  for (int j = 0; j < kDotTile; ++j) brow[j] = b + std::min(j, cols - 1) * ldb;
  for (int64_t p = 0; p < k; p += 16) {
    const __mmask16 depth = mask_first(k - p);
    __m512 bv[kDotTile];
    for (int j = 0; j < kDotTile; ++j) {
      bv[j] = _mm512_maskz_loadu_ps(j < cols ? depth : 0, brow[j] + p);
      // The next tile's rows: each row is a short stream the hardware prefetcher barely ramps up
      // on (3.5x on an output layer's 50257 x 768 with this line).
      _mm_prefetch(reinterpret_cast<const char*>(brow[j] + kDotTile * ldb + p), _MM_HINT_T0);
    }
    for (int i = 0; i < kDotTile; ++i) {
      const __m512 av = _mm512_maskz_loadu_ps(i < rows ? depth : 0, arow[i] + p);
      for (int j = 0; j < kDotTile; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float& out = c[i * ldc + j];
      const float dot = alpha * _mm512_reduce_add_ps(acc[i][j]);
      out = beta == 0.0f ? dot : dot + beta * out;
    }
}

// C[0:m, j0:j0+n] = alpha A B^T + beta C through dot_tile, on the calling thread.
void gemm_small_m(const Problem& pr, int64_t m, int64_t j0, int64_t n) {
  for (int64_t j = j0; j < j0 + n; j += kDotTile)
    for (int64_t i = 0; i < m; i += kDotTile)
      dot_tile(pr.k, pr.a.data + i * pr.a.ld, pr.a.ld, int(std::min<int64_t>(kDotTile, m - i)),
               pr.b.data + j * pr.b.ld, pr.b.ld, int(std::min<int64_t>(kDotTile, j0 + n - j)),
               pr.c + i * pr.ldc + j, pr.ldc, pr.alpha, pr.beta);
}

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const Problem pr{{a, lda, trans_a}, {b, ldb, trans_b}, k, alpha, beta, c, ldc};
  if (trans_b && !trans_a && (m <= kSmallM || (m <= kStreamM && n * k >= kStreamB))) {
    const int64_t tiles = (n + kDotTile - 1) / kDotTile;
    const int team = int(std::min<int64_t>(threads, tiles));
    if (team <= 1) {
      gemm_small_m(pr, m, 0, n);
      return;
    }
#pragma omp parallel for num_threads(team) schedule(static)
    for (int w = 0; w < team; ++w) {
      int64_t t0, t1;
      chunk_range(tiles, team, w, t0, t1);
      gemm_small_m(pr, m, t0 * kDotTile, std::min(n, t1 * kDotTile) - t0 * kDotTile);
    }
    return;
  }
  // Threads split C into a grid of blocks, columns first (in whole micro-panels), then rows (in
  // whole micro-tiles); each packs what its block needs, so there is no barrier to wait at.
  const int64_t panels = (n + kNR - 1) / kNR, tiles = (m + kMR - 1) / kMR;
  const int64_t across = std::min<int64_t>(threads, panels);
  const int64_t down = std::min<int64_t>(threads / across, tiles);
  if (across * down <= 1) {
    gemm_block(pr, 0, m, 0, n);
    return;
  }
#pragma omp parallel for num_threads(int(across * down)) schedule(static)
  for (int64_t w = 0; w < across * down; ++w) {
    int64_t p0, p1, t0, t1;
    chunk_range(panels, int(across), int(w % across), p0, p1);
    chunk_range(tiles, int(down), int(w / across), t0, t1);
    const int64_t j0 = p0 * kNR, i0 = t0 * kMR;
    gemm_block(pr, i0, std::min(m, t1 * kMR) - i0, j0, std::min(n, p1 * kNR) - j0);
  }
}

}  // namespace kervan
