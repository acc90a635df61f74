#!/usr/bin/env bash
# report.html in a real browser, from a real run: runs the demo (flowsim, a controller
# and 2 agents on loopback, 5 s) with --metrics-listen, scrapes /metrics mid-run and
# parses it with the reference Prometheus parser, then loads the demo's report.html in
# headless Chromium and fails on any console message, on a DOM without the charts, or
# on a screenshot too small to hold them.
#
# Needs: chromium (Debian's package) and a python with prometheus_client: scripts/test.sh
# installs both, the parser in target/py-venv, and exports CRESCENDO_PYTHON (else that
# venv's python is used where it exists, else python3). Output (screenshot, DOM, logs)
# goes to target/check-html/.
# Usage: scripts/check-html.sh [path/to/crescendo-controller]
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/check-html
rm -rf "$out"
mkdir -p "$out"
bin=${1:-target/debug/crescendo-controller}
if [[ $# -eq 0 ]]; then
  cargo build --quiet -p crescendo-controller --bin crescendo-controller
fi
fail() { echo "FAIL check-html: $*" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || fail "chromium not found (apt-get install -y chromium)"
python=${CRESCENDO_PYTHON:-}
if [[ -z "$python" ]]; then
  python=python3
  [[ -x target/py-venv/bin/python ]] && python=target/py-venv/bin/python
fi
"$python" -c 'import prometheus_client.parser' 2>/dev/null ||
  fail "$python has no prometheus_client (scripts/test.sh installs it in target/py-venv)"

# ---- a real run, with /metrics scraped while it goes --------------------------------
"$bin" demo --agents 2 --duration 5s --progress plain --out "$out/run" \
  --metrics-listen 127.0.0.1:0 >"$out/demo.log" 2>&1 &
demo_pid=$!
trap 'kill "$demo_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^metrics on \(http:[^ ]*\)$/\1/p' "$out/demo.log" | head -n 1)
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || fail "the demo printed no metrics address: $(cat "$out/demo.log")"
scraped=no
for _ in $(seq 1 100); do
  if curl -fsS "$url" -o "$out/metrics.txt" 2>/dev/null &&
    grep -q 'crescendo_run_state{state="running"} 1' "$out/metrics.txt" &&
    grep -q '^crescendo_requests_total{outcome="ok"' "$out/metrics.txt"; then
    scraped=yes
    break
  fi
  sleep 0.1
done
[[ "$scraped" == yes ]] || fail "no mid-run scrape with requests from $url"
"$python" crates/crescendo-controller/tests/prom_parse.py <"$out/metrics.txt" >"$out/metrics.json" ||
  fail "the Prometheus parser rejected $out/metrics.txt"
wait "$demo_pid" || fail "the demo failed: $(tail -n 20 "$out/demo.log")"
trap - EXIT
report="$PWD/$out/run/report.html"
[[ -s "$report" ]] || fail "no report.html"

# ---- the report in headless Chromium ------------------------------------------------
chrome=(chromium --headless --disable-gpu --no-sandbox --hide-scrollbars
  --enable-logging=stderr --v=0 --window-size=1280,2400)
timeout 60 "${chrome[@]}" --screenshot="$PWD/$out/report.png" "file://$report" \
  >"$out/chromium.log" 2>&1 || fail "chromium failed: $(tail -n 20 "$out/chromium.log")"
# Console messages (errors, uncaught exceptions) are logged as ...:CONSOLE(line)].
if grep -E 'CONSOLE|Uncaught' "$out/chromium.log"; then
  fail "console messages while loading report.html (see $out/chromium.log)"
fi
timeout 60 "${chrome[@]}" --dump-dom "file://$report" >"$out/dom.html" 2>"$out/chromium-dom.log" ||
  fail "chromium --dump-dom failed"
svgs=$(grep -o '<svg' "$out/dom.html" | wc -l)
lines=$(grep -o '<polyline' "$out/dom.html" | wc -l)
((svgs >= 3)) || fail "expected at least 3 charts (svg) in the rendered DOM, found $svgs"
((lines >= 3)) || fail "expected chart lines (polyline) in the rendered DOM, found $lines"
grep -q '<h1>' "$out/dom.html" || fail "no heading in the rendered DOM"

# The screenshot: a PNG, and big enough to hold charts (a blank page is a few KB).
png="$out/report.png"
[[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] ||
  fail "$png is not a PNG"
size=$(stat -c %s "$png")
((size > 50000)) || fail "$png is only $size bytes: the charts did not render"
echo "PASS check-html: /metrics parsed mid-run, report.html loaded with no console messages, $svgs charts, screenshot $png ($size bytes)"
