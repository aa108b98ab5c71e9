#pragma once
// XXH3-64 compiled into the including file instead of called from libxxhash. Debian builds the
// library for baseline x86-64 (SSE2) without its runtime dispatch; inlined, XXH3 uses the AVX2
// this project compiles for (KERVAN_MARCH): a 2,050-byte window hashes in 55-80 ns instead of
// 170-195 ns on the bench machine. The digests are the same (XXH3's output does not depend on
// the instruction set). For the per-piece checksums of fetched token data, which both the
// coordinator and every worker compute on every fetch (`perf`: 9.5% of a loaded coordinator),
// and a checkpoint's per-tensor and per-file checksums (gpt2-small: the background writer's CPU
// 0.54-0.57 -> 0.45-0.46 s per save).
#define XXH_INLINE_ALL
#include <xxhash.h>
