"""The live state of the simulated org, and every rule about changing it.

Both servers read and change one ``Org``. It keeps the invariants a real tenant keeps:
an Atlassian group synced from Entra mirrors that Entra group (SCIM pushes each Entra
change at once) and refuses edits through the Atlassian API; a product's seat limit caps
the members of the groups that license it. Every mutation appends a ``Change`` (for tests
to compare with Seatwarden's audit trail) and, where Atlassian would, an audit-log
``OrgEvent``; Entra membership changes also feed the log behind Graph's delta query.

All access goes through ``self.lock`` (re-entrant): the HTTP servers are threaded.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import actions
from .clock import Clock
from .model import Change, EntraGroup, EntraMemberChange, Group, OrgEvent, Product, User
from .timeutil import from_epoch

USER_ROLE_SUFFIX = "-user-role"  # entitlement mirror, synced from Entra
ACCESS_SUFFIX = "-users"  # access group: grants the license
MARKER_SUFFIX = "-unlicensed-users"  # license taken for inactivity

# Who did it, as the audit log names the actor (shapes UNCONFIRMED, see actions.py).
VIA_API = "api"  # the org admin API key (Seatwarden)
VIA_SCIM = "scim"  # Entra provisioning mirroring an Entra change
VIA_GRAPH = "graph"  # Microsoft Graph (Seatwarden writing to Entra)
VIA_SANDBOX = "sandbox"  # a test or the sandbox itself playing an admin


class OrgError(Exception):
    """A change the org refuses; the API modules turn each kind into the vendor's error."""


class UnknownUser(OrgError):
    pass


class UnknownGroup(OrgError):
    pass


class UnknownEntraGroup(OrgError):
    pass


class UnknownEntraObject(OrgError):
    pass


class GroupIsSynced(OrgError):
    """The group is managed by the identity provider and read-only in Atlassian."""


class SeatLimitReached(OrgError):
    def __init__(self, product: str, limit: int) -> None:
        super().__init__(f"{product} has no free seat (limit {limit})")
        self.product = product
        self.limit = limit


@dataclass(frozen=True, slots=True)
class OrgIdentity:
    """The ids that name the org, its directory, its site and its Entra tenant."""

    org_id: str
    org_name: str
    directory_id: str
    directory_name: str
    site_id: str  # the site's cloud id, used in product resource ARIs
    site_name: str
    tenant_id: str
    api_key_id: str  # the id the audit log gives the admin API key


