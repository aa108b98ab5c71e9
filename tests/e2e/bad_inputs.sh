#!/usr/bin/env bash
# The adversarial suite of "What kervan promises" (README): one bad input after another against
# every command. Each case asserts the exit code, a message naming what is wrong, no signal and no
# "internal error", an end within a bound (no hang), and that nothing on disk changed: every file
# under the scratch folder is hashed (with its mode) before and after the case.
set -uo pipefail
kervan=$(realpath "${1:?usage: bad_inputs.sh path/to/kervan}")
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
fixtures=$(realpath "$(dirname "$0")/../fixtures")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cases=0

# The state of the scratch folder: every file's path, mode and hash (out and err excluded).
snapshot() {
  (cd "$work" && find . -path ./out -prune -o -path ./err -prune -o -path ./scratch -prune -o -print0 |
    sort -z | while IFS= read -r -d '' f; do
      if [[ -f $f && ! -p $f ]]; then echo "$f $(stat -c %a "$f") $(sha256sum <"$f" | cut -c1-16)"
      else echo "$f $(stat -c %F-%a "$f")"; fi
    done)
}

# expect CODE NAME WANT command...: the command ends within 120 s with exit code CODE, its stderr
# names WANT, it printed no internal error, and the scratch folder is unchanged.
expect() {
  local code=$1 name=$2 want=$3
  shift 3
  cases=$((cases + 1))
  local before
  before=$(snapshot)
  timeout -k 5 120 "$@" >"$work/out" 2>"$work/err" </dev/null
  local rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then fail "$name: hung (killed after 120 s)"; return; fi
  [[ $rc -eq $code ]] || fail "$name: exit code $rc, expected $code ($(tail -2 "$work/err"))"
  grep -qF -- "$want" "$work/err" || fail "$name: stderr lacks '$want': $(tail -2 "$work/err")"
  ! grep -q "internal error" "$work/err" || fail "$name: $(grep "internal error" "$work/err")"
  [[ "$(snapshot)" == "$before" ]] || fail "$name: the files changed: $(diff <(echo "$before") <(snapshot) | head -4)"
}

# --- inputs ---------------------------------------------------------------------------------
cd "$work" || exit 1
for i in $(seq 1 80); do
  echo "The quick brown fox jumps over the lazy dog, line $i of a small text."
  ((i % 20)) || echo "<|endoftext|>"
done >text.txt
"$kervan" prepare --tokenizer bytes --out text.bin text.txt 2>/dev/null || fail "prepare text.bin"
"$kervan" prepare --tokenizer bytes --val-documents 1 --out corpus text.txt 2>/dev/null ||
  fail "prepare corpus"
cat >c.toml <<TOML
[model]
n_layer = 1
n_head = 2
d_model = 16
vocab_size = 256
max_seq_len = 32
[data]
path = "$work/text.bin"
tokenizer = "bytes"
[train]
steps = 3
micro_batch = 2
seq_len = 16
threads = 1
TOML
mkdir -p user/notes && echo "my own notes" >user/notes/a.tmp && echo "not kervan's" >user/train-000.kvs
echo '{"my": "data"}' >user/metrics.jsonl
mkfifo fifo
mkdir -p folder && cp text.txt folder/
: >empty.bin
train=("$kervan" train --config "$work/c.toml")
"${train[@]}" --set "checkpoint.dir=\"$work/ck\"" 2>/dev/null || fail "a run that saves a checkpoint"
gzip -c text.txt >text.txt.gz

# --- 1. data loss: kervan never truncates or deletes what it did not write ---------------------
expect 2 "metrics file = the training data" "text.bin" "${train[@]}" --set "log.metrics_file=\"$work/text.bin\""
expect 2 "metrics file = the config" "c.toml" "${train[@]}" --set "log.metrics_file=\"$work/c.toml\""
expect 2 "metrics file = a user's JSON file" "user/metrics.jsonl" "${train[@]}" --set "log.metrics_file=\"$work/user/metrics.jsonl\""
expect 2 "prepare into a user's folder" "user" "$kervan" prepare --tokenizer bytes --out user text.txt
expect 2 "prepare --out an input" "text.txt" "$kervan" prepare --tokenizer bytes --out text.txt text.txt
expect 2 "prepare --out inside an input folder" "folder" "$kervan" prepare --tokenizer bytes --out folder/c folder
expect 2 "prepare --out over an existing .bin" "--overwrite" "$kervan" prepare --tokenizer bytes --out text.bin text.txt
expect 2 "tokenizer train into a user's folder" "user" "$kervan" tokenizer train --vocab-size 300 --out user text.txt
expect 4 "corpus cat to a full disk" "No space left on device" bash -c "'$kervan' corpus cat corpus >/dev/full"
expect 2 "checkpoint.dir is a file" "text.txt" "${train[@]}" --set "checkpoint.dir=\"$work/text.txt\""
expect 2 "init_from a user's folder" "user" "${train[@]}" --set "checkpoint.init_from=\"$work/user\""
expect 2 "checkpoint.dir a user's folder" "holds files kervan did not write" "${train[@]}" \
  --set "checkpoint.dir=\"$work/user\""
