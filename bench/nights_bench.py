"""Calls and wall time per night against their lower bounds, on the sandbox, in both activity modes.

One sandbox org (3 products) per activity mode, each served in its own process
(``python -m sandbox serve``, driven over its ``/_sandbox`` controls) as the vendor is another
machine, at a stated latency, with the vendors' rate limits (``sandbox/ratelimit.py``
defaults) multiplied by ``--rate-scale`` so the run takes minutes; the client's ``Pacer`` is
given the same scaled rates. The first night, then ``--nights`` simulated nights
(``/_sandbox/advance``: activity moves day by day). Each night:

1. ``SnapshotReader(client, None, stored).read(policies, now)``: the groups search, the paged
   users read, and, in lookup mode (the users read carries no activity), the per-person
   last-active lookups of people whose stored date no longer proves use (``needs_lookup``),
   begun as each page arrives and paced to the endpoint's limit while the chain goes on;
2. ``plan_product`` per policy (entitlement from the Atlassian mirror groups, so no Graph);
3. the plan's operations applied by calling the client (``add_member``/``remove_member``/
   ``suspend``, each action's ops in order, actions concurrently);
4. the stored state updated in memory: ``next_states`` as the reconciler writes it, then per
   applied action what ``state_after`` writes. No Azurite: the vendor side is measured.

Calls (the sandbox's own request counts) are compared with the lower bound

    calls_bound = user_pages + group_pages + lookups_needed + ops_attempted

and the naive way public scripts use (every licensed person looked up every night):

    naive_calls = user_pages + group_pages + licensed_people + ops_attempted

(``licensed_people``: distinct people licensed in at least one product; in activity mode the
naive way needs no lookups either, so the factor is reported for lookup mode only).

Wall time is compared with the bound that the serial cursor chain and the rate limits set.
The plan needs the whole read (an incomplete read plans nothing) and the changes need the
plan, so the changes follow the read; the lookups are rate limited and at best overlap the
cursor chain, which is what the reader does:

    chain        = (user_pages + group_pages) * page_seconds
    page_seconds = latency + the round trip of one users page at zero latency (measured warm)
    time_bound   = max(chain, lookups_needed / r_lookup) + changes
    changes      = max(ops_attempted / r_membership, longest_action_ops * latency)

(an action's ops run in order, so its chain of ops is serial), with ``r_lookup`` = 200/min x
rate_scale and ``r_membership`` = 600/min x rate_scale (per second). The bound leaves out the
first page the lookups wait for and all of the client's own work (planning, state), so it is
a little below what any client could reach. ``time_bound_read_then_lookups`` adds the chain
and the lookups instead, the reader's old way (lookups after the last page), for comparison.

The naive night's time is measured once, by actually looking up every licensed person of a
fresh org in lookup mode (its own sandbox, after every mode's nights).

Each mode runs in its own process with its own sandbox process. The zero-latency page is
measured by one mode at a time, before any night begins. The first nights run side by side;
the steady nights begin, side by side, once every first night is done: they are chains of
latency, not of CPU, and run one after the other they would take twice as long. But a
steady night beside a first night's changes and lookups, or beside the naive night, is
short of CPU on two cores (``run_all``), so the naive night runs last, alone.

The rate scale, 30 by default, is the highest at which this machine keeps up with the
scaled limits: one client here sustains about 300 requests a second at 50 ms latency
(httpx and httpcore cost about 2 ms of CPU a request; one httpcore pool grows costly past
some 20 connections, so the client spreads them over four, ``shared.http.SpreadTransport``),
and the first night's changes (31,000 at 100,000 people) are paced at
600/min x scale = 300 a second. At a higher scale they would be bound by this machine's CPU,
not by the rate limit, and the first night could not meet its time target. What the scale
leaves long is the lookup mode's first night: 84,000 lookups at 200/min x 30 = 100 a second,
14 minutes, and the naive night's 89,000 lookups as long again. With the lookup mode's
first night, 30 steady nights of 1,001 pages at about 60 ms and the naive night, the whole
run takes some 65 minutes on two cores.

    python -m bench.nights_bench                                  # the issue's size
    python -m bench.nights_bench --users 20000 --nights 3         # a quick look
    python -m bench.nights_bench --users 30000 --nights 3 --modes activity_in_read \
        --no-naive-night --no-write --pools 1                     # one connection pool

Results are merged into bench/results.json under "nights", keeping other keys.
Targets: calls <= 1.05 x bound every night; in lookup mode, steady-state nights (2+) at least
30 x fewer calls than the naive way; wall time <= 1.2 x the time bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

RESULTS = Path(__file__).with_name("results.json")
TARGET_CALLS_RATIO = 1.05
TARGET_NAIVE_FACTOR = 30.0
TARGET_TIME_RATIO = 1.2
LOOKUP_PER_MINUTE = 200.0
MEMBERSHIP_PER_MINUTE = 600.0
PAGE_LIMIT = 100  # the users search's page size (AtlassianClient.iter_user_pages)
#: An httpcore pool grows costly past about 20 busy connections (each request scans them
#: all; the client spreads them over pools, SpreadTransport), and no more are in flight than
#: the rates need.
MAX_IN_FLIGHT = 24
#: The client's token buckets hold this many requests (``client_for``).
BURST = 4.0

#: The sandbox's endpoint classes that Seatwarden's nightly work calls.
ATLASSIAN_CLASSES = ("users-search", "groups", "memberships", "suspend-restore", "last-active")


def say(text: str) -> None:
    print(text, flush=True)


class ServedSandbox:
    """A sandbox in a process of its own, started with ``python -m sandbox serve``.

    The benchmark drives it as a test would drive a remote vendor: the clients see only its
    base URL, and the bench moves its clock and reads its request counts over ``/_sandbox``.
    """

    def __init__(
        self, *, users: int, seed: int, latency_ms: int, rate_scale: float, activity_in_search: bool
    ) -> None:
        import httpx

        command = [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            f"--users={users}",
            f"--seed={seed}",
            f"--latency-ms={latency_ms}",
            f"--rate-scale={rate_scale}",
            "--frozen-clock",
        ]
        if not activity_in_search:
            command.append("--no-activity-in-search")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.env: dict[str, str] = {}
        assert self._process.stdout is not None
        for line in self._process.stdout:
            key, _, value = line.strip().partition("=")
            self.env[key] = value
            if key == "SANDBOX_CONTROL_URL":
                break
        else:
            raise RuntimeError(f"the sandbox exited with {self._process.wait()} before serving")
        self.atlassian_base = self.env["ATLASSIAN_API_BASE"]
        self.org_id = self.env["ATLASSIAN_ORG_ID"]
        self.api_key = self.env["ATLASSIAN_API_KEY"]
        self._control = httpx.Client(base_url=self.env["SANDBOX_CONTROL_URL"], trust_env=False, timeout=300)

    def __enter__(self) -> ServedSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._control.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("GET", "/info")["now"])

    def advance(self, days: int) -> None:
        self._call("POST", "/advance", {"days": days})

    def counts(self) -> dict[str, int]:
        return dict(self._call("GET", "/counts"))

    def reset_counts(self) -> None:
        self._call("DELETE", "/counts")

    def set_latency(self, ms: int) -> None:
        self._call("POST", "/latency", {"ms": ms})

    def cpu_seconds(self) -> float:
        """CPU the sandbox process has used (user and system), from /proc (Linux)."""
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._control.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def machine_jiffies() -> tuple[int, int]:
    """(steal, total) CPU time of the whole machine so far, from /proc/stat (Linux; (0, 0)
    elsewhere). Steal is time the hypervisor gave this VM's CPUs to another guest: a night
    measured while it is high ran on less machine than the bound assumes."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total = after[1] - before[1]
    return round(100.0 * (after[0] - before[0]) / total, 1) if total > 0 else None


