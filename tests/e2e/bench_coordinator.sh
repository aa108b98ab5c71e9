#!/usr/bin/env bash
# `kervan bench coordinator --only rpc` with both clients of its simulated workers (h2: nghttp2's
# plain HTTP/2; grpc: gRPC's C++ client): every call answered, fetches checked against their
# checksums, the JSON lines complete. Against a coordinator that is killed part-way, the h2
# client counts the calls that fail as UNAVAILABLE and ends instead of waiting for them.
set -uo pipefail
kervan=${1:?usage: bench_coordinator.sh path/to/kervan}
work=$(mktemp -d)
coordinator=""
trap '[[ -n "$coordinator" ]] && kill -9 "$coordinator" 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

for client in h2 grpc; do
  "$kervan" bench coordinator --only rpc --workers 40 --seconds 1 --paces 50,0 --client "$client" \
    >"$work/$client.jsonl" 2>"$work/$client.log" || fail "bench coordinator --client $client: $(tail -3 "$work/$client.log")"
  /usr/bin/python3 - "$work/$client.jsonl" "$client" <<'PY' || fail "bench coordinator --client $client"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2, lines
paced, closed = lines
for j in lines:
    assert j["client"] == sys.argv[2], j
    assert j["errors"] == 0, j
    assert j["fetches"] > 0 and j["heartbeats"] > 0, j
    assert 0 < j["p50_ms"] <= j["p99_ms"] <= j["max_ms"], j
# 40 workers, a fetch every 50 ms and a heartbeat every 1000 ms, for 1 s: 840 calls
assert paced["offered_rpc_per_s"] == 840, paced
assert paced["answered_rpc_per_s"] >= 0.9 * 840, paced
assert closed["answered_rpc_per_s"] > paced["answered_rpc_per_s"], (closed, paced)
PY
done

# A coordinator of its own, killed while the workers load it.
for i in $(seq 1 2000); do printf 'document %d with a few words in it\n<|endoftext|>\n' "$i"; done >"$work/in.txt"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --out "$work/corpus" "$work/in.txt" >/dev/null 2>&1 || fail "prepare"
export KERVAN_TOKEN=bench-test-$$
"$kervan" coordinator --corpus "$work/corpus" --listen 127.0.0.1:0 --journal "$work/journal" \
  --address-file "$work/address" 2>"$work/coordinator.log" &
coordinator=$!
for _ in $(seq 1 100); do [[ -s "$work/address" ]] && break; sleep 0.1; done
[[ -s "$work/address" ]] || fail "the coordinator did not start: $(tail -3 "$work/coordinator.log")"
(sleep 2; kill -9 "$coordinator") &
timeout 60 "$kervan" bench coordinator --only rpc --coordinator "$(cat "$work/address")" --workers 20 \
  --seconds 4 --paces 50 --client h2 >"$work/killed.jsonl" 2>"$work/killed.log"
rc=$?
[[ $rc == 0 ]] || fail "bench coordinator against a killed coordinator exited with $rc: $(tail -3 "$work/killed.log")"
/usr/bin/python3 - "$work/killed.jsonl" <<'PY' || fail "the killed coordinator's calls"
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["errors"] > 0 and set(j["error_codes"]) == {"UNAVAILABLE"}, j
assert j["fetches"] > 0 and j["heartbeats"] > 0, j  # those before the kill were answered
PY
finish bench_coordinator "both clients answered in full; a killed coordinator's calls counted UNAVAILABLE"
