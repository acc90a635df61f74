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

step "cargo test"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt

# ---- container end-to-end (owned by deploy/: scripts/e2e-containers.sh) -------------
# The real binaries in containers: flowsim, a controller and 3 agents on a private
# network. Prints its own PASS/FAIL lines; skips loudly (exit 0) without Docker.
# Runs before the closing count so that line stays last; a failure fails the script.
step "container end-to-end (scripts/e2e-containers.sh)"
e2e_status=0
scripts/e2e-containers.sh || e2e_status=$?
# ---- end container end-to-end ---------------------------------------------------------

# One closing line that counts every test binary's results.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "\n%d passed, %d failed, %d skipped\n", p, f, s }' \
  target/test-output.txt
exit "$e2e_status"