def bench_policies() -> Any:
    """`shared.demo.demo_policies` for the sandbox's products, each entitled from its mirror group."""
    from sandbox import DEFAULT_PRODUCTS
    from shared.demo import product_policies

    return product_policies(DEFAULT_PRODUCTS)


def in_flight(rate_per_second: float, latency_ms: int) -> int:
    """Requests in flight that keep up with a rate at this latency, with room for jitter."""
    return max(4, math.ceil(rate_per_second * (latency_ms / 1000.0 + 0.01) * 1.5))


def concurrency_for(args: argparse.Namespace) -> tuple[int, int, int]:
    """(lookup workers, actions at once, the Pacer's bound) for the scaled rates."""
    lookups = min(MAX_IN_FLIGHT, in_flight(LOOKUP_PER_MINUTE * args.rate_scale / 60.0, args.latency_ms))
    actions = min(MAX_IN_FLIGHT, in_flight(MEMBERSHIP_PER_MINUTE * args.rate_scale / 60.0, args.latency_ms))
    # The reader's lookups stay below the Pacer's bound, so a users page always finds a slot.
    return lookups, actions, max(lookups, actions) + 2


def client_for(sb: ServedSandbox, args: argparse.Namespace) -> Any:
    from shared.atlassian import LAST_ACTIVE, MEMBERSHIP, USER_LIFECYCLE, AtlassianClient
    from shared.http import Pacer, SpreadTransport

    scale = args.rate_scale
    pacer = Pacer(
        {
            LAST_ACTIVE: LOOKUP_PER_MINUTE * scale,
            MEMBERSHIP: MEMBERSHIP_PER_MINUTE * scale,
            USER_LIFECYCLE: MEMBERSHIP_PER_MINUTE * scale,
        },
        concurrency=concurrency_for(args)[2],
        # A bucket of one loses the time a waiter wakes late (asyncio's timers are as coarse
        # as a millisecond, a quarter of the gap at 250 a second): a few tokens of slack let
        # the rate be reached on average, and over any span it is still never exceeded by
        # more than them.
        burst=BURST,
    )
    transport = SpreadTransport(pools=args.pools)
    return AtlassianClient(sb.atlassian_base, sb.org_id, sb.api_key, pacer=pacer, transport=transport)


