"""Leases: one writer per product at a time (DESIGN.md, "Safety"), in the `leases` table.

A lease is a row naming its holder and when it expires. Taking one is a create (only one of
two racers can create a row) or, once it has expired, a replace guarded by the ETag read (only
one of two racers can replace the row they both read). Every acquisition gets a fresh token,
so a holder name shared by many processes ("reconcile") never lets one release or renew
another's lease. Expiry is what frees a lease whose holder died: choose a TTL longer than the
work it covers, or renew it while working.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.store._base import Clock, etag_of, key, time_column, time_from, utc_now
from shared.store.errors import LeaseHeld, mapped

_PARTITION = "lease"


@dataclass(frozen=True)
class Lease:
    """A lease held: ``token`` identifies this acquisition, ``etag`` the row as last written."""

    name: str
    holder: str
    expires_at: datetime
    token: str
    etag: str


def _entity(name: str, holder: str, expires_at: datetime, token: str) -> dict[str, Any]:
    return {
        "PartitionKey": _PARTITION,
        "RowKey": key(name),
        "name": name,
        "holder": holder,
        "expires_at": time_column(expires_at),
        "token": token,
    }


def _expiry(entity: TableEntity) -> datetime | None:
    return time_from(entity.get("expires_at"))


class LeaseRepo:
    """Acquire, renew and release named leases."""

    def __init__(self, table: TableClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._clock = clock

    def acquire(self, name: str, holder: str, ttl: timedelta, now: datetime) -> Lease | None:
        """The lease if it was free or had expired at ``now``; None if somebody holds it."""
        token = uuid.uuid4().hex
        expires_at = now + ttl
        wanted = _entity(name, holder, expires_at, token)
        with mapped(f"acquire lease {name}"):
            for _ in range(3):
                try:
                    meta = self._table.create_entity(wanted)
                    return Lease(name, holder, expires_at, token, etag_of(meta))
                except ResourceExistsError:
                    pass
                try:
                    current = self._table.get_entity(_PARTITION, key(name))
                except ResourceNotFoundError:
                    continue  # released in between: try to create it again
                until = _expiry(current)
                if until is not None and until > now:
                    return None
                try:
                    meta = self._table.update_entity(
                        wanted,
                        mode=UpdateMode.REPLACE,
                        etag=etag_of(current.metadata),
                        match_condition=MatchConditions.IfNotModified,
                    )
                except (ResourceModifiedError, ResourceNotFoundError):
                    return None  # another acquirer took it over (or it was just released) first
                return Lease(name, holder, expires_at, token, etag_of(meta))
        return None

    def renew(self, lease: Lease, ttl: timedelta, now: datetime) -> Lease:
        """Extend a lease still held by this acquisition; `LeaseHeld` if it was lost meanwhile."""
        expires_at = now + ttl
        with mapped(f"renew lease {lease.name}"):
            current = self._current(lease)
            if current is None:
                raise self._held_by_other(lease)
            try:
                meta = self._table.update_entity(
                    _entity(lease.name, lease.holder, expires_at, lease.token),
                    mode=UpdateMode.REPLACE,
                    etag=etag_of(current.metadata),
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError) as exc:
                raise self._held_by_other(lease) from exc
        return Lease(lease.name, lease.holder, expires_at, lease.token, etag_of(meta))

    def release(self, lease: Lease) -> bool:
        """Give the lease up if this acquisition still holds it; True if it did."""
        with mapped(f"release lease {lease.name}"):
            current = self._current(lease)
            if current is None:
                return False
            try:
                self._table.delete_entity(
                    _PARTITION,
                    key(lease.name),
                    etag=etag_of(current.metadata),
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return False
        return True

    @contextmanager
    def hold(self, name: str, holder: str, ttl: timedelta) -> Iterator[Lease]:
        """Hold a lease for a block; `LeaseHeld` if somebody else has it. Released on exit."""
        lease = self.acquire(name, holder, ttl, self._clock())
        if lease is None:
            current = self.get(name)
            if current is None:
                raise LeaseHeld(name)
            raise LeaseHeld(name, current.holder, current.expires_at)
        try:
            yield lease
        finally:
            self.release(lease)

    def get(self, name: str) -> Lease | None:
        """The lease row as stored (held or expired), for operators asking who holds what."""
        with mapped(f"read lease {name}"):
            try:
                entity = self._table.get_entity(_PARTITION, key(name))
            except ResourceNotFoundError:
                return None
        return Lease(
            name=str(entity.get("name") or name),
            holder=str(entity.get("holder") or ""),
            expires_at=_expiry(entity) or datetime.min.replace(tzinfo=UTC),
            token=str(entity.get("token") or ""),
            etag=etag_of(entity.metadata),
        )

    def _current(self, lease: Lease) -> TableEntity | None:
        """The row, if it still belongs to this acquisition."""
        try:
            entity = self._table.get_entity(_PARTITION, key(lease.name))
        except ResourceNotFoundError:
            return None
        return entity if entity.get("token") == lease.token else None

    def _held_by_other(self, lease: Lease) -> LeaseHeld:
        other = self.get(lease.name)
        if other is None:
            return LeaseHeld(lease.name)
        return LeaseHeld(lease.name, other.holder, other.expires_at)
