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
#    lost_agents [agent-2] (at_s, reason), the survivors' figures; totals.requests <= flowsim's
#    accepted + throttled, short by at most agent-2's share of the rate x 2 s (what it
#    sent after its last acknowledged snapshot). Prints kill -> detached and kill -> lost
#    (the run's lost_after is the heartbeat timeout, 3 s), read from the controller's log.
# 2. pause: `docker pause` agent-2 for 2 s mid-run, then unpause. Nothing lost or
#    counted twice: totals.ok == flowsim accepted, totals.throttled == flowsim throttled,
#    lost_agents empty, outcome `passed`, exit 0.
# 3. stop:  `docker stop` the controller mid-run with SIGTERM (the image's default stop
#    signal, set explicitly here: Kubernetes and most orchestrators send SIGTERM) and the
#    default stop timeout (10 s). It exits 130 by itself within the timeout, writes
#    summary.json (outcome `interrupted`) and report.html, releases the agents (each
#    exits 0), and its totals equal flowsim's counts. Prints stop -> exit.
# 4. partition: `docker network disconnect` agent-2 from the controller mid-run, never
#    reconnected. The dead-man switch: it stops its load once its controller has been
#    silent for the heartbeat timeout (3 s), so its last request reaches flowsim at most
#    timeout + 1 s after the cut; the survivors go on. The controller drops its silent
#    stream, counts it lost 3 s later (the heartbeat timeout) and exits 4: outcome `degraded`, lost_agents
#    [{agent-2, at_s, reason}], each survivor's figures equal flowsim's count for its key,
#    agent-2's are what was acknowledged before the cut. Prints cut -> last request,
#    cut -> the agent's and the controller's log lines, cut -> lost.
#    Topology: a cut agent must still reach flowsim, or the measurement would only show
#    that a cable was pulled. So the fleet's traffic is split over two --internal
#    networks: the fleet network carries the controller <-> agents streams (flowsim is
#    not on it), the load network $CTR_RUN_ID-load carries agents -> flowsim (the
#    controller is not on it); flowsim's edge network only publishes its port on
#    127.0.0.1. agent-2 is disconnected from the fleet network only:
#
#        controller ==fleet== agent-1, agent-2 (cut), agent-3
#        agent-1, agent-2, agent-3 ==load== flowsim ==edge== 127.0.0.1 (this script)
#
#    Each agent sends `Authorization: Bearer <its id>`, so flowsim counts it under its
#    own key (e2e_sim_key computes the names; the script checks they show up), and
#    the script polls agent-2's count until it has not moved for 2 timeouts (6 s).
# 5. hang: `docker pause` the controller mid-run (its streams stay open, nothing comes).
#    Every agent's last request reaches flowsim at most timeout + 1 s after the pause
#    (all three keys polled until none has moved for 6 s). Then `docker unpause`: the
#    controller finishes by itself, the agents re-attach and resend their unacknowledged
#    snapshots, nobody is lost, each agent's figures equal flowsim's count for its key,
#    summary.json is written and the exit code matches its outcome. The outcome is
#    reported, not required (with this build: `passed`, though the load stopped early).
#    Prints pause -> each agent's last request and the outcome.
#
# Every wait is for an observed condition (flowsim's GET /__sim/stats counts, a
# container's state or exit), polled inside a bounded loop; the only sleep that is not a
# poll is the 2 s the pause of scenario 2 lasts (the fault itself). Reaction times are
# measured from the moment the docker command that made the fault returned, to the first
# poll (every 0.1 s) that showed the last request. CRESCENDO_E2E_FAULTS="4 5" runs only
# those scenarios.
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
LOST_AFTER=3     # seconds: the controller's lost_after for a run (its heartbeat timeout)
BREAK_AT=60      # break a container once flowsim has answered this many (2 s of load)
RUN_TIMEOUT=90   # seconds for a controller to finish once its fleet runs
VICTIM=agent-2
SHARE_2S=$((RATE * 2 / AGENTS)) # what one agent sends in 2 s
HEARTBEAT_TIMEOUT=3 # seconds: the controller's and the agents' default --heartbeat-timeout
STOP_BOUND=$((HEARTBEAT_TIMEOUT + 1)) # no agent request reaches flowsim later than this
QUIET=$((2 * HEARTBEAT_TIMEOUT))      # after a fault: counts still this long = stopped