class Org:
    """The simulated org. Construct it through ``generator`` or ``orgfile``."""

    def __init__(
        self,
        identity: OrgIdentity,
        products: Sequence[Product],
        users: Iterable[User],
        groups: Iterable[Group],
        entra_groups: Iterable[EntraGroup],
        clock: Clock,
    ) -> None:
        self.lock = threading.RLock()
        self.identity = identity
        self.clock = clock
        self._products = list(products)
        self._product_index = {p.key: i for i, p in enumerate(self._products)}
        # Sorted by accountId once: users search pages by position in this order, so a
        # page never scans the whole org.
        self._users = sorted(users, key=lambda u: u.account_id)
        self._users_by_id: dict[str, User] = {}
        self._users_by_oid: dict[str, User] = {}
        self._users_by_email: dict[str, User] = {}
        for index, user in enumerate(self._users):
            user.index = index
            if len(user.last_active) != len(self._products):
                raise ValueError(f"user {user.account_id}: last_active has wrong length")
            for table, key, label in (
                (self._users_by_id, user.account_id, "accountId"),
                (self._users_by_oid, user.entra_object_id, "Entra object id"),
                (self._users_by_email, user.email.lower(), "email"),
            ):
                if key in table:
                    raise ValueError(f"duplicate {label}: {key}")
                table[key] = user
        self._entra_groups = {g.id: g for g in entra_groups}
        self._groups = {g.id: g for g in groups}
        self._groups_by_name = {g.name.lower(): g for g in self._groups.values()}
        self._mirrors: dict[str, list[Group]] = {}
        self._access_groups: dict[str, list[Group]] = {p.key: [] for p in self._products}
        for group in sorted(self._groups.values(), key=lambda g: g.name):
            self._check_group(group)
        self._changes: list[Change] = []
        self._events: list[OrgEvent] = []
        self._entra_log: list[EntraMemberChange] = []
        self._entra_listeners: list[Callable[[EntraMemberChange], None]] = []
        self._member_cache: dict[tuple[str, ...], tuple[tuple[int, ...], list[int]]] = {}
        self._entra_member_cache: dict[str, tuple[int, list[str]]] = {}
        self._event_namespace = (
            uuid.UUID(identity.org_id)
            if _is_uuid(identity.org_id)
            else uuid.uuid5(uuid.NAMESPACE_URL, identity.org_id)
        )

    def _check_group(self, group: Group) -> None:
        unknown = [a for a in group.members if a not in self._users_by_id]
        if unknown:
            raise ValueError(f"group {group.name}: unknown members {sorted(unknown)[:3]}")
        for key in group.grants:
            if key not in self._product_index:
                raise ValueError(f"group {group.name} grants unknown product {key}")
            self._access_groups[key].append(group)
        if group.synced_from is None:
            return
        source = self._entra_groups.get(group.synced_from)
        if source is None:
            raise ValueError(f"group {group.name} is synced from unknown Entra group")
        mirrored = set()
        for oid in source.members:
            if oid not in self._users_by_oid:
                raise ValueError(f"Entra group {source.display_name}: unknown member {oid}")
            mirrored.add(self._users_by_oid[oid].account_id)
        if group.members and group.members != mirrored:
            raise ValueError(f"synced group {group.name} does not mirror its Entra group")
        group.members = mirrored
        self._mirrors.setdefault(source.id, []).append(group)

    # ---- reading ---------------------------------------------------------------------

    @property
    def org_id(self) -> str:
        return self.identity.org_id

    @property
    def products(self) -> list[Product]:
        return list(self._products)

    def product(self, key: str) -> Product:
        return self._products[self.product_index(key)]

    def product_index(self, key: str) -> int:
        try:
            return self._product_index[key]
        except KeyError:
            raise KeyError(f"unknown product {key!r}") from None

    def resource_id(self, product: str) -> str:
        """The product's ARI on the org's site, as productAccess ``id`` carries it."""
        return f"ari:cloud:{product}::site/{self.identity.site_id}"

    @property
    def users(self) -> list[User]:
        """All people in accountId order (the users search order). Do not mutate."""
        return self._users

    def user(self, account_id: str) -> User:
        user = self._users_by_id.get(account_id)
        if user is None:
            raise UnknownUser(account_id)
        return user

    def find_user(self, account_id: str) -> User | None:
        return self._users_by_id.get(account_id)

    def user_by_object_id(self, object_id: str) -> User | None:
        return self._users_by_oid.get(object_id)

    def user_by_email(self, email: str) -> User | None:
        return self._users_by_email.get(email.lower())

    @property
    def groups(self) -> list[Group]:
        """All Atlassian groups, by name."""
        return sorted(self._groups.values(), key=lambda g: g.name.lower())

    def group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            raise UnknownGroup(group_id)
        return group

    def group_by_name(self, name: str) -> Group:
        group = self._groups_by_name.get(name.lower())
        if group is None:
            raise UnknownGroup(name)
        return group

    def members(self, group_name: str) -> set[str]:
        """A copy of an Atlassian group's member account ids, for assertions."""
        with self.lock:
            return set(self.group_by_name(group_name).members)

    def access_groups(self, product: str) -> list[Group]:
        return list(self._access_groups[product])

    def is_licensed(self, account_id: str, product: str) -> bool:
        with self.lock:
            return any(account_id in g.members for g in self._access_groups[product])

    def seats_used(self, product: str) -> int:
        """Distinct members of the product's access groups."""
        with self.lock:
            groups = self._access_groups[product]
            if len(groups) == 1:
                return len(groups[0].members)
            return len(set().union(*(g.members for g in groups)))

    def set_seat_limit(self, product: str, limit: int | None) -> None:
        """Cap the product's seats; ``None`` lifts the cap."""
        with self.lock:
            self.product(product).seat_limit = limit

    def last_active(self, account_id: str, product: str) -> datetime | None:
        with self.lock:
            stamp = self.user(account_id).last_active[self.product_index(product)]
            return from_epoch(stamp) if stamp else None

    @property
    def entra_groups(self) -> list[EntraGroup]:
        return sorted(self._entra_groups.values(), key=lambda g: g.id)

    def entra_group(self, group_id: str) -> EntraGroup:
        group = self._entra_groups.get(group_id)
        if group is None:
            raise UnknownEntraGroup(group_id)
        return group

    def find_entra_group(self, group_id: str) -> EntraGroup | None:
        return self._entra_groups.get(group_id)

    def entra_group_id(self, product: str) -> str:
        """The id of the Entra entitlement group ``{product}-user-role``."""
        name = f"{product}{USER_ROLE_SUFFIX}"
        for group in self._entra_groups.values():
            if group.display_name == name:
                return group.id
        raise UnknownEntraGroup(name)

    def entra_members(self, group_id: str) -> set[str]:
        with self.lock:
            return set(self.entra_group(group_id).members)

    def mirrors_of(self, entra_group_id: str) -> list[Group]:
        return list(self._mirrors.get(entra_group_id, ()))

    def sorted_member_indices(self, group_ids: Sequence[str]) -> list[int]:
        """User indices (accountId order) of the union of the groups' members; cached.

        Paging through a 80,000-member group must not sort it on every page, so the
        sorted list is kept until one of the groups changes.
        """
        key = tuple(sorted(set(group_ids)))
        groups = [self.group(g) for g in key]
        versions = tuple(g.version for g in groups)
        cached = self._member_cache.get(key)
        if cached is not None and cached[0] == versions:
            return cached[1]
        members: set[str] = set().union(*(g.members for g in groups)) if groups else set()
        indices = sorted(self._users_by_id[a].index for a in members)
        self._member_cache[key] = (versions, indices)
        return indices

    def sorted_entra_members(self, group_id: str) -> list[str]:
        """An Entra group's member object ids, sorted; cached until the group changes."""
        group = self.entra_group(group_id)
        cached = self._entra_member_cache.get(group_id)
        if cached is not None and cached[0] == group.version:
            return cached[1]
        ordered = sorted(group.members)
        self._entra_member_cache[group_id] = (group.version, ordered)
        return ordered

    # ---- Atlassian changes --------------------------------------------------------------

    def add_member(self, group_id: str, account_id: str, *, via: str = VIA_API) -> bool:
        """Add a person to an Atlassian group; False if they were already in it.

        Raises GroupIsSynced for an IdP-synced group (unless SCIM itself is writing),
        SeatLimitReached when the group licenses a product that has no free seat.
        """
        with self.lock:
            group = self.group(group_id)
            user = self.user(account_id)
            if group.synced_from is not None and via != VIA_SCIM:
                raise GroupIsSynced(group.name)
            if account_id in group.members:
                return False
            if via != VIA_SCIM:
                for key in group.grants:
                    self._check_seat(key, account_id)
            self._set_membership(group, user, add=True, via=via)
            return True

    def remove_member(self, group_id: str, account_id: str, *, via: str = VIA_API) -> bool:
        """Remove a person from an Atlassian group; False if they were not in it."""
        with self.lock:
            group = self.group(group_id)
            user = self.user(account_id)
            if group.synced_from is not None and via != VIA_SCIM:
                raise GroupIsSynced(group.name)
            if account_id not in group.members:
                return False
            self._set_membership(group, user, add=False, via=via)
            return True

    def _check_seat(self, product: str, account_id: str) -> None:
        limit = self.product(product).seat_limit
        if limit is None:
            return
        if any(account_id in g.members for g in self._access_groups[product]):
            return  # already holds a seat through another access group
        if self.seats_used(product) >= limit:
            raise SeatLimitReached(product, limit)

    def _set_membership(self, group: Group, user: User, *, add: bool, via: str) -> None:
        if add:
            group.members.add(user.account_id)
        else:
            group.members.discard(user.account_id)
        group.version += 1
        self.record_change(
            "atlassian",
            "membership_added" if add else "membership_removed",
            group_id=group.id,
            group_name=group.name,
            account_id=user.account_id,
            via=via,
        )
        action = actions.USER_ADDED_TO_GROUP if add else actions.USER_REMOVED_FROM_GROUP
        verb = "Added" if add else "Removed"
        preposition = "to" if add else "from"
        self.emit_event(
            action,
            self._actor(via),
            (_user_context(user), _group_context(group)),
            f"{verb} {user.email} {preposition} {group.name}",
        )

    def suspend(self, account_id: str, *, via: str = VIA_API) -> bool:
        """Suspend a person's org access; False if already suspended."""
        return self._set_suspended(account_id, True, via)

    def restore(self, account_id: str, *, via: str = VIA_API) -> bool:
        """Restore a suspended person's access; False if not suspended."""
        return self._set_suspended(account_id, False, via)

    def _set_suspended(self, account_id: str, suspended: bool, via: str) -> bool:
        with self.lock:
            user = self.user(account_id)
            if user.suspended == suspended:
                return False
            user.suspended = suspended
            kind = "user_suspended" if suspended else "user_restored"
            self.record_change("atlassian", kind, account_id=account_id, via=via)
            action = actions.USER_SUSPENDED if suspended else actions.USER_RESTORED
            verb = "Suspended" if suspended else "Restored"
            self.emit_event(
                action, self._actor(via), (_user_context(user),), f"{verb} access for {user.email}"
            )
            return True

    # ---- Entra changes ------------------------------------------------------------------

    def entra_add_member(self, group_id: str, object_id: str, *, via: str = VIA_SANDBOX) -> bool:
        """Add a user to an Entra group and mirror it; False if already a member."""
        return self._set_entra_membership(group_id, object_id, True, via)

    def entra_remove_member(self, group_id: str, object_id: str, *, via: str = VIA_SANDBOX) -> bool:
        """Remove a user from an Entra group and mirror it; False if not a member."""
        return self._set_entra_membership(group_id, object_id, False, via)

    def _set_entra_membership(self, group_id: str, object_id: str, add: bool, via: str) -> bool:
        with self.lock:
            group = self.entra_group(group_id)
            user = self._users_by_oid.get(object_id)
            if user is None:
                raise UnknownEntraObject(object_id)
            if (object_id in group.members) == add:
                return False
            if add:
                group.members.add(object_id)
            else:
                group.members.discard(object_id)
            group.version += 1
            change = EntraMemberChange(len(self._entra_log), group.id, object_id, add)
            self._entra_log.append(change)
            for listener in self._entra_listeners:
                listener(change)
            self.record_change(
                "entra",
                "entra_member_added" if add else "entra_member_removed",
                group_id=group.id,
                group_name=group.display_name,
                object_id=object_id,
                account_id=user.account_id,
                via=via,
            )
            # SCIM provisioning pushes the change into each synced mirror at once.
            for mirror in self._mirrors.get(group.id, ()):
                if (user.account_id in mirror.members) != add:
                    self._set_membership(mirror, user, add=add, via=VIA_SCIM)
            return True

    def entra_delete_user(self, object_id: str, *, via: str = VIA_GRAPH) -> bool:
        """Record the deletion of an Entra user (a member DELETE without ``/$ref``).

        The sandbox disables the user and drops their Entra memberships rather than
        removing the record, so a test can see exactly what the mistake did.
        """
        with self.lock:
            user = self._users_by_oid.get(object_id)
            if user is None:
                raise UnknownEntraObject(object_id)
            user.account_enabled = False
            for group in self.entra_groups:
                if object_id in group.members:
                    self._set_entra_membership(group.id, object_id, False, via)
            self.record_change(
                "entra", "entra_user_deleted", object_id=object_id, account_id=user.account_id, via=via
            )
            return True

    def on_entra_change(self, listener: Callable[[EntraMemberChange], None]) -> None:
        """Call ``listener`` after each Entra membership change, under the org lock: it
        must only hand the change on (to a queue), never block."""
        self._entra_listeners.append(listener)

    @property
    def entra_seq(self) -> int:
        """Position of the next Entra membership change; delta tokens hold one."""
        return len(self._entra_log)

    def entra_changes(self, start: int, stop: int) -> list[EntraMemberChange]:
        with self.lock:
            return self._entra_log[start:stop]

    # ---- activity and audit log -----------------------------------------------------------

    def record_activity(self, user: User, product_index: int, epoch_seconds: int) -> None:
        """Note a use of a product; last-active dates only move forward. Not a change."""
        if epoch_seconds > user.last_active[product_index]:
            user.last_active[product_index] = epoch_seconds

    def record_change(self, system: str, kind: str, **details: Any) -> Change:
        with self.lock:
            change = Change(len(self._changes) + 1, self.clock.now(), system, kind, details)
            self._changes.append(change)
            return change

    def changes(self, since: int = 0) -> list[Change]:
        """Change records with ``seq`` greater than ``since``, oldest first."""
        with self.lock:
            return self._changes[since:]

    def emit_event(
        self,
        action: str,
        actor: dict[str, Any],
        context: tuple[dict[str, Any], ...],
        message: str,
        at: datetime | None = None,
    ) -> OrgEvent:
        """Append an audit-log event. Events stay in time order: the clock never goes back."""
        with self.lock:
            seq = len(self._events) + 1
            moment = at or self.clock.now()
            if self._events and moment < self._events[-1].time:
                moment = self._events[-1].time
            event = OrgEvent(
                seq,
                str(uuid.uuid5(self._event_namespace, f"event-{seq}")),
                moment,
                action,
                actor,
                context,
                message,
            )
            self._events.append(event)
            return event

    def user_event(
        self, account_id: str, action: str, *, product: str | None = None, at: datetime | None = None
    ) -> OrgEvent:
        """An event the person causes themselves: a login or an access request."""
        with self.lock:
            user = self.user(account_id)
            context: tuple[dict[str, Any], ...] = (_user_context(user),)
            if product is not None:
                context += (
                    {
                        "id": self.resource_id(product),
                        "type": "products",
                        "attributes": {"productKey": product},
                    },
                )
            label = actions.EVENT_ACTIONS[action].display_name if action in actions.EVENT_ACTIONS else action
            suffix = f" ({product})" if product else ""
            actor = {
                "id": user.account_id,
                "name": user.name,
                "email": user.email,
                "auth": {"authType": "session"},
            }
            return self.emit_event(action, actor, context, f"{label}: {user.email}{suffix}", at)

    @property
    def events(self) -> list[OrgEvent]:
        """The audit log, oldest first. Do not mutate."""
        return self._events

    def _actor(self, via: str) -> dict[str, Any]:
        if via == VIA_SCIM:
            return {
                "id": "scim-provisioning",
                "name": "Microsoft Entra ID (SCIM)",
                "auth": {"authType": "scim"},
            }
        if via == VIA_API:
            key = self.identity.api_key_id
            return {
                "id": key,
                "name": "Organization API key",
                "auth": {"authType": "api-key", "tokenId": key},
            }
        return {"id": "sandbox-admin", "name": "Org admin (sandbox)", "auth": {"authType": "session"}}


def _user_context(user: User) -> dict[str, Any]:
    return {"id": user.account_id, "type": "users", "attributes": {"name": user.name, "email": user.email}}


def _group_context(group: Group) -> dict[str, Any]:
    return {"id": group.id, "type": "groups", "attributes": {"groupName": group.name}}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
