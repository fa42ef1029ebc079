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
from shared.http import RetryPolicy
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


def read(sb: Sandbox, stored: dict[str, Any], policies: PolicyFile, **kw: Any) -> ReadResult:
    app = App(Settings.from_env(sb.env()), clock=sb.clock.now)

    async def go() -> ReadResult:
        from shared.atlassian import AtlassianClient

        client = AtlassianClient(
            sb.atlassian_base, sb.org_id, sb.api_key, retry=RetryPolicy(max_tries=2, base_delay=0.01)
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
