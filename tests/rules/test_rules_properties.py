"""Properties of the rules engine over random orgs (hypothesis).

Each example is an org of tens of people over one or two products, with random entitlement,
access and marker memberships, account statuses, admins, activity (a date, never, or unknown
tonight), license dates, and a random policy per product: thresholds, grace, exclusions,
targeting, seat caps, suspend-or-remove, entitlement from Entra or from the Atlassian mirror.
The access group is local, so every decision can be carried out by `apply_plan`.

Run many more examples with `HYPOTHESIS_PROFILE=soak` (see conftest.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from hypothesis import assume, example, given
from hypothesis import strategies as st

from shared.config import Policy
from shared.model import (
    REVOKING_REASONS,
    AccountStatus,
    Action,
    Facts,
    Group,
    Person,
    Plan,
    ProductActivity,
    Reason,
    Snapshot,
    action_id,
)
from shared.rules import _Idle, _in_idle_order, plan_product, plan_relicense
from tests.rules.conftest import PROPERTY_SETTINGS
from tests.rules.orgs import NOW, TODAY, ProductGroups, apply_plan, days_ago, group_id, make_policy

T = TypeVar("T")

DOMAINS = ("example.com", "eu.example.com", "partner.io", "gmail.com")
TEAMS = ("team-a", "team-b", "vip")
PRODUCT_SETS = (("confluence",), ("confluence", "jira-software"))


@dataclass(frozen=True)
class Org:
    snapshot: Snapshot
    policies: tuple[Policy, ...]

    def plans(self, snapshot: Snapshot | None = None, now: datetime = NOW) -> list[Plan]:
        return [plan_product(snapshot or self.snapshot, p, now) for p in self.policies]


# --- the strategy -----------------------------------------------------------------------------

statuses = st.sampled_from([AccountStatus.ACTIVE] * 8 + [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
#: None: never active; "unknown": tonight's lookup failed; an int: days since last use.
activities = st.one_of(st.none(), st.just("unknown"), st.integers(0, 400))
since_days = st.one_of(st.none(), st.integers(0, 400))


@st.composite
def person_rows(draw: st.DrawFn, products: tuple[str, ...]) -> dict[str, object]:
    return {
        "domain": draw(st.sampled_from(DOMAINS)),
        "status": draw(statuses),
        "admin": draw(st.integers(0, 14)) == 0,
        "entra_id": draw(st.booleans()),
        "teams": draw(st.frozensets(st.sampled_from(TEAMS))),
        # per product: (E, L, M, activity, licensed since)
        "products": {
            p: (
                draw(st.booleans()),
                draw(st.booleans()),
                draw(st.integers(0, 3)) == 0,
                draw(activities),
                draw(since_days),
            )
            for p in products
        },
    }


@st.composite
def policies_for(draw: st.DrawFn, product: str, people: int, account_ids: list[str]) -> Policy:
    internal = draw(st.sampled_from([[], ["example.com"], ["example.com", "eu.example.com"]]))
    inactive = draw(st.integers(1, 120))
    targeting: dict[str, object] = {}
    kind = draw(st.sampled_from(["all", "groups", "domains", "both", "external"]))
    if kind in ("groups", "both"):
        targeting["groups"] = draw(st.lists(st.sampled_from(TEAMS[:2]), min_size=1, max_size=2, unique=True))
    if kind in ("domains", "both"):
        targeting["domains"] = draw(st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=2, unique=True))
    if kind == "external" and internal:
        targeting["external_only"] = True
    exclusions = {
        "accounts": draw(st.lists(st.sampled_from(account_ids), max_size=3, unique=True))
        if account_ids
        else [],
        "groups": draw(st.sampled_from([[], ["vip"]])),
        "domains": draw(st.sampled_from([[], ["gmail.com"]])),
    }
    entitlement = (
        {"entra_group_id": f"entra-{product}"}
        if draw(st.booleans())
        else {"atlassian_group": ProductGroups.of(product).entitlement}
    )
    return make_policy(
        product,
        entitlement=entitlement,
        inactive_after_days=inactive,
        grace_days=draw(st.integers(0, 30)),
        internal_domains=internal,
        external_inactive_after_days=draw(st.one_of(st.none(), st.integers(1, 120))) if internal else None,
        targeting=targeting,
        exclusions=exclusions,
        seat_cap=draw(st.one_of(st.none(), st.integers(0, people))),
        on_inactive=draw(st.sampled_from(["remove_access", "suspend"])),
    )


@st.composite
def orgs(draw: st.DrawFn, *, seat_caps: bool = True) -> Org:
    products = draw(st.sampled_from(PRODUCT_SETS))
    rows = draw(st.lists(person_rows(products), min_size=1, max_size=60))
    account_ids = [f"acc-{i:03d}" for i in range(len(rows))]

    people = []
    members: dict[str, set[str]] = {group_id(t): set() for t in TEAMS}
    groups = [Group(group_id(t), t) for t in TEAMS]
    entra: dict[str, set[str]] = {}
    activity: dict[str, ProductActivity] = {}
    for product in products:
        names = ProductGroups.of(product)
        groups += [
            Group(group_id(names.entitlement), names.entitlement, synced=True),
            Group(group_id(names.access), names.access),
            Group(group_id(names.marker), names.marker),
        ]
        for name in (names.entitlement, names.access, names.marker):
            members[group_id(name)] = set()
        entra[f"entra-{product}"] = set()
        last: dict[str, date] = {}
        unknown: set[str] = set()
        since: dict[str, date] = {}
        for account_id, row in zip(account_ids, rows, strict=True):
            entitled, licensed, marked, act, lic = row["products"][product]  # type: ignore[index]
            for flag, name in (
                (entitled, names.entitlement),
                (licensed, names.access),
                (marked, names.marker),
            ):
                if flag:
                    members[group_id(name)].add(account_id)
            if entitled:
                entra[f"entra-{product}"].add(account_id)
            if act == "unknown":
                unknown.add(account_id)
            elif act is not None:
                last[account_id] = days_ago(act)
            if lic is not None:
                since[account_id] = days_ago(lic)
        activity[product] = ProductActivity(last, frozenset(unknown), since)

    for account_id, row in zip(account_ids, rows, strict=True):
        people.append(
            Person(
                account_id,
                f"{account_id}@{row['domain']}",
                row["status"],  # type: ignore[arg-type]
                row["admin"],  # type: ignore[arg-type]
                f"e-{account_id}" if row["entra_id"] else None,
            )
        )
        for team in row["teams"]:  # type: ignore[attr-defined]
            members[group_id(team)].add(account_id)

    snapshot = Snapshot.build(NOW, people, groups, members, entra, activity)
    policies = tuple(draw(policies_for(p, len(rows), account_ids)) for p in products)
    if not seat_caps:
        policies = tuple(p.model_copy(update={"seat_cap": None}) for p in policies)
    return Org(snapshot, policies)


# --- helpers ----------------------------------------------------------------------------------


def entitled(snapshot: Snapshot, policy: Policy) -> frozenset[str]:
    source = policy.entitlement
    if source.entra_group_id:
        return snapshot.entra_members[source.entra_group_id]
    group = snapshot.find_group(source.atlassian_group or "")
    assert group is not None
    return snapshot.members_of(group.id)


def excluded(snapshot: Snapshot, policy: Policy) -> set[str]:
    """Who the policy says never loses a license: listed accounts, groups, domains, and admins."""
    ex = policy.exclusions
    out = set(ex.accounts) | {a for a, p in snapshot.people.items() if p.is_admin}
    for name in ex.groups:
        out |= snapshot.members_of(group_id(name))
    out |= {a for a, p in snapshot.people.items() if p.domain in ex.domains}
    return out


def comparable(plan: Plan) -> list[tuple[object, ...]]:
    return [(a.account_id, a.reason, a.ops, a.id) for a in plan.actions]


# --- the properties ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(orgs(seat_caps=False))
def test_planning_again_after_applying_a_plan_yields_no_actions(org: Org) -> None:
    """Fixpoint: what the executor leaves behind is what the rules want (same night).

    Without seat caps; `test_planning_again_…_under_a_seat_cap` covers them.
    """
    snapshot = org.snapshot
    for plan in org.plans():
        snapshot = apply_plan(snapshot, plan, NOW)

    again = org.plans(snapshot)

    assert [comparable(p) for p in again] == [[] for _ in again]


@PROPERTY_SETTINGS
@given(orgs(seat_caps=True))
def test_planning_again_after_applying_a_plan_yields_no_actions_under_a_seat_cap(org: Org) -> None:
    """Fixpoint with seat caps: a capped plan, applied, leaves nothing for the cap to take.

    Seats are the active licensed; a seat granted or given back tonight is not taken back
    tonight; a plan that cannot reach the cap says so in `waiting` instead of churning.

    A suspension for one product frees that person's seats in every other product, so the
    other products' waiting grants fit on the next plan: across products with a suspending
    policy the plans settle in two rounds, by design. Those orgs are left to the examples.
    """
    assume(len(org.policies) == 1 or not any(p.on_inactive == "suspend" for p in org.policies))
    snapshot = org.snapshot
    plans = org.plans()
    for plan in plans:
        snapshot = apply_plan(snapshot, plan, NOW)

    again = org.plans(snapshot)

    assert [comparable(p) for p in again] == [[] for _ in again]


@PROPERTY_SETTINGS
@given(orgs(seat_caps=False))
def test_nobody_active_within_the_threshold_loses_the_license_to_inactivity(org: Org) -> None:
    """Nobody who used the product within `inactive_after_days` (or, never active, was licensed
    within the threshold plus grace days) loses the license for inactivity.

    Only for policies without a `seat_cap`: SEAT_CAP is the administrator's explicit choice to
    take seats, when over the cap, from the longest idle of those not yet idle enough to lose
    the license to INACTIVE; it is tested by example.
    """
    snapshot = org.snapshot
    for policy, plan in zip(org.policies, org.plans(), strict=True):
        activity = snapshot.activity[policy.product]
        for action in plan.actions:
            if action.reason not in (Reason.INACTIVE, Reason.SEAT_CAP):
                continue
            person = snapshot.people[action.account_id]
            threshold = policy.threshold_for(person.domain)
            last = activity.last_active.get(person.account_id)
            since = activity.licensed_since.get(person.account_id)
            if last is not None:
                assert (TODAY - last).days > threshold, action
            else:
                assert since is not None, action
                assert (TODAY - since).days > threshold + policy.grace_days, action


@PROPERTY_SETTINGS
@given(orgs())
def test_nobody_without_entitlement_is_granted_a_license(org: Org) -> None:
    for policy, plan in zip(org.policies, org.plans(), strict=True):
        granted = {a.account_id for a in plan.actions if a.reason in (Reason.GRANT, Reason.RELICENSE)}
        assert granted <= entitled(org.snapshot, policy)


@PROPERTY_SETTINGS
@given(orgs())
def test_a_return_event_relicenses_only_entitled_marked_unlicensed_active_people(org: Org) -> None:
    snapshot = org.snapshot
    for policy in org.policies:
        marked = snapshot.members_of(group_id(policy.marker_group))
        licensed = snapshot.members_of(group_id(policy.access_group))
        for account_id, person in snapshot.people.items():
            action = plan_relicense(snapshot, policy, account_id, NOW)
            if action is None:
                continue
            assert action.reason is Reason.RELICENSE
            assert account_id in entitled(snapshot, policy) & marked - licensed
            assert person.status is AccountStatus.ACTIVE


@PROPERTY_SETTINGS
@given(orgs())
def test_excluded_people_and_admins_never_lose_a_license(org: Org) -> None:
    for policy, plan in zip(org.policies, org.plans(), strict=True):
        revoked = {a.account_id for a in plan.actions if a.reason in REVOKING_REASONS}
        waiting = {w.account_id for w in plan.waiting if w.reason in REVOKING_REASONS}
        assert not (revoked | waiting) & excluded(org.snapshot, policy)


@PROPERTY_SETTINGS
@given(orgs())
def test_suspended_closed_and_unknown_activity_people_are_not_revoked_for_inactivity(org: Org) -> None:
    """Suspended and closed accounts get no action at all; people whose activity is unknown
    tonight lose no license to INACTIVE or SEAT_CAP (losing the entitlement still counts)."""
    snapshot = org.snapshot
    unmanaged = {a for a, p in snapshot.people.items() if p.status is not AccountStatus.ACTIVE}
    for policy, plan in zip(org.policies, org.plans(), strict=True):
        unknown = snapshot.activity[policy.product].unknown
        touched = {a.account_id for a in plan.actions} | {w.account_id for w in plan.waiting}
        assert not touched & unmanaged
        idle_revoked = {a.account_id for a in plan.actions if a.reason in (Reason.INACTIVE, Reason.SEAT_CAP)}
        assert not idle_revoked & unknown


@PROPERTY_SETTINGS
@given(orgs(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_of_the_input(org: Org, rng: random.Random) -> None:
    s = org.snapshot

    def shuffled(items: Iterable[T]) -> list[T]:
        out = list(items)
        rng.shuffle(out)
        return out

    reordered = Snapshot.build(
        s.taken_at,
        shuffled(s.people.values()),
        shuffled(s.groups.values()),
        {g: shuffled(s.members[g]) for g in shuffled(s.members)},
        {g: shuffled(m) for g, m in s.entra_members.items()},
        {
            p: ProductActivity(
                dict(shuffled(a.last_active.items())),
                frozenset(shuffled(a.unknown)),
                dict(shuffled(a.licensed_since.items())),
            )
            for p, a in s.activity.items()
        },
    )

    assert [comparable(p) for p in org.plans(reordered)] == [comparable(p) for p in org.plans()]
    assert [p.waiting for p in org.plans(reordered)] == [p.waiting for p in org.plans()]


@PROPERTY_SETTINGS
@given(orgs())
def test_every_action_id_is_unique_within_a_plan(org: Org) -> None:
    for plan in org.plans():
        ids = [a.id for a in plan.actions]
        assert len(ids) == len(set(ids))


@PROPERTY_SETTINGS
@given(orgs())
def test_every_action_is_whole_and_its_id_is_the_model_action_id(org: Org) -> None:
    """The planner makes actions and their ids in its own loop (`_Planner._emit`): each must
    be an Action with every field, and its id the one the executor expects."""
    for policy, plan in zip(org.policies, org.plans(), strict=True):
        for action in plan.actions:
            assert type(action) is Action and len(action) == len(Action._fields)
            assert type(action.facts) is Facts and len(action.facts) == len(Facts._fields)
            assert action.id == action_id(policy.name, action.account_id, action.reason, TODAY)


@PROPERTY_SETTINGS
@given(orgs())
def test_each_person_gets_at_most_one_action_per_product(org: Org) -> None:
    for plan in org.plans():
        accounts = [a.account_id for a in plan.actions] + [w.account_id for w in plan.waiting]
        assert len(accounts) == len(set(accounts))


ACCOUNTS = st.sampled_from([f"acc-{i}" for i in range(12)])


@PROPERTY_SETTINGS
@given(
    st.dictionaries(ACCOUNTS, st.integers(0, 8)),
    st.lists(
        st.tuples(
            st.frozensets(ACCOUNTS), st.frozensets(ACCOUNTS), st.frozensets(ACCOUNTS), st.integers(0, 8)
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 8),
    st.integers(1, 6),
)
# Last active on the later of two cutoffs: idle enough for INACTIVE, so not a candidate.
@example(
    {"acc-1": 3},
    [(frozenset({"acc-1"}), frozenset(), frozenset(), 3), (frozenset(), frozenset(), frozenset(), 5)],
    0,
    1,
)
def test_seat_cap_candidates_come_longest_idle_first_however_many_are_wanted(
    idle_days: dict[str, int],
    groups: list[tuple[frozenset[str], frozenset[str], frozenset[str], int]],
    until_days: int,
    need: int,
) -> None:
    """The seat cap reads its candidates a window of days at a time (`_in_idle_order`);
    whatever the windows, they must come as sorting them all would give them."""
    last_active = {a: days_ago(n) for a, n in idle_days.items()}
    later = [_Idle(members, skip, dated, days_ago(n)) for members, skip, dated, n in groups]
    until = days_ago(until_days)

    expected = sorted(
        (d, a)
        for a, d in last_active.items()
        if d < until
        and any(d > idle.cut and a in idle.members and a not in idle.skip | idle.dated for idle in later)
    )

    assert list(_in_idle_order(later, last_active, until, need)) == expected


@PROPERTY_SETTINGS
@given(
    st.dictionaries(ACCOUNTS, st.integers(0, 8)),
    st.frozensets(ACCOUNTS),
    st.frozensets(ACCOUNTS),
    st.frozensets(ACCOUNTS),
    st.integers(0, 8),
    st.sampled_from([0, 50]),
)
def test_people_idle_since_their_last_use_are_found_walking_either_side(
    idle_days: dict[str, int],
    members: frozenset[str],
    skip: frozenset[str],
    dated: frozenset[str],
    cut_days: int,
    others: int,
) -> None:
    """`_Idle.last_used` walks the dates or the members, whichever is much the fewer (with
    `others`, people in no group, the dates are the many): both ways must find the members,
    in neither `skip` nor `dated`, last active on or before the cutoff."""
    last_active = {f"other-{i}": days_ago(i % 9) for i in range(others)}
    last_active |= {a: days_ago(n) for a, n in idle_days.items()}
    idle = _Idle(members, skip, dated, days_ago(cut_days))

    found = sorted(idle.last_used(last_active))

    assert found == sorted(
        (a, d) for a, d in last_active.items() if d <= idle.cut and a in members - skip - dated
    )
