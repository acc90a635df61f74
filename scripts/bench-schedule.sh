#!/usr/bin/env bash
# Benchmark: the schedule's own error. One agent, driven through a controller, sends
# an open model at 1k, 5k and 20k iterations a second to flowsim (limit off) on
# loopback; for each rate it prints the send lag (from each request's intended
# instant to its hand-over to the HTTP client: `send_lag_us` in summary.json), the
# achieved rate against the plan, and the agent's CPU. A figure, not a test.
#
#   scripts/bench-schedule.sh [--duration D] [--rates "1000 5000 20000"] [--in-flight N]
#                             [--note TEXT]   # e.g. "other builds running": kept in the JSON
#
# Writes bench-results/schedule.json. Targets (issue 18, on an idle core): send lag
# p50 <= 50 µs and p99 <= 200 µs, achieved rate within 0.5 % of the plan.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5s
rates="1000 5000 20000"
in_flight=1000
note=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --in-flight) in_flight=$2; shift 2 ;;
    --note) note=$2; shift 2 ;;
    *) echo "usage: $0 [--duration D] [--rates \"R1 R2 …\"] [--in-flight N] [--note TEXT]" >&2; exit 2 ;;
  esac
done

source scripts/lib/bench.sh
bench_init
work=$BENCH_WORK
sim_port=$(free_port)
bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$sim_port" --auto-create --limit 0
wait_http "http://127.0.0.1:$sim_port/healthz"

for rate in $rates; do
  ctl_port=$(free_port)
  bench_plan "$work/plan-$rate.toml" "bench-schedule-$rate" "http://127.0.0.1:$sim_port" \
    "$rate" "$duration" "$in_flight" none
  bench_bg "$BENCH_BIN/crescendo-controller" run "$work/plan-$rate.toml" --agents 1 \
    --listen "127.0.0.1:$ctl_port" --out "$work/out-$rate"
  ctl=$BENCH_LAST_PID
  # The agent runs under python so its own CPU time can be read after it exits.
  python3 - "$BENCH_BIN/crescendo-agent" "http://127.0.0.1:$ctl_port" >"$work/agent-cpu-$rate" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "--controller", sys.argv[2], "--id", "bench-agent"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(u.ru_utime + u.ru_stime)
PY
  wait "$ctl" || true
done

python3 - "$work" "$duration" "$in_flight" "$note" $rates <<'PY'
import json, os, sys
work, duration, in_flight, note, rates = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
command = f'scripts/bench-schedule.sh --duration {duration} --rates "{" ".join(rates)}" --in-flight {in_flight}'
print(f"command: {command}")
print(f"{'planned it/s':>12} {'achieved/planned':>17} {'lag p50 µs':>11} {'lag p99 µs':>11} "
      f"{'lag p99.9 µs':>13} {'lag max µs':>11} {'dropped':>8} {'agent CPU':>10}")
runs = []
for rate in rates:
    s = json.load(open(os.path.join(work, f"out-{rate}", "summary.json")))
    cpu = float(open(os.path.join(work, f"agent-cpu-{rate}")).read())
    t, lag = s["totals"], s["send_lag_us"]
    planned = t.get("planned") or 0
    ratio = t["requests"] / planned if planned else 0.0
    cpu_share = cpu / s["duration_s"] if s["duration_s"] else 0.0
    print(f"{rate:>12} {ratio:>17.4f} {lag['p50']:>11} {lag['p99']:>11} {lag['p999']:>13} "
          f"{lag['max']:>11} {t['dropped']:>8} {cpu_share:>9.0%}")
    runs.append({
        "planned_rps": float(rate),
        "planned": planned,
        "requests": t["requests"],
        "achieved_over_planned": round(ratio, 5),
        "dropped": t["dropped"],
        "missed": t["missed"],
        "send_lag_us": lag,
        "service_time_p50_ms": s["service_time_ms"]["p50"],
        "latency_p99_ms": s["latency_ms"]["p99"],
        "agent_cpu_s": round(cpu, 3),
        "agent_cpu_share": round(cpu_share, 3),
        "duration_s": s["duration_s"],
    })
os.makedirs("bench-results", exist_ok=True)
with open("bench-results/schedule.json", "w") as f:
    json.dump({"command": command, "note": note, "cores": os.cpu_count(),
               "load_average_1m": os.getloadavg()[0], "runs": runs}, f, indent=2)
    f.write("\n")
print("wrote bench-results/schedule.json")
PY
