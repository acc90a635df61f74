#!/usr/bin/env bash
# Benchmark: one Crescendo agent against wrk, side by side in one run. A figure, not a
# test.
#
#   scripts/bench-agent.sh [--duration D] [--reps N] [--quick] [--connections C] [--open-rate R]
#
# nginx (one worker, pinned to core 0) serves a 3-byte static file on loopback. Against
# it, each repetition measures, the load tool pinned to core 1 and C connections each:
#   - wrk -t1 -cC;
#   - a Crescendo agent driven by `crescendo-controller run` (the real path), closed
#     model with C VUs;
#   - the same, open model with max_in_flight C at R iterations per second (more than
#     one core can send, so the in-flight cap and the core are what limit it).
# Prints, per tool, the median over the repetitions of requests per CPU-second (user +
# system time of the tool's process) and its ratio to wrk's, the achieved rate, p50/p99
# of the service time and of the latency from the intended start, drops at the in-flight
# cap, the tool's CPU use and peak RSS; writes bench-results/agent.json.
#
# nginx and wrk come from Debian's packages when missing (apt, as scripts/test.sh does).
# BENCH_AGENT=/path/to/crescendo-agent measures another agent build (e.g. an older one)
# under the same controller.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
reps=3
connections=50
open_rate=150000
usage="usage: $0 [--duration SECONDS] [--reps N] [--quick] [--connections C] [--open-rate R]"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2%s}; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --quick) reps=1; shift ;;
    --connections) connections=$2; shift 2 ;;
    --open-rate) open_rate=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
command="scripts/bench-agent.sh --duration ${duration}s --reps $reps --connections $connections --open-rate $open_rate"

apt_install() {
  local sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null; }
}
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx
command -v wrk >/dev/null 2>&1 || apt_install wrk
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -lt 2 ]; then
  echo "needs 2 cores (nginx on one, the load tool on the other)" >&2
  exit 1
fi

source scripts/lib/bench.sh
bench_init crescendo-controller crescendo-agent
work=$BENCH_WORK
agent_bin=${BENCH_AGENT:-$BENCH_BIN/crescendo-agent}

# nginx: one worker on core 0, a temp prefix (no root for a high port), no access log.
port=$(free_port)
mkdir -p "$work/nginx/html" "$work/nginx/logs" "$work/nginx/tmp"
printf 'ok\n' >"$work/nginx/html/x"
# Run as root, nginx's worker drops to nobody: it must be able to read the file.
chmod a+rx "$work" "$work/nginx" "$work/nginx/html"
chmod a+r "$work/nginx/html/x"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$port;
    root $work/nginx/html;
    location / { }
  }
}
CONF
bench_bg taskset -c 0 "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log"
wait_http "http://127.0.0.1:$port/x"

