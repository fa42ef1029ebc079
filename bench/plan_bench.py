"""How long the rules engine takes to plan a large org, and how much memory it needs.

For each size, a fresh Python process generates a synthetic org (`tests.rules.orgs.synthetic_org`:
three products, each with entitlement, access and marker groups, exclusion groups, admins,
activity with never-active and unknown people), builds its `Snapshot`, and plans all three
products with `plan_product`. Each size runs in its own process so that peak memory
(`ru_maxrss`) belongs to that size alone.

    python -m bench.plan_bench                      # 100,000 and 1,000,000 people
    python -m bench.plan_bench --users 20000        # a quick look

`plan_seconds` is the wall time from the built snapshot to the three plans: it includes
what the snapshot works out lazily for the planner (suspended accounts, admins, people by
domain) and the garbage collections the plans' objects cause (`plan_gc_seconds` of it); it
excludes generating the org and building the snapshot (`snapshot_seconds`), which a
reconcile spends reading.

Results are merged into bench/results.json under "plan", keeping what other benchmarks wrote.
Targets, for 1,000,000 people: planning under 5 s, peak memory under 1.5 GB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")
DEFAULT_USERS = (100_000, 1_000_000)
TARGETS = {1_000_000: {"target_plan_seconds": 5.0, "target_peak_mb": 1536}}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class _CollectorTime:
    """Wall time the garbage collector spends, from now until `stop`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0
        gc.callbacks.append(self._on_collect)

    def _on_collect(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def stop(self) -> None:
        gc.callbacks.remove(self._on_collect)


def measure(users: int, seed: int, validate: bool) -> dict[str, Any]:
    """Generate, build and plan one org in this process; return the figures."""
    from shared.rules import plan_product
    from tests.rules.orgs import NOW, synthetic_org, synthetic_policies, synthetic_seat_caps

    org = synthetic_org(users, seed=seed, validate=validate)
    rss_after_snapshot = peak_rss_mb()
    policies = synthetic_seat_caps(org.snapshot, synthetic_policies())

    per_product: dict[str, Any] = {}
    plans = []
    # Start from a settled heap: collecting what generating the org left behind is not
    # planning. The collections the plans' own objects cause are planning: plan_product
    # holds the collector off while it runs, and the first allocation after it (here, in
    # `counts`) pays for the objects it made, inside the timing. `plan_gc_seconds` says how
    # much of `plan_seconds` that was.
    gc.collect()
    collecting = _CollectorTime()
    started = time.perf_counter()
    for policy in policies:
        t0 = time.perf_counter()
        plan = plan_product(org.snapshot, policy, NOW)
        per_product[policy.product] = {
            "seconds": round(time.perf_counter() - t0, 3),
            "actions": len(plan.actions),
            "waiting": len(plan.waiting),
            "licensed_before": plan.licensed_before,
            "licensed_after": plan.licensed_after,
            "counts": plan.counts(),
        }
        plans.append(plan)  # kept alive: a reconcile holds its plans until they are saved
    plan_seconds = time.perf_counter() - started
    collecting.stop()

    return {
        "users": users,
        "seed": seed,
        "plan_seconds": round(plan_seconds, 3),
        "plan_gc_seconds": round(collecting.seconds, 3),
        "snapshot_seconds": round(org.build_seconds, 3),
        "snapshot_validated": validate,
        "generate_seconds": round(org.generate_seconds, 3),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_after_snapshot_mb": rss_after_snapshot,
        "actions": sum(len(p.actions) for p in plans),
        "waiting": sum(len(p.waiting) for p in plans),
        "products": per_product,
        **TARGETS.get(users, {}),
    }


def run_in_fresh_process(users: int, seed: int, validate: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.plan_bench", "--one", str(users), "--seed", str(seed)]
    if not validate:
        command.append("--no-validate")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark for {users} users failed:\n{done.stderr}")
    return json.loads(done.stdout)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    if "target_plan_seconds" not in result:
        return result
    result["meets_targets"] = (
        result["plan_seconds"] < result["target_plan_seconds"]
        and result["peak_rss_mb"] < result["target_peak_mb"]
    )
    return result


def save(results: dict[str, dict[str, Any]]) -> None:
    """Read-modify-write: other benchmarks' top-level keys and other sizes stay as they were."""
    existing: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    previous = existing.get("plan")
    plan_section: dict[str, Any] = dict(previous) if isinstance(previous, dict) else {}
    plan_section.update(results)
    existing["plan"] = dict(sorted(plan_section.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0))
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, nargs="+", default=list(DEFAULT_USERS), help="org sizes to measure"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-validate", action="store_true", help="construct Snapshot directly instead of Snapshot.build"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: one size, JSON out
    parser.add_argument("--no-save", action="store_true", help="print, do not write bench/results.json")
    args = parser.parse_args(argv)

    if args.one is not None:
        print(json.dumps(measure(args.one, args.seed, not args.no_validate)))
        return 0

    results: dict[str, dict[str, Any]] = {}
    for users in args.users:
        result = verdict({**run_in_fresh_process(users, args.seed, not args.no_validate), **environment()})
        results[str(users)] = result
        print(
            f"{users:>9,} users: plan {result['plan_seconds']:.2f} s, snapshot build "
            f"{result['snapshot_seconds']:.2f} s (generation {result['generate_seconds']:.2f} s), "
            f"peak {result['peak_rss_mb']:,.0f} MB, {result['actions']:,} actions"
            + (
                f", targets {'met' if result['meets_targets'] else 'MISSED'}"
                if "meets_targets" in result
                else ""
            ),
            file=sys.stderr,
        )
    if not args.no_save:
        save(results)
        print(f"written to {RESULTS}", file=sys.stderr)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
