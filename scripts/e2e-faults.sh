#!/usr/bin/env bash
# Faults the fleet survives, and verdicts that never hide them: the real binaries in
# containers (flowsim, a controller and 3 agents on an --internal network, as in
# scripts/e2e-containers.sh), one container broken mid-run per scenario, each on a
# fresh fleet with its own networks:
#
#   scripts/e2e-faults.sh
#
# 1. kill:  `docker kill` agent-2 once flowsim has answered 2 s of the fleet's load.
#    The controller finishes by itself and exits 4; summary.json: outcome `degraded`,
#    lost_agents ["agent-2"], the survivors' figures; totals.requests <= flowsim's
#    accepted + throttled, short by at most agent-2's share of the rate x 2 s (what it
#    sent after its last acknowledged snapshot). Prints kill -> detached and kill -> lost
#    (the run's lost_after is 15 s), read from the controller's log.
# 2. pause: `docker pause` agent-2 for 2 s mid-run, then unpause. Nothing lost or
#    counted twice: totals.ok == flowsim accepted, totals.throttled == flowsim throttled,
#    lost_agents empty, outcome `passed`, exit 0.
# 3. stop:  `docker stop` the controller mid-run with SIGTERM (the image's default stop
#    signal, set explicitly here: Kubernetes and most orchestrators send SIGTERM) and the
#    default stop timeout (10 s). It exits 130 by itself within the timeout, writes
#    summary.json (outcome `interrupted`) and report.html, releases the agents (each
#    exits 0), and its totals equal flowsim's counts. Prints stop -> exit.
#
# Every wait is for an observed condition (flowsim's GET /__sim/stats count, a
# container's state or exit), polled inside a bounded loop; the only sleep that is not a
# poll is the 2 s the pause lasts (the fault itself).
#
# Builds the image once (scripts/build-image.sh --profile dev --tag crescendo:e2e, or
# CRESCENDO_E2E_IMAGE); CRESCENDO_E2E_IMAGE_READY=1 reuses an image the caller just built
# (scripts/test.sh, after e2e-containers.sh). Prints PASS/FAIL per check, the measured
# reaction times, the wall time and a final "N passed, N failed"; exits non-zero on any
# failure, with the failing scenario's container logs. Without a usable Docker engine it
# prints a loud SKIP and exits 0. Everything it creates is removed on exit, failure or
# Ctrl-C. Helpers: scripts/lib/containers.sh, scripts/lib/e2e.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/containers.sh
source scripts/lib/containers.sh
# shellcheck source=lib/e2e.sh
source scripts/lib/e2e.sh

IMAGE=${CRESCENDO_E2E_IMAGE:-crescendo:e2e}
AGENTS=3
RATE=30          # iterations per second, fleet-wide (10 per agent)
SIM_LIMIT=100    # flowsim: requests per window per token
SIM_WINDOW=4s
LOST_AFTER=15    # seconds: the controller's lost_after for a run
BREAK_AT=60      # break a container once flowsim has answered this many (2 s of load)
RUN_TIMEOUT=90   # seconds for a controller to finish once its fleet runs
VICTIM=agent-2
SHARE_2S=$((RATE * 2 / AGENTS)) # what one agent sends in 2 s

e2e_require_docker e2e-faults
ctr_init crescendo-faults
e2e_install_traps

e2e_build_image "$IMAGE"

MEASURED=()
measured() { MEASURED+=("$*"); echo "  measured: $*"; }

# fleet PLAN DURATION [controller docker run options…]: a fresh fleet for one scenario:
# networks, flowsim, the plan, the controller and the agents. Sets work, controller,
# summary.
fleet() {
  local plan=$1 duration=$2
  shift 2
  ctr_tempdir work
  e2e_networks || return 1
  e2e_start_flowsim "$IMAGE" "$SIM_LIMIT" "$SIM_WINDOW" || return 1
  e2e_write_plan "$work/plans" "$plan" "$RATE" "$duration"
  e2e_start_controller "$IMAGE" "$work/plans" "$plan" "$work/out" "$AGENTS" "$@" || return 1
  e2e_start_agents "$IMAGE" "$AGENTS" || return 1
  controller=$E2E_CONTROLLER
  summary=$work/out/summary.json
  echo "  fleet $CTR_RUN_ID: flowsim, controller, $AGENTS agents; $duration at $RATE rps"
}

# wait_for_load: until flowsim has answered BREAK_AT requests (the fleet is mid-run).
wait_for_load() {
  local n
  n=$(e2e_wait_sim_sent "$BREAK_AT" 60 "$controller") ||
    fail_step "flowsim answers $BREAK_AT requests while the run goes" || return 1
  echo "  flowsim has answered $n requests"
}

