"""Calls and wall time per night against their lower bounds, on the sandbox, in both activity modes.

One sandbox org (3 products) per activity mode, at a stated latency, with the vendors' rate
limits (``sandbox/ratelimit.py`` defaults) multiplied by ``--rate-scale`` so the run takes
minutes; the client's ``Pacer`` is given the same scaled rates. The first night, then
``--nights`` simulated nights (``sb.advance(days=1)``: activity moves day by day). Each night:

1. ``SnapshotReader(client, None, stored).read(policies, now)``: the paged users read, the
   groups search, and, in lookup mode (the users read carries no activity), the per-person
   last-active lookups of people whose stored date no longer proves use (``needs_lookup``);
2. ``plan_product`` per policy (entitlement from the Atlassian mirror groups, so no Graph);
3. the plan's operations applied by calling the client (``add_member``/``remove_member``/
   ``suspend``, each action's ops in order, actions concurrently);
4. the stored state updated in memory: ``next_states`` as the reconciler writes it, then per
   applied action what ``Executor._update_state`` writes. No Azurite: the vendor side is measured.

Calls (the sandbox's own request counts) are compared with the lower bound

    calls_bound = user_pages + group_pages + lookups_needed + ops_attempted

and the naive way public scripts use (every licensed person looked up every night):

    naive_calls = user_pages + group_pages + licensed_people + ops_attempted

(``licensed_people``: distinct people licensed in at least one product; in activity mode the
naive way needs no lookups either, so the factor is reported for lookup mode only).

Wall time is compared with the bound that the serial cursor chain and the rate limits set.
The plan needs the whole read (an incomplete read plans nothing) and the changes need the
plan, so the changes follow the read; lookups are rate limited and could at best overlap the
cursor chain:

    chain       = (user_pages + group_pages) * page_seconds
    page_seconds = latency + the round trip of one users page at zero latency (measured warm)
    time_bound  = max(chain, lookups_needed / r_lookup) + changes
    changes     = max(ops_attempted / r_membership, longest_action_ops * latency)

(an action's ops run in order, so its chain of ops is serial). ``time_bound_read_then_lookups``
adds the chain and the lookups instead of overlapping them, which is what ``SnapshotReader``
does (lookups start after the last page); both are recorded, the first is the target's.

with ``r_lookup`` = 200/min x rate_scale and ``r_membership`` = 600/min x rate_scale (per
second). The naive night's time is measured once, by actually looking up every licensed
person (after the last night, state untouched).

    python -m bench.nights_bench                                  # the issue's size
    python -m bench.nights_bench --users 20000 --nights 10        # what fits in minutes here

Results are merged into bench/results.json under "nights", keeping other keys.
Targets: calls <= 1.05 x bound every night; in lookup mode, steady-state nights (2+) at least
30 x fewer calls than the naive way; wall time <= 1.2 x the time bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")
TARGET_CALLS_RATIO = 1.05
TARGET_NAIVE_FACTOR = 30.0
TARGET_TIME_RATIO = 1.2
LOOKUP_PER_MINUTE = 200.0
MEMBERSHIP_PER_MINUTE = 600.0
PAGE_LIMIT = 100  # the users search's page size (SnapshotReader reads with the default)

#: The sandbox's endpoint classes that Seatwarden's nightly work calls.
ATLASSIAN_CLASSES = ("users-search", "groups", "memberships", "suspend-restore", "last-active")


def say(text: str) -> None:
    print(text, flush=True)


def bench_policies(sb: Any) -> Any:
    """`shared.demo.demo_policies`, but every product entitled from its Atlassian mirror group."""
    from shared.config import parse_policy
    from shared.demo import demo_policies

    data = demo_policies(sb).model_dump(mode="json")
    for policy in data["policies"]:
        policy["entitlement"] = {"atlassian_group": f"{policy['product']}-user-role"}
    return parse_policy(data, "bench policy")


async def apply_plans(client: Any, plans: list[Any], concurrency: int) -> dict[str, Any]:
    """Apply every action's Atlassian ops in order; actions run concurrently."""
    from shared.errors import GroupIsSynced, NotFound, SeatLimitReached
    from shared.model import OpKind, Via

    gate = asyncio.Semaphore(concurrency)
    tally = {"ops": 0, "actions": 0, "waiting": 0, "failed": 0, "skipped_ops": 0}
    applied: list[tuple[Any, list[Any]]] = []

    async def one(action: Any) -> None:
        done: list[Any] = []
        async with gate:
            for op in action.ops:
                if op.via is not Via.ATLASSIAN:
                    tally["skipped_ops"] += 1
                    continue
                tally["ops"] += 1
                try:
                    if op.kind is OpKind.SUSPEND:
                        await client.suspend(action.account_id)
                    elif op.kind is OpKind.ADD:
                        await client.add_member(op.group_id, action.account_id)
                    else:
                        await client.remove_member(op.group_id, action.account_id)
                except SeatLimitReached:
                    tally["waiting"] += 1
                    break
                except (GroupIsSynced, NotFound):
                    tally["failed"] += 1
                    break
                done.append(op)
        tally["actions"] += 1
        if done:
            applied.append((action, done))

    await asyncio.gather(*(one(a) for p in plans for a in p.actions))
    tally["applied"] = applied
    return tally


