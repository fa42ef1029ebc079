"""What Seatwarden last saw of each person, per product: the `users` table.

PartitionKey is the product key, RowKey the Atlassian account id, so one product's people are
one partition: the nightly read is a single paged query and the nightly write goes in
transactions of 100.

Two writers meet here. The nightly reconcile writes what it saw in bulk; executors and return
events update one person at a time while it runs. Every write is guarded by the row's ETag, so
neither silently overwrites the other: a lost race re-reads and re-applies the change. Dates of
use only move forward (DESIGN.md, "Activity data"): whatever a write carries, it never moves
`last_active`, `last_seen` or `last_lookup` back, because an older date would make a person who
used the product look idle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.store._base import (
    BATCH_LIMIT,
    Operation,
    backoff,
    chunks,
    day_column,
    day_from,
    etag_of,
    key,
    odata_string,
    query_json,
    without_none,
)
from shared.store.errors import StaleWrite, error_code, mapped

#: Transaction errors that mean "the row is not as we last read it": redo that row on its own.
_RACE_CODES = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied"})


@dataclass(slots=True, kw_only=True)
class UserState:
    """One person and one product, as last seen.

    ``entitled``/``licensed``/``marked`` are the memberships seen last; ``last_active`` is the
    latest known day of use; ``licensed_since`` the day the license was first seen (or given
    back), from which a never-active person's idle days count; ``warned_for`` the planned
    revocation day a warning was sent for, so a person is warned once per revocation.
    """

    account_id: str
    product: str
    email: str = ""
    entitled: bool = False
    licensed: bool = False
    marked: bool = False
    last_active: date | None = None
    licensed_since: date | None = None
    marked_at: date | None = None
    warned_for: date | None = None
    last_seen: date
    last_lookup: date | None = None


def _latest(old: date | None, new: date | None) -> date | None:
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)


def moved_forward(current: UserState | None, new: UserState) -> UserState:
    """``new``, except that no date of use or observation is older than in ``current``."""
    if current is None:
        return new
    return replace(
        new,
        last_active=_latest(current.last_active, new.last_active),
        last_seen=_latest(current.last_seen, new.last_seen) or new.last_seen,
        last_lookup=_latest(current.last_lookup, new.last_lookup),
    )


_FIELDS = tuple(f.name for f in fields(UserState))


def _merging(state: UserState, basis: UserState | None) -> Callable[[UserState | None], UserState]:
    """A mutate for `update` that writes ``state`` over a row changed since ``basis`` was read.

    A three-way merge: every field the other writer changed since ``basis`` keeps that
    writer's value (an executor's applied change, a return event's RELICENSE, a warning's
    day), every other field takes ``state``. A row that appeared after the read (no basis)
    was written by someone who saw the person later: it keeps its values but takes the email
    from ``state``. Dates only move forward, from either side.
    """

    def mutate(current: UserState | None) -> UserState:
        if current is None:
            return state
        if basis is None:
            return replace(moved_forward(state, current), email=state.email or current.email)
        theirs = {f: getattr(current, f) for f in _FIELDS if getattr(current, f) != getattr(basis, f)}
        return replace(state, **theirs)

    return mutate


def _to_entity(state: UserState) -> dict[str, Any]:
    return without_none(
        {
            "PartitionKey": key(state.product),
            "RowKey": key(state.account_id),
            "account_id": state.account_id,
            "product": state.product,
            "email": state.email,
            "entitled": state.entitled,
            "licensed": state.licensed,
            "marked": state.marked,
            "last_active": day_column(state.last_active),
            "licensed_since": day_column(state.licensed_since),
            "marked_at": day_column(state.marked_at),
            "warned_for": day_column(state.warned_for),
            "last_seen": day_column(state.last_seen),
            "last_lookup": day_column(state.last_lookup),
        }
    )


def _from_entity(entity: Mapping[str, Any]) -> UserState:
    get = entity.get
    return UserState(
        account_id=str(get("account_id") or entity["RowKey"]),
        product=str(get("product") or entity["PartitionKey"]),
        email=str(get("email") or ""),
        entitled=bool(get("entitled")),
        licensed=bool(get("licensed")),
        marked=bool(get("marked")),
        last_active=day_from(get("last_active")),
        licensed_since=day_from(get("licensed_since")),
        marked_at=day_from(get("marked_at")),
        warned_for=day_from(get("warned_for")),
        last_seen=day_from(get("last_seen")) or date.min,
        last_lookup=day_from(get("last_lookup")),
    )


class UserStateRepo:
    """Read and write user states; every write is guarded by the row's ETag."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        # What this process last read or wrote, per product and account id: the ETag that
        # `upsert_many` writes against and the state it must not move dates back from.
        # A stale entry only costs a retry of that row; it never causes an overwrite.
        # Only single dict operations touch it (atomic in CPython), so threads may share it.
        self._seen: dict[str, dict[str, tuple[str, UserState]]] = {}

    def separate(self) -> UserStateRepo:
        """A repository over the same table with a memory of its own, for the nightly write.

        The process's repository remembers every write, the executors' too: a night writing
        through it would lend itself the ETag of an executor's write made after the night's
        read, and overwrite that write unseen. Through its own repository, the night's bulk
        write rests on the ETags of the night's own read.
        """
        return UserStateRepo(self._table)

    def _remember(self, product: str, account_id: str, etag: str, state: UserState) -> None:
        self._seen.setdefault(product, {})[account_id] = (etag, state)

    def _forget(self, product: str, account_id: str) -> None:
        self._seen.get(product, {}).pop(account_id, None)

    def get(self, product: str, account_id: str) -> tuple[UserState, str] | None:
        """The stored state and its ETag, or None if this person was never stored."""
        with mapped(f"read user state {product}/{account_id}"):
            try:
                entity = self._table.get_entity(key(product), key(account_id))
            except ResourceNotFoundError:
                self._forget(product, account_id)
                return None
        state = _from_entity(entity)
        etag = etag_of(entity.metadata)
        self._remember(product, account_id, etag, state)
        return state, etag

    def all(self, product: str) -> dict[str, UserState]:
        """Every stored state of one product, by account id: one paged partition query.

        Pages of 1,000 (the service's maximum) keep a 100,000-person product to 100 round trips.
        """
        found: dict[str, UserState] = {}
        seen: dict[str, tuple[str, UserState]] = {}
        rows = query_json(
            self._table, f"PartitionKey eq {odata_string(key(product))}", f"read the user states of {product}"
        )
        for row in rows:
            state = _from_entity(row)
            found[state.account_id] = state
            seen[state.account_id] = (str(row["odata.etag"]), state)
        self._seen[product] = seen
        return found

    def update(
        self,
        product: str,
        account_id: str,
        mutate: Callable[[UserState | None], UserState],
        max_tries: int = 5,
    ) -> UserState:
        """Read, apply ``mutate``, write back only if nobody wrote in between; else try again.

        ``mutate`` gets the stored state (None if there is none) and returns the new one; it
        may run more than once, so it must not have side effects. After ``max_tries`` lost
        races it raises `StaleWrite`; the row then holds whatever the winners wrote.
        """
        for attempt in range(max_tries):
            found = self.get(product, account_id)
            current, etag = found if found is not None else (None, None)
            new = mutate(current)
            if new.product != product or new.account_id != account_id:
                raise ValueError(
                    f"mutate returned the state of {new.product}/{new.account_id}, "
                    f"not of {product}/{account_id}"
                )
            new = moved_forward(current, new)
            entity = _to_entity(new)
            with mapped(f"write user state {product}/{account_id}"):
                try:
                    if etag is None:
                        meta = self._table.create_entity(entity)
                    else:
                        meta = self._table.update_entity(
                            entity,
                            mode=UpdateMode.REPLACE,
                            etag=etag,
                            match_condition=MatchConditions.IfNotModified,
                        )
                except (ResourceExistsError, ResourceModifiedError):
                    backoff(attempt)
                    continue
            self._remember(product, account_id, etag_of(meta), new)
            return new
        raise StaleWrite(
            f"user state {product}/{account_id} changed under every one of {max_tries} tries; "
            "nothing was overwritten"
        )

    def upsert_many(self, product: str, states: Iterable[UserState]) -> int:
        """Write many states of one product in transactions of 100: the nightly bulk write.

        A row this repository read (through `all` or `get`) is replaced only if it is
        unchanged since; a row it never read is created. When a transaction fails because one
        row changed or appeared meanwhile, that row is redone alone through `update`, keeping
        what the other writer changed since the read (`_merging`; dates still only move
        forward), and the rest of the transaction is sent again. Returns the number of
        transactions sent.
        """
        by_account: dict[str, UserState] = {}
        for state in states:
            if state.product != product:
                raise ValueError(f"state of {state.account_id} is for {state.product}, not {product}")
            by_account[state.account_id] = state  # one row once per transaction: the last state wins
        pending = list(by_account.values())
        sent = 0
        for batch in chunks(pending, BATCH_LIMIT):
            todo = list(batch)
            while todo:
                planned = [self._operation(s) for s in todo]
                operations = [op for op, _written in planned]
                with mapped(f"write {len(todo)} user states of {product}"):
                    try:
                        results = self._table.submit_transaction(operations)
                    except TableTransactionError as exc:
                        if error_code(exc) not in _RACE_CODES:
                            raise
                        sent += 1
                        index = exc.index if 0 <= exc.index < len(todo) else 0
                        raced = todo.pop(index)
                        basis = self._seen.get(product, {}).get(raced.account_id)
                        self._forget(product, raced.account_id)
                        self.update(product, raced.account_id, _merging(raced, basis[1] if basis else None))
                        continue
                sent += 1
                for (_op, written), meta in zip(planned, results, strict=True):
                    self._remember(product, written.account_id, etag_of(meta), written)
                todo = []
        return sent

    def _operation(self, state: UserState) -> tuple[Operation, UserState]:
        """A guarded transaction operation for ``state``, and the state it writes."""
        known = self._seen.get(state.product, {}).get(state.account_id)
        if known is None:
            return ("create", _to_entity(state)), state
        etag, current = known
        written = moved_forward(current, state)
        options = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
        return ("update", _to_entity(written), options), written
