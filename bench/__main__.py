"""`make bench`: every benchmark of the project, each writing its part of bench/results.json.

The nights benchmark runs at the size issue 3 asks: 100,000 people, 3 products, the first
night and thirty more, in both activity modes, at 50 ms latency, with the naive night after
them (bench/nights_bench.py says how, and why it takes some 65 minutes on two cores).
"""

from __future__ import annotations

import sys

from bench import nights_bench, plan_bench, webhook_bench


def main() -> int:
    plan_bench.main([])
    webhook_bench.main([])
    nights_bench.main(["--users", "100000", "--nights", "30", "--latency-ms", "50"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