def atlassian_calls(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts.get(k, 0) for k in ATLASSIAN_CLASSES if counts.get(k, 0)}


async def measure_page_seconds(sb: Any, client: Any, pages: int = 20) -> float:
    """One users page's round trip at zero latency (server and client work), warm."""
    latency = sb._traffic.latency_ms
    sb.set_latency(0)
    try:
        samples = []
        for _ in range(2):  # the first pass warms up
            seen = 0
            started = time.perf_counter()
            async for _page in client.iter_user_pages():
                seen += 1
                if seen >= pages:
                    break
            samples.append((time.perf_counter() - started) / max(1, seen))
        return samples[-1]
    finally:
        sb.set_latency(latency)
        sb.reset_counts()


async def run_mode(args: argparse.Namespace, activity_in_search: bool) -> dict[str, Any]:
    from sandbox import Sandbox, SandboxConfig
    from shared.atlassian import LAST_ACTIVE, MEMBERSHIP, USER_LIFECYCLE, AtlassianClient
    from shared.http import Pacer
    from shared.model import Via
    from shared.rules import plan_product
    from shared.services.execute import state_after
    from shared.services.reconcile import next_states
    from shared.services.snapshot import SnapshotReader, product_key
    from shared.store import UserState

    mode = "activity_in_read" if activity_in_search else "lookups"
    scale = args.rate_scale
    r_lookup = LOOKUP_PER_MINUTE * scale / 60.0
    r_membership = MEMBERSHIP_PER_MINUTE * scale / 60.0
    started = time.perf_counter()
    config = SandboxConfig(
        users=args.users,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_scale=scale,
        activity_in_search=activity_in_search,
        frozen_clock=True,
    )
    with Sandbox.start(config) as sb:
        say(f"[{mode}] sandbox with {args.users} people in {time.perf_counter() - started:.1f} s")
        pacer = Pacer(
            {
                LAST_ACTIVE: LOOKUP_PER_MINUTE * scale,
                MEMBERSHIP: MEMBERSHIP_PER_MINUTE * scale,
                USER_LIFECYCLE: MEMBERSHIP_PER_MINUTE * scale,
            },
            concurrency=args.concurrency,
        )
        client = AtlassianClient(sb.atlassian_base, sb.org_id, sb.api_key, pacer=pacer)
        policies = list(bench_policies(sb).policies)
        stored: dict[str, dict[str, Any]] = {product_key(p.product): {} for p in policies}
        page_seconds = await measure_page_seconds(sb, client)
        page_bound = args.latency_ms / 1000.0 + page_seconds
        say(f"[{mode}] users page at zero latency: {page_seconds * 1000:.1f} ms")
        nights: list[dict[str, Any]] = []
        try:
            for night in range(args.nights + 1):
                sb.reset_counts()
                now = sb.clock.now()
                today = now.date()
                t0 = time.perf_counter()
                reader = SnapshotReader(client, None, stored, lookup_concurrency=args.concurrency)
                result = await reader.read(policies, now)
                t_read = time.perf_counter()
                plans = [plan_product(result.snapshot, p, now) for p in policies]
                t_plan = time.perf_counter()
                tally = await apply_plans(client, plans, args.concurrency)
                t_apply = time.perf_counter()
                for policy in policies:
                    product = product_key(policy.product)
                    changed = next_states(
                        result.snapshot,
                        policy,
                        stored[product],
                        result.learned.get(product, {}),
                        result.looked_up,
                        today,
                        UserState,
                    )
                    for state in changed:
                        stored[product][state.account_id] = state
                for action, _applied in tally["applied"]:
                    product = product_key(action.product)
                    before = stored[product].get(action.account_id)
                    stored[product][action.account_id] = state_after(action, before, today)
                t_end = time.perf_counter()
                counts = atlassian_calls(sb.request_counts())
                calls = sum(counts.values())
                stats = result.stats
                group_pages = counts.get("groups", 0)
                ops = tally["ops"]
                bound = stats.user_pages + group_pages + stats.lookups_needed + ops
                licensed_people = len(licensed_union(result.snapshot, policies))
                naive = stats.user_pages + group_pages + licensed_people + ops
                chain = (stats.user_pages + group_pages) * page_bound
                longest = max(
                    (sum(o.via is Via.ATLASSIAN for o in a.ops) for p in plans for a in p.actions),
                    default=0,
                )
                changes_bound = max(ops / r_membership, longest * args.latency_ms / 1000.0)
                time_bound = max(chain, stats.lookups_needed / r_lookup) + changes_bound
                sequential_bound = chain + stats.lookups_needed / r_lookup + changes_bound
                wall = t_end - t0
                row = {
                    "night": night,
                    "date": today.isoformat(),
                    "calls": calls,
                    "calls_by_class": counts,
                    "bound": bound,
                    "ratio": round(calls / bound, 4),
                    "user_pages": stats.user_pages,
                    "group_pages": group_pages,
                    "lookups": stats.lookups_needed,
                    "lookups_failed": stats.lookups_failed,
                    "ops": ops,
                    "actions": sum(len(p.actions) for p in plans),
                    "waiting_for_seat": tally["waiting"],
                    "licensed_people": licensed_people,
                    "naive_calls": naive,
                    "naive_factor": round(naive / calls, 2),
                    "wall_seconds": round(wall, 3),
                    "read_seconds": round(t_read - t0, 3),
                    "plan_seconds": round(t_plan - t_read, 3),
                    "apply_seconds": round(t_apply - t_plan, 3),
                    "state_seconds": round(t_end - t_apply, 3),
                    "time_bound": round(time_bound, 3),
                    "time_ratio": round(wall / time_bound, 4),
                    "time_bound_read_then_lookups": round(sequential_bound, 3),
                    "time_ratio_read_then_lookups": round(wall / sequential_bound, 4),
                }
                nights.append(row)
                say(
                    f"[{mode}] night {night:>2} {today}: calls {calls} / bound {bound} = {row['ratio']:.3f} "
                    f"(pages {stats.user_pages}+{group_pages}, lookups {stats.lookups_needed}, ops {ops}); "
                    f"naive {naive} (x{row['naive_factor']}); wall {wall:.1f} s / bound {time_bound:.1f} s "
                    f"= {row['time_ratio']:.3f} [read {t_read - t0:.1f}, plan {t_plan - t_read:.1f}, "
                    f"apply {t_apply - t_plan:.1f}, state {t_end - t_apply:.1f}]"
                )
                adv = time.perf_counter()
                sb.advance(days=1)
                say(f"[{mode}] advanced one day in {time.perf_counter() - adv:.1f} s")
            naive_night = None
            if not activity_in_search and args.naive_night:
                naive_night = await measure_naive(sb, client, policies, stored, args, r_lookup, page_bound)
                say(f"[{mode}] naive night: {naive_night}")
        finally:
            await client.aclose()
        return summarize(mode, nights, naive_night, page_seconds, page_bound)


