"""Writes the host-emulation source of core/cuda/attention_flash.cu: the kernels' own text, without
the CUDA includes and the host launch code, after shim.h (which stands in for CUDA) and before
driver.inc (the problems and the reference). Usage: generate.py REPO_ROOT OUT_FILE"""
import re
import sys

root, out_path = sys.argv[1], sys.argv[2]
src = open(f"{root}/core/cuda/attention_flash.cu").read()
hdr = open(f"{root}/core/cuda/attention_flash.h").read()
red = open(f"{root}/core/cuda/reduce.cuh").read()


def strip(s):
    return "\n".join(l for l in s.split("\n") if not l.startswith("#include") and not l.startswith("#pragma once"))


# The kernels end where the host code that launches them starts.
body = strip(src[: src.index("std::string problem_str")])
body = body.replace("extern __shared__ __align__(128) unsigned char smem[];", "unsigned char* smem = emu_smem;")
assert body.count("emu_smem") == 3, "the three kernels' shared-memory declarations changed"
hdr = re.sub(r"void flash_attention_(forward|backward)\(.*?\);", "", strip(hdr), flags=re.S)
parts = ['#include "shim.h"', "#include <cfloat>", "#define KERVAN_DEVICE_ASSERT(c) assert(c)",
         "alignas(128) unsigned char emu_smem[256 * 1024];", hdr, strip(red), body,
         "}  // namespace", "}  // namespace kervan::cuda", '#include "driver.inc"']
open(out_path, "w").write("\n".join(parts) + "\n")
