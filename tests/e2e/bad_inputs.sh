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

# The state of the scratch folder: every path with its type and mode, and every regular file's
# hash (out, err and scratch excluded). Two finds and one sha256sum, whatever the number of files.
snapshot() {
  (cd "$work" && find . \( -path ./out -o -path ./err -o -path ./scratch \) -prune -o -printf '%p %y %m\n' |
    LC_ALL=C sort &&
    find . \( -path ./out -o -path ./err -o -path ./scratch \) -prune -o -type f -print0 | LC_ALL=C sort -z |
    xargs -0 -r sha256sum)
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
# A BERT and a GRU checkpoint (ckpt export takes GPT only), checkpoints whose manifest names a file
# outside its step folder, a .jsonl whose second line has no text, a link to text.txt, a tokenizer.
"${train[@]}" --set 'model.arch="bert"' --set model.vocab_size=300 --set "data.path=\"$work/corpus\"" \
  --set "checkpoint.dir=\"$work/bck\"" 2>/dev/null || fail "a BERT run that saves a checkpoint"
grep -v -e n_head -e max_seq_len c.toml >rnn.toml
"$kervan" train --config rnn.toml --set 'model.arch="gru"' --set "checkpoint.dir=\"$work/gck\"" 2>/dev/null ||
  fail "a GRU run that saves a checkpoint"
for bad in dotdot absolute twice; do
  cp -r ck/step_00000003 "ck_$bad"
  python3 - "ck_$bad/manifest.json" "$bad" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
if sys.argv[2] == "dotdot": m["files"][0]["name"] = "../../text.bin"
elif sys.argv[2] == "absolute": m["tensors"][0]["file"] = "/etc/passwd"
else: m["tensors"].append(m["tensors"][0])
json.dump(m, open(sys.argv[1], "w"))
PY
done
printf '{"text": "a fine line"}\n{"body": "no text field"}\n' >badline.jsonl
ln -s text.txt link.txt
"$kervan" tokenizer train --vocab-size 300 --out tok text.txt 2>/dev/null || fail "tokenizer train"
mkdir -p emptytok
yes "the five boxing wizards jump quickly over the lazy dogs" | head -c 3000000 >mid.txt
printf '{"step": 1, "loss": 2.5, "tokens_per_s": 100}\n{"step": 2, "loss": 1e400}\n' >overflow.jsonl
printf '{"step": 1, "loss": 2.5}\n{"step": 2, "val_loss": 2.4}\n' >nospeed.jsonl

# on_small_disk COMMAND: runs bash -c COMMAND (in $work) with scratch/disk a 256 KB tmpfs in a private
# mount namespace, or, where mounting is not allowed, under a 16 KB file size limit (writes then
# fail with EFBIG, "File too large", instead of ENOSPC). Both are the environment's: exit 4.
# $fill_disk leaves about 6 KB free on the tmpfs.
mkdir -p scratch/disk
: >empty.txt
fill_disk="head -c 256000 /dev/zero >scratch/disk/filler 2>/dev/null"
if unshare -m bash -c "mount -t tmpfs -o size=256k tmpfs '$work/scratch/disk'" 2>/dev/null; then
  full_disk="No space left on device"
  on_small_disk() { unshare -m bash -c "mount -t tmpfs -o size=256k tmpfs scratch/disk && $1"; }
else
  full_disk="File too large"
  on_small_disk() { bash -c "trap '' XFSZ; ulimit -f 16; $1"; }
fi

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
# prepare --overwrite builds aside and swaps only a complete corpus in: a bad input midway, or a
# full disk, leaves the old corpus as it was (the snapshot sees corpus/ unchanged, nothing aside).
expect 2 "prepare --overwrite with a bad input keeps the old corpus" "badline.jsonl:2" "$kervan" prepare \
  --tokenizer bytes --overwrite --out corpus badline.jsonl
cases=$((cases + 1))
on_small_disk "cp -r corpus scratch/disk/c && '$kervan' prepare --tokenizer bytes --overwrite --out scratch/disk/c mid.txt;
  rc=\$?; '$kervan' corpus verify scratch/disk/c >/dev/null || exit 90; [[ -e scratch/disk/.c.kervan-overwrite ]] && exit 91;
  exit \$rc" >"$work/out" 2>"$work/err"
rc=$?
[[ $rc -eq 4 ]] && grep -q "$full_disk" "$work/err" ||
  fail "prepare --overwrite on a full disk: exit $rc (90: the old corpus damaged, 91: left aside): $(tail -2 "$work/err")"
# A rebuild that succeeds swaps the folders: the user's own file in it stays, nothing is left aside.
"$kervan" prepare --tokenizer bytes --out scratch/ow text.txt 2>/dev/null && echo "mine" >scratch/ow/NOTES.md &&
  "$kervan" prepare --tokenizer bytes --overwrite --out scratch/ow text.txt.gz 2>/dev/null ||
  fail "prepare --overwrite: the rebuild failed"
grep -q '"created_by": "kervan prepare --tokenizer bytes --overwrite' scratch/ow/manifest.json &&
  [[ -f scratch/ow/NOTES.md && ! -e scratch/.ow.kervan-overwrite && ! -e scratch/ow/.kervan-prepare.lock ]] ||
  fail "prepare --overwrite: $(ls -A scratch scratch/ow | tr '\n' ' ')"
# Two prepares into one folder: the second is refused naming the folder and the first one's pid.
cases=$((cases + 1))
for i in $(seq 1 8); do cat mid.txt; done >scratch/big.txt
"$kervan" prepare --tokenizer "$work/tok" --threads 1 --out scratch/busy scratch/big.txt 2>/dev/null &
first=$!
pids+=("$first")
for _ in $(seq 200); do [[ -s scratch/busy/.kervan-prepare.lock ]] && break; sleep 0.05; done
timeout 60 "$kervan" prepare --tokenizer bytes --out scratch/busy text.txt >"$work/out" 2>"$work/err"
rc=$?
[[ $rc -eq 2 ]] && grep -q "scratch/busy: --out is in use by another kervan prepare (pid $first " "$work/err" ||
  fail "a second prepare into a busy folder: exit $rc: $(tail -2 "$work/err")"
wait "$first" || fail "the first prepare into scratch/busy failed"
"$kervan" corpus verify scratch/busy >/dev/null 2>&1 || fail "the first prepare's corpus does not verify"
[[ ! -e scratch/busy/.kervan-prepare.lock ]] || fail "the lock file of a finished prepare was left"
rm -f scratch/big.txt
# A failed prepare into a new folder leaves no folder behind.
expect 2 "prepare of empty input into a new folder" "no documents" "$kervan" prepare --tokenizer bytes --out new-out empty.txt
expect 2 "bench loader with one corpus twice" "twice" "$kervan" bench loader --data corpus --data corpus
expect 2 "tokenizer bench on an empty file" "empty.txt: empty file" "$kervan" tokenizer bench --tokenizer tok empty.txt
expect 2 "prepare --out an empty path" "--out" "$kervan" prepare --tokenizer bytes --out "" text.txt

# --- 2. silently wrong results: every value is checked against its meaning ---------------------
expect 2 "prepare: one file given twice" "given twice" "$kervan" prepare --tokenizer bytes --out scratch/d text.txt text.txt
expect 2 "prepare: a folder and a file in it" "as text.txt in the input folder folder, and as folder/text.txt" \
  "$kervan" prepare --tokenizer bytes --out scratch/d folder folder/text.txt
expect 2 "prepare: a file and a link to it" "as link.txt" "$kervan" prepare --tokenizer bytes --out scratch/d text.txt link.txt
expect 2 "prepare .bin: one file given twice" "given twice" "$kervan" prepare --tokenizer bytes --out scratch/d.bin text.txt ./text.txt
expect 2 "tokenizer train: a file and a link to it" "given twice" "$kervan" tokenizer train --vocab-size 300 \
  --out scratch/t text.txt link.txt
expect 2 "data.path: one corpus twice" "data.path entry given twice" "${train[@]}" \
  --set "data.path=[\"$work/text.bin\", \"$work/./text.bin\"]"
expect 2 "data.tokenizer unknown, sampling off" "data.tokenizer 'gpt3'" "${train[@]}" --set 'data.tokenizer="gpt3"'
expect 2 "data.tokenizer a folder without its files" "without encoder.json" "${train[@]}" \
  --set "data.tokenizer=\"$work/emptytok\""
expect 2 "data.tokenizer another than the corpus's" "data.tokenizer '$work/tok' is not the tokenizer" "${train[@]}" \
  --set "data.tokenizer=\"$work/tok\"" --set "data.path=\"$work/corpus\"" --set model.vocab_size=300
expect 2 "sample --temperature nan" "--temperature" "$kervan" sample --checkpoint ck --temperature nan
expect 2 "sample --top-p inf" "--top-p" "$kervan" sample --checkpoint ck --top-p inf
expect 2 "prepare --val-fraction nan" "--val-fraction" "$kervan" prepare --tokenizer bytes --val-fraction nan --out scratch/v text.txt
expect 2 "prepare --seed above 2^63" "--seed: Value 99999999999999999999" "$kervan" prepare \
  --tokenizer bytes --seed 99999999999999999999 --out scratch/v text.txt
expect 2 "prepare --val-documents -1" "--val-documents: Value -1 not in range" "$kervan" prepare --tokenizer bytes \
  --val-documents -1 --out scratch/v text.txt
expect 2 "sample --seed below -2^63" "--seed" "$kervan" sample --checkpoint ck --seed -99999999999999999999
expect 2 "prepare --timeout-s nan" "--timeout-s" "$kervan" prepare --tokenizer bytes --timeout-s nan --out scratch/v text.txt
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
expect 2 "bench train --arch bert --seq 1" "bench train: --seq must be >= 4 for bert" "$kervan" bench train --arch bert \
  --layers 1 --heads 2 --d-model 16 --vocab 300 --seq 1
expect 2 "bench train --arch t5 --seq 3" "--seq must be >= 8 for t5" "$kervan" bench train --arch t5 --layers 1 \
  --heads 2 --d-model 16 --vocab 300 --seq 3
expect 2 "prepare --threads 100000" "--threads" "$kervan" prepare --tokenizer bytes --threads 100000 --out scratch/th text.txt
expect 2 "a metrics number out of range to plot" "overflow.jsonl:2" "$kervan" plot overflow.jsonl -o scratch/p.png

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
expect 2 "ckpt verify: a manifest naming ../" "ck_dotdot/manifest.json: damaged manifest: the files entry '../../text.bin'" \
  "$kervan" ckpt verify ck_dotdot
expect 2 "ckpt verify: a manifest listing a slice twice" "ck_twice/manifest.json: damaged manifest: tensor model/wte" \
  "$kervan" ckpt verify ck_twice
expect 2 "init_from: a manifest naming an absolute path" "ck_absolute/manifest.json: damaged manifest: tensor 'model/wte' names the file '/etc/passwd'" \
  "${train[@]}" --set "checkpoint.init_from=\"$work/ck_absolute\""
expect 2 "ckpt export of a BERT checkpoint" "export supports GPT checkpoints only" "$kervan" ckpt export --format hf bck scratch/hf
expect 2 "ckpt export of a GRU checkpoint" "this one is gru" "$kervan" ckpt export --format llmc gck scratch/g.bin
expect 2 "ckpt export where no folder can be made" "/proc/kervan-export" "$kervan" ckpt export --format hf ck /proc/kervan-export
expect 2 "ckpt export through ck/.. is not inside ck" "exists" "$kervan" ckpt export --format llmc ck ck/../text.bin
expect 2 "plot into a folder that cannot be written" "/proc/p.png" "$kervan" plot nospeed.jsonl -o /proc/p.png
coordinator=(env KERVAN_TOKEN=bad-inputs-secret-0123456789 "$kervan" coordinator --journal "$work/j.journal")
expect 2 "coordinator --listen on a port above 65535" "the port must be 0 to 65535" "${coordinator[@]}" --listen 127.0.0.1:99999
expect 2 "coordinator --address-file over the config" "c.toml: --address-file exists and is not an address file" \
  "${coordinator[@]}" --listen 127.0.0.1:0 --address-file c.toml
expect 2 "coordinator --tls-cert not PEM" "text.txt: the TLS" "${coordinator[@]}" --listen 127.0.0.1:0 \
  --tls-cert text.txt --tls-key text.txt
expect 2 "status --coordinator on port 99999" "the port must be 1 to 65535" env KERVAN_TOKEN=bad-inputs-secret-0123456789 \
  "$kervan" status --coordinator 127.0.0.1:99999 --timeout-s 1
cp -r corpus corpus-damaged && sed -i 's/"train-00000-00000.kvs"/"..\/corpus\/train-00000-00000.kvs"/' corpus-damaged/manifest.json
expect 2 "a corpus manifest naming ../" "must be a plain file name" "$kervan" corpus verify corpus-damaged
printf '{"step": 1}\n' >noloss.jsonl
expect 2 "plot a metrics file without a loss" "no line has a \"loss\"" "$kervan" plot noloss.jsonl -o scratch/nl.png
"$kervan" plot nospeed.jsonl -o scratch/ns.png >/dev/null 2>"$work/err" ||
  fail "plot of metrics without tokens_per_s: $(tail -2 "$work/err")"
# --overwrite of a corpus whose manifest is damaged: the new corpus replaces it, nothing is left aside.
cp -r corpus scratch/dm && sed -i 's/"train-00000-00000.kvs"/"..\/x"/' scratch/dm/manifest.json &&
  "$kervan" prepare --tokenizer bytes --overwrite --out scratch/dm text.txt 2>/dev/null &&
  "$kervan" corpus verify scratch/dm >/dev/null && [[ ! -e scratch/.dm.kervan-overwrite ]] ||
  fail "prepare --overwrite of a damaged corpus: $(ls -A scratch | tr '\n' ' ')"
# --- full disks and I/O errors: the environment's, exit 4, in every command ----------------------
expect 4 "tokenizer encode to a full disk" "No space left on device" bash -c "'$kervan' tokenizer encode --tokenizer tok text.txt >/dev/full"
expect 4 "corpus verify to a full disk" "No space left on device" bash -c "'$kervan' corpus verify corpus >/dev/full"
for cmd in "prepare --tokenizer bytes --out scratch/disk/c mid.txt" "prepare --tokenizer bytes --out scratch/disk/c.bin mid.txt" \
  "tokenizer train --vocab-size 2000 --out scratch/disk/t mid.txt" "ckpt export --format llmc ck scratch/disk/m.bin" \
  "train --config c.toml --set checkpoint.dir=\\\"scratch/disk/ck\\\" --set model.d_model=64"; do
  cases=$((cases + 1))
  on_small_disk "$fill_disk; '$kervan' $cmd" >"$work/out" 2>"$work/err"
  rc=$?
  [[ $rc -eq 4 ]] && grep -q "$full_disk" "$work/err" || fail "$cmd on a full disk: exit $rc: $(tail -2 "$work/err")"
done
expect 2 "an unknown train.device" "train.device" "${train[@]}" --set 'train.device="tpu"'
expect 2 "an unknown train.precision" "train.precision must be fp32 or bf16" "${train[@]}" --set 'train.precision="fp16"'
expect 2 "bf16 on the CPU" "needs train.device = \"cuda\"" "${train[@]}" --set 'train.precision="bf16"'
expect 2 "a non-boolean train.deterministic" "train.deterministic" "${train[@]}" --set 'train.deterministic="yes"'
# A build without CUDA, or this machine without a GPU (CI's): one clear sentence, exit 2.
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect 2 "train.device = cuda without a GPU" "no CUDA device" "${train[@]}" --set 'train.device="cuda"'
  expect 2 "bench train --device cuda without a GPU" "no CUDA device" "$kervan" bench train --device cuda --preset gpt2-tiny --steps 1
fi

finish bad_inputs "$cases bad inputs: each one message, the right exit code, nothing changed on disk"
