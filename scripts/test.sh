#!/usr/bin/env bash
# The one test entry point: formatting, lints, every unit, property and end-to-end test.
# Run from anywhere: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust stable (rustup) first" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Debian packages, installed only where their command is missing (an apt-get update
# first only when the install fails without one).
apt_install() {
  local sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null; }
}

# ---- Python readers in a virtual environment (owned by the tests that run them) ------
# crates/crescendo-testkit/tests/hlog_read.rs reads latency.hlog with HdrHistogram's
# Python reader (PyPI `hdrhistogram`, module `hdrh`); crates/crescendo-controller/
# tests/live_metrics.rs and scripts/check-html.sh parse /metrics with the reference
# Prometheus parser (PyPI `prometheus-client`). Debian's python3 refuses a global pip
# install (PEP 668), so both go into target/py-venv, whose python the tests run through
# CRESCENDO_PYTHON. They fail, never skip, without it.
step "python venv target/py-venv (hdrhistogram, prometheus-client)"
venv="$PWD/target/py-venv"
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_install python3-venv
fi
# A venv whose python no longer runs (its base python upgraded or removed) is remade.
if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
  python3 -m venv --clear "$venv"
fi
if ! "$venv/bin/python" -c 'import hdrh.log, prometheus_client.parser' >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet hdrhistogram prometheus-client
fi
export CRESCENDO_PYTHON="$venv/bin/python"
"$CRESCENDO_PYTHON" -c 'import hdrh.log, prometheus_client.parser'
# ---- end python venv ----------------------------------------------------------------

# ---- deploy checks' tools (owned by crates/crescendo-deploy-check) -------------------
# tests/k8s.rs renders deploy/k8s with `kubectl kustomize`; tests/vm.rs runs
# `systemd-analyze verify` on deploy/systemd. Both fail, never skip, without them. A
# kubectl already on PATH (whatever its source) is used as it is; otherwise Debian's
# `kubernetes-client` provides one.
step "kubectl and systemd-analyze (deploy checks)"
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
kubectl version --client | sed -n 1p
systemd-analyze --version | sed -n 1p
# ---- end deploy checks' tools -------------------------------------------------------

# ---- report.html's browser (owned by the controller's reports) ----------------------
# scripts/check-html.sh loads report.html in headless Chromium (Debian's `chromium`).
step "chromium (report browser check)"
command -v chromium >/dev/null 2>&1 || apt_install chromium
# ---- end report.html's browser ------------------------------------------------------

# ---- fuzzing on stable (owned by the plan parser, header parsers, histogram decoder) ---
# crates/crescendo-{plan,backoff,metrics}/tests/fuzz.rs replay their seed corpora
# (tests/corpus/...) and run FUZZ_CASES proptest cases per property (256 when unset)
# inside the cargo test below: about 6 s in all at 5000.
export FUZZ_CASES="${FUZZ_CASES:-5000}"
# ---- end fuzzing -----------------------------------------------------------------------

step "cargo test"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt

# ---- report.html in headless Chromium (owned by the controller's reports) ------------
# A real demo run with --metrics-listen: /metrics parsed mid-run, then report.html
# loaded in Chromium: no console messages, the charts in the DOM, a real screenshot
# (target/check-html/report.png). Prints PASS/FAIL; a failure fails the script.
step "report.html in headless Chromium (scripts/check-html.sh)"
html_status=0
scripts/check-html.sh || html_status=$?
# ---- end report.html in headless Chromium ---------------------------------------------

# ---- container end-to-end (owned by deploy/: scripts/e2e-containers.sh) -------------
# The real binaries in containers: flowsim, a controller and 3 agents on a private
# network. Prints its own PASS/FAIL lines; skips loudly (exit 0) without Docker.
# Runs before the closing count so that line stays last; a failure fails the script.
step "container end-to-end (scripts/e2e-containers.sh)"
e2e_status=0
scripts/e2e-containers.sh || e2e_status=$?
# ---- end container end-to-end ---------------------------------------------------------

# ---- container fault tests (owned by deploy/: scripts/e2e-faults.sh) ------------------
# A fresh fleet per fault: an agent killed (degraded, exit 4), an agent paused for 2 s
# (nothing lost or counted twice), the controller stopped with SIGTERM (interrupted,
# exit 130, agents released). Reuses the image e2e-containers.sh just built when that
# passed, else builds it itself. Prints its own PASS/FAIL lines; skips loudly (exit 0)
# without Docker; a failure fails the script.
step "container fault tests (scripts/e2e-faults.sh)"
faults_status=0
if [[ "$e2e_status" -eq 0 ]]; then
  CRESCENDO_E2E_IMAGE_READY=1 scripts/e2e-faults.sh || faults_status=$?
elif [[ "$e2e_status" -eq 130 ]]; then
  echo "  not run: the container end-to-end test was interrupted"
else
  scripts/e2e-faults.sh || faults_status=$?
fi
# ---- end container fault tests --------------------------------------------------------

# One closing line that counts every test binary's results.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "\n%d passed, %d failed, %d skipped\n", p, f, s }' \
  target/test-output.txt
if [[ "$html_status" -ne 0 ]]; then
  exit "$html_status"
fi
if [[ "$e2e_status" -ne 0 ]]; then
  exit "$e2e_status"
fi
exit "$faults_status"
