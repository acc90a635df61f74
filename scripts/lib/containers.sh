# shellcheck shell=bash
# Helpers for container end-to-end tests: unique names, private networks, starting,
# stopping, killing, pausing and cutting off single containers, and cleanup that
# leaves nothing behind. Source it, call ctr_init, and `trap cleanup EXIT`:
#
#   source scripts/lib/containers.sh
#   ctr_init crescendo-e2e                 # CTR_RUN_ID=crescendo-e2e-<pid>-<random>
#   trap cleanup EXIT
#   network_create "$CTR_RUN_ID" --internal
#   start_container "$CTR_RUN_ID-flowsim" --network "$CTR_RUN_ID" -- crescendo:e2e crescendo-flowsim …
#   pause_container "$CTR_RUN_ID-agent-2"; sleep 5; unpause_container "$CTR_RUN_ID-agent-2"
#   disconnect_container "$CTR_RUN_ID-agent-3" "$CTR_RUN_ID"   # a network partition
#   code=$(wait_container "$CTR_RUN_ID-controller" 180)
#
# Every container and network carries the label io.crescendo.e2e.run=$CTR_RUN_ID, so
# cleanup also finds what was created in a subshell. Functions that create things must
# not be called inside $(…) if their bookkeeping matters; they print nothing to stdout.
# Nothing here talks to a registry: images must exist locally (--pull never).

CTR_LABEL_KEY=io.crescendo.e2e.run
CTR_RUN_ID=${CTR_RUN_ID:-}
CTR_CONTAINERS=()
CTR_NETWORKS=()
CTR_TEMPDIRS=()
# Options every start_container adds before the caller's own. The images run as a
# non-root user and need neither capabilities nor a writable root filesystem.
CTR_DEFAULT_RUN_OPTS=(--read-only --cap-drop ALL --security-opt no-new-privileges)

ctr_log() { printf '    [containers] %s\n' "$*" >&2; }

# ctr_init PREFIX: set CTR_RUN_ID to PREFIX-<pid>-<random>, unique per run.
ctr_init() {
  local prefix=${1:-crescendo-e2e} rand
  rand=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  CTR_RUN_ID="$prefix-$$-$rand"
}

# ctr_tempdir VAR: make a temp dir, remove it on cleanup, store its path in VAR.
ctr_tempdir() {
  local __dir
  __dir=$(mktemp -d "${TMPDIR:-/tmp}/$CTR_RUN_ID.XXXXXX")
  CTR_TEMPDIRS+=("$__dir")
  printf -v "$1" '%s' "$__dir"
}

# network_create NAME [docker network create options…], e.g. --internal (no route out).
network_create() {
  local name=$1
  shift
  docker network create --label "$CTR_LABEL_KEY=$CTR_RUN_ID" "$@" "$name" >/dev/null
  CTR_NETWORKS+=("$name")
}

# start_container NAME [docker run options…] -- IMAGE [ARGS…]: run detached.
start_container() {
  local name=$1
  shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    opts+=("$1")
    shift
  done
  if [ $# -lt 2 ]; then
    echo "start_container $name: expected '-- IMAGE [ARGS…]'" >&2
    return 2
  fi
  shift # --
  CTR_CONTAINERS+=("$name")
  docker run --detach --pull never --name "$name" --hostname "$name" \
    --label "$CTR_LABEL_KEY=$CTR_RUN_ID" \
    "${CTR_DEFAULT_RUN_OPTS[@]}" "${opts[@]}" "$@" >/dev/null
}

# stop_container NAME [GRACE_S]: the container's stop signal (SIGTERM, unless
# `docker run --stop-signal` set another), SIGKILL after GRACE_S seconds
# (default: the container's own stop timeout, 10 s unless `--stop-timeout` set it).
stop_container() {
  if [ -n "${2:-}" ]; then
    docker stop --time "$2" "$1" >/dev/null
  else
    docker stop "$1" >/dev/null
  fi
}

# kill_container NAME [SIGNAL]: an abrupt death (default SIGKILL), e.g. a lost host.
kill_container() { docker kill --signal "${2:-KILL}" "$1" >/dev/null; }

# pause_container NAME / unpause_container NAME: freeze every process (a hung host).
pause_container() { docker pause "$1" >/dev/null; }
unpause_container() { docker unpause "$1" >/dev/null; }

# disconnect_container NAME NETWORK: cut the container off a network (a partition).
disconnect_container() { docker network disconnect --force "$2" "$1" >/dev/null; }

# connect_container NAME NETWORK [ALIAS]: attach (or re-attach) it, optionally with a
# DNS alias on that network.
connect_container() {
  if [ -n "${3:-}" ]; then
    docker network connect --alias "$3" "$2" "$1" >/dev/null
  else
    docker network connect "$2" "$1" >/dev/null
  fi
}

# container_running NAME: true while the container runs (paused counts as running).
container_running() {
  [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = "true" ]
}

# container_state NAME: running, paused, exited, … (empty if there is no such container).
container_state() { docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }

# container_finished_at NAME: when it exited, as Docker recorded it (RFC 3339, ns).
container_finished_at() { docker inspect -f '{{.State.FinishedAt}}' "$1" 2>/dev/null; }

# wait_container NAME TIMEOUT_S: print its exit code once it exits; return 124 if it is
# still running after TIMEOUT_S seconds.
wait_container() {
  local code
  if ! code=$(timeout "$2" docker wait "$1"); then
    return 124
  fi
  printf '%s\n' "$code"
}

# published_port NAME PORT: the 127.0.0.1:PORT the container's PORT/tcp is published on.
published_port() {
  docker port "$1" "$2/tcp" | awk -F: '/^127\.0\.0\.1:/ { print $0; exit }'
}

# dump_logs [NAME…]: the last lines of each container's output (all of this run's by
# default), for failure reports.
dump_logs() {
  local names=("$@") name
  if [ ${#names[@]} -eq 0 ]; then
    mapfile -t names < <(docker ps -a --filter "label=$CTR_LABEL_KEY=$CTR_RUN_ID" \
      --format '{{.Names}}' | sort)
  fi
  for name in "${names[@]}"; do
    printf '\n----- %s (%s) -----\n' "$name" \
      "$(docker inspect -f '{{.State.Status}}, exit {{.State.ExitCode}}' "$name" 2>/dev/null)" >&2
    docker logs --tail "${CTR_LOG_LINES:-80}" "$name" 2>&1 | sed 's/^/    /' >&2 || true
  done
}

# cleanup: remove this run's containers (running, paused or stopped), its networks and
# temp dirs. Safe to call more than once and from an EXIT trap.
cleanup() {
  [ -n "$CTR_RUN_ID" ] || return 0
  local ids nets
  ids=$(docker ps -aq --filter "label=$CTR_LABEL_KEY=$CTR_RUN_ID" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id a word
    docker rm --force --volumes $ids >/dev/null 2>&1 || ctr_log "could not remove containers: $ids"
  fi
  nets=$(docker network ls -q --filter "label=$CTR_LABEL_KEY=$CTR_RUN_ID" 2>/dev/null || true)
  if [ -n "$nets" ]; then
    # shellcheck disable=SC2086
    docker network rm $nets >/dev/null 2>&1 || ctr_log "could not remove networks: $nets"
  fi
  if [ ${#CTR_TEMPDIRS[@]} -gt 0 ]; then
    rm -rf "${CTR_TEMPDIRS[@]}"
  fi
  CTR_CONTAINERS=()
  CTR_NETWORKS=()
  CTR_TEMPDIRS=()
}
