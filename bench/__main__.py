"""`make bench`: every benchmark of the project, each writing its part of bench/results.json.

The nights benchmark runs at 20,000 people and ten nights here (about ten minutes on two
cores); `python -m bench.nights_bench --users 100000 --nights 30` is the full size.
"""

from __future__ import annotations

import sys

from bench import nights_bench, plan_bench, webhook_bench


def main() -> int:
    plan_bench.main([])
    webhook_bench.main([])
    nights_bench.main(["--users", "20000", "--nights", "10", "--rate-scale", "50"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
