#!/usr/bin/env bash
# Benchmark: how each backoff policy copes with a shared rate limit. A figure, not a test.
#
#   scripts/bench-backoff.sh [--duration D] [--agents N] [--limit L] [--window W]
#                            [--policies 'P …'] [--headers 'H …']
#
# flowsim allows L requests per W seconds (fixed window; all agents share one key);
# N agents on loopback offer 3x that for D, once per policy, first with quota headers
# (inin + X-RateLimit) and then with Retry-After only (`--headers none`: only the
# latter). Prints a table and writes bench-results/backoff.json: per policy,
# goodput / limit, throttled share of attempts,
# retries, and p99 latency of successful requests (from the intended start, so time
# spent waiting for retries counts).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60s
agents=4
limit=100
window=2s
policies="none retry-after exponential coordinated"
header_modes="inin,x-ratelimit none"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --agents) agents=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    --headers) header_modes=$2; shift 2 ;;
    *) echo "usage: $0 [--duration D] [--agents N] [--limit L] [--window W] [--policies 'P …'] [--headers 'H …']" >&2; exit 2 ;;
  esac
done

source scripts/lib/bench.sh
bench_init
window_s=$(python3 -c "import sys; print(float(sys.argv[1].rstrip('s')))" "$window")
limit_rps=$(python3 -c "print($limit / $window_s)")
offered=$(python3 -c "print(3 * $limit_rps)")

runs=()
for headers in $header_modes; do
  for policy in $policies; do
    port=$(free_port)
    bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$port" --auto-create \
      --limit "$limit" --window "$window" --headers "$headers"
    sim=$BENCH_LAST_PID
    wait_http "http://127.0.0.1:$port/healthz"
    name="$policy-${headers//,/+}"
    bench_plan "$BENCH_WORK/$name.toml" "bench-backoff-$name" "http://127.0.0.1:$port" \
      "$offered" "$duration" 2000 "$policy"
    echo "running $name ($agents agents offering $offered req/s against $limit per $window for $duration)" >&2
    bench_fleet "$BENCH_WORK/$name.toml" "$agents" "$BENCH_WORK/$name"
    curl -fsS "http://127.0.0.1:$port/__sim/stats" >"$BENCH_WORK/$name.sim.json"
    kill "$sim" 2>/dev/null || true
    runs+=("$policy|$headers|$BENCH_WORK/$name")
  done
done

mkdir -p bench-results
options=""
[ "$policies" = "none retry-after exponential coordinated" ] || options+=" --policies '$policies'"
[ "$header_modes" = "inin,x-ratelimit none" ] || options+=" --headers '$header_modes'"
python3 - "$limit_rps" "$agents" "$duration" "$limit" "$window" "$options" "${runs[@]}" <<'PY'
import json, sys
limit_rps, agents, duration, limit, window = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
options = sys.argv[6]
rows = []
for run in sys.argv[7:]:
    policy, headers, base = run.split("|")
    s = json.load(open(f"{base}/summary.json"))
    sim = json.load(open(f"{base}.sim.json"))
    t = s["totals"]
    rows.append({
        "policy": policy,
        "headers": "quota headers" if headers != "none" else "Retry-After only",
        "goodput_over_limit": round(s["goodput_rps"] / limit_rps, 3),
        "throttled_share": round(t["throttled"] / max(t["requests"], 1), 4),
        "requests": t["requests"],
        "ok": t["ok"],
        "throttled": t["throttled"],
        "retries": t["retries"],
        "errors": t["errors"],
        "p99_ms": s["latency_ms"]["p99"],
        "governor_events": len(s.get("governor_events", [])),
        "flowsim_accepted": sim["accepted"],
        "flowsim_throttled": sim["throttled"],
    })
result = {
    "command": f"scripts/bench-backoff.sh --duration {duration} --agents {agents} --limit {limit} --window {window}{options}",
    "limit_rps": limit_rps, "offered_rps": 3 * limit_rps, "agents": agents, "runs": rows,
}
json.dump(result, open("bench-results/backoff.json", "w"), indent=2)
print(f"command: {result['command']}")
print(f"limit L = {limit_rps:g} req/s, offered 3L by {agents} agents\n")
print("| headers | policy | goodput / L | throttled | retries | p99 ms |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['headers']} | {r['policy']} | {r['goodput_over_limit']:.3f} | {100*r['throttled_share']:.1f} % | {r['retries']} | {r['p99_ms']:.0f} |")
PY