async def apply_plans(client: Any, plans: list[Any], concurrency: int) -> dict[str, Any]:
    """Apply every action's Atlassian ops in order; ``concurrency`` actions at a time.

    As the executor's queue-triggered invocations would: a few workers take the actions one
    by one (not a task per action: 30,000 tasks at once cost this process more than the
    calls), and the night's snapshot and plans, which the executor would not hold, are kept
    out of the garbage collector's way (``gc.freeze``) while they run.
    """
    import gc

    from shared.errors import GroupIsSynced, NotFound, SeatLimitReached
    from shared.model import OpKind, Via

    tally: dict[str, Any] = {"ops": 0, "actions": 0, "waiting": 0, "failed": 0, "skipped_ops": 0}
    applied: list[tuple[Any, list[Any]]] = []
    actions = iter([a for p in plans for a in p.actions])

    async def worker() -> None:
        for action in actions:
            await one(action)

    async def one(action: Any) -> None:
        done: list[Any] = []
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

    gc.freeze()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        gc.unfreeze()
    tally["applied"] = applied
    return tally


def atlassian_calls(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts.get(k, 0) for k in ATLASSIAN_CLASSES if counts.get(k, 0)}


async def measure_page_seconds(sb: ServedSandbox, client: Any, latency_ms: int, pages: int = 50) -> float:
    """One users page's round trip at zero latency (server and client work), warm: the best
    of three runs of ``pages`` pages, after one whole read (the sandbox renders a person's
    unchanging fields once, and the bound is meant to be the least a page can take)."""
    sb.set_latency(0)
    try:
        async for _page in client.iter_user_pages():
            pass
        samples = []
        for _ in range(3):
            seen = 0
            started = time.perf_counter()
            async for _page in client.iter_user_pages():
                seen += 1
                if seen >= pages:
                    break
            samples.append((time.perf_counter() - started) / max(1, seen))
        return min(samples)
    finally:
        sb.set_latency(latency_ms)
        sb.reset_counts()


def licensed_union(snapshot: Any, policies: list[Any]) -> set[str]:
    """Distinct people holding a license in at least one product (what a naive sweep looks up)."""
    from shared.rules import _Groups

    people: set[str] = set()
    for policy in policies:
        people |= _Groups(snapshot, policy).licensed
    return people


