#!/usr/bin/env bash
# docs/checkpoint-format.md's h5py example, run as written on a checkpoint of DP=2 x TP=2 with
# ZeRO-1 (np 4): it assembles TP-sharded (vocabulary rows, fused q|k|v, row-parallel columns) and
# replicated weights equal to those `kervan ckpt export --format llmc` writes, bit for bit, and
# ZeRO-1 optimizer chunks that cover their tensors exactly once.
set -uo pipefail
kervan=${1:?usage: checkpoint_h5py.sh path/to/kervan}
docs="$(cd "$(dirname "$0")/../../docs" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 80 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --out "$work/t.bin" "$work/t.txt" 2>/dev/null || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 256
[data]
path = "$work/t.bin"
[train]
steps = 3
micro_batch = 2
seq_len = 32
threads = 1
[parallel]
tp = 2
zero = 1
[checkpoint]
dir = "$work/ck"
TOML
mpirun -np 4 --oversubscribe "$kervan" train --config "$work/c.toml" >/dev/null 2>&1 || fail "train DP=2 x TP=2"
"$kervan" ckpt export --format llmc "$work/ck" "$work/model.bin" >/dev/null || fail "export"

# The example: the python block after the marker line.
awk '/<!-- example: read_tensor/ { on = 1; next } on && /^```python/ { code = 1; next }
     code && /^```/ { exit } code { print }' "$docs/checkpoint-format.md" >"$work/read_tensor.py"
grep -q "def read_tensor" "$work/read_tensor.py" || fail "no example found in docs/checkpoint-format.md"

/usr/bin/python3 - "$work" <<'PY' || fail "the h5py example"
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from read_tensor import read_tensor

work = sys.argv[1]
step = f"{work}/ck/step_00000003"
# llm.c layout (version 3): 256 int32 header, then wte [Vp, C], wpe, then each kind for all layers.
h = np.fromfile(f"{work}/model.bin", dtype="<i4", count=256)
T, V, L, NH, C, Vp = (int(x) for x in (h[2], h[3], h[4], h[5], h[6], h[7]))
data = np.fromfile(f"{work}/model.bin", dtype="<f4", offset=1024)
shapes = [("wte", (Vp, C)), ("wpe", (T, C))]
kinds = [("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (3 * C, C)), ("attn.c_attn.bias", (3 * C,)),
         ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)), ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
         ("mlp.c_fc.weight", (4 * C, C)), ("mlp.c_fc.bias", (4 * C,)), ("mlp.c_proj.weight", (C, 4 * C)),
         ("mlp.c_proj.bias", (C,))]
for kind, shape in kinds:
    shapes += [(f"h.{l}.{kind}", shape) for l in range(L)]
exported, at = {}, 0
for name, shape in shapes:
    n = int(np.prod(shape))
    exported[name] = data[at:at + n].reshape(shape)
    at += n
for name in ["wte", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.weight", "h.1.mlp.c_fc.bias", "wpe"]:
    got = read_tensor(step, "model/" + name)
    assert got.shape == exported[name].shape, (name, got.shape)
    assert np.array_equal(got, exported[name]), name
for name in ["optim/m/h.0.attn.c_attn.weight", "optim/v/wte"]:
    assert np.isfinite(read_tensor(step, name)).all(), name  # read_tensor asserts coverage itself
print("h5py example: 5 weights equal to the export, 2 ZeRO-1 moments cover their tensors")
PY

finish checkpoint_h5py "the docs' h5py example reads a DP=2 x TP=2 ZeRO-1 checkpoint"
