"""Read the org into a `Snapshot` with the fewest calls.

One paged users search (with `productAccess`, `groups` and `platformRoles` expanded) serves
every product and group; Entra entitlement comes from Graph. Where the org's read carries no
activity, per-person last-active lookups are needed, and not for everyone: last-active dates
only move forward, so a stored date that proves use within the threshold stays proof until it
ages out. Only people who could lose a license tonight on stored facts are looked up.

The users read is a serial chain of cursor pages; the lookups are paced to their own limit.
So the lookups do not wait for the chain's end: as each page arrives, the people on it who
need one are queued, and a few workers look them up while the next pages are fetched. Who
needs a lookup depends only on a person's own groups, status, email and stored state, so a
page decides it for its people, for every policy whose entitlement is an Atlassian group;
for an Entra-entitled policy the entitlement is known only once Graph has been read, and its
people are queued then. Once the read is complete, the whole snapshot decides again and any
one the pages did not queue is queued too: the set looked up is the same either way.

Safety: any failed or incomplete read raises (`IncompleteRead`) and no plan is made; the
lookups still under way are cancelled first. A lookup that fails makes that person's
activity unknown tonight, never "never active".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from shared.collector import collector_paused
from shared.config import Policy
from shared.model import AccountStatus, Group, Person, ProductActivity, Snapshot, SnapshotError
from shared.rules import ACTIVITY_LAG_DAYS

#: Platform roles that hold product access anyway (WIRE.md §2, `platformRoles`).
ADMIN_ROLES = frozenset({"atlassian/org-admin", "atlassian/site-admin"})

#: Product keys that name the same product in different Atlassian APIs.
PRODUCT_ALIASES = {"jira-service-desk": "jira-servicedesk"}


def product_key(key: str) -> str:
    return PRODUCT_ALIASES.get(key, key)


class StoredState(Protocol):
    """What the snapshot reader needs of a stored user state (shared.store.UserState)."""

    licensed: bool
    last_active: date | None
    licensed_since: date | None
    last_lookup: date | None


@dataclass
class ReadStats:
    user_pages: int = 0
    users: int = 0
    groups: int = 0
    entra_members: int = 0
    lookups_needed: int = 0
    lookups_done: int = 0
    lookups_failed: int = 0
    activity_in_read: bool = False
    entra_from_delta: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReadResult:
    snapshot: Snapshot
    stats: ReadStats
    #: People whose activity still has to be looked up (when lookups were deferred).
    pending_lookups: frozenset[str] = frozenset()
    #: Per product: the activity this read learned (to be stored; dates only move forward).
    learned: dict[str, dict[str, date]] = field(default_factory=dict)
    #: People whose last-active dates were looked up successfully tonight.
    looked_up: frozenset[str] = frozenset()


LookupFn = Callable[[str], Awaitable[Mapping[str, datetime | None]]]


def _status(user: Any) -> AccountStatus:
    status = (getattr(user, "status", None) or "active").lower()
    account = (getattr(user, "account_status", None) or "active").lower()
    if status == "active" and account == "active":
        return AccountStatus.ACTIVE
    if status == "suspended":
        return AccountStatus.SUSPENDED
    return AccountStatus.CLOSED


def needs_lookup(
    state: StoredState | None,
    policy: Policy,
    domain: str,
    today: date,
) -> bool:
    """Could this licensed, entitled person lose the license tonight on what is stored?

    A stored date within the threshold proves use until it ages out; a person never seen
    active who was licensed recently cannot be idle long enough yet. Anyone else is looked up
    (once a day at most).
    """
    if state is not None and state.last_lookup == today:
        return False
    threshold = policy.threshold_for(domain) + ACTIVITY_LAG_DAYS
    if (
        state is not None
        and state.licensed_since is not None
        and (today - state.licensed_since).days < threshold
    ):
        return False  # licensed (or given back) recently: idle counts from then, whatever the date
    stored = state.last_active if state else None
    if stored is not None:
        return (today - stored).days >= threshold
    if state is None or state.last_lookup is None:
        return True  # never looked up: no date proves use, and "none stored" is not "never"
    # A past lookup found no use at all: idle counts from licensing, with grace_days.
    since = state.licensed_since
    if since is None:
        return False  # first seen licensed tonight: idle from tonight, nothing to prove yet
    return (today - since).days >= threshold + policy.grace_days


class SnapshotReader:
    """Builds the rules engine's snapshot for all policies from one read of the org."""

    def __init__(
        self,
        atlassian: Any,
        graph: Any | None,
        stored: Mapping[str, Mapping[str, StoredState]],
        *,
        lookup_concurrency: int = 4,
        delta_links: Mapping[str, str | None] | None = None,
        identities: Mapping[str, str] | None = None,
    ):
        self.atlassian = atlassian
        self.graph = graph
        #: Entra group id -> stored delta link, and Entra object id -> account id: with both,
        #: entitlement is last night's plus what changed (None: read whole groups).
        self.delta_links = delta_links
        self.identities = identities or {}
        #: Delta links to store once the night's state is written.
        self.new_delta_links: dict[str, str] = {}
        #: product -> account id -> stored state
        self.stored = stored
        #: Lookups in flight at most: below the client's concurrency (8 by default), so the
        #: users read's next page never waits behind them for a slot.
        self.lookup_concurrency = lookup_concurrency

    async def read(
        self,
        policies: Iterable[Policy],
        now: datetime,
        *,
        do_lookups: bool = True,
        progress: Callable[[str, int], None] | None = None,
    ) -> ReadResult:
        policies = list(policies)
        stats = ReadStats()
        products = {product_key(p.product) for p in policies}
        lookups = (
            _Lookups(self.atlassian, products, stats, progress, self.lookup_concurrency)
            if do_lookups
            else None
        )
        try:
            # A 100,000-person read holds a big heap and makes no cycles worth a collection
            # (shared.collector).
            with collector_paused():
                return await self._read(policies, now, stats, products, lookups, progress)
        except BaseException:
            if lookups is not None:
                await lookups.cancel()  # a read that stops makes no more calls
            raise

    async def _read(
        self,
        policies: list[Policy],
        now: datetime,
        stats: ReadStats,
        products: set[str],
        lookups: _Lookups | None,
        progress: Callable[[str, int], None] | None,
    ) -> ReadResult:
        today = now.date()
        groups = [Group(g.id, g.name, g.is_synced) for g in await self.atlassian.search_groups()]
        stats.groups = len(groups)
        known = {g.id for g in groups}
        # Policies whose candidates a single page can tell: entitlement from an Atlassian group.
        by_page = [p for p in policies if p.entitlement.entra_group_id is None] if lookups else []

        raw_people: list[tuple[str, str, AccountStatus, bool, str]] = []
        memberships: dict[str, list[str]] = {g.id: [] for g in groups}
        read_activity: dict[str, dict[str, date]] = {p: {} for p in products}
        async for page in self.atlassian.iter_user_pages():
            stats.user_pages += 1
            page_people: list[Person] = []
            page_members: dict[str, list[str]] = {}
            for user in page:
                roles = set(user.platform_roles or ())
                person = Person(
                    user.account_id,
                    (user.email or "").lower(),
                    _status(user),
                    bool(roles & ADMIN_ROLES),
                    None,
                    user.name or "",
                )
                page_people.append(person)
                raw_people.append(
                    (person.account_id, person.email, person.status, person.is_admin, person.name)
                )
                for group in user.groups or ():
                    memberships.setdefault(group.id, []).append(user.account_id)
                    page_members.setdefault(group.id, []).append(user.account_id)
                for access in user.product_access or ():
                    key = product_key(access.key)
                    stamp = access.last_active_timestamp
                    if stamp is not None:
                        stats.activity_in_read = True
                        if key in read_activity:
                            read_activity[key][user.account_id] = stamp.date()
            if lookups is not None and by_page:
                if stats.activity_in_read:
                    # The read carries activity after all: nobody needs a lookup tonight.
                    await lookups.cancel()
                    by_page = []
                else:
                    try:
                        page_snapshot = Snapshot.build(
                            now,
                            page_people,
                            groups,
                            {g: members for g, members in page_members.items() if g in known},
                        )
                        lookups.ask(sorted(self._lookups_needed(page_snapshot, by_page, today)))
                    except SnapshotError:
                        # A page the snapshot cannot hold, or a policy naming a missing group:
                        # the whole read says which below; no more lookups begin early.
                        by_page = []
            if progress:
                progress("users", len(raw_people))
        stats.users = len(raw_people)
        # Groups seen on users but missing from the groups search: the read is inconsistent.
        for group_id in list(memberships):
            if group_id not in known:
                from shared.errors import IncompleteRead

                raise IncompleteRead(
                    "Atlassian users search",
                    f"it lists group {group_id}, which the groups search did not return",
                )

        by_email = {email: account_id for account_id, email, *_ in raw_people if email}
        known_accounts = {account_id for account_id, *_ in raw_people}
        entra_ids: dict[str, str] = {}
        entra_members: dict[str, frozenset[str]] = {}
        for policy in policies:
            gid = policy.entitlement.entra_group_id
            if gid is None or gid in entra_members:
                continue
            if self.graph is None:
                from shared.settings import MissingSetting

                raise MissingSetting(
                    "ENTRA_CLIENT_ID", f"policy {policy.name} reads entitlement from Entra group {gid}"
                )
            from_delta = await self._entra_from_delta(policy, gid, by_email, known_accounts, stats)
            if from_delta is not None:
                entra_members[gid] = from_delta
                continue
            accounts: set[str] = set()
            for member in await self.graph.transitive_members(gid):
                stats.entra_members += 1
                for address in (member.user_principal_name, member.mail):
                    account_id = by_email.get((address or "").lower())
                    if account_id:
                        accounts.add(account_id)
                        entra_ids[account_id] = member.id
                        break
            entra_members[gid] = frozenset(accounts)
            if self.delta_links is not None:
                # A baseline for tomorrow: from here on the night reads only what changed.
                self.new_delta_links[gid] = (await self.graph.group_delta([gid], None)).delta_link

        people = [
            Person(account_id, email, status, is_admin, entra_ids.get(account_id), name)
            for account_id, email, status, is_admin, name in raw_people
        ]
        snapshot = Snapshot.build(now, people, groups, memberships, entra_members)

        learned = read_activity
        pending: set[str] = set()
        looked_up: set[str] = set()
        if not stats.activity_in_read:
            pending = self._lookups_needed(snapshot, policies, today)
            stats.lookups_needed = len(pending)
            if lookups is not None:
                lookups.ask(sorted(pending))  # those the pages queued already are not asked twice
                await lookups.finish()
                for product, dates in lookups.looked.items():
                    learned.setdefault(product, {}).update(dates)
                looked_up = set(lookups.done)
                pending = set(lookups.failed)

        activity = {
            product: self._activity(snapshot, product, learned.get(product, {}), pending)
            for product in products
        }
        snapshot = Snapshot(
            taken_at=snapshot.taken_at,
            people=snapshot.people,
            groups=snapshot.groups,
            members=snapshot.members,
            entra_members=snapshot.entra_members,
            activity=activity,
        )
        return ReadResult(snapshot, stats, frozenset(pending), learned, frozenset(looked_up))

    async def _entra_from_delta(
        self, policy: Policy, gid: str, by_email: Mapping[str, str], known: set[str], stats: ReadStats
    ) -> frozenset[str] | None:
        """Last night's entitlement plus the delta since, or None to read the whole group.

        Falls back to a full read when there is no stored link, when Graph says to start over
        (https://learn.microsoft.com/graph/delta-query-groups), when a nested group changed
        (delta tracks direct members only), or when the group itself was deleted. A removal
        whose object id maps to no account changes nothing: a missed removal is a cost, a
        wrong one is not an option.
        """
        from shared.errors import DeltaResyncRequired

        link = (self.delta_links or {}).get(gid)
        stored = self.stored.get(product_key(policy.product), {})
        if not link or not stored or self.graph is None:
            return None
        try:
            delta = await self.graph.group_delta([gid], link)
        except DeltaResyncRequired:
            return None
        if delta.nested_changes or gid in delta.deleted_groups:
            return None
        current = {a for a, state in stored.items() if getattr(state, "entitled", False)}
        for object_id in delta.added.get(gid, set()):
            account_id = self.identities.get(object_id)
            if account_id is None:
                user = await self.graph.get_user(object_id)
                for address in (user.user_principal_name, user.mail) if user else ():
                    account_id = by_email.get((address or "").lower())
                    if account_id:
                        break
            if account_id:
                current.add(account_id)
        for object_id in delta.removed.get(gid, set()):
            account_id = self.identities.get(object_id)
            if account_id:
                current.discard(account_id)
        stats.entra_members += len(current)
        stats.entra_from_delta = True
        self.new_delta_links[gid] = delta.delta_link
        return frozenset(current & known)

    def _activity(
        self, snapshot: Snapshot, product: str, learned: Mapping[str, date], unknown: set[str]
    ) -> ProductActivity:
        stored = self.stored.get(product, {})
        last_active: dict[str, date] = {}
        licensed_since: dict[str, date] = {}
        for account_id, state in stored.items():
            if account_id not in snapshot.people:
                continue
            if state.last_active is not None:
                last_active[account_id] = state.last_active
            if state.licensed and state.licensed_since is not None:
                licensed_since[account_id] = state.licensed_since
        for account_id, day in learned.items():
            previous = last_active.get(account_id)
            last_active[account_id] = day if previous is None or day > previous else previous
        return ProductActivity(last_active, frozenset(unknown), licensed_since)

    def _lookups_needed(self, snapshot: Snapshot, policies: list[Policy], today: date) -> set[str]:
        from shared.rules import _Groups, _scope

        needed: set[str] = set()
        for policy in policies:
            groups = _Groups(snapshot, policy)
            ignored, protected = _scope(snapshot, policy)
            candidates = (groups.entitled & groups.licensed) - groups.marked - ignored - protected
            stored = self.stored.get(product_key(policy.product), {})
            for account_id in candidates:
                person = snapshot.people[account_id]
                if needs_lookup(stored.get(account_id), policy, person.domain, today):
                    needed.add(account_id)
        return needed


