#!/usr/bin/env bash
# `make demo`: the newcomer's first look, about 5 minutes on 2 cores (after the build).
#   1. a real corpus (State of the Union addresses, 1790-2021) tokenized with GPT-2's BPE
#   2. the plan of the run (kervan train --dry-run): parameters, layout, memory per rank
#   3. a small GPT trained by 2 processes (mpirun -np 2, data parallel) with checkpoints
#   4. interrupted once with a signal (SIGUSR1, what Slurm sends before a preemption): it saves a
#      checkpoint and exits; started again, it resumes where it stopped, nothing lost
#   5. samples during and after training, and from the checkpoint with `kervan sample`
#   6. the loss plot (kervan plot) and what to try next
# The run's files go to runs/demo/ (replaced by each demo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
kervan=$build/kervan
run=runs/demo
config=configs/demo.toml
stop_at=${DEMO_STOP_AT:-150}
# DEMO_SET="train.steps=40 checkpoint.every=10": --set overrides for both trainings (a quick try).
train_args=(train --config "$config")
for s in ${DEMO_SET:-}; do train_args+=(--set "$s"); done
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. The corpus: State of the Union addresses, GPT-2 BPE"
scripts/get-corpus.sh sotu
scripts/get-tokenizer.sh gpt2
if [[ ! -f data/sotu-gpt2/manifest.json ]]; then
  "$kervan" prepare --val-documents 8 --out data/sotu-gpt2 data/sotu.txt
fi
"$kervan" corpus verify data/sotu-gpt2 | head -c 300
echo

say "2. The plan, before any compute (kervan train --dry-run --world 2)"
"$kervan" "${train_args[@]}" --dry-run --world 2 | sed -n '/^# plan/,$p'

rm -rf "$run"
mkdir -p "$run"
say "3. Training on 2 processes (mpirun -np 2); a signal comes after step $stop_at"
mpirun -np 2 --oversubscribe "$kervan" "${train_args[@]}" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  n=$(grep -c '"step"' "$run/metrics.jsonl" 2>/dev/null || true)
  if ((${n:-0} >= stop_at)); then
    say "4. kill -USR1 (as Slurm does before a preemption): checkpoint at the next step, exit 0"
    kill -USR1 "$pid"
    break
  fi
  sleep 0.5
done
wait "$pid"
ls "$run/ckpt"
say "   ... and started again: it resumes from the newest checkpoint (checkpoint.resume = \"auto\")"
mpirun -np 2 --oversubscribe "$kervan" "${train_args[@]}"

say "5. Sampling from the checkpoint (kervan sample)"
"$kervan" sample --checkpoint "$run/ckpt" --prompt "My fellow citizens," --tokens 60 --temperature 0.8 --top-k 40 --seed 7

say "6. The loss plot"
"$kervan" plot "$run/metrics.jsonl" -o "$run/loss.png"
echo "open $PWD/$run/loss.png"

say "What to try next"
cat <<TEXT
- A bigger model: configs/ has GPT-2 sizes (model.preset = "gpt2-small" ...); check what fits first:
    $kervan train --config configs/gpt2-small-cpu.toml --dry-run --world 2
- More samples: $kervan sample --checkpoint $run/ckpt --prompt "The economy" --top-p 0.9 --seed 1
- On a Slurm cluster: sbatch --export=ALL,KERVAN_CONFIG=$config,KERVAN_CKPT_DIR=$run/ckpt slurm/train.sbatch
  (slurm/README.md: many nodes, preemption and requeue)
- Several runs in one plot: $kervan plot runs/a/metrics.jsonl runs/b/metrics.jsonl -o compare.png
- Serve the corpus to workers without a shared filesystem: kervan coordinator and data.coordinator
  (README "The coordinator", slurm/coordinator.sbatch).
- Other families: BERT, T5 and LSTM/GRU (docs/), fine-tuning (scripts/spam-demo.sh), a GPU
  (configs/gpt2-small-gpu.toml, docs/gpu.md).
- make test runs every test, including a real Slurm cluster's preemption and requeue.
TEXT
