"""Per-person results of a run: the `results` table, one row per person a run decided about.

PartitionKey is the run id, RowKey the account id: a run's results are one partition, written
in transactions of 100 and read back with one paged query. A row carries the action (its id,
reason, operations and the facts it rested on) and what became of it (``outcome``,
``detail``), so an approver can read a held plan and an auditor can read what a run did.

Operations and facts are JSON columns: a few hundred bytes each, far inside the 64 KiB a
property may hold. `json_column` refuses anything larger rather than let the service do it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.model import Action, Facts, Op, Plan, Reason
from shared.store._base import (
    Operation,
    backoff,
    etag_of,
    from_json,
    json_column,
    key,
    submit_in_batches,
    without_none,
)
from shared.store.errors import StaleWrite, mapped
from shared.store.runs import OUTCOMES


def _row(entity: TableEntity) -> dict[str, Any]:
    get = entity.get
    return {
        "run_id": str(get("run_id") or entity["PartitionKey"]),
        "account_id": str(get("account_id") or entity["RowKey"]),
        "policy": str(get("policy") or ""),
        "product": str(get("product") or ""),
        "action_id": get("action_id") or None,
        "reason": str(get("reason") or ""),
        "ops": from_json(get("ops"), []),
        "facts": from_json(get("facts"), {}),
        "outcome": str(get("outcome") or ""),
        "detail": str(get("detail") or ""),
    }


class ResultRepo:
    """Save a plan's decisions and record what became of each."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def save_plan(self, run_id: str, plan: Plan) -> int:
        """Store every action (``planned``) and every waiting decision (``waiting``) of a plan.

        Rows are upserted, so saving the same plan again (a retried invocation) is harmless.
        A person with both an action and a waiting entry keeps the action, with the reason to
        wait in its detail. Returns the number of rows written.
        """
        rows: dict[str, dict[str, Any]] = {}
        for waiting in plan.waiting:
            rows[waiting.account_id] = {
                "account_id": waiting.account_id,
                "reason": waiting.reason.value,
                "outcome": "waiting",
                "detail": waiting.why,
            }
        for action in plan.actions:
            earlier = rows.get(action.account_id)
            rows[action.account_id] = {
                "account_id": action.account_id,
                "action_id": action.id,
                "reason": action.reason.value,
                "ops": json_column("action ops", [op.to_dict() for op in action.ops]),
                "facts": json_column("action facts", action.facts.to_dict()),
                "outcome": "planned",
                "detail": f"also waiting: {earlier['detail']}" if earlier else "",
            }
        operations: list[Operation] = []
        for account_id in sorted(rows):
            entity = {
                "PartitionKey": key(run_id),
                "RowKey": key(account_id),
                "run_id": run_id,
                "policy": plan.policy,
                "product": plan.product,
                **rows[account_id],
            }
            operations.append(("upsert", without_none(entity), {"mode": UpdateMode.REPLACE}))
        submit_in_batches(self._table, operations, f"save the plan of run {run_id}")
        return len(operations)

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        """Every result row of a run as plain JSON-ready dicts, by account id."""
        with mapped(f"read the results of run {run_id}"):
            return [
                _row(entity)
                for entity in self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": key(run_id)}, results_per_page=1000
                )
            ]

    def get(self, run_id: str, account_id: str) -> dict[str, Any] | None:
        with mapped(f"read the result of {account_id} in run {run_id}"):
            try:
                return _row(self._table.get_entity(key(run_id), key(account_id)))
            except ResourceNotFoundError:
                return None

    def actions(self, run_id: str, outcomes: Collection[str] | None = None) -> list[Action]:
        """The run's actions rebuilt as the rules made them (waiting decisions are not actions).

        With ``outcomes``, only the actions whose recorded outcome is one of them.
        """
        return [
            Action(
                id=str(row["action_id"]),
                policy=row["policy"],
                product=row["product"],
                account_id=row["account_id"],
                reason=Reason(row["reason"]),
                ops=tuple(Op.from_dict(op) for op in row["ops"]),
                facts=Facts.from_dict(row["facts"]),
            )
            for row in self.rows(run_id)
            if row["action_id"] and (outcomes is None or row["outcome"] in outcomes)
        ]

    def set_outcome(self, run_id: str, account_id: str, outcome: str, detail: str = "") -> str | None:
        """Record what became of one person's action; returns the outcome it replaced.

        The previous outcome lets a redelivered action see it was already counted. Two
        executors can hold one action at once (a message redelivered while its first
        invocation still runs), so the write is guarded by the row's ETag: of two writers of
        the same outcome, only one is told it replaced another.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        entity = {
            "PartitionKey": key(run_id),
            "RowKey": key(account_id),
            "run_id": run_id,
            "account_id": account_id,
            "outcome": outcome,
            "detail": detail[:8000],
        }
        what = f"record the outcome of {account_id} in run {run_id}"
        for attempt in range(_OUTCOME_TRIES):
            with mapped(what):
                try:
                    current = self._table.get_entity(key(run_id), key(account_id))
                except ResourceNotFoundError:
                    current = None
                try:
                    if current is None:
                        self._table.create_entity(entity)
                    else:
                        self._table.update_entity(
                            entity,
                            mode=UpdateMode.MERGE,
                            etag=etag_of(current.metadata),
                            match_condition=MatchConditions.IfNotModified,
                        )
                except (ResourceExistsError, ResourceModifiedError):
                    backoff(attempt)
                    continue
            return str(current.get("outcome") or "") if current is not None else None
        raise StaleWrite(f"{what}: the row changed under every one of {_OUTCOME_TRIES} tries")


#: Lost races `set_outcome` retries: one action has at most a few executors at once.
_OUTCOME_TRIES = 10


#: Records per entity: each is ~150 bytes of JSON, well under a property's 64 KiB.
_RECORDS_PER_ROW = 100


class RunRecords:
    """A list of small JSON records kept with a run, 100 to an entity, in a partition of its own.

    Two such lists exist: the outbound calls a run made (already redacted by shared.http), for
    `seatwarden diagnose`, and the people due to lose a license soon (`shared.forecast`), for
    the warnings and the report. Saving the same list again (a retried invocation) is harmless.
    """

    def __init__(self, table: TableClient, kind: str) -> None:
        self._table = table
        self._kind = kind

    def _partition(self, run_id: str) -> str:
        return key(f"{run_id}~{self._kind}")

    def save(self, run_id: str, records: list[dict[str, Any]]) -> int:
        partition = self._partition(run_id)
        operations: list[Operation] = [
            (
                "upsert",
                {
                    "PartitionKey": partition,
                    "RowKey": f"{i // _RECORDS_PER_ROW:08d}",
                    # the column keeps the name it had when only calls were kept
                    "calls": json_column(self._kind, records[i : i + _RECORDS_PER_ROW]),
                },
            )
            for i in range(0, len(records), _RECORDS_PER_ROW)
        ]
        return submit_in_batches(self._table, operations, f"save the {self._kind} of run {run_id}")

    def load(self, run_id: str) -> list[dict[str, Any]]:
        query = f"PartitionKey eq '{self._partition(run_id)}'"
        with mapped(f"read the {self._kind} of run {run_id}"):
            rows = sorted(self._table.query_entities(query), key=lambda e: str(e["RowKey"]))
        records: list[dict[str, Any]] = []
        for row in rows:
            records.extend(from_json(row.get("calls")) or [])
        return records