class _Lookups:
    """Last-active lookups done by a few workers from a queue, while the users read goes on.

    ``ask`` queues people (each once a night); ``finish`` waits for the queue to drain;
    ``cancel`` stops the workers where they are. Pacing is the client's: every lookup goes
    through its ``Pacer`` at the endpoint's rate (shared.http). Keep ``workers`` below the
    client's concurrency, so a page of the users read always finds a free slot.
    """

    def __init__(
        self,
        atlassian: Any,
        products: set[str],
        stats: ReadStats,
        progress: Callable[[str, int], None] | None,
        workers: int,
    ) -> None:
        self.atlassian = atlassian
        self.stats = stats
        self.progress = progress
        self.workers = max(1, workers)
        #: product -> account id -> the day of last use the lookups found
        self.looked: dict[str, dict[str, date]] = {p: {} for p in products}
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self._asked: set[str] = set()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def ask(self, accounts: Iterable[str]) -> None:
        for account_id in accounts:
            if account_id in self._asked:
                continue
            self._asked.add(account_id)
            self._queue.put_nowait(account_id)
            if len(self._tasks) < self.workers:
                self._tasks.append(asyncio.create_task(self._work()))

    async def finish(self) -> None:
        for _ in self._tasks:
            self._queue.put_nowait(None)
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._tasks = []

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        """Look up each queued person; failures become unknown, never 'never active'."""
        from shared.errors import SeatwardenError

        stats = self.stats
        while (account_id := await self._queue.get()) is not None:
            try:
                result = await self.atlassian.last_active_dates(account_id)
            except SeatwardenError:
                self.failed.add(account_id)
                stats.lookups_failed += 1
            else:
                self.done.add(account_id)
                stats.lookups_done += 1
                for key, stamp in result.products.items():
                    key = product_key(key)
                    if key in self.looked and stamp is not None:
                        day = stamp.date() if isinstance(stamp, datetime) else stamp
                        self.looked[key][account_id] = day
            if self.progress:
                self.progress("lookups", stats.lookups_done + stats.lookups_failed)
