# shellcheck shell=bash
# Helpers for the benchmarks: a release build, free loopback ports, background
# processes stopped on exit, and one fleet run (controller + N agents) on loopback.
#
#   source scripts/lib/bench.sh
#   bench_init [PACKAGE…]           # builds release binaries (default: controller, agent,
#                                   # flowsim), sets BENCH_BIN and BENCH_WORK
#                                   # (BENCH_KEEP=1 keeps BENCH_WORK: reports, logs)
#   port=$(free_port)
#   bench_bg "$BENCH_BIN/crescendo-flowsim" --listen "127.0.0.1:$port" ...
#   bench_fleet PLAN AGENTS OUT_DIR  # waits for the controller; the agents exit when released

BENCH_PIDS=()

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "kept the runs' reports in $BENCH_WORK" >&2
  elif [ -n "${BENCH_WORK:-}" ]; then
    rm -rf "$BENCH_WORK"
  fi
}

bench_init() {
  local packages=("$@") args=() p
  [ ${#packages[@]} -gt 0 ] || packages=(crescendo-controller crescendo-agent crescendo-flowsim)
  for p in "${packages[@]}"; do args+=(-p "$p"); done
  cargo build --release -q "${args[@]}" --bins
  BENCH_BIN=$PWD/target/release
  BENCH_WORK=$(mktemp -d)
  trap bench_cleanup EXIT
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_bg CMD ARGS...: start a background process, stopped on exit; $BENCH_LAST_PID is its pid.
bench_bg() {
  "$@" >>"$BENCH_WORK/background.log" 2>&1 &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
}

# wait_http URL: wait up to 10 s for a URL to answer.
wait_http() {
  local i
  for i in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# bench_fleet PLAN AGENTS OUT_DIR: run PLAN on AGENTS agents; reports land in OUT_DIR.
bench_fleet() {
  local plan=$1 agents=$2 out=$3 port i
  port=$(free_port)
  "$BENCH_BIN/crescendo-controller" run "$plan" --agents "$agents" --listen "127.0.0.1:$port" \
    --out "$out" >"$out.controller.log" 2>&1 &
  local ctl=$!
  BENCH_PIDS+=("$ctl")
  for i in $(seq "$agents"); do
    bench_bg "$BENCH_BIN/crescendo-agent" --controller "http://127.0.0.1:$port" --id "bench-agent-$i"
  done
  wait "$ctl" || true
}

# bench_plan FILE NAME BASE_URL RATE DURATION IN_FLIGHT POLICY: write the benchmarks'
# plan, PUT flow updates at a constant RATE.
bench_plan() {
  local file=$1 name=$2 base_url=$3 rate=$4 duration=$5 in_flight=$6 policy=$7
  cat >"$file" <<PLAN
name = "$name"
[target]
base_url = "$base_url"
timeout = "10s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Content-Type" = "application/json" }
body = '{"name": "flow {flowId}", "description": "bench {seq}"}'
expect = [200]
[load]
max_in_flight = $in_flight
stages = [ { duration = "$duration", target = $rate } ]
[backoff]
policy = "$policy"
max_retries = 3
max_retry_after = "60s"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 1000 }
PLAN
}
