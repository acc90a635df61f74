#!/usr/bin/env bash
# Benchmark: one controller with 1,000 agents attached. A figure, not a test; loopback.
#
#   scripts/bench-controller.sh [--agents N] [--seconds S] [--requests R]
#
# `synthetic-agents` (crates/crescendo-testkit/src/bin) attaches N light agents from one
# process, each on its own gRPC connection with the real protocol, sending one snapshot
# a second of 3 steps (R requests per step, real HdrHistogram encodings) for S seconds.
# Prints the controller's CPU (% of one core, user+system from /proc/PID/stat over the
# steady part: from 10 s after the start to 5 s before the end), its RSS, the merge
# delay (snapshot sent → merged and acknowledged, p50/p99) and the snapshot bytes per
# agent per second. Writes bench-results/controller.json.
set -euo pipefail
cd "$(dirname "$0")/.."

agents=1000
seconds=60
requests=20
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    *) echo "usage: $0 [--agents N] [--seconds S] [--requests R]" >&2; exit 2 ;;
  esac
done
[ "$seconds" -ge 20 ] || { echo "--seconds: at least 20 (10 s warm-up, 5 s tail)" >&2; exit 2; }
# One connection per agent, on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

source scripts/lib/bench.sh
bench_init
cargo build --release -q -p crescendo-testkit --bin synthetic-agents
work=$BENCH_WORK
port=$(free_port)
cat >"$work/plan.toml" <<PLAN
name = "bench-controller"
[target]
base_url = "http://127.0.0.1:9"
timeout = "5s"
[[scenario.steps]]
name = "login"
method = "GET"
path = "/login"
[[scenario.steps]]
name = "browse"
method = "GET"
path = "/browse"
[[scenario.steps]]
name = "buy"
method = "GET"
path = "/buy"
[load]
stages = [ { duration = "${seconds}s", target = $((agents * requests)) } ]
PLAN

bench_bg "$BENCH_BIN/crescendo-controller" run "$work/plan.toml" --agents "$agents" \
  --listen "127.0.0.1:$port" --out "$work/out"
ctl=$BENCH_LAST_PID
"$BENCH_BIN/synthetic-agents" --controller "http://127.0.0.1:$port" --agents "$agents" \
  --requests "$requests" --seconds "$seconds" >"$work/agents.json" 2>"$work/agents.log" &
synth=$!
BENCH_PIDS+=("$synth")

# cpu_ticks PID: user+system clock ticks so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Wait (bounded: 2 min for the agents to attach) until the run's load starts.
for _ in $(seq 1200); do
  grep -q "load started" "$work/agents.log" 2>/dev/null && break
  sleep 0.1
done
sleep 10
t0=$(date +%s.%N); c0=$(cpu_ticks "$ctl")
sleep $((seconds - 15))
t1=$(date +%s.%N); c1=$(cpu_ticks "$ctl")
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$ctl/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$ctl/status")
wait "$synth" || true
wait "$ctl" || true

mkdir -p bench-results
python3 - "$work/agents.json" "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" "$rss_kb" "$hwm_kb" \
  "$agents" "$seconds" "$requests" <<'PY'
import json, sys
a = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t0, t1, c0, c1, hz = (float(x) for x in sys.argv[2:7])
rss, hwm = int(sys.argv[7]) / 1024, int(sys.argv[8]) / 1024
agents, seconds, requests = sys.argv[9:12]
cpu = 100 * (c1 - c0) / hz / (t1 - t0)
result = {
    "command": f"scripts/bench-controller.sh --agents {agents} --seconds {seconds} --requests {requests}",
    "agents": int(agents), "failed_agents": a["failed_agents"],
    "controller_cpu_pct_of_core": round(cpu, 1),
    "controller_rss_mib": round(rss, 1), "controller_peak_rss_mib": round(hwm, 1),
    "merge_delay_ms": a["ack_round_trip_ms"],
    "snapshots_sent": a["snapshots_sent"], "snapshots_acked": a["snapshots_acked"],
    "snapshot_bytes_per_agent_second": round(a["snapshot_bytes_per_agent_second"]),
    "snapshot_bytes_per_step": round(a["snapshot_bytes_per_step"]),
}
print(f"{agents} agents ({a['failed_agents']} failed), {requests} requests per step and second each, {seconds} s")
print(f"controller CPU {cpu:.1f} % of a core over the steady part, RSS {rss:.1f} MiB (peak {hwm:.1f} MiB)")
d = a["ack_round_trip_ms"]
print(f"merge delay (sent → merged and acknowledged) p50 {d['p50']:.2f} ms, p99 {d['p99']:.2f} ms, max {d['max']:.2f} ms")
print(f"snapshots {a['snapshots_acked']} of {a['snapshots_sent']} acknowledged; "
      f"{a['snapshot_bytes_per_agent_second']:.0f} bytes per agent per second "
      f"({a['snapshot_bytes_per_step']:.0f} per step)")
print(f"command: {result['command']}")
json.dump(result, open("bench-results/controller.json", "w"), indent=2)
PY