e2e_require_docker e2e-faults
ctr_init crescendo-faults
e2e_install_traps

e2e_build_image "$IMAGE"

MEASURED=()
measured() { MEASURED+=("$*"); echo "  measured: $*"; }

# fleet [--per-agent-token] [--split] PLAN DURATION [controller docker run options…]: a
# fresh fleet for one scenario: networks, flowsim, the plan, the controller and the
# agents. --per-agent-token: each agent sends its own token, so flowsim counts it apart
# (sets keys[agent-<i>] to its key name). --split: the agents reach flowsim over a load
# network of their own ($CTR_RUN_ID-load, --internal) and the controller over the fleet
# network, which flowsim does not join. Sets work, controller, summary, load_net.
fleet() {
  local plan_opts=() split=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --per-agent-token) plan_opts+=("$1"); shift ;;
      --split) split=true; shift ;;
      *) break ;;
    esac
  done
  local plan=$1 duration=$2 i
  shift 2
  ctr_tempdir work
  e2e_networks || return 1
  load_net=""
  if $split; then
    load_net=$CTR_RUN_ID-load
    network_create "$load_net" --internal || fail_step "create network $load_net" || return 1
  fi
  e2e_start_flowsim "$IMAGE" "$SIM_LIMIT" "$SIM_WINDOW" $load_net || return 1
  e2e_write_plan "$work/plans" "$plan" "$RATE" "$duration" "${plan_opts[@]}"
  e2e_start_controller "$IMAGE" "$work/plans" "$plan" "$work/out" "$AGENTS" "$@" || return 1
  e2e_start_agents "$IMAGE" "$AGENTS" $load_net || return 1
  controller=$E2E_CONTROLLER
  summary=$work/out/summary.json
  keys=()
  for i in $(seq 1 "$AGENTS"); do
    keys+=("$(e2e_sim_key "Bearer agent-$i")")
  done
  echo "  fleet $CTR_RUN_ID: flowsim, controller, $AGENTS agents; $duration at $RATE rps"
}

# key_of ID: flowsim's key name for agent ID's token (agent-<i>, with --per-agent-token).
key_of() { echo "${keys[$((${1#agent-} - 1))]}"; }

# sim_keys_match: every agent's token shows up in flowsim's stats under the name
# e2e_sim_key computed, and nothing came without a token.
sim_keys_match() {
  local stats=$work/keys.json k
  e2e_sim_stats "$stats" || return 1
  for k in "${keys[@]}"; do
    python3 -c 'import json, sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1]))["keys"] else 1)' \
      "$stats" "$k" || { echo "        no key $k in flowsim's stats: $(json "$stats" keys)"; return 1; }
  done
  python3 -c 'import json, sys; sys.exit(1 if "anonymous" in json.load(open(sys.argv[1]))["keys"] else 0)' "$stats"
}

