#!/usr/bin/env bash
# Benchmark: the controller's and the agent's memory over a steady run, and one agent
# holding many requests in flight. A figure, not a test; all on loopback.
#
#   scripts/bench-memory.sh [--duration D] [--rate R] [--in-flight N] [--in-flight-duration D]
#
# 1. Steady: flowsim with the limit off, one controller and one agent at R req/s for D
#    (default 10m). Samples both processes' RSS from /proc every 5 s, prints the RSS at
#    1 min and at the end, the slope per hour (least squares over the samples after
#    the first minute) and the RSS a 2-hour run would reach.
# 2. In flight: flowsim answering after 2 s, one agent with N requests in flight
#    (default 10,000; open model at N/2 per second); prints the agent's peak RSS.
# Writes bench-results/memory.json.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10m
rate=2000
in_flight=10000
in_flight_duration=20s
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --in-flight) in_flight=$2; shift 2 ;;
    --in-flight-duration) in_flight_duration=$2; shift 2 ;;
    *) echo "usage: $0 [--duration D] [--rate R] [--in-flight N] [--in-flight-duration D]" >&2; exit 2 ;;
  esac
done

# One socket per request in flight.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

source scripts/lib/bench.sh
bench_init
work=$BENCH_WORK

# sample_rss OUT PID...: "seconds pid rss_kb" lines every 5 s while the first pid lives.
sample_rss() {
  local out=$1 first=$2 start p
  shift
  start=$(date +%s)
  while kill -0 "$first" 2>/dev/null; do
    for p in "$@"; do
      awk -v t="$(($(date +%s) - start))" -v p="$p" '/^VmRSS:/ {print t, p, $2}' \
        "/proc/$p/status" 2>/dev/null >>"$out" || true
    done
    sleep 5
  done
}

# run_fleet PLAN OUT: a controller and one agent; sets $ctl and $agent to their pids.
run_fleet() {
  local plan=$1 out=$2 port
  port=$(free_port)
  bench_bg "$BENCH_BIN/crescendo-controller" run "$plan" --agents 1 --listen "127.0.0.1:$port" \
    --out "$out"
  ctl=$BENCH_LAST_PID
  bench_bg "$BENCH_BIN/crescendo-agent" --controller "http://127.0.0.1:$port" --id bench-memory
  agent=$BENCH_LAST_PID
}

# 1. Steady rate.
sim_port=$(free_port)
bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$sim_port" --auto-create --limit 0
wait_http "http://127.0.0.1:$sim_port/healthz"
bench_plan "$work/steady.toml" bench-memory "http://127.0.0.1:$sim_port" "$rate" "$duration" 512 none
run_fleet "$work/steady.toml" "$work/steady"
sample_rss "$work/steady.rss" "$ctl" "$ctl" "$agent"
wait "$ctl" || true

# 2. Many requests in flight on one agent: every answer takes 2 s.
slow_port=$(free_port)
bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$slow_port" --auto-create --limit 0 \
  --latency 2s
wait_http "http://127.0.0.1:$slow_port/healthz"
bench_plan "$work/in-flight.toml" bench-memory-in-flight "http://127.0.0.1:$slow_port" \
  "$((in_flight / 2))" "$in_flight_duration" "$in_flight" none
run_fleet "$work/in-flight.toml" "$work/in-flight"
sample_rss "$work/in-flight.rss" "$agent" "$agent"
wait "$ctl" || true

mkdir -p bench-results
python3 - "$work" "$duration" "$rate" "$in_flight" "$in_flight_duration" <<'PY'
import json, sys
work, duration, rate, in_flight, in_flight_duration = sys.argv[1:]

def series(path):
    by_pid = {}
    for line in open(path):
        t, pid, kb = line.split()
        by_pid.setdefault(pid, []).append((int(t), int(kb) / 1024))
    return by_pid

def fit(points):
    """RSS at 1 min, at the end, and the least-squares slope (MiB/h) after 1 min."""
    after = [(t, m) for t, m in points if t >= 60] or points
    at_1min = after[0][1]
    end = points[-1][1]
    n = len(after)
    if n < 2:
        return at_1min, end, 0.0
    mt = sum(t for t, _ in after) / n
    mm = sum(m for _, m in after) / n
    var = sum((t - mt) ** 2 for t, _ in after)
    slope = sum((t - mt) * (m - mm) for t, m in after) / var if var else 0.0
    return at_1min, end, slope * 3600

steady = series(f"{work}/steady.rss")
pids = list(steady)  # controller first, then the agent (sampled in that order)
result = {"command": f"scripts/bench-memory.sh --duration {duration} --rate {rate} "
                     f"--in-flight {in_flight} --in-flight-duration {in_flight_duration}"}
summary = json.load(open(f"{work}/steady/summary.json"))
result["steady"] = {"rate": int(rate), "duration_s": summary["duration_s"],
                    "throughput_rps": summary["throughput_rps"]}
for name, pid in zip(["controller", "agent"], pids):
    at_1min, end, slope = fit(steady[pid])
    two_h = at_1min + slope * (2 - 1 / 60)
    result["steady"][name] = {
        "rss_1min_mib": round(at_1min, 1), "rss_end_mib": round(end, 1),
        "slope_mib_per_h": round(slope, 2), "rss_2h_extrapolated_mib": round(two_h, 1),
        "growth_2h_pct": round(100 * (two_h - at_1min) / at_1min, 1)}
    print(f"{name}: RSS {at_1min:.1f} MiB at 1 min, {end:.1f} MiB at the end, "
          f"slope {slope:+.2f} MiB/h, 2 h extrapolated {two_h:.1f} MiB "
          f"({100 * (two_h - at_1min) / at_1min:+.1f} %)")
flight = series(f"{work}/in-flight.rss")
peak = max(m for pts in flight.values() for _, m in pts)
fs = json.load(open(f"{work}/in-flight/summary.json"))
result["in_flight"] = {"max_in_flight": int(in_flight), "agent_peak_rss_mib": round(peak, 1),
                       "requests": fs["totals"]["requests"], "ok": fs["totals"]["ok"],
                       "latency_p50_ms": fs["latency_ms"]["p50"]}
print(f"agent with up to {in_flight} requests in flight (2 s answers): peak RSS {peak:.1f} MiB "
      f"({fs['totals']['requests']} requests, p50 {fs['latency_ms']['p50']:.0f} ms)")
print(f"command: {result['command']}")
json.dump(result, open("bench-results/memory.json", "w"), indent=2)
PY