def licensed_union(snapshot: Any, policies: list[Any]) -> set[str]:
    """Distinct people holding a license in at least one product (what a naive sweep looks up)."""
    from shared.rules import _Groups

    people: set[str] = set()
    for policy in policies:
        people |= _Groups(snapshot, policy).licensed
    return people


async def measure_naive(
    sb: Any,
    client: Any,
    policies: list[Any],
    stored: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    r_lookup: float,
    page_bound: float,
) -> dict[str, Any]:
    """One night the naive way: the users read, then every licensed person looked up."""
    from shared.services.snapshot import SnapshotReader

    sb.reset_counts()
    now = sb.clock.now()
    t0 = time.perf_counter()
    reader = SnapshotReader(client, None, stored, lookup_concurrency=args.concurrency)
    result = await reader.read(policies, now, do_lookups=False)
    t_read = time.perf_counter()
    people = sorted(licensed_union(result.snapshot, policies))
    gate = asyncio.Semaphore(args.concurrency)

    async def one(account_id: str) -> None:
        async with gate:
            await client.last_active_dates(account_id)

    await asyncio.gather(*(one(a) for a in people))
    t_end = time.perf_counter()
    counts = atlassian_calls(sb.request_counts())
    sb.reset_counts()
    return {
        "calls_without_changes": sum(counts.values()),
        "lookups": len(people),
        "read_seconds": round(t_read - t0, 3),
        "lookup_seconds": round(t_end - t_read, 3),
        "wall_seconds_without_changes": round(t_end - t0, 3),
        "lookup_time_bound": round(len(people) / r_lookup, 3),
        "at_unscaled_rate_hours": round(len(people) / (LOOKUP_PER_MINUTE / 60.0) / 3600, 2),
    }


