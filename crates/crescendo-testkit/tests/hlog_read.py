#!/usr/bin/env python3
"""Read a Crescendo latency.hlog with HdrHistogram's Python log reader (PyPI package
`hdrhistogram`, module `hdrh`), add every interval up per tag and over all tags, and
print one JSON object: {"tags": {tag: stats}, "total": stats, "intervals": n}, where
stats are count and p50/p90/p99/max in milliseconds (the log holds microseconds).

Percentile semantics: hdrh's get_value_at_percentile picks the rank round(p * N),
HdrHistogram_rust (which wrote summary.json) the rank ceil(p * N). To compare exactly,
p50/p90/p99 here use the Rust rank, read through hdrh's own histogram; hdrh's native
answers are printed too, as native_p50 and so on.

Used by tests/hlog_read.rs to check that a third-party reader accepts the log and
finds the same totals and percentiles as summary.json.
"""
import json
import math
import sys

try:
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader
except ImportError as e:  # the Rust test turns this into a clear failure
    sys.stderr.write(f"hdrh not importable ({e}): scripts/test.sh installs hdrhistogram in target/py-venv\n")
    sys.exit(3)

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3


def new():
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def at_rank_ceil(h, percentile):
    """The value at rank max(1, ceil(q * N)), as HdrHistogram_rust's value_at_quantile."""
    n = h.get_total_count()
    if n == 0:
        return 0
    rank = max(1, math.ceil(percentile / 100.0 * n))
    # hdrh's target count is int(p * N / 100 + 0.5): exactly `rank` at this percentile.
    return h.get_value_at_percentile(100.0 * rank / n)


def stats(h):
    out = {"count": h.get_total_count(), "max": h.get_max_value() / 1000.0}
    for p in (50, 90, 99):
        out[f"p{p}"] = at_rank_ceil(h, p) / 1000.0
        out[f"native_p{p}"] = h.get_value_at_percentile(p) / 1000.0
    return out


def main(path):
    reader = HistogramLogReader(path, new())
    tags, total, intervals = {}, new(), 0
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        intervals += 1
        tag = h.get_tag() or ""
        tags.setdefault(tag, new()).add(h)
        total.add(h)
    print(json.dumps({
        "intervals": intervals,
        "start_time_s": reader.get_start_time_sec(),
        "tags": {t: stats(h) for t, h in tags.items()},
        "total": stats(total),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
