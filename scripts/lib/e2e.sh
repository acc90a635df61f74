# shellcheck shell=bash
# What the container end-to-end scripts (scripts/e2e-containers.sh, scripts/e2e-faults.sh)
# share: PASS/FAIL bookkeeping, JSON and HTTP readers, the Docker check, the image
# build, and the pieces of a fleet (networks, flowsim, the plan, controller, agents).
# Source it after scripts/lib/containers.sh:
#
#   source scripts/lib/containers.sh
#   source scripts/lib/e2e.sh
#   e2e_require_docker e2e-faults        # a loud SKIP and exit 0 without Docker
#   e2e_install_traps                     # cleanup, logs on failure, the closing tally
#   e2e_build_image "$IMAGE"
#   ctr_init crescendo-e2e
#   e2e_networks && e2e_start_flowsim 100 4s && e2e_write_plan … && e2e_start_controller …
#
# Fleet names derive from CTR_RUN_ID: the fleet network is $CTR_RUN_ID (--internal: no
# route out), the edge network $CTR_RUN_ID-edge (only flowsim joins it, so its port can
# be published on 127.0.0.1 for GET /__sim/stats), containers $CTR_RUN_ID-flowsim,
# $CTR_RUN_ID-controller and $CTR_RUN_ID-agent-<i>. A fleet may split its traffic: the
# agents reach flowsim over a load network of their own (e2e_start_flowsim and
# e2e_start_agents take it as an argument) and the controller over the fleet network.

passed=0
failed=0

# python3, resolved once: a version manager's shim (pyenv) costs ~0.3 s a call, and these
# scripts call it a hundred times.
if E2E_PYTHON=$(command python3 -c 'import sys; print(sys.executable)' 2>/dev/null) &&
  [ -x "$E2E_PYTHON" ]; then
  python3() { "$E2E_PYTHON" "$@"; }
fi
E2E_STARTED=$(date +%s)
E2E_LOGS_DUMPED=false

say() { printf '\n==> %s\n' "$*"; }

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

fail_step() { # a step the rest of a scenario depends on went wrong: count it, go on
  printf '  FAIL  %s\n' "$*"
  failed=$((failed + 1))
  return 1
}

fail_now() { # a step the rest of the script depends on went wrong
  fail_step "$@" || true
  exit 1
}

equal() { [ "$1" = "$2" ] || { echo "        expected $2, got $1"; return 1; }; }

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

# agent_requests SUMMARY ID: that agent's requests in summary.json, 0 if absent.
agent_requests() {
  python3 - "$1" "$2" <<'PY'
import json, sys
agents = json.load(open(sys.argv[1]))["agents"]
print(sum(a.get("requests", 0) for a in agents if a.get("id") == sys.argv[2]))
PY
}

# unix_time RFC3339: seconds since the epoch (Docker's nanosecond timestamps included).
unix_time() {
  python3 - "$1" <<'PY'
import datetime, re, sys
m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", sys.argv[1].strip())
if not m:
    sys.exit("not an RFC 3339 time: " + sys.argv[1])
zone = "+00:00" if m.group(3) == "Z" else m.group(3)
t = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp()
print(f"{t + float('0.' + (m.group(2) or '0')):.6f}")
PY
}

# seconds_between T0 T1: T1 - T0 (unix seconds), to the millisecond.
seconds_between() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

# e2e_require_docker NAME: without a usable Docker engine, a loud SKIP and exit 0.
e2e_require_docker() {
  if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    local line="##  SKIPPED: container test (scripts/$1.sh)"
    cat <<EOF

##########################################################################
$(printf '%-72s##' "$line")
##  no usable Docker engine here (\`docker info\` failed).                ##
##  Its multi-host checks did NOT run.                                  ##
##########################################################################
EOF
    exit 0
  fi
  local tool
  for tool in python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$1: $tool is required" >&2; exit 1; }
  done
}

# e2e_install_traps: on exit, the current run's container logs when anything failed
# (unless already shown), cleanup, the wall time and "N passed, N failed"; Ctrl-C and
# SIGTERM exit 130 through the same path.
e2e_on_exit() {
  local status=$?
  [ "$status" -ne 130 ] || echo "  interrupted: removing this run's containers and networks"
  if { [ "$status" -ne 0 ] || [ "$failed" -gt 0 ]; } && ! $E2E_LOGS_DUMPED; then
    e2e_dump_logs
  fi
  cleanup
  printf '\n  took %ds\n' "$(($(date +%s) - E2E_STARTED))"
  printf '\n%d passed, %d failed\n' "$passed" "$failed"
  exit "$status"
}
e2e_install_traps() {
  trap e2e_on_exit EXIT
  trap 'exit 130' INT TERM
}

