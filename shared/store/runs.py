"""Run history: the `runs` table, one row per reconcile of one policy.

PartitionKey is the policy name, RowKey the start time inverted (`10**13 - epoch ms`), so a
policy's runs come back newest first from a plain partition query. The run id is
``f"{policy}.{rowkey}"``: it names the row, so a run is found by id with one point read.

Executors finish a run's actions concurrently and each bumps a counter: every change to a run is
a read-modify-write guarded by the row's ETag and retried when another writer got there first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.store._base import (
    Clock,
    backoff,
    etag_of,
    from_json,
    inverted_ms,
    json_column,
    key,
    time_column,
    time_from,
    utc_now,
    without_none,
)
from shared.store.errors import RunNotFound, StaleWrite, mapped

#: planning → report (report mode) | held (over the blast radius) → approved → applying → done;
#: failed when the run itself broke.
RUN_STATUSES = ("planning", "report", "held", "approved", "applying", "done", "failed")

#: What became of one person's action (the `results` table's `outcome`).
OUTCOMES = ("planned", "applied", "unchanged", "failed", "poisoned", "waiting", "skipped")

#: Outcomes that have a counter of their own on the run.
_COUNTER_OF = {"applied": "actions_applied", "failed": "actions_failed", "poisoned": "actions_poisoned"}

_COUNTERS = (
    "licensed_before",
    "licensed_after",
    "actions_total",
    "actions_applied",
    "actions_failed",
    "actions_poisoned",
)


@dataclass(frozen=True, kw_only=True)
class Run:
    """One reconcile of one policy: what it found, what it decided, how far applying got.

    ``counts`` is planned actions per reason; ``outcomes`` counts what executors reported per
    outcome (every outcome, including ``unchanged``, ``skipped`` and ``waiting``), so a run
    knows when all its actions are accounted for. ``etag`` is the row's, for `RunRepo.save`.
    """

    run_id: str
    policy: str
    product: str
    mode: str
    status: str = "planning"
    started_at: datetime
    finished_at: datetime | None = None
    counts: dict[str, int] = dataclass_field(default_factory=dict)
    verdict: dict[str, Any] = dataclass_field(default_factory=dict)
    licensed_before: int = 0
    licensed_after: int = 0
    actions_total: int = 0
    actions_applied: int = 0
    actions_failed: int = 0
    actions_poisoned: int = 0
    outcomes: dict[str, int] = dataclass_field(default_factory=dict)
    error: str = ""
    etag: str | None = dataclass_field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready values (times as ISO strings), for the CLI and the admin API."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "etag"}
        out["started_at"] = time_column(self.started_at)
        out["finished_at"] = time_column(self.finished_at)
        return out


#: Fields `set_status` may change; the identity of a run never changes.
_SETTABLE = frozenset(f.name for f in fields(Run)) - {"run_id", "policy", "product", "started_at", "etag"}


def split_run_id(run_id: str) -> tuple[str, str] | None:
    """(policy, row key) of a run id, or None if it cannot be one."""
    policy, dot, row = run_id.rpartition(".")
    if not dot or not policy or len(row) != 13 or not row.isdigit():
        return None
    return policy, row


def _to_entity(run: Run) -> dict[str, Any]:
    parts = split_run_id(run.run_id)
    if parts is None:
        raise ValueError(f"not a run id: {run.run_id!r}")
    return without_none(
        {
            "PartitionKey": key(parts[0]),
            "RowKey": parts[1],
            "run_id": run.run_id,
            "policy": run.policy,
            "product": run.product,
            "mode": run.mode,
            "status": run.status,
            "started_at": time_column(run.started_at),
            "finished_at": time_column(run.finished_at),
            "counts": json_column("run counts", run.counts),
            "verdict": json_column("run verdict", run.verdict),
            "outcomes": json_column("run outcomes", run.outcomes),
            "licensed_before": run.licensed_before,
            "licensed_after": run.licensed_after,
            "actions_total": run.actions_total,
            "actions_applied": run.actions_applied,
            "actions_failed": run.actions_failed,
            "actions_poisoned": run.actions_poisoned,
            "error": run.error[:8000],
        }
    )


def _from_entity(entity: TableEntity) -> Run:
    get = entity.get
    started = time_from(get("started_at"))
    if started is None:
        raise ValueError(f"run row {entity.get('run_id')} has no start time")
    return Run(
        run_id=str(get("run_id")),
        policy=str(get("policy")),
        product=str(get("product")),
        mode=str(get("mode")),
        status=str(get("status")),
        started_at=started,
        finished_at=time_from(get("finished_at")),
        counts=from_json(get("counts"), {}),
        verdict=from_json(get("verdict"), {}),
        outcomes=from_json(get("outcomes"), {}),
        licensed_before=int(get("licensed_before") or 0),
        licensed_after=int(get("licensed_after") or 0),
        actions_total=int(get("actions_total") or 0),
        actions_applied=int(get("actions_applied") or 0),
        actions_failed=int(get("actions_failed") or 0),
        actions_poisoned=int(get("actions_poisoned") or 0),
        error=str(get("error") or ""),
        etag=etag_of(entity.metadata),
    )


class RunRepo:
    """Create, find, list and change runs; changes are ETag-guarded and retried."""

    def __init__(self, table: TableClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._clock = clock

    def create(self, policy: str, product: str, mode: str, started_at: datetime) -> Run:
        """A new run in status ``planning``.

        Two runs of one policy started in the same millisecond would share a row key; the
        later one is stamped a millisecond later instead, so neither is lost.
        """
        for shift in range(1000):
            stamp = started_at + timedelta(milliseconds=shift)
            run = Run(
                run_id=f"{policy}.{inverted_ms(stamp)}",
                policy=policy,
                product=product,
                mode=mode,
                started_at=started_at,
            )
            with mapped(f"create run for policy {policy}"):
                try:
                    meta = self._table.create_entity(_to_entity(run))
                except ResourceExistsError:
                    continue
            return replace(run, etag=etag_of(meta))
        raise StaleWrite(f"could not find a free run id for policy {policy} near {started_at.isoformat()}")

    def get(self, run_id: str) -> Run | None:
        parts = split_run_id(run_id)
        if parts is None:
            return None
        with mapped(f"read run {run_id}"):
            try:
                return _from_entity(self._table.get_entity(key(parts[0]), parts[1]))
            except ResourceNotFoundError:
                return None

    def save(self, run: Run) -> Run:
        """Write ``run`` back if nobody changed it since it was read; else `StaleWrite`."""
        if run.etag is None:
            raise ValueError("save() needs a run read from the store (it carries the row's ETag)")
        with mapped(f"save run {run.run_id}"):
            try:
                meta = self._table.update_entity(
                    _to_entity(run),
                    mode=UpdateMode.REPLACE,
                    etag=run.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError as exc:
                raise StaleWrite(f"run {run.run_id} was changed by someone else since it was read") from exc
        return replace(run, etag=etag_of(meta))

    def list(self, policy: str | None = None, limit: int = 20) -> list[Run]:
        """The newest runs, of one policy or of all.

        One policy is one partition, already newest first: a single page. Across policies the
        whole (small: a few rows a night per policy) table is read and sorted.
        """
        if limit <= 0:
            return []
        with mapped("list runs"):
            if policy is not None:
                pages = self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": key(policy)}, results_per_page=min(limit, 1000)
                )
                runs = []
                for entity in pages:
                    runs.append(_from_entity(entity))
                    if len(runs) >= limit:
                        break
                return runs
            everything = [_from_entity(e) for e in self._table.list_entities(results_per_page=1000)]
        everything.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
        return everything[:limit]

    def set_status(self, run_id: str, status: str, **changes: Any) -> Run:
        """Move a run to ``status`` and set other fields with it (counts, verdict, finished_at …)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; one of {', '.join(RUN_STATUSES)}")
        unknown = set(changes) - _SETTABLE
        if unknown:
            raise TypeError(f"set_status() cannot set {', '.join(sorted(unknown))}")
        return self._modify(run_id, lambda run: replace(run, status=status, **changes))

    def increment(self, run_id: str, field: str, by: int = 1) -> Run:
        """Add ``by`` to one of the run's counters, safely against concurrent executors."""
        if field not in _COUNTERS:
            raise ValueError(f"{field!r} is not a run counter; one of {', '.join(_COUNTERS)}")
        return self._modify(run_id, lambda run: replace(run, **{field: getattr(run, field) + by}))

    def record_outcome(self, run_id: str, outcome: str) -> Run:
        """Count one action's outcome; the last one of an ``applying`` run finishes it (``done``).

        Executors call this once per action they finish. It counts, it does not deduplicate:
        a caller that may report one action twice checks `ResultRepo.set_outcome`'s return first.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")

        def count(run: Run) -> Run:
            outcomes = dict(run.outcomes)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            changed = replace(run, outcomes=outcomes)
            counter = _COUNTER_OF.get(outcome)
            if counter:
                changed = replace(changed, **{counter: getattr(run, counter) + 1})
            finished = sum(v for k, v in outcomes.items() if k != "planned")
            if changed.status == "applying" and finished >= changed.actions_total:
                changed = replace(changed, status="done", finished_at=self._clock())
            return changed

        return self._modify(run_id, count)

    def _modify(self, run_id: str, change: Callable[[Run], Run], max_tries: int = 20) -> Run:
        for attempt in range(max_tries):
            run = self.get(run_id)
            if run is None:
                raise RunNotFound(f"no run {run_id!r}")
            try:
                return self.save(change(run))
            except StaleWrite:
                backoff(attempt)
        raise StaleWrite(
            f"run {run_id} changed under every one of {max_tries} tries; nothing was overwritten"
        )
