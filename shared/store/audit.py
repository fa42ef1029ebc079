"""The audit trail: a hash chain in the `audit` table that any number of writers extend as one.

Every entry records who did what to whom and why (before, after, the facts), its sequence
number, and the hash of the entry before it; its own hash is SHA-256 over a canonical JSON of
all its fields but the hash. Editing, removing or reordering an entry breaks the chain, and
`AuditLog.verify` says where.

Layout of the table (one table, four kinds of row)::

    PartitionKey   RowKey                          what
    "2026-11"      <inverted ms>-<inverted seq>    an entry, newest first within its month
    "seq"          <seq, 12 digits>                the claim of a sequence number (a full copy of the entry)
    "seq"          "action-" <action id>           index: the claim that recorded an action id
    "head"         "head"                          the chain head: last seq, its hash, month, time

How appends stay one chain across processes
-------------------------------------------
An append reads the head (seq N, hash H), builds entry N+1 with ``prev_hash = H``, and
*claims* N+1 by creating the claim row ``("seq", N+1)``, which holds the whole entry, in one
transaction with its action-id index row. Creating a row that exists fails, so exactly one
writer wins each sequence number, and each action id (a writer that finds its action id
recorded appends nothing): there can be no two entries with one seq and no fork, and
claims are contiguous because N+1 can only be claimed after the head reached N. The winner
then writes the entry into its month's partition and moves the head from N to N+1 with
If-Match on the ETag it read. A writer that loses the claim does not wait for the winner: the
claim row has everything, so it writes the winner's entry (if still missing) and moves the head
itself, then tries N+2. Nothing blocks on a slow or dead writer.

Crashes, step by step:

- before the claim: nothing was written; the caller's retry (the queue redelivering its
  message) appends again.
- after the claim, before the entry: the claim holds the entry; the next `append`, `settle`
  or `has_action` writes it and moves the head. Until then `verify` lists it under ``notes``
  as pending, not as a problem, and the head stays at N.
- after the entry, before the head moved: the next append finds N+1 claimed, sees the entry
  in place and moves the head.

So a missing entry (``missing entry seq N``) only means a row was deleted from outside
Seatwarden. Repairing the trail is out of scope: verify reports it, an operator investigates.

What the chain does not prove: anyone with write access to the table can rewrite every entry
from some point on, with fresh hashes, the claims and the head. Anchor the head's hash
somewhere else (a log workspace, a signed export) when that matters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.store._base import (
    Clock,
    backoff,
    canonical_json,
    etag_of,
    from_json,
    inverted_ms,
    json_column,
    key,
    time_column,
    time_from,
    utc_now,
)
from shared.store.errors import StaleWrite, error_code, mapped

#: The `prev_hash` of the first entry.
GENESIS_HASH = "0" * 64

_HEAD = ("head", "head")
_CLAIMS = "seq"
_ACTION_INDEX = "action-"
#: What a caller may give `append`; seq, time and hashes are the log's to set.
_GIVEN = ("actor", "action", "product", "account_id", "run_id", "action_id", "before", "after", "why")


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain. ``before``, ``after`` and ``why`` are JSON values."""

    seq: int
    at: datetime
    actor: str
    action: str
    product: str = ""
    account_id: str = ""
    run_id: str = ""
    action_id: str = ""
    before: Any = None
    after: Any = None
    why: Any = None
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    @property
    def month(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m")

    @property
    def row_key(self) -> str:
        """Inverted time, then inverted seq: newest first within a month, ties by seq."""
        return f"{inverted_ms(self.at)}-{10**12 - self.seq:012d}"

    def hashed_fields(self) -> dict[str, Any]:
        """Every field but the hash, as stored: what the hash is computed over."""
        return {
            "seq": self.seq,
            "at": time_column(self.at),
            "actor": self.actor,
            "action": self.action,
            "product": self.product,
            "account_id": self.account_id,
            "run_id": self.run_id,
            "action_id": self.action_id,
            "before": self.before,
            "after": self.after,
            "why": self.why,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.hashed_fields()).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.hashed_fields(), "hash": self.hash}


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on the whole chain. ``notes`` are not problems (an append in progress)."""

    ok: bool
    entries: int
    problems: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str
    at: datetime | None
    month: str
    first_month: str
    etag: str


def _properties(entry: AuditEntry) -> dict[str, Any]:
    return {
        **entry.hashed_fields(),
        "before": json_column("audit before", entry.before),
        "after": json_column("audit after", entry.after),
        "why": json_column("audit why", entry.why),
        "hash": entry.hash,
    }


def _from_entity(entity: Mapping[str, Any]) -> AuditEntry:
    get = entity.get
    at = time_from(get("at"))
    if at is None:
        raise ValueError(f"audit row {entity.get('PartitionKey')}/{entity.get('RowKey')} has no time")
    return AuditEntry(
        seq=int(get("seq") or 0),
        at=at,
        actor=str(get("actor") or ""),
        action=str(get("action") or ""),
        product=str(get("product") or ""),
        account_id=str(get("account_id") or ""),
        run_id=str(get("run_id") or ""),
        action_id=str(get("action_id") or ""),
        before=from_json(get("before")),
        after=from_json(get("after")),
        why=from_json(get("why")),
        prev_hash=str(get("prev_hash") or ""),
        hash=str(get("hash") or ""),
    )


def _month_before(month: str) -> str:
    year, mon = (int(p) for p in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


class AuditLog:
    """Append to, search and verify the audit trail."""

    def __init__(self, table: TableClient, clock: Clock = utc_now, max_tries: int = 200) -> None:
        self._table = table
        self._clock = clock
        self._max_tries = max_tries

    # -- appending -----------------------------------------------------------------------

    def append(self, fields: Mapping[str, Any] | None = None, /, **more: Any) -> AuditEntry:
        """Add one entry at the end of the chain and return it (with its seq and hash).

        Takes the entry's fields as a mapping, keywords, or both: ``actor`` and ``action`` are
        required; ``product``, ``account_id``, ``run_id``, ``action_id`` are strings;
        ``before``, ``after`` and ``why`` any JSON value of at most 32 K characters each.

        An action id is recorded once: when another writer has already appended an entry with
        this ``action_id`` (two executors holding one redelivered action), nothing is appended
        and that writer's entry is returned.
        """
        given = {**(fields or {}), **more}
        unknown = set(given) - set(_GIVEN)
        if unknown:
            raise TypeError(f"append() got unknown audit fields: {', '.join(sorted(unknown))}")
        if not given.get("actor") or not given.get("action"):
            raise ValueError("an audit entry needs an actor and an action")
        values = {
            "actor": str(given["actor"]),
            "action": str(getattr(given["action"], "value", given["action"])),
            **{k: str(given.get(k) or "") for k in ("product", "account_id", "run_id", "action_id")},
            # Stored as canonical JSON and hashed as read back, so verify recomputes the same bytes.
            **{k: from_json(json_column(f"audit {k}", given.get(k))) for k in ("before", "after", "why")},
        }
        for attempt in range(self._max_tries):
            head = self._head()
            now = self._clock()
            # Times never run backwards along the chain, even across machines whose clocks differ.
            at = max(now, head.at) if head.at else now
            entry = AuditEntry(seq=head.seq + 1, at=at, prev_hash=head.hash, **values)
            entry = replace(entry, hash=entry.compute_hash())
            if self._claim(entry):
                self._complete(entry, head)
                return entry
            recorded = self._recorded(entry.action_id) if entry.action_id else None
            if recorded is not None:
                return recorded
            # Another writer owns seq N+1: finish its append for it, then go for N+2.
            other = self._read_claim(head.seq + 1)
            if other is not None:
                self._complete(other, head)
            if attempt >= 3:
                backoff(attempt - 3)
        raise StaleWrite(f"could not append to the audit trail in {self._max_tries} tries")

    def settle(self) -> None:
        """Complete an append that a writer claimed but did not finish (it may have crashed)."""
        head = self._head()
        pending = self._read_claim(head.seq + 1)
        if pending is not None:
            self._complete(pending, head)

    def _claim(self, entry: AuditEntry) -> bool:
        claim = {
            "PartitionKey": _CLAIMS,
            "RowKey": f"{entry.seq:012d}",
            **_properties(entry),
            "month": entry.month,
            "entry_rk": entry.row_key,
        }
        operations: list[tuple[Any, ...]] = [("create", claim)]
        if entry.action_id:
            index = {
                "PartitionKey": _CLAIMS,
                "RowKey": _ACTION_INDEX + key(entry.action_id),
                "action_id": entry.action_id,
                "seq": entry.seq,
            }
            # Created, not upserted: the claim fails as a whole if this action id is already
            # recorded, so two writers racing with one action cannot both append it.
            operations.append(("create", index))
        with mapped(f"claim audit seq {entry.seq}"):
            try:
                self._table.submit_transaction(operations)
            except TableTransactionError as exc:
                if error_code(exc) == "EntityAlreadyExists":
                    return False
                raise
        return True

    def _recorded(self, action_id: str) -> AuditEntry | None:
        """The entry already recorded for ``action_id`` (its append completed), or None."""
        with mapped(f"look up the audit entry of action {action_id}"):
            try:
                index = self._table.get_entity(_CLAIMS, _ACTION_INDEX + key(action_id))
            except ResourceNotFoundError:
                return None
        self.settle()
        return self._read_claim(int(index["seq"]))

    def _read_claim(self, seq: int) -> AuditEntry | None:
        with mapped(f"read the claim of audit seq {seq}"):
            try:
                return _from_entity(self._table.get_entity(_CLAIMS, f"{seq:012d}"))
            except ResourceNotFoundError:
                return None

    def _complete(self, entry: AuditEntry, head: _Head) -> None:
        """Write a claimed entry to its month (if not there yet) and move the head onto it."""
        with mapped(f"write audit entry seq {entry.seq}"):
            try:
                self._table.create_entity(
                    {"PartitionKey": entry.month, "RowKey": entry.row_key, **_properties(entry)}
                )
            except ResourceExistsError:
                pass  # the claimant, or another helper, wrote it
            if head.seq != entry.seq - 1:
                return
            moved = {
                "PartitionKey": _HEAD[0],
                "RowKey": _HEAD[1],
                "seq": entry.seq,
                "hash": entry.hash,
                "at": time_column(entry.at),
                "month": entry.month,
                "first_month": head.first_month or entry.month,
            }
            try:
                self._table.update_entity(
                    moved,
                    mode=UpdateMode.REPLACE,
                    etag=head.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                pass  # somebody else moved it onto this entry already

    def _read_head(self) -> _Head | None:
        with mapped("read the audit chain head"):
            try:
                entity = self._table.get_entity(*_HEAD)
            except ResourceNotFoundError:
                return None
        return _Head(
            seq=int(entity.get("seq") or 0),
            hash=str(entity.get("hash") or GENESIS_HASH),
            at=time_from(entity.get("at")),
            month=str(entity.get("month") or ""),
            first_month=str(entity.get("first_month") or ""),
            etag=etag_of(entity.metadata),
        )

    def _head(self) -> _Head:
        """The head, created at seq 0 (the genesis) the first time anything is appended."""
        head = self._read_head()
        if head is not None:
            return head
        with mapped("create the audit chain head"):
            try:
                self._table.create_entity(
                    {"PartitionKey": _HEAD[0], "RowKey": _HEAD[1], "seq": 0, "hash": GENESIS_HASH}
                )
            except ResourceExistsError:
                pass
        head = self._read_head()
        if head is None:
            raise StaleWrite("the audit chain head vanished while it was being created")
        return head

    # -- reading -------------------------------------------------------------------------

    def has_action(self, action_id: str) -> bool:
        """Has an entry for this action id been appended (or claimed, and now completed)?"""
        self.settle()
        with mapped(f"look up audit entries of action {action_id}"):
            try:
                self._table.get_entity(_CLAIMS, _ACTION_INDEX + key(action_id))
            except ResourceNotFoundError:
                return False
        return True

    def query(
        self,
        account_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries newest first, filtered; month partitions are read newest first, as needed."""
        head = self._read_head()
        if head is None or head.seq == 0 or not head.month:
            return []
        return list(self._search(head, account_id, action, since, until, limit))

    def _search(
        self,
        head: _Head,
        account_id: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> Iterator[AuditEntry]:
        clauses = ["PartitionKey eq @month", "RowKey lt 'a'"]
        parameters: dict[str, Any] = {}
        if account_id is not None:
            clauses.append("account_id eq @account_id")
            parameters["account_id"] = account_id
        if action is not None:
            clauses.append("action eq @action")
            parameters["action"] = str(getattr(action, "value", action))
        if until is not None:
            clauses.append("RowKey ge @newest")
            parameters["newest"] = inverted_ms(until)
        if since is not None:
            clauses.append("RowKey lt @oldest")
            parameters["oldest"] = f"{int(inverted_ms(since)) + 1:013d}"
        last = head.month
        if until is not None:
            last = min(last, until.astimezone(UTC).strftime("%Y-%m"))
        first = head.first_month or head.month
        if since is not None:
            first = max(first, since.astimezone(UTC).strftime("%Y-%m"))
        found = 0
        month = last
        while month >= first:
            parameters["month"] = month
            with mapped(f"search the audit trail of {month}"):
                for entity in self._table.query_entities(
                    " and ".join(clauses), parameters=dict(parameters), results_per_page=1000
                ):
                    yield _from_entity(entity)
                    found += 1
                    if limit is not None and found >= limit:
                        return
            month = _month_before(month)

    def verify(self) -> VerifyReport:
        """Walk the whole chain by seq: recompute every hash, check every link and the head.

        Reads the head first, so entries appended while verify runs (beyond that head) are
        left out rather than reported.
        """
        head = self._read_head()
        top = head.seq if head else 0
        with mapped("read the audit trail for verification"):
            claims: dict[int, TableEntity] = {
                int(e["RowKey"]): e
                for e in self._table.query_entities(
                    "PartitionKey eq @pk and RowKey lt 'a'", parameters={"pk": _CLAIMS}, results_per_page=1000
                )
            }
            # Month partitions ("2026-11") sort before "head" and "seq"; entry row keys are digits.
            rows = list(
                self._table.query_entities("PartitionKey lt 'a' and RowKey lt 'a'", results_per_page=1000)
            )
        problems: list[str] = []
        notes: list[str] = []
        by_seq: dict[int, list[AuditEntry]] = {}
        for row in rows:
            where = f"{row['PartitionKey']}/{row['RowKey']}"
            try:
                entry = _from_entity(row)
            except (TypeError, ValueError) as exc:  # a tampered time, seq or JSON column
                problems.append(f"entry at {where} (seq {row.get('seq')}) cannot be read: {exc}")
                continue
            if entry.seq > top:
                if entry.seq in claims:
                    continue  # appended after the head was read, or an append in progress
                problems.append(f"entry seq {entry.seq} at {where} lies beyond the chain head (seq {top})")
                continue
            by_seq.setdefault(entry.seq, []).append(entry)
            if entry.compute_hash() != entry.hash:
                problems.append(f"seq {entry.seq}: hash does not match the entry's contents (edited?)")
            if row["PartitionKey"] != entry.month or row["RowKey"] != entry.row_key:
                problems.append(f"seq {entry.seq}: stored at {where}, not where its time and seq put it")
        for seq in sorted(s for s, found in by_seq.items() if len(found) > 1):
            problems.append(f"seq {seq}: {len(by_seq[seq])} entries carry this sequence number")
        newest = max(by_seq, default=0)
        for seq in range(1, top + 1):
            found = by_seq.get(seq)
            if not found:
                if seq > newest:
                    problems.append(
                        f"missing entry seq {seq} (the chain head is at seq {top}: "
                        "the newest entries are gone)"
                    )
                else:
                    problems.append(f"missing entry seq {seq}")
                continue
            entry = found[0]
            if seq == 1:
                if entry.prev_hash != GENESIS_HASH:
                    problems.append("seq 1: prev_hash is not the genesis hash")
            elif seq - 1 in by_seq and entry.prev_hash != by_seq[seq - 1][0].hash:
                problems.append(f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}")
            claim = claims.get(seq)
            if claim is None:
                problems.append(f"seq {seq}: no claim was recorded for it")
            elif claim.get("hash") != entry.hash:
                problems.append(f"seq {seq}: hash differs from the one recorded when it was appended")
        if head is not None and top in by_seq and by_seq[top][0].hash != head.hash:
            problems.append(f"head: its hash does not match entry seq {top}")
        for seq in sorted(s for s in claims if s > top):
            notes.append(
                f"seq {seq} is claimed but the head has not reached it: an append in progress, "
                "or one that crashed (the next append completes it)"
            )
        if head is None and rows:
            problems.append("the chain head is missing but entries exist")
        checked = sum(1 for s in by_seq if s <= top)
        return VerifyReport(ok=not problems, entries=checked, problems=problems, notes=notes)