# e2e_dump_logs: every container of the current CTR_RUN_ID, for a failure report.
e2e_dump_logs() {
  [ -n "$CTR_RUN_ID" ] || return 0
  echo
  echo "---- container logs ($CTR_RUN_ID) ----"
  dump_logs
  E2E_LOGS_DUMPED=true
}

# e2e_build_image IMAGE: scripts/build-image.sh --profile dev --tag IMAGE, its log in a
# temp dir (last line shown). With CRESCENDO_E2E_IMAGE_READY=1 the caller vouches that
# IMAGE was just built from this tree (scripts/test.sh after e2e-containers.sh): no
# rebuild, only a check that it exists.
e2e_build_image() {
  local image=$1 log_dir
  say "image $image (dev profile)"
  if [ "${CRESCENDO_E2E_IMAGE_READY:-}" = 1 ]; then
    docker image inspect "$image" >/dev/null 2>&1 ||
      fail_now "CRESCENDO_E2E_IMAGE_READY=1 but there is no image $image"
    echo "  reusing $image (CRESCENDO_E2E_IMAGE_READY=1): $(docker image inspect -f '{{.Id}}' "$image")"
    return 0
  fi
  ctr_tempdir log_dir
  if ! scripts/build-image.sh --profile dev --tag "$image" >"$log_dir/build.log" 2>&1; then
    tail -n 60 "$log_dir/build.log"
    fail_now "build the image"
  fi
  tail -n 1 "$log_dir/build.log"
}

# e2e_networks: the fleet network $CTR_RUN_ID (--internal) and the edge $CTR_RUN_ID-edge.
e2e_networks() {
  E2E_NET=$CTR_RUN_ID
  E2E_EDGE=$CTR_RUN_ID-edge
  network_create "$E2E_NET" --internal || fail_step "create network $E2E_NET" || return 1
  network_create "$E2E_EDGE" || fail_step "create network $E2E_EDGE" || return 1
}

# e2e_start_flowsim IMAGE LIMIT WINDOW [NETWORK]: flowsim on the edge network, its port
# published on loopback only, then on NETWORK too (default: the fleet network $E2E_NET);
# waits (10 s at most) for GET /healthz. Sets E2E_FLOWSIM (its name and host name) and
# E2E_SIM_ADDR (127.0.0.1:PORT).
e2e_start_flowsim() {
  local image=$1 limit=$2 window=$3 net=${4:-$E2E_NET} healthy=false
  E2E_FLOWSIM=$CTR_RUN_ID-flowsim
  start_container "$E2E_FLOWSIM" --network "$E2E_EDGE" --publish 127.0.0.1::8080 -- \
    "$image" crescendo-flowsim --listen 0.0.0.0:8080 --auto-create \
    --limit "$limit" --window "$window" || fail_step "start flowsim" || return 1
  connect_container "$E2E_FLOWSIM" "$net" || fail_step "connect flowsim to $net" || return 1
  E2E_SIM_ADDR=$(published_port "$E2E_FLOWSIM" 8080)
  [ -n "$E2E_SIM_ADDR" ] || fail_step "flowsim's port is not published on 127.0.0.1" || return 1
  for _ in $(seq 1 50); do
    if [ "$(http_get "http://$E2E_SIM_ADDR/healthz" 2>/dev/null)" = "ok" ]; then
      healthy=true
      break
    fi
    container_running "$E2E_FLOWSIM" || break
    sleep 0.2
  done
  check "flowsim answers GET /healthz (via $E2E_SIM_ADDR)" $healthy
  $healthy
}

# e2e_sim_stats FILE: flowsim's GET /__sim/stats into FILE.
e2e_sim_stats() { http_get "http://$E2E_SIM_ADDR/__sim/stats" >"$1"; }

# e2e_sim_sent: flowsim's accepted + throttled so far (empty when it does not answer).
e2e_sim_sent() {
  http_get "http://$E2E_SIM_ADDR/__sim/stats" 2>/dev/null |
    python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["accepted"] + s["throttled"])' 2>/dev/null
}

