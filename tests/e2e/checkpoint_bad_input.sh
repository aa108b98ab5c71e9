#!/usr/bin/env bash
# Bad checkpoint inputs to `kervan train`: each ends with exit code 2 (4 for a full disk) and one
# message naming the path, and leaves the good checkpoints as they were (they still verify). Also
# checkpoint.init_from: a run starts from another run's weights with a fresh optimizer.
set -uo pipefail
kervan=${1:?usage: checkpoint_bad_input.sh path/to/kervan}
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
steps = 6
micro_batch = 4
seq_len = 32
lr = 3e-3
warmup_steps = 2
threads = 1
[checkpoint]
dir = "$work/good"
every = 3
TOML
train() { "$kervan" train --config "$work/c.toml" "$@"; }
train --set "log.metrics_file=\"$work/good.jsonl\"" >/dev/null 2>&1 || fail "the good run"
good_intact() { "$kervan" ckpt verify "$work/good" >/dev/null 2>&1 || fail "$1: the good checkpoint changed"; }

# A copy of the good folder with something broken, resumed with `auto`.
broken() {
  rm -rf "${work:?}/$1"
  cp -r "$work/good" "$work/$1"
  echo "$work/$1"
}
d=$(broken latest_nowhere)
echo step_00000042 >"$d/latest"
expect_error "latest naming nothing" "$d/latest: names step_00000042, which is not a committed checkpoint" \
  train --set "checkpoint.dir=\"$d\""
d=$(broken version)
sed -i 's/"format_version": 1/"format_version": 2/' "$d/step_00000006/manifest.json"
expect_error "another format version" "$d/step_00000006/manifest.json: checkpoint format version 2" \
  train --set "checkpoint.dir=\"$d\""
[[ $(cat "$d/latest") == step_00000006 ]] || fail "another format version: latest changed"

expect_error "resume from a missing path" "checkpoint.resume: no such checkpoint '$work/nothing'" \
  train --set "checkpoint.resume=\"$work/nothing\""
mkdir -p "$work/partial/step_00000004"
expect_error "resume from a partial folder" "$work/partial/step_00000004: not a committed checkpoint" \
  train --set "checkpoint.resume=\"$work/partial/step_00000004\"" --set "checkpoint.dir=\"$work/other\""
d=$(broken manifest)
head -c 200 "$work/good/step_00000006/manifest.json" >"$d/step_00000006/manifest.json"
expect_error "resume from a damaged manifest" "$d/step_00000006/manifest.json: damaged" \
  train --set "checkpoint.resume=\"$d/step_00000006\"" --set "checkpoint.dir=\"$work/other2\""
expect_error "another model shape" \
  "holds a gpt model with model.d_model = 32, but this config has 64" train --set model.d_model=64
expect_error "resume none over checkpoints" "checkpoint.resume = \"none\", but checkpoint.dir '$work/good' holds checkpoints" \
  train --set checkpoint.resume=none
d=$(broken older)
expect_error "an older checkpoint below newer ones" "holds $d/step_00000006, newer than the resumed" \
  train --set "checkpoint.dir=\"$d\"" --set "checkpoint.resume=\"$d/step_00000003\""
# A weights-only checkpoint of this model (what `kervan ckpt import` makes), via a Hugging Face folder.
"$kervan" ckpt export --format hf "$work/good" "$work/hf" >/dev/null || fail "export"
"$kervan" ckpt import --format hf "$work/hf" "$work/imported" >/dev/null || fail "import"
expect_error "resume from weights only" "$work/imported/step_00000000 holds no optimizer state" \
  train --set "checkpoint.resume=\"$work/imported\"" --set "checkpoint.dir=\"$work/other3\""
touch "$work/file"
expect_error "checkpoint.dir below a file" "checkpoint.dir: cannot create '$work/file/ck'" \
  train --set "checkpoint.dir=\"$work/file/ck\""
expect_error "checkpoint.dir in /proc" "checkpoint.dir: cannot create '/proc/kervan-checkpoints'" \
  train --set 'checkpoint.dir="/proc/kervan-checkpoints"'
[[ ! -e $work/nometrics.jsonl ]] || fail "a run with an unusable checkpoint.dir started training"
good_intact "bad inputs"

