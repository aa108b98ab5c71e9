#!/usr/bin/env bash
# The SpamAssassin demonstration of `kervan finetune`: bert-mini classifies e-mails as spam or ham,
# once trained from scratch and once after masked-LM pretraining on the training e-mails' text, with
# the same fine-tuning settings; prints both validation accuracies.
#   scripts/spam-demo.sh            (about 25 minutes on 2 idle cores; writes data/spam/ and runs/spam/)
# The pretraining is `kervan train` with a checkpoint (runs/spam/pretrain/: run again, it resumes
# or finds nothing left to do), the fine-tuning starts from it (finetune.init_from). On a slow
# machine the steps can be shrunk, e.g. SPAM_PRETRAIN_STEPS=300 SPAM_FINETUNE_STEPS=100 (the configs'
# 1500 and 300 otherwise; the learning-rate schedules follow train.steps; report what you used: with
# 100 pretraining steps the pretrained model did worse, bench/RESULTS.md).
# Every fifth e-mail (in the package's order: easy ham, hard ham, spam) is held out for validation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kervan=${KERVAN:-build/kervan}
[[ -x $kervan ]] || { echo "spam-demo: $kervan not built (make build)" >&2; exit 2; }
scripts/get-corpus.sh spam-assassin
mkdir -p data/spam runs/spam
if [[ ! -s data/spam/val.jsonl ]]; then
  awk 'NR % 5 == 0' data/spam-assassin.jsonl > data/spam/val.jsonl
  awk 'NR % 5 != 0' data/spam-assassin.jsonl > data/spam/train.jsonl
fi
# The BPE vocabulary is learned from the training e-mails only (a text file, documents separated
# by <|endoftext|> lines; `kervan prepare` reads the JSON lines' "text" field directly).
if [[ ! -f data/spam/bpe/vocab.bpe ]]; then
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l);
    process.stdout.write(lines.map((l) => JSON.parse(l).text).join("\n<|endoftext|>\n") + "\n");
  ' data/spam/train.jsonl > data/spam/train.txt
  "$kervan" tokenizer train --vocab-size 8192 --out data/spam/bpe data/spam/train.txt
fi
[[ -f data/spam/corpus/manifest.json ]] ||
  "$kervan" prepare --tokenizer data/spam/bpe --val-fraction 0 --out data/spam/corpus data/spam/train.jsonl

pre=() fine=()
[[ -z ${SPAM_PRETRAIN_STEPS:-} ]] || pre=(--set "train.steps=$SPAM_PRETRAIN_STEPS")
[[ -z ${SPAM_FINETUNE_STEPS:-} ]] || fine=(--set "train.steps=$SPAM_FINETUNE_STEPS")
"$kervan" train --config configs/spam-pretrain.toml "${pre[@]}"
"$kervan" finetune --config configs/spam-finetune.toml "${fine[@]}" --set log.metrics_file='"runs/spam/scratch.jsonl"'
"$kervan" finetune --config configs/spam-finetune.toml "${fine[@]}" --set finetune.init_from='"runs/spam/pretrain"' \
  --set log.metrics_file='"runs/spam/pretrained.jsonl"'
accuracy() { grep -o '"val_accuracy":[^,}]*' "$1" | tail -1 | cut -d: -f2; }
echo "spam-demo: validation accuracy ($(wc -l < data/spam/val.jsonl) e-mails): from scratch $(accuracy runs/spam/scratch.jsonl), pretrained $(accuracy runs/spam/pretrained.jsonl)"