# read_counts: flowsim's final counts and the controller's totals, into sim_accepted,
# sim_throttled, ok, throttled, requests, errors.
read_counts() {
  local stats=$work/stats.json
  e2e_sim_stats "$stats" || fail_step "GET /__sim/stats" || return 1
  sim_accepted=$(json "$stats" accepted)
  sim_throttled=$(json "$stats" throttled)
  ok=$(json "$summary" totals.ok)
  throttled=$(json "$summary" totals.throttled)
  requests=$(json "$summary" totals.requests)
  errors=$(json "$summary" totals.errors)
  echo "  controller: requests $requests, ok $ok, throttled $throttled, errors $errors;" \
    "flowsim: accepted $sim_accepted, throttled $sim_throttled"
  local i
  for i in $(seq 1 "$AGENTS"); do
    printf '  agent-%s: %s requests\n' "$i" "$(agent_requests "$summary" "agent-$i")"
  done
}

# log_time CONTAINER PATTERN…: Docker's timestamp (unix s) of the first line of the
# container's log matching every PATTERN (fixed strings), or non-zero.
log_time() {
  local name=$1 lines p
  shift
  lines=$(docker logs --timestamps "$name" 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
  for p in "$@"; do
    lines=$(grep -F -- "$p" <<<"$lines" || true)
  done
  [ -n "$lines" ] || return 1
  lines=${lines%%$'\n'*}
  unix_time "${lines%% *}"
}

# victim_log: the controller's log lines about the victim (at most 12), as evidence.
victim_log() {
  echo "  the controller's log about $VICTIM:"
  docker logs --timestamps "$controller" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' |
    grep -F -- "$VICTIM" | head -n 12 | sed 's/^/    /'
}

between() { python3 -c 'import sys; a, lo, hi = map(float, sys.argv[1:]); sys.exit(0 if lo <= a <= hi else 1)' "$@"; }

# ---- 1. an agent killed -----------------------------------------------------------------
scenario_kill() {
  fleet faults-kill 12s || return 1
  wait_for_load || return 1
  local killed_at
  killed_at=$(date +%s.%N)
  kill_container "$CTR_RUN_ID-$VICTIM" || fail_step "docker kill $VICTIM" || return 1
  echo "  docker kill $VICTIM"
  local code
  code=$(wait_container "$controller" "$RUN_TIMEOUT") ||
    fail_step "the controller finishes by itself within ${RUN_TIMEOUT} s" || return 1
  check "the controller finishes by itself and exits 4, degraded (got $code)" equal "$code" 4
  check "the survivors exit 0 once released" e2e_agents_exit_zero 20 agent-1 agent-3

  local detached_at lost_at
  victim_log
  measured "kill -> controller exited 4: $(seconds_between "$killed_at" \
    "$(unix_time "$(container_finished_at "$controller")")") s"
  if detached_at=$(log_time "$controller" "agent detached" "$VICTIM"); then
    measured "kill -> controller sees $VICTIM detached: $(seconds_between "$killed_at" "$detached_at") s"
  else
    echo "  the controller's log has no 'agent detached' line for $VICTIM"
  fi
  if lost_at=$(log_time "$controller" "agent lost" "$VICTIM"); then
    local took
    took=$(seconds_between "$killed_at" "$lost_at")
    measured "kill -> controller marks $VICTIM lost: $took s (lost_after ${LOST_AFTER} s)"
    check "$VICTIM marked lost lost_after (${LOST_AFTER} s) to +2 s after the kill ($took s)" \
      between "$took" "$LOST_AFTER" "$((LOST_AFTER + 2))"
  else
    fail_step "the controller's log says when $VICTIM was lost ('agent lost')" || true
  fi

  check "summary.json written" test -s "$summary"
  [ -s "$summary" ] || return 1
  check "outcome is degraded" equal "$(json "$summary" outcome)" '"degraded"'
  check "lost_agents is [\"$VICTIM\"]" equal "$(json "$summary" lost_agents)" "[\"$VICTIM\"]"
  local reasons
  reasons=$(json "$summary" outcome_reasons)
  echo "  outcome_reasons: $reasons"
  check "outcome_reasons name $VICTIM" grep -q "$VICTIM" <<<"$reasons"
  read_counts || return 1
  local id n
  for id in agent-1 agent-3; do
    n=$(agent_requests "$summary" "$id")
    check "survivor $id's figures are in summary.json (requests $n > 0)" test "$n" -gt 0
  done
  n=$(agent_requests "$summary" "$VICTIM")
  check "$VICTIM's acknowledged requests before the kill still count ($n > 0)" test "$n" -gt 0
  local sim_total=$((sim_accepted + sim_throttled))
  local gap=$((sim_total - requests))
  measured "flowsim answered $sim_total, the controller counted $requests: $gap short" \
    "(bound: $VICTIM's share x 2 s = $SHARE_2S)"
  check "totals.requests <= flowsim accepted + throttled ($requests <= $sim_total)" \
    test "$requests" -le "$sim_total"
  check "the shortfall ($gap) is at most $VICTIM's last 2 s ($SHARE_2S)" test "$gap" -le "$SHARE_2S"
}

# ---- 2. an agent paused ----------------------------------------------------------------
scenario_pause() {
  fleet faults-pause 10s || return 1
  wait_for_load || return 1
  local agent=$CTR_RUN_ID-$VICTIM paused_at resumed_at
  pause_container "$agent" || fail_step "docker pause $VICTIM" || return 1
  paused_at=$(date +%s.%N)
  check "$VICTIM is paused" equal "$(container_state "$agent")" paused
  sleep 2 # the fault itself: how long the host hangs, not a wait for anything
  unpause_container "$agent" || fail_step "docker unpause $VICTIM" || return 1
  resumed_at=$(date +%s.%N)
  check "$VICTIM runs again after docker unpause" equal "$(container_state "$agent")" running
  measured "$VICTIM paused for $(seconds_between "$paused_at" "$resumed_at") s"
  local code
  code=$(wait_container "$controller" "$RUN_TIMEOUT") ||
    fail_step "the controller finishes within ${RUN_TIMEOUT} s" || return 1
  check "the controller exits 0 (got $code)" equal "$code" 0
  check "every agent exits 0 once released" e2e_agents_exit_zero 20 agent-1 agent-2 agent-3
  victim_log
  if log_time "$controller" "agent reconnected" "$VICTIM" >/dev/null; then
    echo "  note: $VICTIM's stream broke during the pause; it reconnected and resent"
  fi

  check "summary.json written" test -s "$summary"
  [ -s "$summary" ] || return 1
  check "outcome is passed" equal "$(json "$summary" outcome)" '"passed"'
  check "lost_agents is empty" equal "$(json "$summary" lost_agents)" "[]"
  read_counts || return 1
  check "$VICTIM's figures are in summary.json ($(agent_requests "$summary" "$VICTIM") requests)" \
    test "$(agent_requests "$summary" "$VICTIM")" -gt 0
  check "totals.ok == flowsim accepted ($ok == $sim_accepted)" equal "$ok" "$sim_accepted"
  check "totals.throttled == flowsim throttled ($throttled == $sim_throttled)" \
    equal "$throttled" "$sim_throttled"
  check "totals.requests == flowsim accepted + throttled ($requests)" \
    equal "$requests" "$((sim_accepted + sim_throttled))"
}

# ---- 3. the controller stopped (SIGTERM) -----------------------------------------------
scenario_stop() {
  fleet faults-stop 15s --stop-signal SIGTERM || return 1
  check "the controller's stop signal is SIGTERM" \
    equal "$(docker inspect -f '{{.Config.StopSignal}}' "$controller")" SIGTERM
  wait_for_load || return 1
  local stop_at exited_at took code
  stop_at=$(date +%s.%N)
  echo "  docker stop the controller (SIGTERM, default timeout 10 s)"
  stop_container "$controller" || fail_step "docker stop the controller" || return 1
  code=$(docker inspect -f '{{.State.ExitCode}}' "$controller")
  exited_at=$(unix_time "$(container_finished_at "$controller")")
  took=$(seconds_between "$stop_at" "$exited_at")
  measured "docker stop (SIGTERM) -> controller exited $code: $took s"
  check "the controller exits 130 on SIGTERM (got $code)" equal "$code" 130
  check "it exits by itself within the 10 s stop timeout ($took s)" between "$took" 0 9.5
  check "every agent exits 0, released" e2e_agents_exit_zero 20 agent-1 agent-2 agent-3
  local last=0 i t
  for i in $(seq 1 "$AGENTS"); do
    t=$(unix_time "$(container_finished_at "$CTR_RUN_ID-agent-$i")")
    last=$(python3 -c 'import sys; print(max(map(float, sys.argv[1:])))' "$last" "$t")
  done
  measured "docker stop -> last agent exited: $(seconds_between "$stop_at" "$last") s"

  check "summary.json written" test -s "$summary"
  check "report.html written" test -s "$work/out/report.html"
  [ -s "$summary" ] || return 1
  check "outcome is interrupted" equal "$(json "$summary" outcome)" '"interrupted"'
  echo "  outcome_reasons: $(json "$summary" outcome_reasons)"
  check "lost_agents is empty" equal "$(json "$summary" lost_agents)" "[]"
  read_counts || return 1
  check "totals.ok == flowsim accepted ($ok == $sim_accepted)" equal "$ok" "$sim_accepted"
  check "totals.throttled == flowsim throttled ($throttled == $sim_throttled)" \
    equal "$throttled" "$sim_throttled"
  check "totals.requests == flowsim accepted + throttled ($requests)" \
    equal "$requests" "$((sim_accepted + sim_throttled))"
}

# run_scenario TITLE FUNCTION: on a fresh run id; its logs when one of its checks failed;
# its containers, networks and files removed before the next.
run_scenario() {
  local before=$failed t0
  t0=$(date +%s)
  say "$1"
  cleanup
  ctr_init crescendo-faults
  E2E_LOGS_DUMPED=false
  "$2" || true
  if [ "$failed" -gt "$before" ]; then
    e2e_dump_logs
  fi
  cleanup
  echo "  ($(($(date +%s) - t0)) s)"
}

run_scenario "1. docker kill $VICTIM mid-run" scenario_kill
run_scenario "2. docker pause $VICTIM for 2 s mid-run" scenario_pause
run_scenario "3. docker stop (SIGTERM) the controller mid-run" scenario_stop

say "measured"
for m in "${MEASURED[@]}"; do
  echo "  $m"
done

# e2e_on_exit prints the tally and cleans up.
[ "$failed" -eq 0 ]
