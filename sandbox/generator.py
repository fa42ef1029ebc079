"""The seeded org generator: same arguments, same org, byte for byte.

The org it draws is shaped like the one Seatwarden meets: three groups per product
(entitlement synced from Entra, local access group, local marker group), most entitled
people licensed but not all, a few licensed without entitlement, some marked, admins and
service accounts and external guests, activity that is recent for some and years old for
others. Every draw comes from one ``random.Random(seed)`` in a fixed order, and nothing
iterates a set, so the result does not depend on hash seeds.

"Today" is the clock's start day (midnight UTC); every generated instant lies before it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from . import names
from .clock import Clock
from .model import BASIC_ROLE, ORG_ADMIN, SITE_ADMIN, EntraGroup, Group, Product, User
from .org import ACCESS_SUFFIX, MARKER_SUFFIX, USER_ROLE_SUFFIX, Org, OrgIdentity
from .timeutil import from_epoch

DEFAULT_PRODUCTS = ("confluence", "jira-software", "jira-servicedesk")

DAY = 86_400
EXTERNAL_SHARE = 0.05
SUSPENDED_SHARE = 0.02
INACTIVE_SHARE = 0.007  # deactivated accounts
CLOSED_SHARE = 0.003
NEVER_ACTIVE_SHARE = 0.05  # per (person, product) held
# Share of people entitled to each product; products not listed use the default.
ENTITLED_SHARE = {"confluence": 0.8, "jira-software": 0.6, "jira-servicedesk": 0.25}
DEFAULT_ENTITLED_SHARE = 0.5
LICENSED_IF_ENTITLED = 0.9  # the rest wait for a GRANT (or were marked)
LICENSED_IF_NOT_ENTITLED = 0.03  # REVOKE_UNENTITLED material
MARKED_IF_ENTITLED_UNLICENSED = 0.5  # licenses taken for inactivity earlier
MARKED_IF_LICENSED = 0.01  # came back: RETURNED material
MARKED_IF_NEITHER = 0.01  # CLEAR_STALE_MARKER material
EXECUTIVE_SHARE = 0.005


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (formatted by hand: 100,000 of these add up)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _pick(rng: random.Random, options: Sequence[str]) -> str:
    """``rng.choice`` without its per-call overhead (one ``random()`` draw)."""
    return options[int(rng.random() * len(options))]


def _between(rng: random.Random, low: int, high: int) -> int:
    """An int in [low, high], from one ``random()`` draw."""
    return low + int(rng.random() * (high - low + 1))


def day_anchor(moment: datetime) -> datetime:
    """Midnight UTC of the moment's day: the generator's "today"."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def generate_org(
    *,
    users: int,
    seed: int,
    clock: Clock,
    products: Sequence[str] = DEFAULT_PRODUCTS,
    synced_access_groups: bool = False,
) -> Org:
    """Draw an org of ``users`` people from ``seed``, dated relative to ``clock.start``.

    ``synced_access_groups`` makes each ``{product}-users`` group synced from an Entra
    group too, the setup where taking a license back is an Entra change.
    """
    if users < 1:
        raise ValueError("an org needs at least one user")
    if len(set(products)) != len(products) or not products:
        raise ValueError("products must be distinct and not empty")
    rng = random.Random(seed)
    identity = OrgIdentity(
        org_id=_uuid(rng),
        org_name=f"Example Org {seed}",
        directory_id=_uuid(rng),
        directory_name="Example directory",
        site_id=_uuid(rng),
        site_name="example-sandbox",
        tenant_id=_uuid(rng),
        api_key_id=_uuid(rng),
    )
    anchor = int(day_anchor(clock.start).timestamp())
    people, service_ids = _draw_people(rng, users, len(products), anchor)
    groups, entra_groups = _draw_groups(
        rng, people, service_ids, list(products), anchor, synced_access_groups
    )
    return Org(identity, [Product(p) for p in products], people, groups, entra_groups, clock)