async def run_mode(
    args: argparse.Namespace,
    mode: str,
    measuring: Any = None,
    on_night: Any = None,
) -> dict[str, Any]:
    """One mode's nights. ``measuring`` (a lock and two barriers shared by the mode
    processes) keeps the zero-latency page measurement of one mode from running beside
    another's, and holds every mode's steady nights until all first nights are done;
    ``on_night`` is handed each night's row as it is done."""
    from shared.model import Via
    from shared.rules import plan_product
    from shared.services.execute import state_after
    from shared.services.reconcile import next_states
    from shared.services.snapshot import SnapshotReader, product_key
    from shared.store import UserState

    scale = args.rate_scale
    r_lookup = LOOKUP_PER_MINUTE * scale / 60.0
    r_membership = MEMBERSHIP_PER_MINUTE * scale / 60.0
    lookup_workers, action_concurrency, _ = concurrency_for(args)
    started = time.perf_counter()
    with ServedSandbox(
        users=args.users,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_scale=scale,
        activity_in_search=mode == "activity_in_read",
    ) as sb:
        say(f"[{mode}] sandbox with {args.users} people in {time.perf_counter() - started:.1f} s")
        client = client_for(sb, args)
        policies = list(bench_policies().policies)
        stored: dict[str, dict[str, Any]] = {product_key(p.product): {} for p in policies}
        if measuring is None:
            page_seconds = await measure_page_seconds(sb, client, args.latency_ms)
        else:
            lock, measured, first_nights = measuring
            with lock:
                page_seconds = await measure_page_seconds(sb, client, args.latency_ms)
            measured.wait()  # every mode has measured: the nights begin together
        page_bound = args.latency_ms / 1000.0 + page_seconds
        say(f"[{mode}] users page at zero latency: {page_seconds * 1000:.1f} ms")
        nights: list[dict[str, Any]] = []
        try:
            for night in range(args.nights + 1):
                sb.reset_counts()
                now = sb.now()
                today = now.date()
                cpu0, sandbox_cpu0, machine0 = time.process_time(), sb.cpu_seconds(), machine_jiffies()
                t0 = time.perf_counter()
                reader = SnapshotReader(client, None, stored, lookup_concurrency=lookup_workers)
                result = await reader.read(policies, now)
                t_read = time.perf_counter()
                plans = [plan_product(result.snapshot, p, now) for p in policies]
                t_plan = time.perf_counter()
                tally = await apply_plans(client, plans, action_concurrency)
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
                client_cpu, sandbox_cpu = time.process_time() - cpu0, sb.cpu_seconds() - sandbox_cpu0
                counts = atlassian_calls(sb.counts())
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
                    "client_cpu_seconds": round(client_cpu, 2),
                    "sandbox_cpu_seconds": round(sandbox_cpu, 2),
                    "steal_percent": steal_percent(machine0, machine_jiffies()),
                    "chain_bound": round(chain, 3),
                    "time_bound": round(time_bound, 3),
                    "time_ratio": round(wall / time_bound, 4),
                    "time_bound_read_then_lookups": round(sequential_bound, 3),
                    "time_ratio_read_then_lookups": round(wall / sequential_bound, 4),
                }
                nights.append(row)
                if on_night is not None:
                    on_night(row)
                say(
                    f"[{mode}] night {night:>2} {today}: calls {calls} / bound {bound} = {row['ratio']:.3f} "
                    f"(pages {stats.user_pages}+{group_pages}, lookups {stats.lookups_needed}, ops {ops}); "
                    f"naive {naive} (x{row['naive_factor']}); wall {wall:.1f} s / bound {time_bound:.1f} s "
                    f"= {row['time_ratio']:.3f} [read {t_read - t0:.1f}, plan {t_plan - t_read:.1f}, "
                    f"apply {t_apply - t_plan:.1f}, state {t_end - t_apply:.1f}; "
                    f"cpu client {client_cpu:.1f}, sandbox {sandbox_cpu:.1f}; steal {row['steal_percent']}%]"
                )
                if night == 0 and measuring is not None:
                    first_nights.wait()  # the steady nights begin together too
                sb.advance(days=1)
        finally:
            await client.aclose()
    return summarize(mode, nights, page_seconds, page_bound)