expect 2 "ckpt import into a user's folder" "holds files kervan did not write" "$kervan" ckpt import --format hf \
  "$fixtures/gpt2_tiny_hf" user
expect 2 "ckpt export over the training data" "exists" "$kervan" ckpt export --format llmc ck text.bin
expect 2 "ckpt export over the config" "exists" "$kervan" ckpt export --format hf ck c.toml
expect 2 "ckpt export into the checkpoint" "ck" "$kervan" ckpt export --format llmc ck ck/step_00000003/m.bin
expect 2 "ckpt export into a missing folder" "no-such-folder" "$kervan" ckpt export --format llmc ck no-such-folder/m.bin

# --- 2. silently wrong results: every value is checked against its meaning ---------------------
expect 2 "eps < 0" "train.eps" "${train[@]}" --set train.eps=-1e-8
expect 2 "grad_clip nan" "train.grad_clip" "${train[@]}" --set train.grad_clip=nan
expect 2 "warmup > steps" "train.warmup_steps" "${train[@]}" --set train.warmup_steps=10
expect 2 "temperature nan" "sample.temperature" "${train[@]}" --set sample.temperature=nan
expect 2 "top_k < 0" "sample.top_k" "${train[@]}" --set sample.top_k=-1
expect 2 "beta1 = 1" "train.beta1" "${train[@]}" --set train.beta1=1
expect 2 "lr inf" "train.lr" "${train[@]}" --set train.lr=inf
expect 2 "threads overflow" "train.threads" "${train[@]}" --set train.threads=2147483648
expect 2 "tp overflow" "parallel.tp" "${train[@]}" --set parallel.tp=4294967298
expect 2 "unknown key" "train.stepz" "${train[@]}" --set train.stepz=3
expect 2 "key of another type" "train.steps" "${train[@]}" --set 'train.steps="many"'
cp -r corpus corpus-nosplit
sed -i 's/"splits"/"splitz"/' corpus-nosplit/manifest.json
expect 2 "a manifest without splits" "manifest.json" "$kervan" corpus verify corpus-nosplit
rm -rf corpus-nosplit

# --- 3. crashes: no signal reaches the user -----------------------------------------------------
expect 2 "100000 threads" "train.threads" "${train[@]}" --set train.threads=100000
expect 2 "micro_batch x seq_len overflows" "train.micro_batch" "${train[@]}" --set train.micro_batch=4611686018427387904
expect 2 "a model that cannot fit" "this run needs" "${train[@]}" --set model.n_layer=200 --set model.d_model=4096 \
  --set model.n_head=32 --set train.micro_batch=64 --set train.seq_len=32
expect 2 "bench loader --batch 0" "--batch" "$kervan" bench loader --data text.bin --batch 0
expect 2 "bench gemm --reps 0" "--reps" "$kervan" bench gemm --reps 0
expect 2 "bench train --seq 0" "--seq" "$kervan" bench train --preset gpt2-tiny --seq 0

# --- 4. hangs: every wait is bounded ----------------------------------------------------------
expect 2 "a FIFO as data.path" "fifo" "${train[@]}" --set "data.path=\"$work/fifo\""
expect 2 "a FIFO as the config" "fifo" "$kervan" train --config fifo
expect 2 "a FIFO as a prepare input" "fifo" "$kervan" prepare --tokenizer bytes --out scratch/x fifo
expect 2 "/dev/zero as a prepare input" "/dev/zero" "$kervan" prepare --tokenizer bytes --out scratch/w /dev/zero
expect 2 "a FIFO to tokenizer encode" "fifo" "$kervan" tokenizer encode fifo
expect 2 "/dev/zero to tokenizer train" "/dev/zero" "$kervan" tokenizer train --vocab-size 300 --out scratch/t /dev/zero
expect 2 "a FIFO to ckpt import" "fifo" "$kervan" ckpt import --format llmc fifo scratch/imported
# A rank that never starts: the other waits KERVAN_STARTUP_TIMEOUT_S, then exits 4 naming it.
cases=$((cases + 1))
start=$(date +%s)
KERVAN_STARTUP_TIMEOUT_S=3 timeout -k 5 90 mpirun -np 1 -x KERVAN_STARTUP_TIMEOUT_S "$kervan" train --config c.toml \
  : -np 1 sleep 60 >"$work/out" 2>"$work/err"
