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
# 4. Make the fleet's certificates with the image's own `crescendo-controller certs`
#    (a CA, the controller's, agent-1..3's) and one for agent-4 from another CA: the
#    fleet talks mutual TLS (plus the enrolment token), as a production fleet would.
# 5. Run a 6 s open-model plan (30 rps of PUT /api/v2/flows/{flowId}, policy none)
#    against flowsim's 100 requests per 4 s, so part of it is throttled.
# 6. Check: agent-4 (valid token, certificate from the other CA) is refused at the TLS
#    handshake and never counted; controller exit 0 or 99, agents agent-1..3 in
#    summary.json with requests, no lost agents, the controller's ok/throttled totals
#    equal flowsim's own counts, the agents exit once released.
#
# Prints PASS/FAIL per check and a final "N passed, N failed"; exits non-zero on any
# failure, with the containers' logs. Without a usable Docker engine it prints a loud
# SKIP and exits 0. Everything it creates is removed on exit, failure or Ctrl-C.
# The helpers (start/stop/kill/pause/disconnect a container, cleanup) are in
# scripts/lib/containers.sh, the checks and the fleet's pieces in scripts/lib/e2e.sh;
# scripts/e2e-faults.sh uses both to break single containers mid-run.
# CRESCENDO_E2E_IMAGE names the image (default crescendo:e2e); CRESCENDO_E2E_IMAGE_READY=1
# reuses it as it is instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/containers.sh
source scripts/lib/containers.sh
# shellcheck source=lib/e2e.sh
source scripts/lib/e2e.sh

IMAGE=${CRESCENDO_E2E_IMAGE:-crescendo:e2e}
AGENTS=3
RATE=30          # iterations per second, fleet-wide
DURATION=6s
SIM_LIMIT=100    # flowsim: requests per window per token
SIM_WINDOW=4s
RUN_TIMEOUT=180  # seconds for the controller to finish, agents included

e2e_require_docker e2e-containers
ctr_init crescendo-e2e
e2e_install_traps

e2e_build_image "$IMAGE"
ctr_tempdir work

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
e2e_networks || exit 1
check "fleet network $E2E_NET is internal (no route out)" \
  test "$(docker network inspect -f '{{.Internal}}' "$E2E_NET")" = true

e2e_start_flowsim "$IMAGE" "$SIM_LIMIT" "$SIM_WINDOW" || exit 1
e2e_write_plan "$work/plans" e2e-containers "$RATE" "$DURATION"
e2e_make_certs "$IMAGE" "$work/certs" "$AGENTS" agent-4 || exit 1
e2e_start_controller "$IMAGE" "$work/plans" e2e-containers "$work/out" "$AGENTS" || exit 1
controller=$E2E_CONTROLLER
# The stranger first: it holds the enrolment token, but its certificate is another CA's.
e2e_start_tls_agent "$IMAGE" agent-4 foreign || fail_now "start agent-4"
e2e_start_agents "$IMAGE" "$AGENTS" || exit 1
echo "  flowsim, controller and $AGENTS agents started over mutual TLS;" \
  "running $DURATION at $RATE rps"
handshake_refused() {
  local deadline=$(($(date +%s) + 60))
  until docker logs "$controller" 2>&1 | grep -q "TLS handshake refused"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
check "agent-4's certificate (another CA) is refused at the handshake, peer logged" \
  handshake_refused

say "run"
if ! code=$(wait_container "$controller" "$RUN_TIMEOUT"); then
  fail_now "the controller did not finish within ${RUN_TIMEOUT}s"
fi
check "controller exits 0 or 99 (got $code)" test "$code" = 0 -o "$code" = 99
check "every agent exits 0 once released" \
  e2e_agents_exit_zero 20 $(seq -f 'agent-%g' 1 "$AGENTS")

say "results"
summary=$work/out/summary.json
check "summary.json written" test -s "$summary"
[ -s "$summary" ] || exit 1
for f in report.html latency.hlog; do
  check "$f written" test -s "$work/out/$f"
done

stats=$work/stats.json
e2e_sim_stats "$stats" || fail_now "GET /__sim/stats"
sim_accepted=$(json "$stats" accepted)
sim_throttled=$(json "$stats" throttled)
ok=$(json "$summary" totals.ok)
throttled=$(json "$summary" totals.throttled)
requests=$(json "$summary" totals.requests)
echo "  controller: requests $requests, ok $ok, throttled $throttled;" \
  "flowsim: accepted $sim_accepted, throttled $sim_throttled"

for i in $(seq 1 "$AGENTS"); do
  n=$(agent_requests "$summary" "agent-$i")
  check "agent-$i in summary.json agents with requests > 0 (got $n)" test "$n" -gt 0
done
check "lost_agents is empty" equal "$(json "$summary" lost_agents)" "[]"
check "agent-4 (refused) never counted" equal "$(agent_requests "$summary" agent-4)" 0
check "agent-4 is not among the run's agents" \
  equal "$(python3 -c 'import json,sys; print(sorted(a["id"] for a in json.load(open(sys.argv[1]))["agents"]))' "$summary")" \
  "$(python3 -c 'import sys; print(sorted("agent-%d" % i for i in range(1, int(sys.argv[1]) + 1)))' "$AGENTS")"
agent4_log=$(docker logs "$CTR_RUN_ID-agent-4" 2>&1)
echo "  agent-4 says: $(grep -iE 'certificate|tls|handshake' <<<"$agent4_log" | tail -n 1 ||
  tail -n 1 <<<"$agent4_log")"
# The start barrier: every agent starts the same delay after its Start message, so
# the starts across containers lie within a second (the figure itself is reported).
skew=$(json "$summary" start_skew_ms)
under_a_second() { python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 <= v < 1000 else 1)' "$1"; }
check "start skew across the agent containers is reported: $skew ms" under_a_second "$skew"
check "totals.ok == flowsim accepted ($ok == $sim_accepted)" equal "$ok" "$sim_accepted"
check "totals.throttled == flowsim throttled ($throttled == $sim_throttled)" \
  equal "$throttled" "$sim_throttled"
check "flowsim throttled some requests (the limit was reached)" test "$sim_throttled" -gt 0

# e2e_on_exit prints the tally and cleans up.
[ "$failed" -eq 0 ]
