"""The simulated org's records: people, groups, products, and what happened to them.

One person is both an Atlassian account and an Entra user, as in an org that provisions
Atlassian from Entra by SCIM. Records are plain slotted dataclasses because a benchmark
org holds 100,000 people; the rules that change them live in ``org.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .timeutil import iso_ms

# Atlassian's v2 user ``status`` combines account and membership status
# (WIRE.md §2, from jira.js models/multiDirectoryUserSearchRequest.ts).
ACCOUNT_STATUSES = ("active", "inactive", "closed")

ORG_ADMIN = "atlassian/org-admin"
SITE_ADMIN = "atlassian/site-admin"
BASIC_ROLE = "atlassian/user"


@dataclass(slots=True)
class Product:
    """A licensed Atlassian product on the org's one site."""

    key: str
    seat_limit: int | None = None  # None: unlimited seats


@dataclass(slots=True, eq=False)
class User:
    """One person: their Atlassian account and their Entra user object."""

    account_id: str
    entra_object_id: str
    name: str
    email: str
    added_to_org: datetime
    account_status: str = "active"  # active | inactive | closed
    suspended: bool = False  # org membership suspended (licenses kept, access blocked)
    account_enabled: bool = True  # Entra's accountEnabled
    platform_roles: tuple[str, ...] = (BASIC_ROLE,)
    claim_status: str = "managed"  # managed (claimed domain) | unmanaged (external)
    job_title: str | None = None
    department: str | None = None
    mfa_enabled: bool = False
    daily_use_probability: float = 0.0  # chance per day of using each product held
    # Epoch seconds of the last use per product, aligned with Org.products; 0 = never.
    last_active: list[int] = field(default_factory=list)
    index: int = -1  # position in accountId order, set by the Org

    @property
    def status(self) -> str:
        """Atlassian's combined status: deactivated wins over suspended."""
        if self.account_status != "active":
            return "deactivated"
        return "suspended" if self.suspended else "active"

    @property
    def membership_status(self) -> str:
        return "suspended" if self.suspended else "active"

    @property
    def upn(self) -> str:
        """Entra userPrincipalName: the email, lowercased (as the org provisions it)."""
        return self.email.lower()

    @property
    def is_external(self) -> bool:
        return self.claim_status == "unmanaged"


@dataclass(slots=True, eq=False)
class Group:
    """An Atlassian group. ``synced_from`` names the Entra group it mirrors, if any."""

    id: str
    name: str
    description: str = ""
    members: set[str] = field(default_factory=set)  # account ids
    synced_from: str | None = None
    grants: tuple[str, ...] = ()  # product keys this group licenses (an access group)
    version: int = 0  # bumped on every membership change; keys sorted-member caches

    @property
    def external_synced(self) -> bool:
        return self.synced_from is not None


@dataclass(slots=True, eq=False)
class EntraGroup:
    """An Entra security group; members are user object ids (no nesting)."""

    id: str
    display_name: str
    members: set[str] = field(default_factory=set)
    version: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One mutation of the org, for tests to compare with Seatwarden's audit trail."""

    seq: int
    at: datetime
    system: str  # "atlassian" | "entra"
    kind: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso_ms(self.at),
            "system": self.system,
            "kind": self.kind,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class OrgEvent:
    """An entry of the org audit log, rendered on demand as the events API's object."""

    seq: int
    id: str
    time: datetime
    action: str
    actor: dict[str, Any]
    context: tuple[dict[str, Any], ...]
    message: str


@dataclass(frozen=True, slots=True)
class EntraMemberChange:
    """A membership change of an Entra group, the raw material of ``/groups/delta``."""

    seq: int
    group_id: str
    object_id: str
    added: bool
