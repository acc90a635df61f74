#!/usr/bin/env bash
# Install and drive Crescendo agents on plain VMs over ssh, as systemd services.
#
#   CRESCENDO_CONTROLLER=http://controller.internal:7700 scripts/fleet.sh install hosts.txt
#   scripts/fleet.sh start|stop|status hosts.txt
#   scripts/fleet.sh --dry-run install hosts.txt      # print the commands, run nothing
#
# HOSTS_FILE: one ssh destination a line ([user@]host), '#' comments and blank lines
# ignored. Each host needs ssh access with sudo rights and systemd.
#
# install, per host:
#   1. copies the agent binary ($AGENT_BIN, default target/release/crescendo-agent:
#      `cargo build --release -p crescendo-agent`; the hosts need the same glibc or newer)
#      to /usr/local/bin/crescendo-agent, and deploy/systemd/crescendo-agent.service to
#      /etc/systemd/system/;
#   2. creates the system user crescendo (no home, no login shell) if missing;
#   3. sets CRESCENDO_CONTROLLER=$CRESCENDO_CONTROLLER in /etc/crescendo/agent.env
#      (0640 root:crescendo), keeping every other line (credentials) already there, and
#      copies $CRESCENDO_ENROL_TOKEN_FILE (the controller's enrolment token, when set)
#      to /etc/crescendo/enrol.token (0600 root), the unit's LoadCredential=;
#   4. systemctl daemon-reload, enable crescendo-agent, and try-restart it so a running
#      agent picks up the new binary.
# start/stop/status: systemctl start|stop|status crescendo-agent on every host.
#
# Environment: CRESCENDO_CONTROLLER and CRESCENDO_ENROL_TOKEN_FILE (install), AGENT_BIN, SSH (default ssh),
# SSH_OPTS (default "-o BatchMode=yes -o ConnectTimeout=10").
# Exit: 0 all hosts succeeded, 1 some host failed, 2 bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 [--dry-run] install|start|stop|status HOSTS_FILE" >&2
  exit 2
}

dry_run=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run|-n) dry_run=1; shift ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || usage
action=${args[0]}
hosts_file=${args[1]}
case "$action" in
  install|start|stop|status) ;;
  *) echo "unknown action: $action" >&2; usage ;;
esac
[ -r "$hosts_file" ] || { echo "cannot read hosts file $hosts_file" >&2; exit 2; }

SSH=${SSH:-ssh}
read -r -a ssh_opts <<<"${SSH_OPTS:--o BatchMode=yes -o ConnectTimeout=10}"
AGENT_BIN=${AGENT_BIN:-target/release/crescendo-agent}
UNIT=deploy/systemd/crescendo-agent.service

if [ "$action" = install ]; then
  controller=${CRESCENDO_CONTROLLER:-}
  controller_ok=0
  case "$controller" in
    *[[:space:]]*) ;;  # rejected below
    http://*:*|https://*:*) controller_ok=1 ;;
  esac
  if [ "$controller_ok" != 1 ]; then
    echo "install needs CRESCENDO_CONTROLLER=http://HOST:PORT (got '${controller}')" >&2
    exit 2
  fi
  token_file=${CRESCENDO_ENROL_TOKEN_FILE:-}
  if [ -z "$token_file" ]; then
    echo "# note: no CRESCENDO_ENROL_TOKEN_FILE: the agents start only once /etc/crescendo/enrol.token exists on each host" >&2
  elif [ ! -r "$token_file" ] && [ "$dry_run" != 1 ]; then
    echo "CRESCENDO_ENROL_TOKEN_FILE=$token_file is not readable" >&2
    exit 2
  fi
  if [ ! -x "$AGENT_BIN" ]; then
    if [ "$dry_run" = 1 ]; then
      echo "# note: $AGENT_BIN does not exist yet (cargo build --release -p crescendo-agent)" >&2
    else
      echo "$AGENT_BIN not found: cargo build --release -p crescendo-agent, or set AGENT_BIN" >&2
      exit 2
    fi
  fi
fi

# remote HOST INPUT COMMAND: run COMMAND on HOST. INPUT is a file to send as stdin,
# "text:LINE" to send LINE, or "" for none. --dry-run prints the command instead.
remote() {
  local host=$1 input=$2 cmd=$3 shown line
  if [ "$dry_run" = 1 ]; then
    case "$cmd" in
      *[\"\$\`\\]*) shown=$(printf '%q' "$cmd") ;;
      *) shown="\"$cmd\"" ;;
    esac
    line="$(printf '%q ' "$SSH" "${ssh_opts[@]}" "$host")$shown"
    case "$input" in
      "") echo "$line" ;;
      text:*) echo "echo $(printf '%q' "${input#text:}") | $line" ;;
      *) echo "$line < $(printf '%q' "$input")" ;;
    esac
    return 0
  fi
  case "$input" in
    "") "$SSH" "${ssh_opts[@]}" "$host" "$cmd" </dev/null ;;
    text:*) printf '%s\n' "${input#text:}" | "$SSH" "${ssh_opts[@]}" "$host" "$cmd" ;;
    *) "$SSH" "${ssh_opts[@]}" "$host" "$cmd" <"$input" ;;
  esac
}

# Write stdin to PATH with MODE, atomically (a running binary is replaced, not changed).
put_file() {
  local host=$1 src=$2 path=$3 mode=$4
  remote "$host" "$src" "sudo sh -c 'cat > $path.new && chmod $mode $path.new && mv -f $path.new $path'"
}

install_host() {
  local host=$1
  put_file "$host" "$AGENT_BIN" /usr/local/bin/crescendo-agent 0755
  put_file "$host" "$UNIT" /etc/systemd/system/crescendo-agent.service 0644
  remote "$host" "" "sudo sh -c 'getent passwd crescendo >/dev/null || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin crescendo'"
  remote "$host" "text:CRESCENDO_CONTROLLER=$controller" "sudo sh -c 'umask 027 && mkdir -p /etc/crescendo && touch /etc/crescendo/agent.env && { grep -v ^CRESCENDO_CONTROLLER= /etc/crescendo/agent.env; cat; } > /etc/crescendo/agent.env.new && chgrp crescendo /etc/crescendo/agent.env.new && mv -f /etc/crescendo/agent.env.new /etc/crescendo/agent.env'"
  if [ -n "$token_file" ]; then
    put_file "$host" "$token_file" /etc/crescendo/enrol.token 0600
  fi
  remote "$host" "" "sudo systemctl daemon-reload && sudo systemctl enable crescendo-agent.service && sudo systemctl try-restart crescendo-agent.service"
}

failed=0
total=0
while IFS= read -r line || [ -n "$line" ]; do
  host=${line%%#*}
  host=${host//[[:space:]]/}
  [ -n "$host" ] || continue
  total=$((total + 1))
  echo "==> $action $host"
  status=0
  case "$action" in
    install) install_host "$host" || status=$? ;;
    start|stop) remote "$host" "" "sudo systemctl $action crescendo-agent.service" || status=$? ;;
    status) remote "$host" "" "systemctl status --no-pager --lines=5 crescendo-agent.service" || status=$? ;;
  esac
  if [ "$status" != 0 ]; then
    echo "FAILED: $action on $host (exit $status)" >&2
    failed=$((failed + 1))
  fi
done <"$hosts_file"

if [ "$total" = 0 ]; then
  echo "no hosts in $hosts_file" >&2
  exit 2
fi
echo "$action: $((total - failed)) of $total host(s) ok"
[ "$failed" = 0 ] || exit 1