async def measure_naive(args: argparse.Namespace) -> dict[str, Any]:
    """One night the naive way, on a fresh org in lookup mode: the users read, then every
    licensed person looked up (paced as Seatwarden's lookups are)."""
    from shared.services.snapshot import SnapshotReader

    r_lookup = LOOKUP_PER_MINUTE * args.rate_scale / 60.0
    lookup_workers = concurrency_for(args)[0]
    with ServedSandbox(
        users=args.users,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_scale=args.rate_scale,
        activity_in_search=False,
    ) as sb:
        client = client_for(sb, args)
        policies = list(bench_policies().policies)
        try:
            sb.reset_counts()
            now = sb.now()
            t0 = time.perf_counter()
            result = await SnapshotReader(client, None, {}).read(policies, now, do_lookups=False)
            t_read = time.perf_counter()
            people = sorted(licensed_union(result.snapshot, policies))
            gate = asyncio.Semaphore(lookup_workers)

            async def one(account_id: str) -> None:
                async with gate:
                    await client.last_active_dates(account_id)

            await asyncio.gather(*(one(a) for a in people))
            t_end = time.perf_counter()
            counts = atlassian_calls(sb.counts())
        finally:
            await client.aclose()
    naive = {
        "calls_without_changes": sum(counts.values()),
        "lookups": len(people),
        "read_seconds": round(t_read - t0, 3),
        "lookup_seconds": round(t_end - t_read, 3),
        "wall_seconds_without_changes": round(t_end - t0, 3),
        "lookup_time_bound": round(len(people) / r_lookup, 3),
        "at_unscaled_rate_hours": round(len(people) / (LOOKUP_PER_MINUTE / 60.0) / 3600, 2),
    }
    say(f"[naive] night: {naive}")
    return naive


