"""The snapshot reader over real HTTP against the sandbox: complete reads or none, few lookups."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.config import PolicyFile, parse_policy
from shared.errors import IncompleteRead
from shared.http import Pacer, RetryPolicy
from shared.rules import plan_product
from shared.services.reconcile import next_states
from shared.services.snapshot import ReadResult, SnapshotReader
from shared.settings import Settings
from shared.store import UserState


def mirror_policies(days: int = 60) -> PolicyFile:
    return parse_policy(
        {
            "policies": [
                {
                    "name": key,
                    "product": key,
                    "entitlement": {"atlassian_group": f"{key}-user-role"},
                    "access_group": f"{key}-users",
                    "marker_group": f"{key}-unlicensed-users",
                    "inactive_after_days": days,
                }
                for key in ("confluence", "jira-software")
            ]
        }
    )


@pytest.fixture
def lookup_org() -> Iterator[Sandbox]:
    config = SandboxConfig(users=150, seed=11, activity_in_search=False, frozen_clock=True)
    with Sandbox.start(config) as sb:
        yield sb


def read(
    sb: Sandbox, stored: dict[str, Any], policies: PolicyFile, *, pacer: Pacer | None = None, **kw: Any
) -> ReadResult:
    app = App(Settings.from_env(sb.env()), clock=sb.clock.now)

    async def go() -> ReadResult:
        from shared.atlassian import AtlassianClient

        client = AtlassianClient(
            sb.atlassian_base,
            sb.org_id,
            sb.api_key,
            retry=RetryPolicy(max_tries=2, base_delay=0.01),
            pacer=pacer,
        )
        try:
            return await SnapshotReader(client, None, stored).read(policies.policies, app.clock(), **kw)
        finally:
            await client.aclose()

    return asyncio.run(go())


def remember(result: ReadResult, policies: PolicyFile, stored: dict[str, dict[str, UserState]]) -> None:
    """What the nightly reconcile writes back, kept in memory."""
    for policy in policies.policies:
        states = stored.setdefault(policy.product, {})
        changed = next_states(
            result.snapshot,
            policy,
            states,
            result.learned.get(policy.product, {}),
            result.looked_up,
            result.snapshot.taken_at.date(),
            UserState,
        )
        states.update({s.account_id: s for s in changed})


def fast_lookups() -> Pacer:
    """Lookups paced at 30,000 a minute (the sandbox must be scaled to allow as many)."""
    return Pacer({"atlassian.last_active": 30_000.0})


def test_a_page_that_keeps_failing_stops_the_read_and_no_plan_is_made() -> None:
    with Sandbox.start(SandboxConfig(users=250, seed=3, frozen_clock=True)) as sb:
        sb.faults.inject(kind="truncated", path_contains="/users/search", count=10)
        with pytest.raises(IncompleteRead):
            read(sb, {}, mirror_policies())


def test_a_dropped_connection_once_is_retried_and_the_read_completes() -> None:
    with Sandbox.start(SandboxConfig(users=250, seed=3, frozen_clock=True)) as sb:
        sb.faults.inject(kind="drop", path_contains="/users/search", count=1)
        result = read(sb, {}, mirror_policies())
        assert len(result.snapshot.people) == 250


def test_the_first_night_in_lookup_mode_looks_up_every_candidate_and_later_nights_almost_nobody(
    lookup_org: Sandbox,
) -> None:
    policies = mirror_policies()
    stored: dict[str, dict[str, UserState]] = {}
    first = read(lookup_org, stored, policies)
    assert not first.stats.activity_in_read
    assert first.stats.lookups_needed > 0
    assert first.stats.lookups_done == first.stats.lookups_needed
    remember(first, policies, stored)

    lookup_org.advance(days=1)
    second = read(lookup_org, stored, policies)

    # Stored dates that still prove use are not looked up again: a handful need a look.
    assert second.stats.lookups_needed < first.stats.lookups_needed / 5


def test_a_failed_lookup_leaves_the_person_unknown_and_never_idle(lookup_org: Sandbox) -> None:
    policies = mirror_policies(days=1)
    lookup_org.faults.inject(kind="5xx", path_contains="/last-active-dates", count=10_000)

    result = read(lookup_org, {}, policies)

    assert result.stats.lookups_failed == result.stats.lookups_needed > 0
    for policy in policies.policies:
        plan = plan_product(result.snapshot, policy, result.snapshot.taken_at)
        assert not [a for a in plan.actions if a.reason.value == "INACTIVE"]


def test_activity_in_the_users_read_needs_no_lookups() -> None:
    with Sandbox.start(SandboxConfig(users=150, seed=5, frozen_clock=True)) as sb:
        result = read(sb, {}, mirror_policies())
        assert result.stats.activity_in_read
        assert result.stats.lookups_needed == 0
        assert sb.request_counts().get("last-active", 0) == 0


def test_a_stored_date_never_moves_back() -> None:
    with Sandbox.start(SandboxConfig(users=60, seed=5, frozen_clock=True)) as sb:
        policies = mirror_policies()
        result = read(sb, {}, policies)
        stored: dict[str, dict[str, UserState]] = {}
        remember(result, policies, stored)
        someone, state = next((a, s) for a, s in stored["confluence"].items() if s.last_active)
        later = state.last_active.replace(year=state.last_active.year + 1)
        stored["confluence"][someone] = replace(state, last_active=later)
        again = read(sb, stored, policies)
        assert again.snapshot.activity["confluence"].last_active[someone] == later


def test_lookups_begin_while_the_users_read_is_still_paging() -> None:
    config = SandboxConfig(
        users=800, seed=11, activity_in_search=False, frozen_clock=True, latency_ms=50, rate_scale=200
    )
    with Sandbox.start(config) as sb:
        events: list[str] = []
        result = read(
            sb, {}, mirror_policies(), pacer=fast_lookups(), progress=lambda what, _n: events.append(what)
        )

    assert result.stats.user_pages == 8
    last_page = max(i for i, e in enumerate(events) if e == "users")
    # Eight pages at 50 ms are 400 ms of chain: four workers finish several lookups in it.
    assert events[:last_page].count("lookups") >= 5, "the lookups waited for the read"
    # Overlapped, still one call per person who needs one, and every one of them.
    assert len(result.looked_up) == result.stats.lookups_done == result.stats.lookups_needed > 0
    assert events.count("lookups") == result.stats.lookups_needed


def test_overlapped_lookups_learn_what_lookups_after_the_read_would() -> None:
    config = SandboxConfig(users=300, seed=12, activity_in_search=False, frozen_clock=True, rate_scale=200)
    with Sandbox.start(config) as sb:
        overlapped = read(sb, {}, mirror_policies(), pacer=fast_lookups())
        calls = sb.request_counts()["last-active"]
        after = read(sb, {}, mirror_policies(), do_lookups=False)
    assert overlapped.pending_lookups == frozenset()
    assert overlapped.looked_up == after.pending_lookups  # the same people, each once
    assert calls == len(after.pending_lookups)
    for product, dates in overlapped.learned.items():
        assert dates, product
        for account_id, day in dates.items():
            assert account_id in overlapped.looked_up
            assert overlapped.snapshot.activity[product].last_active[account_id] == day


def test_a_read_that_shows_activity_after_a_page_without_any_stops_the_lookups_it_began() -> None:
    config = SandboxConfig(
        users=300, seed=13, activity_in_search=True, frozen_clock=True, latency_ms=30, rate_scale=200
    )
    with Sandbox.start(config) as sb:
        with sb.org.lock:
            for user in sb.org.users[:100]:  # the first page: nobody has used anything yet
                user.last_active[:] = [0] * len(user.last_active)
        result = read(sb, {}, mirror_policies(), pacer=fast_lookups())
        lookups_made = sb.request_counts().get("last-active", 0)

    assert result.stats.activity_in_read
    assert result.stats.lookups_needed == 0 and result.looked_up == frozenset()
    assert result.pending_lookups == frozenset()
    # The first page queued its ~80 candidates; the second page's activity stopped them.
    assert 0 < lookups_made < 30, "the lookups begun on the first page were not stopped"
    assert any(result.snapshot.activity[p].last_active for p in ("confluence", "jira-software"))


def test_a_read_failing_after_lookups_began_plans_nothing_and_stops_looking_up(
    azurite: str, table_prefix: str
) -> None:
    from shared.atlassian import AtlassianClient
    from shared.services.reconcile import Reconciler

    config = SandboxConfig(
        users=2_000, seed=14, activity_in_search=False, frozen_clock=True, latency_ms=20, rate_scale=200
    )
    with Sandbox.start(config) as sb:
        env = {**sb.env(), "AzureWebJobsStorage": azurite, "SEATWARDEN_TABLE_PREFIX": table_prefix}
        app = App(Settings.from_env(env), clock=sb.clock.now)
        seen: dict[str, int] = {}

        def progress(what: str, done: int) -> None:
            seen[what] = done
            if what == "lookups" and done == 1:
                # From here on every page of the users read comes back cut short.
                sb.faults.inject(kind="truncated", path_contains="/users/search", count=None)

        async def reconcile() -> tuple[int, int]:
            client = AtlassianClient(
                sb.atlassian_base,
                sb.org_id,
                sb.api_key,
                retry=RetryPolicy(max_tries=2, base_delay=0.01),
                pacer=fast_lookups(),
            )
            try:
                with pytest.raises(IncompleteRead):
                    await Reconciler(app.storage, client, None, app.clock).run(
                        mirror_policies(days=1), mode="enforce", lookups="inline", progress=progress
                    )
                # The client is still open and the loop still runs: nothing may call on.
                stopped_at = sb.request_counts()["last-active"]
                await asyncio.sleep(0.3)
                return stopped_at, sb.request_counts()["last-active"]
            finally:
                await client.aclose()

        stopped_at, later = asyncio.run(reconcile())
        assert later == stopped_at, "lookups went on after the read failed"
        assert 0 < seen["users"] < 2_000
        assert app.storage.runs.list() == []  # no run, no plan
        assert app.storage.queues.peek_count("actions") == 0
        assert sb.changes() == []


def test_a_policy_naming_a_missing_group_stops_the_read_before_any_lookup(lookup_org: Sandbox) -> None:
    from shared.rules import UnknownGroup

    data = mirror_policies().model_dump(mode="json")
    data["policies"][0]["exclusions"] = {"groups": ["no-such-group"]}
    with pytest.raises(UnknownGroup):
        read(lookup_org, {}, parse_policy(data, "test"))
    assert lookup_org.request_counts().get("last-active", 0) == 0
