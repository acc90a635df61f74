"""Parse Prometheus text exposition from stdin with the reference Python client's
parser (prometheus_client.parser.text_string_to_metric_families) and print it as JSON:
{"families": {name: {"type": ..., "help": ..., "samples": [[name, labels, value], ...]}}}.

Exits 3 when the prometheus_client module is missing, so the Rust test can say why.
A parse error raises (exit 1) with the parser's message."""

import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client is not installed (scripts/test.sh installs it in target/py-venv)", file=sys.stderr)
    sys.exit(3)

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    samples = []
    for s in family.samples:
        value = s.value
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            value = str(value)
        samples.append([s.name, s.labels, value])
    families[family.name] = {"type": family.type, "help": family.documentation, "samples": samples}
print(json.dumps({"families": families}))