# sim_count KEY: flowsim's accepted + throttled for KEY so far.
sim_count() {
  http_get "http://$E2E_SIM_ADDR/__sim/stats" | python3 -c '
import json, sys
k = json.load(sys.stdin)["keys"].get(sys.argv[1], {})
print(k.get("accepted", 0) + k.get("throttled", 0))' "$1"
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
  echo "  lost_agents: $(json "$summary" lost_agents)"
  check "lost_agents is $VICTIM alone" equal "$(lost_ids "$summary")" "[\"$VICTIM\"]"
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

# watch_keys FAULT_AT KEY…: e2e_sim_watch (quiet for QUIET s, 25 s at most) into
# $work/watch.json; sets watch. Checks that the KEYs went quiet.
watch_keys() {
  local fault_at=$1
  shift
  watch=$work/watch.json
  e2e_sim_watch "$watch" "$QUIET" 25 "$@" || fail_step "poll GET /__sim/stats" || return 1
  check "flowsim's counts stop moving (quiet ${QUIET} s) within 25 s of the fault" \
    equal "$(json "$watch" settled)" true
  echo "  polled flowsim $(json "$watch" polls) times over" \
    "$(seconds_between "$fault_at" "$(json "$watch" ended)") s ($(json "$watch" errors) errors)"
}

# last_request_after FAULT_AT KEY: seconds from FAULT_AT to the first poll that showed
# KEY's last request (0.000 when it sent nothing after the fault).
last_request_after() {
  local at
  at=$(json "$watch" "keys.$2.changed_at")
  if [ "$at" = null ]; then
    echo 0.000
  else
    seconds_between "$1" "$at"
  fi
}

# agent_stop_time FAULT_AT ID: seconds from FAULT_AT to the agent's dead-man line
# ("nothing from the controller … stopping the load"), or non-zero.
agent_stop_time() {
  local at
  at=$(log_time "$CTR_RUN_ID-$2" "nothing from the controller" "stopping the load") || return 1
  seconds_between "$1" "$at"
}

# ---- 4. an agent cut off from its controller (network partition) -------------------------
scenario_partition() {
  fleet --per-agent-token --split faults-partition 10s || return 1
  check "flowsim is on $load_net and the edge only, not on the fleet network" equal \
    "$(docker inspect -f '{{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}' \
      "$E2E_FLOWSIM")" "$E2E_EDGE $load_net "
  wait_for_load || return 1
  check "flowsim counts each agent under its own key (Bearer agent-<i>)" sim_keys_match
  local agent=$CTR_RUN_ID-$VICTIM vkey t0 cut_at took
  vkey=$(key_of "$VICTIM")
  t0=$(date +%s.%N)
  disconnect_container "$agent" "$E2E_NET" || fail_step "docker network disconnect $VICTIM" || return 1
  cut_at=$(date +%s.%N)
  echo "  docker network disconnect $E2E_NET $VICTIM (took $(seconds_between "$t0" "$cut_at") s);" \
    "it stays on $load_net"
  local survivors=() id
  for id in agent-1 agent-3; do
    survivors+=("+$(key_of "$id")")
  done
  watch_keys "$cut_at" "$vkey" "${survivors[@]}" || return 1
  took=$(last_request_after "$cut_at" "$vkey")
  measured "partition -> $VICTIM's last request reached flowsim: $took s" \
    "(heartbeat timeout ${HEARTBEAT_TIMEOUT} s; poll 0.1 s)"
  check "$VICTIM's last request reached flowsim within ${STOP_BOUND} s of the cut ($took s)" \
    between "$took" 0 "$STOP_BOUND"
  local t
  if t=$(agent_stop_time "$cut_at" "$VICTIM"); then
    measured "partition -> $VICTIM logs its dead-man stop: $t s"
  else
    fail_step "$VICTIM's log says it stopped the load ('nothing from the controller')" || true
  fi
  for id in agent-1 agent-3; do
    t=$(last_request_after "$cut_at" "$(key_of "$id")")
    check "survivor $id kept sending after $VICTIM stopped (last seen $t s after the cut)" \
      python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) + 1 else 1)' "$t" "$took"
  done
  check "$VICTIM is still running (cut off, not dead)" container_running "$agent"

  local code
  code=$(wait_container "$controller" "$RUN_TIMEOUT") ||
    fail_step "the controller finishes by itself within ${RUN_TIMEOUT} s" || return 1
  check "the controller finishes by itself and exits 4, degraded (got $code)" equal "$code" 4
  check "the survivors exit 0 once released" e2e_agents_exit_zero 20 agent-1 agent-3
  victim_log
  if t=$(log_time "$controller" "nothing from the agent" "$VICTIM"); then
    measured "partition -> controller drops $VICTIM's silent stream: $(seconds_between "$cut_at" "$t") s"
  else
    echo "  the controller's log has no 'nothing from the agent' line for $VICTIM"
  fi
  if t=$(log_time "$controller" "agent lost" "$VICTIM"); then
    measured "partition -> controller marks $VICTIM lost: $(seconds_between "$cut_at" "$t") s" \
      "(lost_after ${LOST_AFTER} s)"
  else
    fail_step "the controller's log says when $VICTIM was lost ('agent lost')" || true
  fi

  check "summary.json written" test -s "$summary"
  [ -s "$summary" ] || return 1
  check "outcome is degraded" equal "$(json "$summary" outcome)" '"degraded"'
  echo "  lost_agents: $(json "$summary" lost_agents)"
  check "lost_agents is $VICTIM alone" equal "$(lost_ids "$summary")" "[\"$VICTIM\"]"
  check "its entry has a time (at_s > 0) and a reason" python3 - "$summary" "$VICTIM" <<'PY'