def summarize(
    mode: str, nights: list[dict[str, Any]], page_seconds: float, page_bound: float
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
        summary["steady_mean_wall_seconds"] = round(sum(n["wall_seconds"] for n in steady) / len(steady), 3)
        summary["steady_naive_factor"] = round(
            sum(n["naive_calls"] for n in steady) / sum(n["calls"] for n in steady), 2
        )
    if mode == "lookups":
        summary["naive_target_met"] = summary.get("steady_naive_factor", 0) >= TARGET_NAIVE_FACTOR
    return {"summary": summary, "nights": nights}


def _mode_process(
    args: argparse.Namespace, mode: str, done: Any, wait_for: list[Any], measuring: Any, results: Any
) -> None:
    try:
        for event in wait_for:
            event.wait()
        if mode == "naive":
            results.put(("done", mode, asyncio.run(measure_naive(args))))
        else:

            def on_night(row: dict[str, Any]) -> None:
                results.put(("night", mode, row))

            results.put(("done", mode, asyncio.run(run_mode(args, mode, measuring, on_night))))
    except BaseException as exc:
        results.put(("done", mode, {"error": f"{type(exc).__name__}: {exc}"}))
        if measuring is not None:
            for barrier in measuring[1:]:
                barrier.abort()  # never leave the other modes waiting at a barrier
        raise
    finally:
        done.set()  # never leave a waiter waiting


def run_all(args: argparse.Namespace, modes: list[str], on_night: Any = None) -> dict[str, Any]:
    """Each mode, and the naive night, in a process of its own; ``on_night`` is called with
    (mode, row) as each night is done.

    The modes' first nights run side by side, then their steady nights, side by side, once
    every first night is done; the naive night runs last, alone. A steady night (one chain
    of latency) runs beside the other mode's steady night, never beside a first night's
    100,000 changes and lookups or the naive night's 90,000 lookups: on two cores, those
    took the CPU a chain needs (every steady night over the bound in the run that had them
    side by side, with the naive night waiting only for the lookup mode's first night).
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    done = {name: context.Event() for name in [*modes, "naive"]}
    jobs: list[tuple[str, list[Any]]] = [(mode, []) for mode in modes]
    if args.naive_night and "lookups" in modes:
        jobs.append(("naive", [done[mode] for mode in modes]))
    measuring = (context.Lock(), context.Barrier(len(modes)), context.Barrier(len(modes)))
    processes = [
        context.Process(
            target=_mode_process,
            args=(args, name, done[name], wait_for, None if name == "naive" else measuring, results),
            name=name,
        )
        for name, wait_for in jobs
    ]
    for process in processes:
        process.start()
    out: dict[str, Any] = {}
    while len(out) < len(processes):
        kind, name, result = results.get()
        if kind == "night":
            if on_night is not None:
                on_night(name, result)
        else:
            out[name] = result
    for process in processes:
        process.join()
    failed = {name: r["error"] for name, r in out.items() if "error" in r}
    if failed:
        raise RuntimeError(f"benchmark processes failed: {failed}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=30, help="simulated nights after the first")
    parser.add_argument("--rate-scale", type=float, default=30.0)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", default="activity_in_read,lookups")
    parser.add_argument(
        "--pools",
        type=int,
        default=None,
        help="connection pools the client spreads its requests over (default: shared.http.POOLS)",
    )
    parser.add_argument("--no-naive-night", dest="naive_night", action="store_false")
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args(argv)
    if args.pools is None:
        from shared.http import POOLS

        args.pools = POOLS
    if args.pools < 1:
        parser.error("--pools must be at least 1")
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in args.mode_list:
        if mode not in ("activity_in_read", "lookups"):
            parser.error(f"unknown mode {mode!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = args.mode_list
    lookup_workers, action_concurrency, pacer_concurrency = concurrency_for(args)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "parameters": {
            "users": args.users,
            "products": 3,
            "nights_after_first": args.nights,
            "rate_scale": args.rate_scale,
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "lookup_rate_per_minute": LOOKUP_PER_MINUTE * args.rate_scale,
            "membership_rate_per_minute": MEMBERSHIP_PER_MINUTE * args.rate_scale,
            "page_limit": PAGE_LIMIT,
            "lookup_workers": lookup_workers,
            "actions_at_once": action_concurrency,
            "client_concurrency": pacer_concurrency,
            "connection_pools": args.pools,
            "layout": "each mode and the naive night in a process of its own, each with its sandbox "
            "in a process of its own; the first nights side by side, then the steady nights side by "
            "side, then the naive night alone",
        },
        "formulas": {
            "calls_bound": "user_pages + group_pages + lookups_needed + ops_attempted",
            "naive_calls": "user_pages + group_pages + licensed_people + ops_attempted",
            "time_bound": "max((user_pages + group_pages) * (latency + page_seconds_zero_latency), "
            "lookups_needed / r_lookup) + max(ops_attempted / r_membership, longest_action_ops * latency)",
            "time_bound_read_then_lookups": "the same with the cursor chain and the lookups added, "
            "not overlapped (the reader's old way: lookups after the last page)",
        },
        "targets": {
            "calls_ratio": TARGET_CALLS_RATIO,
            "steady_naive_factor_lookup_mode": TARGET_NAIVE_FACTOR,
            "time_ratio": TARGET_TIME_RATIO,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "modes": {},
    }
    partial: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}

    def on_night(mode: str, row: dict[str, Any]) -> None:
        """Keep what is done in results.json, so a run cut short still leaves its nights."""
        partial[mode].append(row)
        if args.write:
            write_results({**out, "complete": False, "modes": {m: {"nights": n} for m, n in partial.items()}})

    results = run_all(args, modes, on_night)
    out["modes"] = {mode: results[mode] for mode in modes}
    naive_night = results.get("naive")
    if naive_night is not None:
        lookups = out["modes"]["lookups"]["summary"]
        lookups["naive_night"] = naive_night
        if "steady_mean_wall_seconds" in lookups:
            lookups["naive_over_steady_wall"] = round(
                naive_night["wall_seconds_without_changes"] / lookups["steady_mean_wall_seconds"], 2
            )
    out["seconds"] = round(time.perf_counter() - started, 1)
    summaries = [m["summary"] for m in out["modes"].values()]
    out["targets_met"] = {
        "calls": all(s["calls_target_met"] for s in summaries),
        "time": all(s["time_target_met"] for s in summaries),
        "naive_factor": all(s.get("naive_target_met", True) for s in summaries),
    }
    say(json.dumps({"summaries": {k: v["summary"] for k, v in out["modes"].items()}}, indent=2))
    say(f"targets met: {out['targets_met']}; {out['seconds']} s in all")
    out["complete"] = True
    if args.write:
        write_results(out)
        say(f"written to {RESULTS}")
    return 0


def write_results(nights: dict[str, Any]) -> None:
    """Merge this benchmark's results into bench/results.json under "nights"."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["nights"] = nights
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
