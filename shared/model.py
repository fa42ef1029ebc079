"""People, groups, snapshots, actions and plans: the values the rules engine reads and writes.

Everything here is a plain value with no I/O. A `Snapshot` is what Seatwarden knows about an
org at one moment; a `Plan` is what the rules decided from it. The snapshot is set-oriented
(group -> members, product -> activity) rather than person-oriented, because the rules are
mostly set algebra and a million-person org has to plan in seconds.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from operator import attrgetter
from typing import NamedTuple


class AccountStatus(enum.StrEnum):
    """Whether Atlassian lets the account in at all. Only `active` accounts are managed."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Reason(enum.StrEnum):
    """Why an action was planned: the reason codes of DESIGN.md's rule table."""

    GRANT = "GRANT"
    REVOKE_UNENTITLED = "REVOKE_UNENTITLED"
    RETURNED = "RETURNED"
    INACTIVE = "INACTIVE"
    CLEAR_STALE_MARKER = "CLEAR_STALE_MARKER"
    SEAT_CAP = "SEAT_CAP"
    RELICENSE = "RELICENSE"


#: Reasons whose action takes a license away: these count against the blast radius.
REVOKING_REASONS = frozenset({Reason.REVOKE_UNENTITLED, Reason.INACTIVE, Reason.SEAT_CAP})


class OpKind(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"
    SUSPEND = "suspend"


class GroupRole(enum.StrEnum):
    """Which of a product's three groups an operation touches."""

    ENTITLEMENT = "entitlement"
    ACCESS = "access"
    MARKER = "marker"


class Via(enum.StrEnum):
    """Where an operation is carried out.

    `entra` and `csv` exist because an access group synced from Entra is read-only in
    Atlassian: removing someone there would be undone by the next SCIM sync.
    """

    ATLASSIAN = "atlassian"
    ENTRA = "entra"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class Person:
    """One Atlassian account, as the org's users read shows it."""

    account_id: str
    email: str
    status: AccountStatus = AccountStatus.ACTIVE
    is_admin: bool = False
    entra_id: str | None = None
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class Group:
    """An Atlassian group. `synced` groups come from the IdP and cannot be changed in Atlassian."""

    id: str
    name: str
    synced: bool = False


@dataclass(frozen=True)
class ProductActivity:
    """What is known of one product's use.

    `last_active` holds the day of last use for people known to have used the product.
    `unknown` holds people whose activity could not be read tonight: they are left alone.
    Anyone in neither has never used the product. `licensed_since` comes from Seatwarden's
    own state: the day a person was first seen holding the license (or was given it back).
    """

    last_active: Mapping[str, date] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()
    licensed_since: Mapping[str, date] = field(default_factory=dict)


class SnapshotError(ValueError):
    """A snapshot that cannot be planned from: it names the account or group at fault."""


@dataclass(frozen=True)
class Snapshot:
    """What Seatwarden knows about one org at `taken_at`."""

    taken_at: datetime
    people: Mapping[str, Person]
    groups: Mapping[str, Group]
    members: Mapping[str, frozenset[str]]
    #: Entra group id -> Atlassian account ids of its transitive members.
    entra_members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Product key -> activity.
    activity: Mapping[str, ProductActivity] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        taken_at: datetime,
        people: Iterable[Person],
        groups: Iterable[Group],
        memberships: Mapping[str, Iterable[str]],
        entra_members: Mapping[str, Iterable[str]] | None = None,
        activity: Mapping[str, ProductActivity] | None = None,
    ) -> Snapshot:
        """Build a snapshot, refusing duplicate accounts or groups and members nobody knows."""
        by_id: dict[str, Person] = {}
        for person in people:
            if person.account_id in by_id:
                raise SnapshotError(f"duplicate account in snapshot: {person.account_id}")
            by_id[person.account_id] = person
        groups_by_id: dict[str, Group] = {}
        for group in groups:
            if group.id in groups_by_id:
                raise SnapshotError(f"duplicate group in snapshot: {group.id} ({group.name})")
            groups_by_id[group.id] = group
        members: dict[str, frozenset[str]] = {}
        for group_id, accounts in memberships.items():
            if group_id not in groups_by_id:
                raise SnapshotError(f"memberships given for unknown group {group_id}")
            frozen = frozenset(accounts)
            stray = frozen - by_id.keys()
            if stray:
                raise SnapshotError(
                    f"group {group_id} lists accounts missing from the users read: "
                    f"{', '.join(sorted(stray)[:5])}"
                )
            members[group_id] = frozen
        entra: dict[str, frozenset[str]] = {}
        for group_id, accounts in (entra_members or {}).items():
            frozen = frozenset(accounts)
            stray = frozen - by_id.keys()
            if stray:
                raise SnapshotError(
                    f"Entra group {group_id} maps to accounts missing from the users read: "
                    f"{', '.join(sorted(stray)[:5])}"
                )
            entra[group_id] = frozen
        return cls(
            taken_at=taken_at,
            people=by_id,
            groups=groups_by_id,
            members=members,
            entra_members=entra,
            activity=dict(activity or {}),
        )

    def members_of(self, group_id: str) -> frozenset[str]:
        return self.members.get(group_id, frozenset())

    def find_group(self, ref: str) -> Group | None:
        """A group by id, else by name (case-insensitive, as Atlassian's `groupNames`)."""
        if ref in self.groups:
            return self.groups[ref]
        return self._groups_by_name.get(ref.casefold())

    @cached_property
    def _groups_by_name(self) -> dict[str, Group]:
        return {g.name.casefold(): g for g in self.groups.values()}

    # A million-person snapshot is walked by each of the questions below, once: planning it
    # has to take seconds, so a walk is one plain comprehension per person, with nothing in
    # it that can be read before (an enum member, `AccountStatus.ACTIVE`, costs a class
    # attribute lookup each time it is read).

    @cached_property
    def unmanaged(self) -> frozenset[str]:
        """Suspended and closed accounts: the rules leave them alone."""
        active = AccountStatus.ACTIVE
        return frozenset(a for a, p in self.people.items() if p.status is not active)

    @cached_property
    def admins(self) -> frozenset[str]:
        """Org and site admins hold access anyway; they never lose a license to a rule."""
        return frozenset(a for a, p in self.people.items() if p.is_admin)

    def in_domains(self, domains: Iterable[str]) -> frozenset[str]:
        """Everyone whose email domain (`Person.domain`) is one of `domains`, in any case."""
        wanted, suffixes = _domain_test(domains)
        if not wanted:
            return frozenset()
        # See `_domain_test`: `Person.domain` only where `endswith` does not settle it.
        return frozenset(
            a for a, p in self.people.items() if p.email.endswith(suffixes) or p.domain in wanted
        )

    def outside_domains(self, domains: Iterable[str]) -> frozenset[str]:
        """Everyone whose email domain is not one of `domains`: the external people."""
        wanted, suffixes = _domain_test(domains)
        if not wanted:
            return frozenset(self.people)
        return frozenset(
            a for a, p in self.people.items() if not (p.email.endswith(suffixes) or p.domain in wanted)
        )


