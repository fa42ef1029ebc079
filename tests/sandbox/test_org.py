"""The simulated org without HTTP: generation, the org file, invariants, days passing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sandbox.activity import simulate_days
from sandbox.clock import Clock
from sandbox.generator import generate_org
from sandbox.org import GroupIsSynced, SeatLimitReached
from sandbox.orgfile import OrgFileError, dump_org, load_org

from .conftest import START

EXAMPLE = Path(__file__).resolve().parents[2] / "sandbox" / "examples" / "small-org.json"


def _dump(seed: int, users: int = 300) -> str:
    org = generate_org(users=users, seed=seed, clock=Clock(START))
    return json.dumps(dump_org(org), sort_keys=True)


def test_same_seed_gives_the_same_org_byte_for_byte() -> None:
    assert _dump(11) == _dump(11)


def test_different_seeds_give_different_orgs() -> None:
    assert _dump(11) != _dump(12)


def test_generated_org_has_the_mix_seatwarden_meets() -> None:
    org = generate_org(users=2_000, seed=3, clock=Clock(START))
    statuses = [u.status for u in org.users]
    assert 0.01 < statuses.count("suspended") / len(statuses) < 0.04
    assert 0 < statuses.count("deactivated") / len(statuses) < 0.03
    assert 0.02 < sum(u.is_external for u in org.users) / len(org.users) < 0.09
    assert any("atlassian/org-admin" in u.platform_roles for u in org.users)
    assert any("atlassian/site-admin" in u.platform_roles for u in org.users)
    for product in ("confluence", "jira-software", "jira-servicedesk"):
        entitled = org.members(f"{product}-user-role")
        licensed = org.members(f"{product}-users")
        assert org.group_by_name(f"{product}-user-role").external_synced
        assert entitled - licensed, "some entitled people are not licensed"
        assert licensed - entitled, "some licensed people are not entitled"
        assert org.members(f"{product}-unlicensed-users"), "some people are marked"
    index = org.product_index("confluence")
    licensed_users = [org.user(a) for a in org.members("confluence-users")]
    never = sum(1 for u in licensed_users if u.last_active[index] == 0)
    assert 0.02 < never / len(licensed_users) < 0.12
    idle_days = sorted(
        (START.timestamp() - u.last_active[index]) / 86_400 for u in licensed_users if u.last_active[index]
    )
    assert idle_days[0] < 1 and idle_days[-1] > 200
    assert {"executives", "service-accounts", "contractors"} <= {g.name for g in org.groups}


def test_every_person_exists_in_entra_with_upn_equal_to_lowercase_email() -> None:
    org = generate_org(users=100, seed=5, clock=Clock(START))
    for user in org.users:
        assert org.user_by_object_id(user.entra_object_id) is user
        assert user.upn == user.email.lower()


def test_synced_groups_mirror_their_entra_groups() -> None:
    org = generate_org(users=300, seed=5, clock=Clock(START))
    for product in ("confluence", "jira-software"):
        entra = org.entra_members(org.entra_group_id(product))
        mirrored = {org.user(a).entra_object_id for a in org.members(f"{product}-user-role")}
        assert mirrored == entra


def test_generating_100k_users_takes_a_few_seconds() -> None:
    began = time.perf_counter()
    org = generate_org(users=100_000, seed=1, clock=Clock(START))
    assert len(org.users) == 100_000
    assert time.perf_counter() - began < 8


def test_example_org_file_loads_as_written() -> None:
    org = load_org(EXAMPLE)
    assert org.clock.start.isoformat() == "2026-03-02T09:00:00+00:00"
    bruno_confluence = org.last_active("712020:22222222-2222-4222-8222-222222222222", "confluence")
    assert len(org.users) == 4
    assert org.product("confluence").seat_limit == 3
    assert org.members("confluence-user-role") == {
        "712020:11111111-1111-4111-8111-111111111111",
        "712020:22222222-2222-4222-8222-222222222222",
        "712020:44444444-4444-4444-8444-444444444444",
    }
    assert bruno_confluence is not None
    assert bruno_confluence.isoformat() == "2025-11-01T08:30:00+00:00"
    assert org.last_active("712020:22222222-2222-4222-8222-222222222222", "jira-software") is None
    assert org.user("712020:44444444-4444-4444-8444-444444444444").status == "suspended"


def test_generator_and_loader_build_the_same_org() -> None:
    generated = dump_org(generate_org(users=150, seed=9, clock=Clock(START)))
    assert dump_org(load_org(json.loads(json.dumps(generated)))) == generated


def test_org_file_errors_name_the_field(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE.read_text())
    del document["users"][1]["email"]
    with pytest.raises(OrgFileError, match=r"users\[1\]\.email"):
        load_org(document)
    document = json.loads(EXAMPLE.read_text())
    document["groups"][0]["members"] = ["712020:33333333-3333-4333-8333-333333333333"]
    with pytest.raises(OrgFileError, match="does not mirror"):
        load_org(document)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(OrgFileError, match=r"broken\.json"):
        load_org(broken)


def test_synced_group_refuses_direct_changes_and_seat_limit_holds() -> None:
    org = load_org(EXAMPLE)
    role = org.group_by_name("confluence-user-role")
    with pytest.raises(GroupIsSynced):
        org.add_member(role.id, "712020:33333333-3333-4333-8333-333333333333")
    access = org.group_by_name("confluence-users")
    with pytest.raises(SeatLimitReached):
        org.add_member(access.id, "712020:44444444-4444-4444-8444-444444444444")
    org.set_seat_limit("confluence", None)
    assert org.add_member(access.id, "712020:44444444-4444-4444-8444-444444444444")


def test_advancing_days_moves_last_active_dates_but_logs_no_change() -> None:
    import random

    org = generate_org(users=400, seed=2, clock=Clock(START, frozen=True))
    before = {u.account_id: list(u.last_active) for u in org.users}
    result = simulate_days(org, 3, random.Random(1))
    assert result.days == 3 and result.uses > 0
    assert (org.clock.now() - START).days == 3
    moved = [u for u in org.users if u.last_active != before[u.account_id]]
    assert moved
    for user in moved:
        for old, new in zip(before[user.account_id], user.last_active, strict=True):
            assert new >= old
            assert new <= org.clock.now().timestamp()
    assert org.changes() == []
    assert result.returns, "a few people come back every day"
    assert org.events, "returns leave audit-log events"
