#!/usr/bin/env bash
# `kervan ckpt` through the binary: import the llm.c and Hugging Face fixtures (the same PyTorch
# weights), inspect, verify, export both ways; an llm.c file exported from the imported HF folder
# is byte-identical to the fixture llm.c file. A flipped byte makes verify exit 1 naming the file
# and the tensor; bad inputs exit 2 naming the path and change nothing.
set -uo pipefail
kervan=${1:?usage: ckpt_tools.sh path/to/kervan}
fixtures="$(cd "$(dirname "$0")/../fixtures" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

"$kervan" ckpt import --format llmc "$fixtures/gpt2_tiny_llmc.bin" "$work/a" >/dev/null || fail "import llmc"
"$kervan" ckpt import --format hf "$fixtures/gpt2_tiny_hf" "$work/b" >/dev/null || fail "import hf"
[[ $(cat "$work/a/latest") == step_00000000 ]] || fail "latest after import: $(cat "$work/a/latest")"

"$kervan" ckpt inspect "$work/a" >"$work/inspect.txt" || fail "inspect"
for want in "step 0, written by DP=1 x TP=1 (1 rank)" "model/h.1.attn.c_attn.weight" "[96, 32]" \
  "model_config/vocab_size = 100"; do
  grep -qF -- "$want" "$work/inspect.txt" || fail "inspect lacks '$want': $(cat "$work/inspect.txt")"
done
"$kervan" ckpt inspect --json "$work/a/step_00000000" >"$work/inspect.json" || fail "inspect --json"
/usr/bin/python3 - "$work/inspect.json" <<'PY' || fail "inspect --json content"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["step"] == 0 and j["layout"] == {"world_size": 1, "dp": 1, "tp": 1, "zero1": False}, j
shapes = {t["name"]: t["shape"] for t in j["tensors"]}
assert shapes["model/wte"] == [128, 32] and shapes["model/h.0.mlp.c_proj.weight"] == [32, 128], shapes
assert not any(n.startswith("optim/") for n in shapes), "an import holds no optimizer state"
PY

"$kervan" ckpt verify "$work/a" >"$work/out" || fail "verify of a good checkpoint"
grep -q "^ok: " "$work/out" || fail "verify output: $(cat "$work/out")"

# Round trips: HF folder -> checkpoint -> llm.c file equals the fixture llm.c file byte for byte;
# llm.c -> checkpoint -> HF folder -> checkpoint -> llm.c again.
"$kervan" ckpt export --format llmc "$work/b" "$work/b.bin" >/dev/null || fail "export llmc"
cmp -s "$work/b.bin" "$fixtures/gpt2_tiny_llmc.bin" || fail "HF import -> llm.c export differs from the llm.c fixture"
"$kervan" ckpt export --format hf "$work/a" "$work/hf" >/dev/null || fail "export hf"
[[ -f $work/hf/config.json && -f $work/hf/model.safetensors ]] || fail "export hf wrote no folder"
"$kervan" ckpt import --format hf "$work/hf" "$work/c" >/dev/null || fail "import of the export"
"$kervan" ckpt export --format llmc "$work/c" "$work/c.bin" >/dev/null || fail "export llmc again"
cmp -s "$work/c.bin" "$fixtures/gpt2_tiny_llmc.bin" || fail "llm.c -> HF -> llm.c is not exact"

# Damage: one flipped byte inside one tensor's data (h5py says where the dataset lies).
file="$work/a/step_00000000/rank_00000.h5"
/usr/bin/python3 - "$file" <<'PY' || fail "flip a byte"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    at = f["model/h.1.mlp.c_fc.weight/0"].id.get_offset() + 1000
b = bytearray(open(sys.argv[1], "rb").read())
b[at] ^= 0x20
open(sys.argv[1], "wb").write(b)
PY
"$kervan" ckpt verify "$work/a" >"$work/out" 2>"$work/err"
rc=$?
[[ $rc -eq 1 ]] || fail "verify of a damaged checkpoint: exit $rc, expected 1"
grep -qF "$file" "$work/err" || fail "verify does not name the file: $(cat "$work/err")"
grep -qF "damaged tensor: model/h.1.mlp.c_fc.weight [0:128, 0:32] of [128, 32]" "$work/err" ||
  fail "verify does not name the tensor: $(cat "$work/err")"

# Bad inputs.
expect_error "import into a folder with checkpoints" "$work/b: already holds checkpoints" \
  "$kervan" ckpt import --format llmc "$fixtures/gpt2_tiny_llmc.bin" "$work/b"
expect_error "missing folder" "no such checkpoint '$work/nothing'" "$kervan" ckpt inspect "$work/nothing"
mkdir -p "$work/partial/step_00000004"
expect_error "partial folder" "$work/partial/step_00000004: not a committed checkpoint" \
  "$kervan" ckpt verify "$work/partial/step_00000004"
cp -r "$work/b" "$work/damaged"
head -c 100 "$work/b/step_00000000/manifest.json" >"$work/damaged/step_00000000/manifest.json"
expect_error "damaged manifest" "$work/damaged/step_00000000/manifest.json: damaged" \
  "$kervan" ckpt inspect "$work/damaged"
cp -r "$work/b" "$work/v2"
sed -i 's/"format_version": 1/"format_version": 2/' "$work/v2/step_00000000/manifest.json"
expect_error "other format version" "checkpoint format version 2" "$kervan" ckpt verify "$work/v2"
echo "not llm.c" >"$work/bad.bin"
expect_error "not an llm.c file" "$work/bad.bin: not an llm.c GPT-2 model file" \
  "$kervan" ckpt import --format llmc "$work/bad.bin" "$work/d"
expect_error "missing HF folder" "$work/nohf: cannot open Hugging Face model folder" \
  "$kervan" ckpt import --format hf "$work/nohf" "$work/d"
"$kervan" ckpt verify "$work/b" >/dev/null || fail "a failed import touched the existing checkpoint"

finish ckpt_tools "import, inspect, verify, export and their bad inputs"