import json, sys
lost = [a for a in json.load(open(sys.argv[1]))["lost_agents"] if isinstance(a, dict) and a.get("id") == sys.argv[2]]
sys.exit(0 if lost and lost[0].get("at_s", 0) > 0 and lost[0].get("reason") else 1)
PY
  local reasons
  reasons=$(json "$summary" outcome_reasons)
  echo "  outcome_reasons: $reasons"
  check "outcome_reasons name $VICTIM" grep -q "$VICTIM" <<<"$reasons"
  read_counts || return 1
  local n seen
  for id in agent-1 agent-3; do
    n=$(agent_requests "$summary" "$id")
    seen=$(sim_count "$(key_of "$id")")
    check "survivor $id: summary.json == flowsim's count for its key ($n == $seen)" equal "$n" "$seen"
  done
  n=$(agent_requests "$summary" "$VICTIM")
  seen=$(sim_count "$vkey")
  local bound=$((RATE / AGENTS * (HEARTBEAT_TIMEOUT + 2)))
  measured "$VICTIM: flowsim saw $seen of its requests, the controller counted $n" \
    "(acknowledged before the cut): $((seen - n)) short (bound $bound)"
  check "$VICTIM's acknowledged requests count ($n > 0) and never exceed flowsim's ($seen)" \
    test "$n" -gt 0 -a "$n" -le "$seen"
  check "$VICTIM's shortfall ($((seen - n))) is at most its share x (timeout + 2 s) = $bound" \
    test "$((seen - n))" -le "$bound"
}

