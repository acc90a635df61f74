#!/usr/bin/env bash
# Multi-host end-to-end test with the real binaries in containers: flowsim, a controller
# and 3 agents, each its own container, on a private network with no route out.
#
#   scripts/e2e-containers.sh
#
# 1. Build the image (scripts/build-image.sh --profile dev --tag crescendo:e2e).
# 2. Validate deploy/compose/docker-compose.yml.
# 3. Create two uniquely named networks: the fleet network (--internal: no route
#    outside) and an "edge" bridge that only flowsim joins, so that its port can be
#    published on 127.0.0.1 (an internal network cannot publish ports) and this script
#    can read GET /__sim/stats. Nothing else is reachable from outside, and nothing
#    leaves the machine.
# 4. Run a 6 s open-model plan (30 rps of PUT /api/v2/flows/{flowId}, policy none)
#    against flowsim's 100 requests per 4 s, so part of it is throttled.
# 5. Check: controller exit 0 or 99, agents agent-1..3 in summary.json with requests,
#    no lost agents, the controller's ok/throttled totals equal flowsim's own counts,
#    the agents exit once released.
#
# Prints PASS/FAIL per check and a final "N passed, N failed"; exits non-zero on any
# failure, with the containers' logs. Without a usable Docker engine it prints a loud
# SKIP and exits 0. Everything it creates is removed on exit, failure or Ctrl-C.
# The helpers (start/stop/kill/pause/disconnect a container, cleanup) are in
# scripts/lib/containers.sh for tests that break single containers mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/containers.sh
source scripts/lib/containers.sh

IMAGE=${CRESCENDO_E2E_IMAGE:-crescendo:e2e}
AGENTS=3
RATE=30          # iterations per second, fleet-wide
DURATION=6s
SIM_LIMIT=100    # flowsim: requests per window per token
SIM_WINDOW=4s
RUN_TIMEOUT=180  # seconds for the controller to finish, agents included

say() { printf '\n==> %s\n' "$*"; }
passed=0
failed=0
check() { # check NAME COMMAND…: PASS when the command succeeds
  local name=$1
  shift
  if "$@"; then
    printf '  PASS  %s\n' "$name"
    passed=$((passed + 1))
  else
    printf '  FAIL  %s\n' "$name"
    failed=$((failed + 1))
  fi
}
fail_now() { # a step the rest depends on went wrong
  printf '  FAIL  %s\n' "$*"
  failed=$((failed + 1))
  exit 1
}

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  cat <<'EOF'

##########################################################################
##  SKIPPED: container end-to-end test (scripts/e2e-containers.sh)      ##
##  no usable Docker engine here (`docker info` failed).                ##
##  The multi-host checks did NOT run.                                  ##
##########################################################################
EOF
  exit 0
fi
for tool in python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e-containers: $tool is required" >&2; exit 1; }
done

# http_get URL: the body, or non-zero. curl when present, else python3.
http_get() {
  if command -v curl >/dev/null 2>&1; then
    curl --silent --show-error --fail --max-time 5 "$1"
  else
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
  fi
}
# json FILE PATH: the value at a dotted PATH (totals.ok, lost_agents), JSON-encoded.
json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(json.dumps(value))
PY
}
equal() { [ "$1" = "$2" ] || { echo "        expected $2, got $1"; return 1; }; }

started=$(date +%s)
ctr_init crescendo-e2e
on_exit() {
  local status=$?
  [ "$status" -ne 130 ] || echo "  interrupted: removing this run's containers and networks"
  if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ]; then
    echo
    echo "---- container logs ($CTR_RUN_ID) ----"
    dump_logs
  fi
  cleanup
  printf '\n  took %ds\n' "$(($(date +%s) - started))"
  printf '\n%d passed, %d failed\n' "$passed" "$failed"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

say "image $IMAGE (dev profile)"
ctr_tempdir work
if ! scripts/build-image.sh --profile dev --tag "$IMAGE" >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  fail_now "build the image"
fi
tail -n 1 "$work/build.log"

say "compose file"
if command -v docker-compose >/dev/null 2>&1; then
  check "deploy/compose/docker-compose.yml is valid" \
    docker-compose -f deploy/compose/docker-compose.yml config -q
elif docker compose version >/dev/null 2>&1; then
  check "deploy/compose/docker-compose.yml is valid" \
    docker compose -f deploy/compose/docker-compose.yml config -q
else
  echo "  SKIP  compose validation: neither docker-compose nor docker compose is installed"
fi

say "fleet $CTR_RUN_ID"
net=$CTR_RUN_ID
edge=$CTR_RUN_ID-edge
flowsim=$CTR_RUN_ID-flowsim
controller=$CTR_RUN_ID-controller
network_create "$net" --internal
network_create "$edge"
check "fleet network $net is internal (no route out)" \
  test "$(docker network inspect -f '{{.Internal}}' "$net")" = true

# The controller runs as uid 10001: the plan must be readable, the out dir writable.
mkdir -p "$work/plans" "$work/out"
chmod 0755 "$work/plans"
chmod 0777 "$work/out"
cat >"$work/plans/e2e.toml" <<PLAN
name = "e2e-containers"
description = "3 agents in containers, PUT flow updates past flowsim's limit"

