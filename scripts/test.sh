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

# ---- HdrHistogram's Python log reader (owned by the controller's reports) ------------
# crates/crescendo-testkit/tests/hlog_read.rs reads latency.hlog with it and fails,
# not skips, without it. PyPI's `hdrhistogram` (module `hdrh`), pure Python.
step "python hdrhistogram (third-party latency.hlog reader)"
if ! python3 -c 'import hdrh.log' >/dev/null 2>&1; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet hdrhistogram
fi
# ---- end python hdrhistogram ------------------------------------------------------------

# ---- live results in real tools (owned by the controller's live results) ------------
# crates/crescendo-controller/tests/live_metrics.rs parses /metrics with the reference
# Prometheus parser (PyPI `prometheus-client`); scripts/check-html.sh loads report.html
# in headless Chromium (Debian's `chromium`). Installed here so CI never skips them.
step "python prometheus-client and chromium (metrics parser, report browser check)"
if ! python3 -c 'import prometheus_client.parser' >/dev/null 2>&1; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet prometheus-client
fi
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y chromium >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y chromium >/dev/null; }
fi
# ---- end live results tools -----------------------------------------------------------

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
