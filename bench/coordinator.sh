#!/usr/bin/env bash
# The coordinator's figures for bench/RESULTS.md and docs/scaling.md: `kervan bench coordinator`
# (memory of a 1 TB-token manifest, streaming against a plain TCP copy, simulated workers in two
# child processes against an in-process coordinator), then the same simulated workers against a
# coordinator in its own process, whose CPU time per answered RPC is what one coordinator core
# costs (robust to a busy machine).
#   bench/coordinator.sh [--workers N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
kervan=${KERVAN:-build/kervan}
workers=1000 seconds=5
while (($#)); do
  case $1 in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: bench/coordinator.sh [--workers N] [--seconds S]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
coordinator=""
trap '[[ -n "$coordinator" ]] && kill "$coordinator" 2>/dev/null; rm -rf "$work"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"

"$kervan" bench coordinator --only memory
"$kervan" bench coordinator --only memory --shard-tokens 10000000
"$kervan" bench coordinator --only stream --corpus-mb 512 --rounds 5 2>/dev/null
"$kervan" bench coordinator --only rpc --workers "$workers" --seconds "$seconds" 2>/dev/null

# A small corpus (byte tokens) for a coordinator of its own.
for i in $(seq 1 20000); do printf 'document %d with a few words in it\n<|endoftext|>\n' "$i"; done >"$work/in.txt"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --out "$work/corpus" "$work/in.txt" 2>/dev/null
export KERVAN_TOKEN=bench-$$
"$kervan" coordinator --corpus "$work/corpus" --listen 127.0.0.1:0 --journal "$work/journal" \
  --address-file "$work/address" --dead-after-s 3600 2>"$work/coordinator.log" &
coordinator=$!
for _ in $(seq 1 100); do [[ -s "$work/address" ]] && break; sleep 0.1; done
ticks() { awk '{ print $14 + $15 }' "/proc/$coordinator/stat"; }
before=$(ticks)
"$kervan" bench coordinator --only rpc --coordinator "$(cat "$work/address")" --workers "$workers" \
  --seconds "$seconds" 2>/dev/null | tee "$work/rpc.jsonl"
after=$(ticks)
rpcs=$(grep -o '"\(heartbeats\|fetches\)":[0-9]*' "$work/rpc.jsonl" | awk -F: '{ s += $2 } END { print s }')
rpcs=$((rpcs + $(wc -l <"$work/rpc.jsonl") * workers))  # each load run registers its workers
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$rpcs" 'BEGIN {
  printf "{\"bench\":\"coordinator_server_cpu\",\"rpcs\":%d,\"cpu_s\":%.2f,\"us_per_rpc\":%.1f,\"rpc_per_s_per_core\":%.0f}\n",
         n, t / hz, 1e6 * t / hz / n, n / (t / hz) }'