# e2e_wait_sim_sent N TIMEOUT_S [CONTAINER]: poll (every 0.1 s) until flowsim has
# answered N API requests (accepted + throttled); fails after TIMEOUT_S seconds, or at
# once when CONTAINER (the controller, say) exits first. Prints the count reached.
e2e_wait_sim_sent() {
  local want=$1 deadline=$(($(date +%s) + $2)) watch=${3:-} n=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    n=$(e2e_sim_sent)
    if [ -n "$n" ] && [ "$n" -ge "$want" ]; then
      echo "$n"
      return 0
    fi
    if [ -n "$watch" ] && ! container_running "$watch"; then
      echo "        $watch exited before flowsim saw $want requests (${n:-?} so far)" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "        flowsim saw ${n:-?} requests, not $want, within $2 s" >&2
  return 1
}

# e2e_write_plan DIR NAME RATE DURATION [--per-agent-token]: DIR/NAME.toml, an
# open-model plan of PUT /api/v2/flows/{flowId} at RATE rps for DURATION against flowsim,
# policy none, flows partitioned per agent; DIR readable and DIR/../out writable by the
# image's uid 10001. With --per-agent-token each agent sends `Authorization: Bearer
# <its id>`, so flowsim counts (and limits) each agent apart: e2e_sim_key names its key.
e2e_write_plan() {
  local dir=$1 name=$2 rate=$3 duration=$4
  local headers='Content-Type = "application/json"'
  if [ "${5:-}" = --per-agent-token ]; then
    headers+=', Authorization = "Bearer {agent}"'
  fi
  mkdir -p "$dir"
  chmod 0755 "$dir"
  cat >"$dir/$name.toml" <<PLAN
name = "$name"
description = "agents in containers, PUT flow updates against flowsim (policy none)"

[target]
base_url = "http://$E2E_FLOWSIM:8080"
timeout = "5s"

[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { $headers }
body = '{"name": "flow {flowId} rev {seq}", "description": "e2e agent {agent}"}'
expect = [200]

[load]
model = "open"
start_rate = $rate
max_in_flight = 100
stages = [{ duration = "$duration", target = $rate }]

[backoff]
policy = "none"

[data]
partition = "per-agent"
sequence = { var = "flowId", format = "flow-{n}", count = 60 }
PLAN
  chmod 0644 "$dir/$name.toml"
}

# e2e_start_controller IMAGE PLAN_DIR PLAN_NAME OUT_DIR AGENTS [docker run options…]:
# `crescendo-controller run` on the fleet network, the plan dir mounted read-only at
# /plans, OUT_DIR (made writable for uid 10001) at /out. It listens on 0.0.0.0, so
# agents and operators authenticate: fresh enrolment and admin tokens in a token dir
# (files, mounted read-only; never on a command line). Sets E2E_CONTROLLER and
# E2E_TOKENS (the token dir, which e2e_start_agents mounts too).
e2e_start_controller() {
  local image=$1 plan_dir=$2 plan=$3 out=$4 agents=$5
  shift 5
  E2E_CONTROLLER=$CTR_RUN_ID-controller
  mkdir -p "$out"
  chmod 0777 "$out"
  E2E_TOKENS=$plan_dir/../tokens
  mkdir -p "$E2E_TOKENS"
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$E2E_TOKENS/enrol"
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$E2E_TOKENS/admin"
  # The containers run as uid 10001.
  chmod 0755 "$E2E_TOKENS" && chmod 0644 "$E2E_TOKENS/enrol" "$E2E_TOKENS/admin"
  local tls=()
  if [ -n "${E2E_CERTS:-}" ]; then
    tls=(--tls-cert "$E2E_TLS_DIR/controller.pem" --tls-key "$E2E_TLS_DIR/controller-key.pem"
      --tls-client-ca "$E2E_TLS_DIR/ca.pem")
    set -- --volume "$E2E_CERTS/fleet:$E2E_TLS_DIR:ro" "$@"
  fi
  start_container "$E2E_CONTROLLER" --network "$E2E_NET" \
    --volume "$plan_dir:/plans:ro" --volume "$out:/out" \
    --volume "$E2E_TOKENS:/run/secrets/crescendo:ro" "$@" -- \
    "$image" crescendo-controller run "/plans/$plan.toml" --agents "$agents" \
    --listen 0.0.0.0:7700 --out /out --wait-for-agents 60s \
    --enrol-token-file /run/secrets/crescendo/enrol \
    --admin-token-file /run/secrets/crescendo/admin "${tls[@]}" ||
    fail_step "start the controller"
}

# Where the containers see the certificates e2e_make_certs made.
E2E_TLS_DIR=/run/secrets/crescendo-tls

# e2e_make_certs IMAGE DIR AGENTS [FOREIGN_ID]: mutual TLS for the fleet, made by the
# image's own `crescendo-controller certs` (in a container with no network): a CA, a
# certificate for the controller's container name and one per agent agent-1..AGENTS in
# DIR/fleet; with FOREIGN_ID also a certificate for that id from a second, unrelated CA
# in DIR/foreign. Sets E2E_CERTS=DIR: from then on e2e_start_controller asks for client
# certificates from the fleet's CA and e2e_start_agents presents them over https. Call
# it after e2e_start_flowsim (which sets nothing it needs) and before the controller
# starts; the controller's name is fixed by CTR_RUN_ID.
e2e_make_certs() {
  local image=$1 dir=$2 agents=$3 foreign=${4:-} args=() i
  # Host-owned directories the container (uid 10001) may write into, so that the
  # cleanup can remove what it made.
  mkdir -p "$dir/fleet" "$dir/foreign"
  chmod 0777 "$dir" "$dir/fleet" "$dir/foreign"
  for i in $(seq 1 "$agents"); do args+=(--agent "agent-$i"); done
  docker run --rm --pull never --network none --label "$CTR_LABEL_KEY=$CTR_RUN_ID" \
    "${CTR_DEFAULT_RUN_OPTS[@]}" --volume "$dir:/certs" "$image" \
    crescendo-controller certs --out /certs/fleet \
    --controller-name "$CTR_RUN_ID-controller" "${args[@]}" >/dev/null ||
    fail_step "make the fleet's certificates" || return 1
  if [ -n "$foreign" ]; then
    docker run --rm --pull never --network none --label "$CTR_LABEL_KEY=$CTR_RUN_ID" \
      "${CTR_DEFAULT_RUN_OPTS[@]}" --volume "$dir:/certs" "$image" \
      crescendo-controller certs --out /certs/foreign --agent "$foreign" >/dev/null ||
      fail_step "make a certificate from another CA" || return 1
  fi
  E2E_CERTS=$dir
}

# e2e_start_tls_agent IMAGE ID ISSUER [NETWORK]: one agent ID whose client certificate
# comes from ISSUER (`fleet` or `foreign`, under E2E_CERTS), trusting the fleet's CA for
# the controller; on NETWORK (default the fleet network).
e2e_start_tls_agent() {
  local image=$1 id=$2 issuer=$3 network=${4:-$E2E_NET}
  start_container "$CTR_RUN_ID-$id" --network "$network" \
    --volume "$E2E_TOKENS/enrol:/run/secrets/crescendo/enrol:ro" \
    --volume "$E2E_CERTS/fleet/ca.pem:/run/secrets/ca.pem:ro" \
    --volume "$E2E_CERTS/$issuer:$E2E_TLS_DIR:ro" -- \
    "$image" crescendo-agent --controller "https://$E2E_CONTROLLER:7700" --id "$id" \
    --enrol-token-file /run/secrets/crescendo/enrol --tls-ca /run/secrets/ca.pem \
    --tls-cert "$E2E_TLS_DIR/agent-$id.pem" --tls-key "$E2E_TLS_DIR/agent-$id-key.pem"
}

# e2e_start_agents IMAGE N [LOAD_NETWORK]: agents agent-1..N ($CTR_RUN_ID-agent-<i>) on
# the fleet network, with the enrolment token e2e_start_controller made. With
# LOAD_NETWORK (the one flowsim joined instead of the fleet network), each starts on
# LOAD_NETWORK and then joins the fleet network: it reaches the controller only once both
# are up, so it never starts the load without a way to flowsim. After e2e_make_certs
# each presents its own certificate over https (mutual TLS).
e2e_start_agents() {
  local image=$1 load=${3:-} i name
  for i in $(seq 1 "$2"); do
    name=$CTR_RUN_ID-agent-$i
    if [ -n "${E2E_CERTS:-}" ]; then
      e2e_start_tls_agent "$image" "agent-$i" fleet "${load:-$E2E_NET}" ||
        fail_step "start agent-$i" || return 1
    else
      start_container "$name" --network "${load:-$E2E_NET}" \
        --volume "$E2E_TOKENS/enrol:/run/secrets/crescendo/enrol:ro" -- \
        "$image" crescendo-agent --controller "http://$E2E_CONTROLLER:7700" --id "agent-$i" \
        --enrol-token-file /run/secrets/crescendo/enrol ||
        fail_step "start agent-$i" || return 1
    fi
    if [ -n "$load" ]; then
      connect_container "$name" "$E2E_NET" || fail_step "connect agent-$i to $E2E_NET" || return 1
    fi
  done
}

# e2e_sim_key TOKEN: the name flowsim's GET /__sim/stats shows for requests with
# `Authorization: TOKEN` (crescendo_flowsim::key_name: token-<SipHash-1-3, zero keys, of
# the value as Rust's `<[u8]>::hash` feeds it: its length as a little-endian u64, then
# the bytes>). The scripts check the names they compute appear in flowsim's stats.
e2e_sim_key() {
  python3 - "$1" <<'PY'
import struct, sys

M = (1 << 64) - 1

def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M

def siphash13(data):
    v = [0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & M; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M; v[3] = rotl(v[3], 16); v[3] ^= v[2]
        v[0] = (v[0] + v[3]) & M; v[3] = rotl(v[3], 21); v[3] ^= v[0]
        v[2] = (v[2] + v[1]) & M; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    full = len(data) // 8 * 8
    for i in range(0, full, 8):
        m = struct.unpack("<Q", data[i:i + 8])[0]
        v[3] ^= m; rnd(); v[0] ^= m
    b = ((len(data) & 0xFF) << 56) | int.from_bytes(data[full:], "little")
    v[3] ^= b; rnd(); v[0] ^= b
    v[2] ^= 0xFF
    rnd(); rnd(); rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]

value = sys.argv[1].encode()
print("anonymous" if not value else f"token-{siphash13(struct.pack('<Q', len(value)) + value):016x}")
PY
}

# e2e_sim_watch OUT QUIET_S MAX_S KEY…: poll flowsim's GET /__sim/stats every 0.1 s until
# none of the KEYs' counts (accepted + throttled) has moved for QUIET_S seconds, or
# MAX_S seconds have passed. A KEY written +KEY is recorded too but not waited for.
# Writes OUT (JSON): started, ended, settled (true when quiet for QUIET_S), polls,
# errors, and per key (without the +) its count and changed_at: the unix time of the
# first answer that showed its final count (null: it did not move while watched). Its
# last request reached flowsim at most one poll (~0.1 s) before changed_at.
e2e_sim_watch() {
  local out=$1 quiet=$2 max=$3
  shift 3
  python3 - "http://$E2E_SIM_ADDR/__sim/stats" "$out" "$quiet" "$max" "$@" <<'PY'
import json, sys, time, urllib.request

url, out, quiet, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
keys = [k.lstrip("+") for k in sys.argv[5:]]
waited = [k for k in sys.argv[5:] if not k.startswith("+")]
started = time.time()
counts, changed = {}, {k: None for k in keys}
polls = errors = 0
settled = False
while True:
    try:
        stats = json.load(urllib.request.urlopen(url, timeout=2))
        now = time.time()  # after the answer: what it counts reached flowsim by now
        polls += 1
        for k in keys:
            s = stats.get("keys", {}).get(k, {})
            n = s.get("accepted", 0) + s.get("throttled", 0)
            if k in counts and n != counts[k]:
                changed[k] = now
            counts[k] = n
    except Exception:
        now = time.time()
        errors += 1
    last = max([changed[k] for k in waited if changed[k] is not None] + [started])
    if polls and now - last >= quiet:
        settled = True
        break
    if now - started >= limit:
        break
    time.sleep(0.1)
json.dump({"started": started, "ended": time.time(), "settled": settled, "polls": polls,
           "errors": errors,
           "keys": {k: {"count": counts.get(k, 0), "changed_at": changed[k]} for k in keys}},
          open(out, "w"))
PY
}

# e2e_agents_exit_zero TIMEOUT_S ID…: true when each agent container exits 0 within
# TIMEOUT_S seconds (in all), naming the ones that did not.
e2e_agents_exit_zero() {
  local wait_s=$1 deadline=$(($(date +%s) + $1)) ok=true id code left
  shift
  for id in "$@"; do
    left=$((deadline - $(date +%s)))
    [ "$left" -gt 0 ] || left=1
    if ! code=$(wait_container "$CTR_RUN_ID-$id" "$left"); then
      echo "        $id still running ${wait_s} s on"
      ok=false
    elif [ "$code" != 0 ]; then
      echo "        $id exited $code"
      ok=false
    fi
  done
  $ok
}