def summarize(
    mode: str,
    nights: list[dict[str, Any]],
    naive_night: dict[str, Any] | None,
    page_seconds: float,
    page_bound: float,
) -> dict[str, Any]:
    steady = nights[1:]
    summary: dict[str, Any] = {
        "max_calls_ratio": max(n["ratio"] for n in nights),
        "max_time_ratio": max(n["time_ratio"] for n in nights),
        "first_night_time_ratio": nights[0]["time_ratio"],
        "max_steady_time_ratio": max((n["time_ratio"] for n in steady), default=None),
        "max_time_ratio_read_then_lookups": max(n["time_ratio_read_then_lookups"] for n in nights),
        "page_seconds_zero_latency": round(page_seconds, 4),
        "page_seconds_bound": round(page_bound, 4),
        "calls_target_met": all(n["ratio"] <= TARGET_CALLS_RATIO for n in nights),
        "time_target_met": all(n["time_ratio"] <= TARGET_TIME_RATIO for n in nights),
    }
    if steady:
        summary["steady_mean_calls"] = round(sum(n["calls"] for n in steady) / len(steady), 1)
        summary["steady_mean_lookups"] = round(sum(n["lookups"] for n in steady) / len(steady), 1)
        summary["steady_naive_factor"] = round(
            sum(n["naive_calls"] for n in steady) / sum(n["calls"] for n in steady), 2
        )
    if mode == "lookups":
        summary["naive_target_met"] = summary.get("steady_naive_factor", 0) >= TARGET_NAIVE_FACTOR
        if naive_night is not None:
            summary["naive_night"] = naive_night
            if steady:
                mean_wall = sum(n["wall_seconds"] for n in steady) / len(steady)
                summary["steady_mean_wall_seconds"] = round(mean_wall, 3)
                summary["naive_over_steady_wall"] = round(
                    naive_night["wall_seconds_without_changes"] / mean_wall, 2
                )
    return {"summary": summary, "nights": nights}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=30, help="simulated nights after the first")
    parser.add_argument("--rate-scale", type=float, default=50.0)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=32, help="client requests in flight")
    parser.add_argument("--modes", default="activity_in_read,lookups")
    parser.add_argument("--no-naive-night", dest="naive_night", action="store_false")
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args(argv)

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    started = time.perf_counter()
    out: dict[str, Any] = {
        "parameters": {
            "users": args.users,
            "products": 3,
            "nights_after_first": args.nights,
            "rate_scale": args.rate_scale,
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "lookup_rate_per_minute": LOOKUP_PER_MINUTE * args.rate_scale,
            "membership_rate_per_minute": MEMBERSHIP_PER_MINUTE * args.rate_scale,
            "page_limit": PAGE_LIMIT,
        },
        "formulas": {
            "calls_bound": "user_pages + group_pages + lookups_needed + ops_attempted",
            "naive_calls": "user_pages + group_pages + licensed_people + ops_attempted",
            "time_bound": "max((user_pages + group_pages) * (latency + page_seconds_zero_latency), "
            "lookups_needed / r_lookup) + max(ops_attempted / r_membership, longest_action_ops * latency)",
            "time_bound_read_then_lookups": "the same with the cursor chain and the lookups added, "
            "not overlapped (what SnapshotReader does: lookups start after the last page)",
        },
        "targets": {
            "calls_ratio": TARGET_CALLS_RATIO,
            "steady_naive_factor_lookup_mode": TARGET_NAIVE_FACTOR,
            "time_ratio": TARGET_TIME_RATIO,
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "modes": {},
    }
    for mode in modes:
        if mode not in ("activity_in_read", "lookups"):
            parser.error(f"unknown mode {mode!r}")
        out["modes"][mode] = asyncio.run(run_mode(args, activity_in_search=mode == "activity_in_read"))
    out["seconds"] = round(time.perf_counter() - started, 1)
    summaries = [m["summary"] for m in out["modes"].values()]
    out["targets_met"] = {
        "calls": all(s["calls_target_met"] for s in summaries),
        "time": all(s["time_target_met"] for s in summaries),
        "naive_factor": all(s.get("naive_target_met", True) for s in summaries),
    }
    say(json.dumps({"summaries": {k: v["summary"] for k, v in out["modes"].items()}}, indent=2))
    say(f"targets met: {out['targets_met']}; {out['seconds']} s in all")
    if args.write:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data["nights"] = out
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
        say(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