# init_from: another run's trained weights, fresh optimizer and data position. Its first loss is
# well below a fresh model's (5.5: ln 256 at random init).
train --set "checkpoint.dir=\"$work/init\"" --set "checkpoint.init_from=\"$work/good\"" \
  --set "log.metrics_file=\"$work/init.jsonl\"" >"$work/init.out" 2>&1 || fail "init_from: $(tail -2 "$work/init.out")"
grep -q "starting from the model weights of $work/good/step_00000006 (checkpoint.init_from), fresh optimizer, step 0" \
  "$work/init.out" || fail "init_from: $(grep -i init "$work/init.out")"
first=$(step_losses "$work/init.jsonl" | awk '$1 == 0 { print $2 }')
fresh=$(step_losses "$work/good.jsonl" | awk '$1 == 0 { print $2 }')
awk -v a="$first" -v b="$fresh" 'BEGIN { exit !(a < b - 0.3) }' || fail "init_from: first loss $first, fresh $fresh"
"$kervan" ckpt inspect --json "$work/init" | grep -q '"optim/step":6,' || fail "init_from: optimizer not fresh"

# A full disk during a save: a small tmpfs in a private mount namespace (or, where mounting is not
# allowed, a file size limit: writes then fail with EFBIG instead of ENOSPC). The first two
# checkpoints fit, the third does not: on_failure = stop ends the run with exit 4 naming the file;
# continue warns naming it and trains every step (exit 0). The two stay intact either way, and no
# step_N.tmp of a failed save is left.
cat >"$work/full.sh" <<'SH'
set -u
dir=$1 policy=$2
shift 2
if mount -t tmpfs -o size=1400k tmpfs "$dir" 2>/dev/null; then
  echo "mode: tmpfs" >&2
else
  trap '' XFSZ
  ulimit -f 1300
  echo "mode: ulimit" >&2
fi
"$@" --set "checkpoint.dir=\"$dir/ck\"" --set checkpoint.on_failure=$policy --set checkpoint.keep_last=5
rc=$?
mkdir -p "$dir.copy" && cp -r "$dir/ck" "$dir.copy/" 2>/dev/null
exit $rc
SH
for policy in stop continue; do
  mkdir -p "$work/full_$policy"
  unshare -m bash "$work/full.sh" "$work/full_$policy" $policy "$kervan" train --config "$work/c.toml" \
    --set train.steps=9 --set checkpoint.every=2 --set "log.metrics_file=\"$work/full_$policy.jsonl\"" \
    >"$work/full_$policy.out" 2>&1 ||
    unshare_rc=$?
  want=4
  [[ $policy == continue ]] && want=0
  [[ ${unshare_rc:-0} -eq $want ]] ||
    fail "disk full ($policy): exit ${unshare_rc:-0}, expected $want: $(tail -2 "$work/full_$policy.out")"
  unset unshare_rc
  grep -Eq "(error|warning).*'$work/full_$policy/ck/step_0000000[68].tmp/rank_00000.h5'.*(No space left on device|File too large)" \
    "$work/full_$policy.out" || fail "disk full ($policy): no message naming the file: $(tail -2 "$work/full_$policy.out")"
  copy="$work/full_$policy.copy/ck"
  [[ $(cat "$copy/latest") == step_00000004 ]] || fail "disk full ($policy): latest is $(cat "$copy/latest")"
  # The failed saves left nothing behind (kervan removes its own step_N.tmp).
  leftover=$(find "$copy" -maxdepth 1 -name 'step_*.tmp')
  [[ -z $leftover ]] || fail "disk full ($policy): a failed save left $leftover"
  "$kervan" ckpt verify "$copy/step_00000002" >/dev/null && "$kervan" ckpt verify "$copy/step_00000004" >/dev/null ||
    fail "disk full ($policy): the checkpoints before it do not verify"
done
(($(step_losses "$work/full_stop.jsonl" | wc -l) < 9)) || fail "disk full (stop): the run went on"
grep -q "a checkpoint save failed, training goes on" "$work/full_continue.out" || fail "disk full (continue): no warning"
(($(step_losses "$work/full_continue.jsonl" | wc -l) == 9)) || fail "disk full (continue): did not train every step"

finish checkpoint_bad_input "bad checkpoint inputs exit 2 naming the path; a full disk exits 4; init_from"
