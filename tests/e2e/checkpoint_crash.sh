#!/usr/bin/env bash
# Kill during a save, at every step of making it (KERVAN_FAILPOINT, SIGKILL): after the rank's
# file is written, before the manifest, before the rename that makes the folder visible, before
# `latest` is touched, and between writing latest.tmp and renaming it. Each time the checkpoint
# before (step 3) stays `latest` and verifies, no partial folder looks like a checkpoint, and the
# next start resumes and logs the straight run's losses bit for bit. Then a flipped byte in the
# newest checkpoint: the run falls back to the one before with a warning naming the file and the
# tensor (or, with checkpoint.strict, stops naming them), and still matches bit for bit.
set -uo pipefail
kervan=${1:?usage: checkpoint_crash.sh path/to/kervan}
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
steps = 9
micro_batch = 4
seq_len = 32
lr = 3e-3
warmup_steps = 2
threads = 1
[checkpoint]
every = 3
TOML
train() {
  local name=$1
  shift
  "$kervan" train --config "$work/c.toml" --set "checkpoint.dir=\"$work/$name\"" \
    --set "log.metrics_file=\"$work/$name.jsonl\"" "$@"
}
train straight >/dev/null 2>&1 || fail "straight run"

for point in rank_file_written ckpt_before_manifest ckpt_before_rename ckpt_before_latest ckpt_before_latest_rename; do
  # The failpoints of the commit fire on step 6's save; rank_file_written fires on the first file.
  at=$point
  [[ $point == rank_file_written ]] || at=$point@6
  KERVAN_FAILPOINT=$at bash -c '"$@"; exit $?' - "$kervan" train --config "$work/c.toml" \
    --set "checkpoint.dir=\"$work/$point\"" --set "log.metrics_file=\"$work/$point.jsonl\"" \
    --set checkpoint.async=false >/dev/null 2>&1
  rc=$?
  [[ $rc -eq 137 ]] || fail "$point: the run was not killed (exit $rc)"
  want=step_00000003
  [[ $point == rank_file_written ]] && want=""
  [[ $(cat "$work/$point/latest" 2>/dev/null) == "$want" ]] ||
    fail "$point: latest is '$(cat "$work/$point/latest" 2>/dev/null)', expected '$want'"
  if [[ -n $want ]]; then
    "$kervan" ckpt verify "$work/$point/$want" >/dev/null 2>&1 || fail "$point: $want does not verify"
  fi
  train "$point" >"$work/$point.out" 2>&1 || fail "$point: resume: $(tail -2 "$work/$point.out")"
  losses_match "$point" "$work/straight.jsonl" "$work/$point.jsonl" 0 8 0
  [[ $(ls "$work/$point" | grep -c '\.tmp$') -eq 0 ]] || fail "$point: a .tmp left behind: $(ls "$work/$point")"
done
grep -q "resumed from $work/ckpt_before_latest/step_00000006" "$work/ckpt_before_latest.out" ||
  fail "a committed step_00000006 whose latest was not yet written is resumed from"

# A flipped byte in the newest checkpoint's data: fall back to the one before, with a warning.
cp -r "$work/straight" "$work/damaged"
rm "$work/damaged/step_00000009" -r  # the newest is step 6 now; the run goes on to step 9 again
echo step_00000006 >"$work/damaged/latest"
file="$work/damaged/step_00000006/rank_00000.h5"
/usr/bin/python3 - "$file" <<'PY' || fail "flip a byte"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    at = f["optim/v/h.0.attn.c_proj.weight/0"].id.get_offset() + 100
b = bytearray(open(sys.argv[1], "rb").read())
b[at] ^= 0x04
open(sys.argv[1], "wb").write(b)
PY
cp -r "$work/damaged" "$work/strict"
train strict --set checkpoint.strict=true >"$work/strict.out" 2>&1
rc=$?
[[ $rc -eq 2 ]] || fail "strict: exit $rc, expected 2"
grep -qF "$work/strict/step_00000006/rank_00000.h5" "$work/strict.out" || fail "strict: file not named: $(tail -2 "$work/strict.out")"
grep -qF "damaged tensor: optim/v/h.0.attn.c_proj.weight" "$work/strict.out" || fail "strict: tensor not named"
[[ -d $work/strict/step_00000006 ]] || fail "strict: the damaged checkpoint was touched"
train damaged >"$work/damaged.out" 2>&1 || fail "fallback run: $(tail -2 "$work/damaged.out")"
grep -q "warn.*checkpoint $work/damaged/step_00000006 is damaged: $file: checksum.*damaged tensor: optim/v/h.0.attn.c_proj.weight" \
  "$work/damaged.out" || fail "no warning naming file and tensor: $(grep -i damaged "$work/damaged.out")"
grep -q "resumed from $work/damaged/step_00000003" "$work/damaged.out" || fail "did not fall back to step 3"
[[ -d $work/damaged/step_00000006.damaged ]] || fail "the damaged checkpoint was not moved aside"
losses_match fallback "$work/straight.jsonl" "$work/damaged.jsonl" 3 8 0

finish checkpoint_crash "kills during a save keep the previous checkpoint latest; damage falls back or stops"
