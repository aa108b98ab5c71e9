#!/usr/bin/env bash
# Two kervan binaries' coordinators under the same simulated workers, interleaved in one run (the
# machine is shared: each round runs every pairing once, so all see the same load). Each pairing
# is a `kervan coordinator` of one binary in its own process, loaded by the `bench coordinator
# --only rpc --coordinator` workers of a binary; the coordinator's CPU time per answered RPC comes
# from /proc, the workers' process's (registration included) from bash's `times`.
#   bench/coordinator_before_after.sh BEFORE AFTER [--rounds R] [--workers N] [--seconds S]
# Pairings: before/before (server/workers), before/after (the old server, the new workers), after/after,
# and after/after with heartbeats only (AFTER must know --no-fetch: the floor gRPC sets per call).
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: bench/coordinator_before_after.sh BEFORE AFTER [--rounds R] [--workers N] [--seconds S]}
after=${2:?usage: bench/coordinator_before_after.sh BEFORE AFTER [--rounds R] [--workers N] [--seconds S]}
shift 2
rounds=2 workers=1000 seconds=5
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
coordinator=""
trap '[[ -n "$coordinator" ]] && kill "$coordinator" 2>/dev/null; rm -rf "$work"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg), nice $(nice)"
for i in $(seq 1 20000); do printf 'document %d with a few words in it\n<|endoftext|>\n' "$i"; done >"$work/in.txt"
"$after" prepare --tokenizer bytes --val-fraction 0 --out "$work/corpus" "$work/in.txt" 2>/dev/null
export KERVAN_TOKEN=bench-$$
hz=$(getconf CLK_TCK)

# CPU seconds (user + system) of this shell's finished children so far (`times` in this shell:
# a subshell's would count only its own).
children_cpu() {
  times >"$work/times"
  tail -1 "$work/times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}

# pairing NAME SERVER WORKERS [ARGS...]: one load run (ARGS: more `bench coordinator` options);
# prints its JSON lines tagged with the pairing and the CPU per RPC of each side.
pairing() {
  local name=$1 server=$2 client=$3
  shift 3
  rm -f "$work/journal" "$work/address"
  "$server" coordinator --corpus "$work/corpus" --listen 127.0.0.1:0 --journal "$work/journal" \
    --address-file "$work/address" --dead-after-s 3600 2>"$work/coordinator.log" &
  coordinator=$!
  for _ in $(seq 1 100); do [[ -s "$work/address" ]] && break; sleep 0.1; done
  local t0 t1
  t0=$(awk '{ print $14 + $15 }' "/proc/$coordinator/stat")
  children_cpu >"$work/c0"
  "$client" bench coordinator --only rpc --coordinator "$(cat "$work/address")" --workers "$workers" \
    --seconds "$seconds" "$@" 2>/dev/null >"$work/rpc.jsonl"
  children_cpu >"$work/c1"
  t1=$(awk '{ print $14 + $15 }' "/proc/$coordinator/stat")
  kill "$coordinator"
  wait "$coordinator" 2>/dev/null || true
  coordinator=""
  local rpcs
  rpcs=$(grep -o '"\(heartbeats\|fetches\)":[0-9]*' "$work/rpc.jsonl" | awk -F: '{ s += $2 } END { print s + 0 }')
  rpcs=$((rpcs + $(wc -l <"$work/rpc.jsonl") * workers))  # each load run registers its workers
  local us wus
  us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$rpcs" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')
  wus=$(awk -v t0="$(cat "$work/c0")" -v t1="$(cat "$work/c1")" -v n="$rpcs" 'BEGIN { printf "%.1f", 1e6 * (t1 - t0) / n }')
  sed "s/^{/{\"pairing\":\"$name\",\"server_us_per_rpc\":$us,\"workers_us_per_rpc\":$wus,/" "$work/rpc.jsonl"
}

for r in $(seq 1 "$rounds"); do
  pairing "server before, workers before" "$before" "$before"
  pairing "server before, workers after" "$before" "$after"
  pairing "server after, workers after" "$after" "$after"
  # gRPC's own cost per call on this machine: the smallest RPC alone, 20,000 offered and flat out.
  pairing "server after, workers after, heartbeats only" "$after" "$after" \
    --no-fetch --heartbeat-ms 50 --paces 50,0
done
