"""Orgs made up for the rules tests and the planning benchmark, and a stand-in for the executor.

Three things live here, shared by `tests/rules/` and `bench/plan_bench.py`:

- `OrgBuilder` and `make_policy`: small, readable orgs for the named examples
  ("a person idle 91 days on a 90-day policy loses the license").
- `synthetic_org` and `synthetic_policies`: a large org from a seed, built with cheap
  arithmetic patterns so a million people take seconds, not minutes.
- `apply_plan`: what the action executor would leave behind, so a test can plan, apply and
  plan again (the fixpoint property).

Nothing here does I/O; everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.config import Policy
from shared.model import (
    AccountStatus,
    Group,
    OpKind,
    Person,
    Plan,
    ProductActivity,
    Reason,
    Snapshot,
    Via,
)

#: The moment every example plans at: a fixed night, so dates in tests read as "N days ago".
NOW = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
TODAY = NOW.date()

PRODUCTS = ("confluence", "jira-software", "jira-servicedesk")

#: The reasons after which the executor records "licensed since today" in its state.
REGAINING = frozenset({Reason.GRANT, Reason.RETURNED, Reason.RELICENSE})


def days_ago(days: int, today: date = TODAY) -> date:
    return today - timedelta(days=days)


@dataclass(frozen=True)
class ProductGroups:
    """The names of one product's three groups, as DESIGN.md's table spells them."""

    entitlement: str
    access: str
    marker: str

    @classmethod
    def of(cls, product: str) -> ProductGroups:
        return cls(f"{product}-user-role", f"{product}-users", f"{product}-unlicensed-users")


def group_id(name: str) -> str:
    """Group ids in made-up orgs: distinct from names, so tests notice a name used as an id."""
    return f"gid-{name}"


def make_policy(product: str = "confluence", /, **overrides: Any) -> Policy:
    """A valid policy for `product` over the `ProductGroups.of(product)` groups.

    Keyword arguments replace top-level fields (`inactive_after_days=30`,
    `exclusions={"groups": ["vip"]}`); `entitlement` may be given to read from Entra.
    """
    names = ProductGroups.of(product)
    document: dict[str, Any] = {
        "name": product,
        "product": product,
        "entitlement": {"atlassian_group": names.entitlement},
        "access_group": names.access,
        "marker_group": names.marker,
        "inactive_after_days": 90,
        "grace_days": 14,
    }
    document.update(overrides)
    return Policy.model_validate(document)


# --- small orgs, one person at a time --------------------------------------------------------


@dataclass
class OrgBuilder:
    """Builds a small `Snapshot` person by person, for examples that read like the rule they test.

    Every product in `products` gets its three groups. Activity is given in days before `now`:
    `idle_days=None` means never active, `unknown=True` that tonight's lookup failed.
    """

    products: tuple[str, ...] = ("confluence",)
    now: datetime = NOW
    access_synced: bool = False
    people: dict[str, Person] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    entra: dict[str, set[str]] = field(default_factory=dict)
    last_active: dict[str, dict[str, date]] = field(default_factory=dict)
    unknown: dict[str, set[str]] = field(default_factory=dict)
    licensed_since: dict[str, dict[str, date]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for product in self.products:
            names = ProductGroups.of(product)
            self.group(names.entitlement, synced=True)
            self.group(names.access, synced=self.access_synced)
            self.group(names.marker)
            self.last_active[product] = {}
            self.unknown[product] = set()
            self.licensed_since[product] = {}

    @property
    def today(self) -> date:
        return self.now.date()

    def group(self, name: str, *, synced: bool = False) -> str:
        gid = group_id(name)
        self.groups.setdefault(gid, Group(gid, name, synced))
        self.members.setdefault(gid, set())
        return gid

    def entra_group(self, entra_group_id: str, members: Iterable[str] = ()) -> OrgBuilder:
        self.entra.setdefault(entra_group_id, set()).update(members)
        return self

    def person(
        self,
        account_id: str,
        *,
        email: str | None = None,
        status: AccountStatus = AccountStatus.ACTIVE,
        admin: bool = False,
        entra_id: str | None = None,
        product: str | None = None,
        entitled: bool = False,
        licensed: bool = False,
        marked: bool = False,
        idle_days: int | None = None,
        unknown: bool = False,
        licensed_days_ago: int | None = None,
        groups: Iterable[str] = (),
    ) -> OrgBuilder:
        product = product or self.products[0]
        self.people[account_id] = Person(
            account_id, email or f"{account_id}@example.com", status, admin, entra_id, account_id
        )
        names = ProductGroups.of(product)
        for flag, name in ((entitled, names.entitlement), (licensed, names.access), (marked, names.marker)):
            if flag:
                self.members[group_id(name)].add(account_id)
        for name in groups:
            self.members[self.group(name)].add(account_id)
        if idle_days is not None:
            self.last_active[product][account_id] = days_ago(idle_days, self.today)
        if unknown:
            self.unknown[product].add(account_id)
        if licensed_days_ago is not None:
            self.licensed_since[product][account_id] = days_ago(licensed_days_ago, self.today)
        return self

    def build(self) -> Snapshot:
        return Snapshot.build(
            self.now,
            self.people.values(),
            self.groups.values(),
            self.members,
            self.entra,
            {
                p: ProductActivity(self.last_active[p], frozenset(self.unknown[p]), self.licensed_since[p])
                for p in self.products
            },
        )


# --- the executor, simulated ----------------------------------------------------------------


def apply_plan(
    snapshot: Snapshot,
    plan: Plan,
    now: datetime,
    *,
    entra_mirrors: Mapping[str, str] | None = None,
) -> Snapshot:
    """The snapshot the action executor would leave behind after carrying out `plan`.

    Group adds and removes change memberships; `suspend` suspends the account. An operation
    carried out in Entra (`via=entra`) lands in the Atlassian group that Entra group syncs
    into, named by `entra_mirrors`; a CSV removal is taken as done by an administrator.
    People granted or given the license back are recorded as licensed since today, as the
    executor records it. Everything else is kept. Waiting decisions change nothing.
    """
    mirrors = dict(entra_mirrors or {})
    members: dict[str, frozenset[str] | set[str]] = dict(snapshot.members)
    people = dict(snapshot.people)
    licensed_since: dict[str, date] | None = None
    for action in plan.actions:
        for op in action.ops:
            if op.kind is OpKind.SUSPEND:
                people[action.account_id] = replace(people[action.account_id], status=AccountStatus.SUSPENDED)
                continue
            assert op.group_id is not None, op
            gid = mirrors[op.group_id] if op.via is Via.ENTRA else op.group_id
            if gid not in snapshot.groups:
                raise ValueError(f"action {action.id} touches group {gid}, which the org does not have")
            current = members.get(gid, frozenset())
            if not isinstance(current, set):
                current = set(current)
                members[gid] = current
            if op.kind is OpKind.ADD:
                current.add(action.account_id)
            else:
                current.discard(action.account_id)
        if action.reason in REGAINING:
            if licensed_since is None:
                before = snapshot.activity.get(plan.product, ProductActivity())
                licensed_since = dict(before.licensed_since)
            licensed_since[action.account_id] = now.date()
    activity = dict(snapshot.activity)
    if licensed_since is not None:
        before = activity.get(plan.product, ProductActivity())
        activity[plan.product] = ProductActivity(before.last_active, before.unknown, licensed_since)
    return Snapshot(
        taken_at=now,
        people=people,
        groups=snapshot.groups,
        members={g: frozenset(m) for g, m in members.items()},
        entra_members=snapshot.entra_members,
        activity=activity,
    )


# --- large synthetic orgs, for the benchmark -------------------------------------------------

#: Groups whose members no policy may take a license from (service accounts, executives).
EXCLUDED_GROUPS = ("svc-accounts", "executives")
INTERNAL_DOMAINS = ("example.com", "corp.example.com")
EXTERNAL_DOMAINS = ("partner.io", "contractor.net", "agency.co.uk")


@dataclass(frozen=True)
class SyntheticOrg:
    """A generated org: the snapshot, the raw parts it was built from, and the time it took."""

    snapshot: Snapshot
    generate_seconds: float
    build_seconds: float


def synthetic_policies(products: Iterable[str] = PRODUCTS) -> list[Policy]:
    """One policy per product as a mid-sized customer would write them.

    Confluence has a seat cap a little under its licensed count, so the SEAT_CAP path
    (a sort of every keeper) is part of what the benchmark measures; Jira Service
    Management gives external people a shorter threshold.
    """
    policies = []
    for product in products:
        extra: dict[str, Any] = {
            "exclusions": {"groups": list(EXCLUDED_GROUPS)},
            "internal_domains": list(INTERNAL_DOMAINS),
            "mode": "enforce",
        }
        if product == "jira-servicedesk":
            extra["external_inactive_after_days"] = 30
        policies.append(make_policy(product, **extra))
    return policies


def synthetic_seat_caps(snapshot: Snapshot, policies: list[Policy]) -> list[Policy]:
    """Give Confluence a cap of 95% of its licensed members, once the org's size is known."""
    capped = []
    for policy in policies:
        if policy.product == "confluence":
            licensed = len(snapshot.members_of(group_id(policy.access_group)))
            policy = policy.model_copy(update={"seat_cap": licensed * 95 // 100})
        capped.append(policy)
    return capped


def synthetic_org(
    users: int,
    *,
    seed: int = 0,
    products: Iterable[str] = PRODUCTS,
    now: datetime = NOW,
    validate: bool = True,
) -> SyntheticOrg:
    """`users` people over `products`, each product with its three groups, from `seed`.

    Shape, per product (each product draws its own pattern, so memberships differ):
    ~70% entitled; ~85% of the entitled licensed; ~3% of the unentitled still licensed;
    ~1/3 of the entitled-but-unlicensed marked, plus a few licensed-and-marked (returned) and
    stale markers. Activity: 60% used the product in the last month, 20% in the last 30-89
    days, 10% 90-365 days ago, 5% never (half of them with a license date up to 400 days
    back, half first seen tonight), 2% unknown tonight, the rest a year or more ago; a quarter
    of those with a date also have a license date up to 200 days back. About 1.5% are
    suspended or closed; every 5,000th is an admin; two exclusion groups hold ~0.15%;
    ~5% have external email domains.

    People are decided by multiplicative-hash buckets (0-999) with multipliers from the seed:
    cheap enough for a million people, and deterministic. `validate=False` constructs the
    `Snapshot` directly instead of through `Snapshot.build` (which checks every membership).
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    products = tuple(products)
    today = now.date()
    day = [today - timedelta(days=d) for d in range(0, 1200)]
    prefix = f"{rng.getrandbits(16):04x}"

    ids = [f"{prefix}{i:020x}" for i in range(users)]
    all_domains = (*INTERNAL_DOMAINS, *EXTERNAL_DOMAINS)
    people: list[Person] = []
    for i, account_id in enumerate(ids):
        d = i % 100
        domain = all_domains[0] if d < 85 else all_domains[1] if d < 95 else all_domains[2 + d % 3]
        status = (
            AccountStatus.SUSPENDED
            if i % 97 == 5
            else AccountStatus.CLOSED
            if i % 211 == 7
            else AccountStatus.ACTIVE
        )
        people.append(Person(account_id, f"user{i}@{domain}", status, i % 5000 == 11, None))

    groups: list[Group] = []
    memberships: dict[str, list[str]] = {}

    def add_group(name: str, synced: bool, accounts: list[str]) -> None:
        gid = group_id(name)
        groups.append(Group(gid, name, synced))
        memberships[gid] = accounts

    add_group(EXCLUDED_GROUPS[0], False, ids[1::1000])
    add_group(EXCLUDED_GROUPS[1], True, ids[3::2000])

    activity: dict[str, ProductActivity] = {}
    for product in products:
        # Multiplicative hashing (odd 32-bit multipliers from the seed) gives each product
        # three nearly independent buckets per person without a random() call per person.
        a, c, e = (rng.getrandbits(32) | 1 for _ in range(3))
        entitled: list[str] = []
        licensed: list[str] = []
        marked: list[str] = []
        last_active: dict[str, date] = {}
        unknown: list[str] = []
        licensed_since: dict[str, date] = {}
        for i, account_id in enumerate(ids):
            h1 = (((i * a) & 0xFFFFFFFF) >> 12) % 1000
            h2 = (((i * c) & 0xFFFFFFFF) >> 12) % 1000
            h3 = (((i * e) & 0xFFFFFFFF) >> 12) % 1000
            is_entitled = h1 < 700
            if is_entitled:
                entitled.append(account_id)
                if h2 < 850:
                    licensed.append(account_id)
                    if h2 < 5:
                        marked.append(account_id)  # came back through a default group
                elif h2 % 3 == 0:
                    marked.append(account_id)
            else:
                if h2 < 30:
                    licensed.append(account_id)
                elif h2 < 45:
                    marked.append(account_id)  # stale marker: the entitlement ended
            if h3 < 600:
                last_active[account_id] = day[h3 % 30]
            elif h3 < 800:
                last_active[account_id] = day[30 + h3 % 60]
            elif h3 < 900:
                last_active[account_id] = day[90 + (h3 * 7) % 276]
            elif h3 < 950:
                if h3 % 2:
                    licensed_since[account_id] = day[(h3 * 13) % 400]
            elif h3 < 970:
                unknown.append(account_id)
            else:
                last_active[account_id] = day[365 + (h3 * 11) % 800]
            if h2 % 4 == 1 and h3 < 900:
                licensed_since[account_id] = day[h2 % 200]
        names = ProductGroups.of(product)
        add_group(names.entitlement, True, entitled)
        add_group(names.access, False, licensed)
        add_group(names.marker, False, marked)
        activity[product] = ProductActivity(last_active, frozenset(unknown), licensed_since)

    generated = time.perf_counter()
    if validate:
        snapshot = Snapshot.build(now, people, groups, memberships, None, activity)
    else:
        snapshot = Snapshot(
            taken_at=now,
            people={p.account_id: p for p in people},
            groups={g.id: g for g in groups},
            members={g: frozenset(m) for g, m in memberships.items()},
            activity=activity,
        )
    built = time.perf_counter()
    return SyntheticOrg(snapshot, generated - started, built - generated)