[target]
base_url = "http://$flowsim:8080"
timeout = "5s"

[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { Content-Type = "application/json" }
body = '{"name": "flow {flowId} rev {seq}", "description": "e2e agent {agent}"}'
expect = [200]

[load]
model = "open"
start_rate = $RATE
max_in_flight = 100
stages = [{ duration = "$DURATION", target = $RATE }]

[backoff]
policy = "none"

[data]
partition = "per-agent"
sequence = { var = "flowId", format = "flow-{n}", count = 60 }
PLAN
chmod 0644 "$work/plans/e2e.toml"

# flowsim starts on the edge network, where its port is published on loopback only,
# then joins the fleet network.
start_container "$flowsim" --network "$edge" --publish 127.0.0.1::8080 -- \
  "$IMAGE" crescendo-flowsim --listen 0.0.0.0:8080 --auto-create \
  --limit "$SIM_LIMIT" --window "$SIM_WINDOW" ||
  fail_now "start flowsim"
connect_container "$flowsim" "$net" || fail_now "connect flowsim to $net"
sim_addr=$(published_port "$flowsim" 8080)
[ -n "$sim_addr" ] || fail_now "flowsim's port is not published on 127.0.0.1"

healthy=false
for _ in $(seq 1 50); do
  if [ "$(http_get "http://$sim_addr/healthz" 2>/dev/null)" = "ok" ]; then
    healthy=true
    break
  fi
  container_running "$flowsim" || break
  sleep 0.2
done
check "flowsim answers GET /healthz (via $sim_addr)" $healthy
$healthy || exit 1

start_container "$controller" --network "$net" \
  --volume "$work/plans:/plans:ro" --volume "$work/out:/out" -- \
  "$IMAGE" crescendo-controller run /plans/e2e.toml --agents "$AGENTS" \
  --listen 0.0.0.0:7700 --out /out --wait-for-agents 60s ||
  fail_now "start the controller"
for i in $(seq 1 "$AGENTS"); do
  start_container "$CTR_RUN_ID-agent-$i" --network "$net" -- \
    "$IMAGE" crescendo-agent --controller "http://$controller:7700" --id "agent-$i" ||
    fail_now "start agent-$i"
done
echo "  flowsim, controller and $AGENTS agents started; running $DURATION at $RATE rps"

say "run"
if ! code=$(wait_container "$controller" "$RUN_TIMEOUT"); then
  fail_now "the controller did not finish within ${RUN_TIMEOUT}s"
fi
check "controller exits 0 or 99 (got $code)" test "$code" = 0 -o "$code" = 99

agents_exited=true
for i in $(seq 1 "$AGENTS"); do
  if ! agent_code=$(wait_container "$CTR_RUN_ID-agent-$i" 20); then
    echo "        agent-$i still running 20 s after the controller exited"
    agents_exited=false
  elif [ "$agent_code" != 0 ]; then
    echo "        agent-$i exited $agent_code"
    agents_exited=false
  fi
done
check "every agent exits 0 once released" $agents_exited

say "results"
summary=$work/out/summary.json
check "summary.json written" test -s "$summary"
[ -s "$summary" ] || exit 1
for f in report.html latency.hlog; do
  check "$f written" test -s "$work/out/$f"
done

stats=$work/stats.json
http_get "http://$sim_addr/__sim/stats" >"$stats" || fail_now "GET /__sim/stats"
sim_accepted=$(json "$stats" accepted)
sim_throttled=$(json "$stats" throttled)
ok=$(json "$summary" totals.ok)
throttled=$(json "$summary" totals.throttled)
requests=$(json "$summary" totals.requests)
echo "  controller: requests $requests, ok $ok, throttled $throttled;" \
  "flowsim: accepted $sim_accepted, throttled $sim_throttled"

agent_requests() { # agent_requests ID: its requests in summary.json, 0 if absent
  python3 - "$summary" "$1" <<'PY'
import json, sys
agents = json.load(open(sys.argv[1]))["agents"]
print(sum(a.get("requests", 0) for a in agents if a.get("id") == sys.argv[2]))
PY
}
for i in $(seq 1 "$AGENTS"); do
  n=$(agent_requests "agent-$i")
  check "agent-$i in summary.json agents with requests > 0 (got $n)" test "$n" -gt 0
done
check "lost_agents is empty" equal "$(json "$summary" lost_agents)" "[]"
# The start barrier: every agent starts the same delay after its Start message, so
# the starts across containers lie within a second (the figure itself is reported).
skew=$(json "$summary" start_skew_ms)
under_a_second() { python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 <= v < 1000 else 1)' "$1"; }
check "start skew across the agent containers is reported: $skew ms" under_a_second "$skew"
check "totals.ok == flowsim accepted ($ok == $sim_accepted)" equal "$ok" "$sim_accepted"
check "totals.throttled == flowsim throttled ($throttled == $sim_throttled)" \
  equal "$throttled" "$sim_throttled"
check "flowsim throttled some requests (the limit was reached)" test "$sim_throttled" -gt 0

# on_exit prints the tally and cleans up.
[ "$failed" -eq 0 ]