rc=$?
[[ $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || fail "a rank that never starts: exit $rc"
grep -q "MPI start-up: this rank waited 3 s" "$work/err" || fail "a rank that never starts: $(tail -3 "$work/err")"
(($(date +%s) - start < 60)) || fail "a rank that never starts: took $(($(date +%s) - start)) s"
# mpirun killed: its ranks stop instead of training on.
cases=$((cases + 1))
KERVAN_ORPHAN_GRACE_S=20 mpirun -np 2 -x KERVAN_ORPHAN_GRACE_S "$kervan" train --config c.toml --set train.steps=100000 --set model.d_model=64 \
  --set "checkpoint.dir=\"$work/scratch/orphan\"" --set checkpoint.every=1000000 >"$work/out" 2>"$work/err" &
launcher=$!
pids+=("$launcher")
for _ in $(seq 600); do
  [[ -n $(pgrep -f "scratch/orphan" -P "$launcher") ]] && grep -q "step " "$work/err" && break
  sleep 0.1
done
ranks=$(pgrep -P "$launcher" -f "kervan train" | tr '\n' ' ')
[[ -n $ranks ]] || fail "mpirun killed: no ranks found"
kill -9 "$launcher"
wait "$launcher" 2>/dev/null
for _ in $(seq 300); do
  alive=0
  for r in $ranks; do kill -0 "$r" 2>/dev/null && alive=1; done
  ((alive)) || break
  sleep 0.1
done
((alive == 0)) || { fail "mpirun killed: ranks $ranks still run after 30 s"; kill -9 $ranks 2>/dev/null; }
# (Whether they save first depends on the MPI library: Open MPI 4.1 ends ranks that lost mpirun
# within seconds, often before the save at the next step boundary is committed.)

# --- 5. unclear errors: the message says what is really wrong ----------------------------------
expect 2 "--config a folder" "config file" "$kervan" train --config folder
expect 2 "--config missing" "no-such.toml" "$kervan" train --config no-such.toml
expect 2 "prepare --out X.bin FOLDER" "folder" "$kervan" prepare --tokenizer bytes --out scratch/x.bin folder
mkdir -p loop && ln -s ../loop loop/again && cp text.txt loop/
expect 2 "a symlink loop in an input folder" "loop" "$kervan" prepare --tokenizer bytes --out scratch/y loop
expect 2 "a zero-token .bin" "empty.bin" "${train[@]}" --set "data.path=\"$work/empty.bin\""
mkdir -p badtok && echo '{"a": 0, "b": 2147483647}' >badtok/encoder.json && printf '#version: 0.2\n' >badtok/vocab.bpe
expect 2 "encoder.json id near 2^31" "encoder.json" "$kervan" prepare --tokenizer "$work/badtok" --out scratch/z text.txt
expect 2 "a validation split too short" "the validation split ('val') of $work/corpus" "${train[@]}" \
  --set "data.path=\"$work/corpus\"" --set model.vocab_size=257 --set model.max_seq_len=2048 --set train.seq_len=2048 \
  --set train.micro_batch=1 --set train.eval_every=1
expect 2 "an output folder that cannot be made" "/proc/kervan-out: cannot create" "$kervan" prepare --tokenizer bytes \
  --out /proc/kervan-out text.txt
expect 2 "a checkpoint folder that cannot be made" "/proc/kervan-ckpt" "${train[@]}" --set 'checkpoint.dir="/proc/kervan-ckpt"'
expect 2 "an unknown command" "nosuch" "$kervan" nosuch
expect 2 "a .gz into a .bin" "text.txt.gz" "$kervan" prepare --tokenizer bytes --out scratch/g.bin text.txt.gz
expect 2 "a .gz to tokenizer train" "text.txt.gz" "$kervan" tokenizer train --vocab-size 300 --out scratch/t text.txt.gz
expect 2 "a NUL in a path" "data.path" "${train[@]}" --set "data.path=\"$work/text.bin\u0000x\""
expect 2 "a path component too long" "File name too long" "${train[@]}" --set "data.path=\"$work/$(printf 'x%.0s' {1..300})\""
expect 2 "KERVAN_ORPHAN_GRACE_S not a number" "KERVAN_ORPHAN_GRACE_S" env KERVAN_ORPHAN_GRACE_S=abc \
  mpirun -np 1 -x KERVAN_ORPHAN_GRACE_S "${train[@]}"
expect 2 "ckpt verify of a folder that is not a checkpoint" "user" "$kervan" ckpt verify user
expect 2 "ckpt inspect of a missing folder" "missing" "$kervan" ckpt inspect missing
expect 2 "tokenizer encode with a missing tokenizer folder" "no-tok" "$kervan" tokenizer encode --tokenizer no-tok text.txt
expect 2 "finetune without its file" "finetune.train" "$kervan" finetune --config c.toml
expect 2 "an unknown train.device" "train.device" "${train[@]}" --set 'train.device="tpu"'
# A build without CUDA, or this machine without a GPU (CI's): one clear sentence, exit 2.
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect 2 "train.device = cuda without a GPU" "no CUDA device" "${train[@]}" --set 'train.device="cuda"'
  expect 2 "bench train --device cuda without a GPU" "no CUDA device" "$kervan" bench train --device cuda --preset gpt2-tiny --steps 1
fi

finish bad_inputs "$cases bad inputs: each one message, the right exit code, nothing changed on disk"
