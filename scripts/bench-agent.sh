#!/usr/bin/env bash
# Benchmark: one agent's highest request rate and its CPU per 10k requests, against
# flowsim with the limit off, all on loopback. A figure, not a test.
#
#   scripts/bench-agent.sh [--rate R] [--duration D] [--in-flight N]
#
# Prints the achieved rate, the agent's user+system CPU seconds, and CPU per 10k
# requests. Results vary with the machine; compare numbers from one run only.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=20000
duration=10s
in_flight=512
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --in-flight) in_flight=$2; shift 2 ;;
    *) echo "usage: $0 [--rate R] [--duration D] [--in-flight N]" >&2; exit 2 ;;
  esac
done

source scripts/lib/bench.sh
bench_init
work=$BENCH_WORK
sim_port=$(free_port)
ctl_port=$(free_port)
bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$sim_port" --auto-create --limit 0
wait_http "http://127.0.0.1:$sim_port/healthz"
bench_plan "$work/plan.toml" bench-agent "http://127.0.0.1:$sim_port" "$rate" "$duration" "$in_flight" none

bench_bg "$BENCH_BIN/crescendo-controller" run "$work/plan.toml" --agents 1 --listen "127.0.0.1:$ctl_port" \
  --out "$work/out"
ctl=$BENCH_LAST_PID
# The agent runs under python so its own CPU time can be read after it exits.
python3 - "$BENCH_BIN/crescendo-agent" "http://127.0.0.1:$ctl_port" >"$work/agent-cpu" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "--controller", sys.argv[2], "--id", "bench-agent"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(u.ru_utime + u.ru_stime, u.ru_maxrss)
PY
wait "$ctl" || true

python3 - "$work/out/summary.json" "$work/agent-cpu" "$rate" "$duration" "$in_flight" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
cpu, rss_kb = open(sys.argv[2]).read().split()
cpu = float(cpu)
t = s["totals"]
print(f"command: scripts/bench-agent.sh --rate {sys.argv[3]} --duration {sys.argv[4]} --in-flight {sys.argv[5]}")
print(f"offered {s['offered_rps']:.0f} it/s, achieved {s['throughput_rps']:.0f} req/s "
      f"(ok {t['ok']}, errors {t['errors']}, dropped {t['dropped']}) over {s['duration_s']:.1f} s")
print(f"latency p50 {s['latency_ms']['p50']:.2f} ms, p99 {s['latency_ms']['p99']:.2f} ms "
      f"(service time p99 {s['service_time_ms']['p99']:.2f} ms)")
per10k = cpu / max(t['requests'], 1) * 10000
print(f"agent CPU {cpu:.2f} s user+system, {per10k:.3f} CPU-s per 10k requests, max RSS {int(rss_kb)//1024} MiB")
PY