def _domain_test(domains: Iterable[str]) -> tuple[set[str], tuple[str, ...]]:
    """The wanted domains (lowercase) and the email endings that are surely at one of them.

    An email that ends in "@" and a wanted domain is at that domain, and `endswith` tells
    it without making a string per person as `Person.domain` does; only the others (the
    external people, a domain written in capitals, "Fay@Example.com") need `Person.domain`.
    A domain with an "@" in it matches no one, as `Person.domain` never holds one.
    """
    wanted = {d.lower() for d in domains}
    return wanted, tuple(f"@{d}" for d in wanted if "@" not in d)


@dataclass(frozen=True, slots=True)
class Op:
    """One change to one group (or to the account, for `suspend`)."""

    kind: OpKind
    role: GroupRole | None
    group_id: str | None
    via: Via = Via.ATLASSIAN

    def to_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "role": self.role.value if self.role else None,
            "group_id": self.group_id,
            "via": self.via.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> Op:
        role = data.get("role")
        return cls(
            kind=OpKind(str(data["kind"])),
            role=GroupRole(role) if role else None,
            group_id=data.get("group_id"),
            via=Via(data.get("via") or "atlassian"),
        )


class Facts(NamedTuple):
    """What a decision rested on, recorded with the action and in the audit trail.

    `Facts` and `Action` are named tuples, not frozen dataclasses: a million-person plan
    makes half a million of each, and a tuple is made in less than half the time (a frozen
    dataclass sets each field through `object.__setattr__`). Just as immutable; but, being
    tuples, they equal any tuple of the same values, sort, and iterate. So compare an Action
    with Actions only, and write one out with `to_dict`: `json.dumps` would silently make
    it a list.
    """

    entitled: bool
    licensed: bool
    marked: bool
    last_active: date | None = None
    idle_days: int | None = None
    threshold_days: int | None = None
    email: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "entitled": self.entitled,
            "licensed": self.licensed,
            "marked": self.marked,
            "last_active": self.last_active.isoformat() if self.last_active else None,
            "idle_days": self.idle_days,
            "threshold_days": self.threshold_days,
            "email": self.email,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Facts:
        last = data.get("last_active")
        idle = data.get("idle_days")
        threshold = data.get("threshold_days")
        return cls(
            entitled=bool(data.get("entitled")),
            licensed=bool(data.get("licensed")),
            marked=bool(data.get("marked")),
            last_active=date.fromisoformat(str(last)) if last else None,
            idle_days=int(str(idle)) if idle is not None else None,
            threshold_days=int(str(threshold)) if threshold is not None else None,
            email=str(data.get("email") or ""),
            note=str(data.get("note") or ""),
        )


def action_id(policy: str, account_id: str, reason: Reason, day: date) -> str:
    """A stable id: the same decision on the same day is the same action, applied at most once."""
    raw = f"{policy}|{account_id}|{reason.value}|{day.isoformat()}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


class Action(NamedTuple):
    """A decision about one person and one product, with the operations that carry it out.

    A named tuple, for the reasons and with the caveats `Facts` gives.
    """

    id: str
    policy: str
    product: str
    account_id: str
    reason: Reason
    ops: tuple[Op, ...]
    facts: Facts

    @property
    def revokes(self) -> bool:
        return self.reason in REVOKING_REASONS


@dataclass(frozen=True, slots=True)
class Waiting:
    """A decision that cannot be carried out now, and why (no seat, a synced group, …)."""

    account_id: str
    reason: Reason
    why: str


@dataclass(frozen=True)
class Plan:
    """The rules' answer for one policy: actions sorted by account, and what must wait."""

    policy: str
    product: str
    planned_at: datetime
    actions: tuple[Action, ...]
    waiting: tuple[Waiting, ...] = ()
    licensed_before: int = 0
    licensed_after: int = 0

    def counts(self) -> dict[str, int]:
        by_reason = Counter(map(attrgetter("reason"), self.actions))
        return dict(sorted((reason.value, n) for reason, n in by_reason.items()))

    @property
    def revocations(self) -> int:
        return sum(1 for a in self.actions if a.revokes)
