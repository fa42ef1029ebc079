"""Small tables: delivery de-duplication, cursors, and Graph subscription records.

- `deliveries`: PartitionKey source, RowKey delivery id. Webhooks and queues deliver at least
  once; the first `first_time` for an id creates its row and every later one finds it. The
  executor records applied action ids here too (source ``"action"``). Table Storage has no
  expiry: rows stay until deleted, which costs little (tens of bytes each).
- `cursors`: where a reader left off: Graph delta links, event-stream cursors.
- `subscriptions`: the Graph change-notification subscriptions Seatwarden keeps alive. The
  ``clientState`` secret is not stored, only a reference to where it is (a Key Vault secret
  name or app setting), so a reader of this table learns nothing that forges a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.store._base import Clock, key, odata_string, submit_in_batches, time_column, time_from, utc_now
from shared.store.errors import EntityTooLarge, mapped


class DeliveryRepo:
    """Has this delivery (or action) been seen before?"""

    def __init__(self, table: TableClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._clock = clock

    def first_time(self, source: str, delivery_id: str) -> bool:
        """True exactly once per (source, delivery id), however many processes ask at once."""
        entity = {
            "PartitionKey": key(source),
            "RowKey": key(delivery_id),
            "source": source,
            "delivery_id": delivery_id[:4000],
            "first_seen": time_column(self._clock()),
        }
        with mapped(f"record delivery {source}/{delivery_id}"):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def seen(self, source: str, delivery_id: str) -> bool:
        """Has `first_time` been called for this delivery? (A read; records nothing.)"""
        with mapped(f"look up delivery {source}/{delivery_id}"):
            try:
                self._table.get_entity(key(source), key(delivery_id))
            except ResourceNotFoundError:
                return False
        return True

    def forget(self, source: str, delivery_id: str) -> None:
        """Undo a `first_time`, so the next one is first again: only for work known not done."""
        with mapped(f"forget delivery {source}/{delivery_id}"):
            try:
                self._table.delete_entity(key(source), key(delivery_id))
            except ResourceNotFoundError:
                pass

    def ids(self, source: str) -> list[str]:
        """Every delivery id recorded for ``source`` (one partition query), in no particular order."""
        query = f"PartitionKey eq {odata_string(key(source))}"
        with mapped(f"list deliveries of {source}"):
            return [
                str(e.get("delivery_id") or e["RowKey"])
                for e in self._table.query_entities(query, select=["RowKey", "delivery_id"])
            ]


_CURSOR_PARTITION = "cursor"
#: A delta link is a URL of a few hundred characters; a property holds 32 K.
_MAX_CURSOR = 32_000


class CursorRepo:
    """Named positions in remote streams: last writer wins (one reader per stream)."""

    def __init__(self, table: TableClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._clock = clock

    def get(self, name: str) -> str | None:
        with mapped(f"read cursor {name}"):
            try:
                entity = self._table.get_entity(_CURSOR_PARTITION, key(name))
            except ResourceNotFoundError:
                return None
        value = entity.get("value")
        return str(value) if value is not None else None

    def set(self, name: str, value: str) -> None:
        if len(value) > _MAX_CURSOR:
            raise EntityTooLarge(f"cursor {name} is {len(value)} characters; at most {_MAX_CURSOR} fit")
        entity = {
            "PartitionKey": _CURSOR_PARTITION,
            "RowKey": key(name),
            "name": name,
            "value": value,
            "updated_at": time_column(self._clock()),
        }
        with mapped(f"write cursor {name}"):
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def delete(self, name: str) -> None:
        """Forget a cursor (a delta link Graph no longer accepts: start over)."""
        with mapped(f"delete cursor {name}"):
            self._table.delete_entity(_CURSOR_PARTITION, key(name))


@dataclass(frozen=True)
class Subscription:
    """A Graph change-notification subscription, as created (ids and times are Graph's)."""

    id: str
    resource: str
    group_id: str
    expires_at: datetime
    client_state_ref: str


_SUBSCRIPTION_PARTITION = "graph"


def _subscription(entity: TableEntity) -> Subscription:
    expires = time_from(entity.get("expires_at"))
    if expires is None:
        raise ValueError(f"subscription row {entity.get('id')} has no expiry")
    return Subscription(
        id=str(entity.get("id")),
        resource=str(entity.get("resource") or ""),
        group_id=str(entity.get("group_id") or ""),
        expires_at=expires,
        client_state_ref=str(entity.get("client_state_ref") or ""),
    )


class SubscriptionRepo:
    """The Graph subscriptions the keeper creates and renews."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def upsert(self, subscription: Subscription) -> None:
        entity = {
            "PartitionKey": _SUBSCRIPTION_PARTITION,
            "RowKey": key(subscription.id),
            "id": subscription.id,
            "resource": subscription.resource,
            "group_id": subscription.group_id,
            "expires_at": time_column(subscription.expires_at),
            "client_state_ref": subscription.client_state_ref,
        }
        with mapped(f"write subscription {subscription.id}"):
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def get(self, subscription_id: str) -> Subscription | None:
        with mapped(f"read subscription {subscription_id}"):
            try:
                return _subscription(self._table.get_entity(_SUBSCRIPTION_PARTITION, key(subscription_id)))
            except ResourceNotFoundError:
                return None

    def list(self) -> list[Subscription]:
        """All subscriptions, soonest to expire first."""
        with mapped("list subscriptions"):
            found = [
                _subscription(e)
                for e in self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": _SUBSCRIPTION_PARTITION}
                )
            ]
        return sorted(found, key=lambda s: (s.expires_at, s.id))

    def delete(self, subscription_id: str) -> None:
        with mapped(f"delete subscription {subscription_id}"):
            self._table.delete_entity(_SUBSCRIPTION_PARTITION, key(subscription_id))


_IDENTITY_PARTITION = "identity-entra"


class IdentityRepo:
    """Entra object id -> Atlassian account id, as the nightly read matched them by email.

    An Entra change notification names only object ids; this is how the webhook path finds
    the account without reading the whole group. Kept in the cursors table under its own
    partition, written in transactions of 100, only where something changed.
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def account_for(self, object_id: str) -> str | None:
        with mapped(f"look up identity {object_id}"):
            try:
                entity = self._table.get_entity(_IDENTITY_PARTITION, key(object_id))
            except ResourceNotFoundError:
                return None
        return str(entity["account_id"])

    def all(self) -> dict[str, str]:
        query = f"PartitionKey eq {odata_string(_IDENTITY_PARTITION)}"
        with mapped("read identities"):
            return {
                str(e["object_id"]): str(e["account_id"])
                for e in self._table.query_entities(query, select=["object_id", "account_id"])
            }

    def record(self, pairs: dict[str, str], known: dict[str, str] | None = None) -> int:
        """Store the pairs that differ from `known` (read it with `all()`); returns rows written."""
        known = self.all() if known is None else known
        changed = [(oid, aid) for oid, aid in sorted(pairs.items()) if known.get(oid) != aid]
        operations = [
            (
                "upsert",
                {
                    "PartitionKey": _IDENTITY_PARTITION,
                    "RowKey": key(oid),
                    "object_id": oid,
                    "account_id": aid,
                },
            )
            for oid, aid in changed
        ]
        submit_in_batches(self._table, operations, "record identities")
        return len(changed)