# run_measured OUT CMD…: run CMD pinned to core 1; OUT gets its user+system CPU
# seconds and peak RSS (KiB) from getrusage of the finished child.
run_measured() {
  local out=$1
  shift
  python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
with open(out + ".stdout", "w") as stdout:
    subprocess.run(["taskset", "-c", "1", *cmd], stdout=stdout, stderr=subprocess.STDOUT, check=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(out, "w").write(f"{u.ru_utime + u.ru_stime} {u.ru_maxrss}\n")
PY
}

# plan FILE MODEL: a GET of the static file for $duration seconds.
plan() {
  local load
  if [ "$2" = closed ]; then
    load="model = \"closed\"
start_vus = $connections
stages = [ { duration = \"${duration}s\", target = $connections } ]"
  else
    load="max_in_flight = $connections
start_rate = $open_rate
stages = [ { duration = \"${duration}s\", target = $open_rate } ]"
  fi
  cat >"$1" <<PLAN
name = "bench-agent-$2"
[target]
base_url = "http://127.0.0.1:$port"
timeout = "10s"
[[scenario.steps]]
name = "get"
method = "GET"
path = "/x"
expect = [200]
[load]
$load
[backoff]
policy = "none"
PLAN
}

# crescendo RUN MODEL: one controller (core 0, beside nginx: it merges one snapshot a
# second) and one agent (core 1, measured).
crescendo() {
  local dir=$work/$1 ctl_port ctl
  mkdir -p "$dir"
  plan "$dir/plan.toml" "$2"
  ctl_port=$(free_port)
  taskset -c 0 "$BENCH_BIN/crescendo-controller" run "$dir/plan.toml" --agents 1 \
    --listen "127.0.0.1:$ctl_port" --out "$dir/out" >"$dir/controller.log" 2>&1 &
  ctl=$!
  BENCH_PIDS+=("$ctl")
  run_measured "$dir/usage" "$agent_bin" --controller "http://127.0.0.1:$ctl_port" --id bench-agent
  wait "$ctl" || true
}

for rep in $(seq "$reps"); do
  echo "repetition $rep of $reps: wrk, closed model, open model (${duration}s each)" >&2
  mkdir -p "$work/wrk-$rep"
  run_measured "$work/wrk-$rep/usage" wrk -t1 "-c$connections" "-d${duration}s" --latency "http://127.0.0.1:$port/x"
  crescendo "closed-$rep" closed
  crescendo "open-$rep" open
done

mkdir -p bench-results
python3 - "$work" "$reps" "$duration" "$connections" "$open_rate" "$command" "$agent_bin" <<'PY'
import json, os, platform, re, statistics, subprocess, sys
work, reps, duration, connections, open_rate, command, agent_bin = sys.argv[1:]
reps, duration = int(reps), float(duration)

def usage(d):
    cpu, rss = open(f"{d}/usage").read().split()
    return float(cpu), int(rss) // 1024

def ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

def wrk(rep):
    d = f"{work}/wrk-{rep}"
    out = open(f"{d}/usage.stdout").read()
    cpu, rss = usage(d)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    return {"requests": requests, "rps": requests / duration, "cpu_s": cpu, "rss_mib": rss,
            "service_p50_ms": ms(pct["50"]), "service_p99_ms": ms(pct["99"]),
            "intended_p50_ms": None, "intended_p99_ms": None, "dropped": 0, "missed": 0}

def crescendo(name, rep):
    d = f"{work}/{name}-{rep}"
    s = json.load(open(f"{d}/out/summary.json"))
    cpu, rss = usage(d)
    t = s["totals"]
    return {"requests": t["requests"], "rps": s["throughput_rps"], "cpu_s": cpu, "rss_mib": rss,
            "errors": t["errors"], "dropped": t["dropped"], "missed": t.get("missed", 0),
            "offered": t["offered"],
            "service_p50_ms": s["service_time_ms"]["p50"], "service_p99_ms": s["service_time_ms"]["p99"],
            "intended_p50_ms": s["latency_ms"]["p50"], "intended_p99_ms": s["latency_ms"]["p99"]}

tools = {
    f"wrk -t1 -c{connections}": [wrk(r) for r in range(1, reps + 1)],
    f"Crescendo agent, closed model, {connections} VUs": [crescendo("closed", r) for r in range(1, reps + 1)],
    f"Crescendo agent, open model, max_in_flight {connections}, {open_rate}/s offered":
        [crescendo("open", r) for r in range(1, reps + 1)],
}
for runs in tools.values():
    for r in runs:
        r["per_cpu_s"] = r["requests"] / r["cpu_s"] if r["cpu_s"] > 0 else 0.0
        # The tool's process over the whole run (the agent's includes its start and the
        # controller's countdown, so its share of a core reads slightly low).
        r["core_busy"] = r["cpu_s"] / duration

def median_run(runs):
    # The repetition with the median requests per CPU-second (its other figures with it).
    return sorted(runs, key=lambda r: r["per_cpu_s"])[len(runs) // 2]

wrk_per = median_run(next(iter(tools.values())))["per_cpu_s"]
rows = []
for name, runs in tools.items():
    m = median_run(runs)
    rows.append({"tool": name, "median": m, "ratio_to_wrk": m["per_cpu_s"] / wrk_per,
                 "per_cpu_s_all": [round(r["per_cpu_s"]) for r in runs], "runs": runs})

def f(v, fmt="{:.2f}"):
    return "–" if v is None else fmt.format(v)

print(f"command: {command}" + (f"  (BENCH_AGENT={agent_bin})" if os.environ.get("BENCH_AGENT") else ""))
print(f"median of {reps}; nginx 1 worker on core 0, the tool on core 1, {connections} connections, {duration:.0f} s each\n")
print("| tool | requests per CPU-second | ratio to wrk | req/s | service p50 / p99 ms | from intended p50 / p99 ms | dropped | core busy | peak RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for row in rows:
    m = row["median"]
    dropped = "–" if "offered" not in m else f"{100 * m['dropped'] / max(m['offered'], 1):.1f} %"
    print(f"| {row['tool']} | {m['per_cpu_s']:,.0f} | {row['ratio_to_wrk']:.2f} | {m['rps']:,.0f} | "
          f"{f(m['service_p50_ms'])} / {f(m['service_p99_ms'])} | {f(m['intended_p50_ms'])} / {f(m['intended_p99_ms'])} | "
          f"{dropped} | {100 * m['core_busy']:.0f} % | {m['rss_mib']} |")
print("\nrequests per CPU-second in each repetition: " +
      "; ".join(f"{r['tool'].split(',')[0] if r['tool'].startswith('wrk') else r['tool']}: {r['per_cpu_s_all']}" for r in rows))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump({"command": command, "commit": commit, "agent": agent_bin, "machine": {"cpus": os.cpu_count(),
           "platform": platform.platform()}, "duration_s": duration, "connections": int(connections),
           "open_rate": int(open_rate), "repetitions": reps, "tools": rows},
          open("bench-results/agent.json", "w"), indent=2)
print("wrote bench-results/agent.json")
PY
