#!/usr/bin/env bash
# Train-step throughput of kervan vs. the PyTorch eager peer (bench/torch_gpt.py, torch_bert.py or
# torch_t5.py, by --arch) on the same model, run alternately (kervan first in odd rounds, torch
# first in even ones) so drift in machine load hits both. Prints each run, a table of medians, and
# a final JSON line.
#
#   bench/compare_torch.sh [--rounds R] [--kervan PATH] -- <model/batch args>
#   bench/compare_torch.sh -- --preset gpt2-small --batch 4 --seq 64 --threads 2 --steps 10
#   bench/compare_torch.sh -- --arch bert --preset bert-base --batch 4 --seq 128 --threads 2 --steps 5
#   bench/compare_torch.sh -- --arch lstm --preset lstm-tiny --batch 16 --seq 128 --threads 2 --steps 5
set -euo pipefail

PY=/usr/bin/python3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rounds=3
kervan=build/kervan

usage() {
  echo "usage: bench/compare_torch.sh [--rounds R (3)] [--kervan PATH (build/kervan)] -- <model/batch args: kervan bench train's>" >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --kervan) kervan="${2:?--kervan needs a value}"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "compare_torch.sh: unknown option '$1' (model args go after --)" >&2; usage ;;
  esac
done
(($#)) || { echo "compare_torch.sh: no model args after --" >&2; usage; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "compare_torch.sh: --rounds must be a positive integer" >&2; exit 2; }
if [[ ! -x "$kervan" || -d "$kervan" ]]; then
  echo "compare_torch.sh: kervan binary '$kervan' not found or not executable (build it: make build)" >&2
  exit 1
fi
args=("$@")
# The family picks the peer; the peers take the other args as they are (not --arch).
peer=torch_gpt.py
torch_args=()
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ ${args[i]} == --arch ]]; then
    peer="torch_${args[i + 1]:?--arch needs a value}.py"
    # The recurrent families share one peer, which takes --arch itself.
    [[ ${args[i + 1]} =~ ^(rnn|lstm|gru)$ ]] && { peer=torch_recurrent.py; torch_args+=(--arch "${args[i + 1]}"); }
    i=$((i + 1))
  else
    torch_args+=("${args[i]}")
  fi
done
[[ -f "$here/$peer" ]] || { echo "compare_torch.sh: no PyTorch peer $peer for that --arch" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: run one benchmark, keep its last stdout line (the JSON result).
run() {
  local name="$1"; shift
  if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "compare_torch.sh: $name failed: $*" >&2
    tail -n 20 "$tmp/err" "$tmp/out" >&2
    exit 1
  fi
  local line; line="$(tail -n 1 "$tmp/out")"
  echo "  $name: $line"
  echo "$line" >>"$tmp/$name.jsonl"
}

for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds"
  if ((r % 2)); then order=(kervan torch); else order=(torch kervan); fi
  for impl in "${order[@]}"; do
    if [[ $impl == kervan ]]; then run kervan "$kervan" bench train "${args[@]}"
    else run torch "$PY" "$here/$peer" "${torch_args[@]}"; fi
  done
done

"$PY" - "$tmp/kervan.jsonl" "$tmp/torch.jsonl" "${args[*]}" <<'EOF'
import json, statistics, sys

def load(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except json.JSONDecodeError as e:
        sys.exit(f"compare_torch.sh: last line of a run in {path} is not JSON: {e}")

runs = {"kervan": load(sys.argv[1]), "torch": load(sys.argv[2])}
med = {k: {f: statistics.median(r[f] for r in v) for f in ("tokens_per_s", "ms_per_step")}
       for k, v in runs.items()}
rss = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
print(f"\n{'impl':<8}{'tokens/s (median)':>19}{'ms/step (median)':>18}{'peak RSS MB':>13}")
for k in runs:
    print(f"{k:<8}{med[k]['tokens_per_s']:>19.1f}{med[k]['ms_per_step']:>18.1f}{rss[k]:>13.1f}")
k_tps, t_tps = med["kervan"]["tokens_per_s"], med["torch"]["tokens_per_s"]
print(f"speedup (kervan / torch tokens/s): {k_tps / t_tps:.2f}x\n")
print(json.dumps({"model_args": sys.argv[3], "kervan_tokens_per_s": k_tps,
                  "torch_tokens_per_s": t_tps, "speedup": k_tps / t_tps,
                  "kervan_peak_rss_mb": rss["kervan"], "torch_peak_rss_mb": rss["torch"]}))
EOF