def _draw_people(
    rng: random.Random, count: int, product_count: int, anchor: int
) -> tuple[list[User], list[str]]:
    """The people, and the account ids of the service accounts among them."""
    people: list[User] = []
    taken: dict[str, int] = {}
    service_count = min(len(names.SERVICE_ACCOUNTS), count // 50)
    for position in range(count):
        account_id = "712020:" + _uuid(rng)
        object_id = _uuid(rng)
        if position < service_count:
            local = names.SERVICE_ACCOUNTS[position]
            display = local
            domain = names.INTERNAL_DOMAINS[0]
            external = False
        else:
            first = _pick(rng, names.FIRST_NAMES)
            last = _pick(rng, names.LAST_NAMES)
            display = f"{first} {last}"
            external = rng.random() < EXTERNAL_SHARE
            domains = names.EXTERNAL_DOMAINS if external else names.INTERNAL_DOMAINS
            domain = _pick(rng, domains)
            local = f"{first}.{last}".lower()
        seen = taken.get(f"{local}@{domain}", 0)
        taken[f"{local}@{domain}"] = seen + 1
        email = f"{local}{seen + 1 if seen else ''}@{domain}"
        draw = rng.random()
        account_status = "active"
        suspended = False
        if draw < SUSPENDED_SHARE:
            suspended = True
        elif draw < SUSPENDED_SHARE + INACTIVE_SHARE:
            account_status = "inactive"
        elif draw < SUSPENDED_SHARE + INACTIVE_SHARE + CLOSED_SHARE:
            account_status = "closed"
        role_draw = rng.random()
        roles: tuple[str, ...] = (BASIC_ROLE,)
        if not external and position >= service_count:
            if role_draw < 0.004:
                roles = (ORG_ADMIN, BASIC_ROLE)
            elif role_draw < 0.01:
                roles = (SITE_ADMIN, BASIC_ROLE)
        added = anchor - _between(rng, DAY, 6 * 365 * DAY)
        people.append(
            User(
                account_id=account_id,
                entra_object_id=object_id,
                name=display,
                email=email,
                added_to_org=from_epoch(added),
                account_status=account_status,
                suspended=suspended,
                account_enabled=account_status == "active",
                platform_roles=roles,
                claim_status="unmanaged" if external else "managed",
                job_title=None if position < service_count else _pick(rng, names.JOB_TITLES),
                department=None if position < service_count else _pick(rng, names.DEPARTMENTS),
                mfa_enabled=not external and rng.random() < 0.7,
                daily_use_probability=_daily_use(rng) if position >= service_count else 0.0,
                last_active=[0] * product_count,
            )
        )
    _ensure_admins(people, service_count)
    return people, [p.account_id for p in people[:service_count]]


def _daily_use(rng: random.Random) -> float:
    """Heavy, occasional and rare users, so idle times spread from today to years."""
    tier = rng.random()
    if tier < 0.55:
        return round(rng.uniform(0.3, 0.95), 4)
    if tier < 0.85:
        return round(rng.uniform(0.02, 0.3), 4)
    return round(rng.uniform(0.001, 0.02), 4)


def _ensure_admins(people: list[User], service_count: int) -> None:
    """Small orgs still get one org admin and one site admin (the first two regulars)."""
    regulars = [p for p in people[service_count:] if not p.is_external]
    for role, person in zip((ORG_ADMIN, SITE_ADMIN), regulars[:2], strict=False):
        if not any(role in p.platform_roles for p in people):
            person.platform_roles = (role, BASIC_ROLE)


def _draw_groups(
    rng: random.Random,
    people: list[User],
    service_ids: list[str],
    products: list[str],
    anchor: int,
    synced_access_groups: bool,
) -> tuple[list[Group], list[EntraGroup]]:
    groups: list[Group] = []
    entra_groups: list[EntraGroup] = []
    services = set(service_ids)
    for index, product in enumerate(products):
        entitled_share = ENTITLED_SHARE.get(product, DEFAULT_ENTITLED_SHARE)
        entitled: list[User] = []
        licensed: list[User] = []
        marked: list[User] = []
        for person in people:
            if person.account_id in services:
                licensed.append(person)  # bots hold licenses and never open the product
                continue
            is_entitled = rng.random() < entitled_share * (0.5 if person.is_external else 1)
            is_licensed = rng.random() < (LICENSED_IF_ENTITLED if is_entitled else LICENSED_IF_NOT_ENTITLED)
            marker_odds = (
                MARKED_IF_LICENSED
                if is_licensed
                else MARKED_IF_ENTITLED_UNLICENSED
                if is_entitled
                else MARKED_IF_NEITHER
            )
            is_marked = rng.random() < marker_odds
            if is_entitled:
                entitled.append(person)
            if is_licensed:
                licensed.append(person)
            if is_marked:
                marked.append(person)
            person.last_active[index] = _draw_last_active(
                rng, person, anchor, holds=is_licensed or is_entitled, marked=is_marked
            )
        role_name = f"{product}{USER_ROLE_SUFFIX}"
        entra_role = EntraGroup(_uuid(rng), role_name, {p.entra_object_id for p in entitled})
        entra_groups.append(entra_role)
        groups.append(
            Group(
                _uuid(rng),
                role_name,
                f"Entitled to {product} (synced from Microsoft Entra ID)",
                synced_from=entra_role.id,
            )
        )
        access_name = f"{product}{ACCESS_SUFFIX}"
        access = Group(
            _uuid(rng), access_name, f"Grants {product}", {p.account_id for p in licensed}, grants=(product,)
        )
        if synced_access_groups:
            entra_access = EntraGroup(_uuid(rng), access_name, {p.entra_object_id for p in licensed})
            entra_groups.append(entra_access)
            access.synced_from = entra_access.id
            access.members = set()
        groups.append(access)
        groups.append(
            Group(
                _uuid(rng),
                f"{product}{MARKER_SUFFIX}",
                f"{product} license taken for inactivity",
                {p.account_id for p in marked},
            )
        )
    regulars = [p for p in people if p.account_id not in services]
    executives = {p.account_id for p in regulars if not p.is_external and rng.random() < EXECUTIVE_SHARE}
    if not executives and regulars:
        executives = {regulars[-1].account_id}
    groups.append(Group(_uuid(rng), "executives", "Leadership team", executives))
    groups.append(
        Group(_uuid(rng), "service-accounts", "Automation and integration accounts", set(service_ids))
    )
    groups.append(
        Group(
            _uuid(rng),
            "contractors",
            "External collaborators",
            {p.account_id for p in people if p.is_external},
        )
    )
    return groups, entra_groups


def _draw_last_active(rng: random.Random, person: User, anchor: int, *, holds: bool, marked: bool) -> int:
    """Epoch seconds of the person's last use of one product, or 0 for never.

    Idle days follow the person's daily-use probability (a geometric gap, so heavy users
    were here today and rare ones months ago); marked people have been away 90+ days.
    """
    never_share = NEVER_ACTIVE_SHARE if holds or marked else 0.6
    if rng.random() < never_share:
        return 0
    if marked:
        days_ago = 90 + int(rng.expovariate(1 / 90))
    elif holds:
        days_ago = int(rng.expovariate(max(person.daily_use_probability, 0.001)))
    else:
        days_ago = 60 + int(rng.expovariate(1 / 200))  # used it once, long ago
    days_since_added = (anchor - int(person.added_to_org.timestamp())) // DAY
    days_ago = min(days_ago, max(days_since_added - 1, 0))
    return anchor - days_ago * DAY - _between(rng, 3_600, 16 * 3_600)
