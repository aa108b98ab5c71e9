#!/usr/bin/env bash
# The recurrent study (`kervan study recurrent`, bench/recurrent_study.py) at a tiny size: GPT, LSTM,
# GRU and RNN train a few steps on a small byte corpus, their gradient norms through time are
# measured at initialisation and after training, the long-dependency probe trains and scores them
# at two distances (the second starting from the first's models), and the JSON has every field
# (the probe's accuracy, nats on the key and probability per distance), each finite, and the three
# plots exist; --probe-only runs the probe alone. The check itself fails on a NaN; a study config
# without a corpus (or with a bad key or value) exits 2; the measuring commands refuse a run config
# whose corpus has no validation split.
set -uo pipefail
kervan=${1:?usage: recurrent_study.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
study="$(dirname "$0")/../../bench/recurrent_study.py"

for i in $(seq 1 60); do
  echo "Document $i: the river meets the sea at number $i, and the tide turns."
  echo "<|endoftext|>"
done >"$work/a.txt"
"$kervan" prepare --tokenizer bytes --val-documents 6 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare"
cat >"$work/study.toml" <<EOF
[study]
corpus = "$work/A"
out = "$work/result"
threads = 1
d_model = 16
n_head = 2
steps = 4
micro_batch = 2
seq_len = 16
eval_every = 2
eval_batches = 1
grad_batches = 2
[study.probe]
distances = [2, 4]
train_documents = 16
val_documents = 4
first_steps = 3
steps = 2
micro_batch = 2
seeds = 2
EOF
"$kervan" study recurrent --config "$work/study.toml" >"$work/log" 2>&1 || fail "study: $(tail -5 "$work/log")"
/usr/bin/python3 "$study" --check "$work/result/study.json" >/dev/null 2>"$work/err" || fail "check: $(cat "$work/err")"
for png in loss grad-norms probe; do
  [[ -s "$work/result/$png.png" ]] || fail "no $png.png"
done
grep -q '"norms": \[' "$work/result/study.json" || fail "no gradient norms in the JSON"
/usr/bin/python3 - "$work/result/study.json" <<'PY' || fail "probe fields"
import json, math, sys
probe = json.load(open(sys.argv[1]))["probe"]
assert probe["curriculum"] is True and abs(probe["chance_loss"] - math.log(8)) < 1e-12, probe
for arch, r in probe["archs"].items():
    assert len(r["loss"]) == len(r["probability"]) == len(r["accuracy"]) == 2, (arch, r)
    # The figures are the means of the two seeds' (which differ: other corpus, other weights).
    per_seed = r["per_seed"]["loss"]
    assert per_seed[0] != per_seed[1] and r["loss"] == [(a + b) / 2 for a, b in zip(*per_seed)], (arch, r)
    assert all(0 < v < 30 for v in r["loss"]) and all(0 < v < 1 for v in r["probability"]), (arch, r)
    # The probability is the mean of exp(-nats) over the documents: at most exp(-mean nats) (Jensen).
    assert all(p >= math.exp(-l) * (1 - 1e-9) for p, l in zip(r["probability"], r["loss"])), (arch, r)
PY
# The check itself fails on a non-finite field, and on a probe without its nats on the key.
sed 's/"far_over_near": [0-9.e+-]*/"far_over_near": NaN/' "$work/result/study.json" >"$work/bad.json"
/usr/bin/python3 "$study" --check "$work/bad.json" >/dev/null 2>&1 && fail "check accepted a NaN"
sed 's/"loss": \[/"lost": [/' "$work/result/study.json" >"$work/bad.json"
/usr/bin/python3 "$study" --check "$work/bad.json" >/dev/null 2>"$work/err" && fail "check accepted a probe without loss"
grep -q "probe.archs.gpt.loss: missing" "$work/err" || fail "check: $(cat "$work/err")"

# The probe alone (one seed): probe.json and probe.png, with the study's figures for that seed.
sed 's/^seeds = 2$/seeds = 1/' "$work/study.toml" >"$work/seed1.toml"
"$kervan" study recurrent --config "$work/seed1.toml" --probe-only >"$work/log" 2>&1 || fail "probe-only: $(tail -5 "$work/log")"
/usr/bin/python3 "$study" --check "$work/result/probe.json" >/dev/null 2>"$work/err" || fail "check probe: $(cat "$work/err")"
[[ -s "$work/result/probe.png" ]] || fail "no probe.png from --probe-only"
/usr/bin/python3 - "$work/result/study.json" "$work/result/probe.json" <<'PY' || fail "--probe-only gave other figures than the study's first seed"
import json, sys
study, alone = (json.load(open(f))["probe"]["archs"] for f in sys.argv[1:])
for arch, r in alone.items():
    for field, rows in r["per_seed"].items():
        assert rows == study[arch]["per_seed"][field][:1] and r[field] == rows[0], (arch, field)
PY

# Bad input: exit 2 and a message naming what is wrong.
grep -v '^corpus' "$work/study.toml" >"$work/nocorpus.toml"
expect_error "no corpus" "study.corpus is not set" "$kervan" study recurrent --config "$work/nocorpus.toml"
sed "s|^corpus = .*|corpus = \"$work/none\"|" "$work/study.toml" >"$work/missing.toml"
expect_error "missing corpus" "not a kervan corpus folder" "$kervan" study recurrent --config "$work/missing.toml"
sed 's/^steps = 4/stepz = 4/' "$work/study.toml" >"$work/typo.toml"
expect_error "unknown key" "study.stepz: unknown key" "$kervan" study recurrent --config "$work/typo.toml"
{ cat "$work/study.toml"; echo 'curriculum = "yes"'; } >"$work/bool.toml"  # in [study.probe], the last table
expect_error "bad bool" "curriculum = 'yes': expected true or false" "$kervan" study recurrent --config "$work/bool.toml"
expect_error "no config" "no such file" "$kervan" study recurrent --config "$work/none.toml"
"$kervan" prepare --tokenizer bytes --out "$work/B" "$work/a.txt" 2>/dev/null || fail "prepare B"
sed "s|$work/A|$work/B|; /^eval_/d" "$work/result/runs/gpt/run.toml" >"$work/noval.toml"
expect_error "no val split" "validation split" "$kervan" study grad-norms --config "$work/noval.toml"
finish recurrent_study "gpt, lstm, gru, rnn: speed, loss, gradient norms and the probe; every field present and finite"