# ---- 5. the controller paused (a hung controller) ----------------------------------------
scenario_hang() {
  fleet --per-agent-token faults-hang 10s || return 1
  wait_for_load || return 1
  check "flowsim counts each agent under its own key (Bearer agent-<i>)" sim_keys_match
  local paused_at resumed_at took max=0 id t
  pause_container "$controller" || fail_step "docker pause the controller" || return 1
  paused_at=$(date +%s.%N)
  echo "  docker pause the controller"
  watch_keys "$paused_at" "${keys[@]}"
  check "the controller stayed paused while flowsim was watched" \
    equal "$(container_state "$controller")" paused
  # Unpause at once (well within lost_after), then read what happened while it hung.
  unpause_container "$controller" || fail_step "docker unpause the controller" || return 1
  resumed_at=$(date +%s.%N)
  measured "controller paused for $(seconds_between "$paused_at" "$resumed_at") s"
  [ -s "$watch" ] || return 1
  for id in agent-1 agent-2 agent-3; do
    took=$(last_request_after "$paused_at" "$(key_of "$id")")
    max=$(python3 -c 'import sys; print(max(sys.argv[1:], key=float))' "$max" "$took")
    if t=$(agent_stop_time "$paused_at" "$id"); then
      echo "  $id: last request reached flowsim $took s after the pause; dead-man stop logged at $t s"
    else
      echo "  $id: last request reached flowsim $took s after the pause"
      fail_step "$id's log says it stopped the load ('nothing from the controller')" || true
    fi
    check "$id's last request reached flowsim within ${STOP_BOUND} s of the pause ($took s)" \
      between "$took" 0 "$STOP_BOUND"
  done
  measured "controller paused -> last agent request reached flowsim: $max s" \
    "(heartbeat timeout ${HEARTBEAT_TIMEOUT} s; poll 0.1 s)"

  local code
  code=$(wait_container "$controller" "$RUN_TIMEOUT") ||
    fail_step "after docker unpause the controller finishes by itself within ${RUN_TIMEOUT} s" ||
    return 1
  check "summary.json written" test -s "$summary"
  [ -s "$summary" ] || return 1
  local outcome
  outcome=$(json "$summary" outcome)
  measured "unpause -> controller exited $code, outcome $outcome:" \
    "$(seconds_between "$resumed_at" "$(unix_time "$(container_finished_at "$controller")")") s"
  echo "  outcome_reasons: $(json "$summary" outcome_reasons); stopped: $(json "$summary" stopped);" \
    "agent_errors: $(json "$summary" agent_errors); lost_agents: $(json "$summary" lost_agents)"
  measured "after the hang: outcome $outcome, $(json "$summary" totals.requests) requests of the" \
    "plan's $((RATE * 10)) (${RATE} rps x 10 s), duration_s $(json "$summary" duration_s)"
  check "its exit code matches its outcome ($outcome, $code)" exit_code_matches "$outcome" "$code"
  check "every agent exits 0 once released" e2e_agents_exit_zero 20 agent-1 agent-2 agent-3
  check "no agent is lost (paused less than lost_after)" equal "$(lost_ids "$summary")" "[]"
  read_counts || return 1
  local n seen
  for id in agent-1 agent-2 agent-3; do
    n=$(agent_requests "$summary" "$id")
    seen=$(sim_count "$(key_of "$id")")
    check "$id re-attached and resent: summary.json == flowsim's count ($n == $seen)" \
      equal "$n" "$seen"
  done
}

# lost_ids SUMMARY: the ids in summary.json's lost_agents, as a JSON list.
lost_ids() {
  python3 - "$1" <<'PY'
import json, sys
lost = json.load(open(sys.argv[1]))["lost_agents"]
print(json.dumps([a["id"] if isinstance(a, dict) else a for a in lost]))
PY
}

# exit_code_matches OUTCOME CODE: the controller's exit code for that outcome (JSON string).
exit_code_matches() {
  local want
  case "$1" in
    '"passed"') want=0 ;;
    '"error"') want=1 ;;
    '"cancelled"') want=3 ;;
    '"degraded"') want=4 ;;
    '"failed"' | '"aborted"') want=99 ;;
    '"interrupted"') want=130 ;;
    *) echo "        unknown outcome $1"; return 1 ;;
  esac
  equal "$2" "$want"
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

# CRESCENDO_E2E_FAULTS="4 5" runs only those scenarios (default: all).
only=" ${CRESCENDO_E2E_FAULTS:-1 2 3 4 5} "
scenario() { # scenario N TITLE FUNCTION
  case "$only" in *" $1 "*) run_scenario "$1. $2" "$3" ;; esac
}
scenario 1 "docker kill $VICTIM mid-run" scenario_kill
scenario 2 "docker pause $VICTIM for 2 s mid-run" scenario_pause
scenario 3 "docker stop (SIGTERM) the controller mid-run" scenario_stop
scenario 4 "docker network disconnect $VICTIM from the controller mid-run" scenario_partition
scenario 5 "docker pause the controller mid-run, then unpause" scenario_hang

say "measured"
for m in "${MEASURED[@]}"; do
  echo "  $m"
done

# e2e_on_exit prints the tally and cleans up.
[ "$failed" -eq 0 ]
