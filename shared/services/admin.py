"""What administrators ask of the system: runs, approvals, IdP CSV exports, the audit trail.

The admin HTTP API (functions/admin.py) and the CLI both call these.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.errors import RemoteError
from shared.services.reconcile import action_message
from shared.store import RunNotFound

#: Entra's bulk-remove template: a version row, then the column header, then one member a row.
#: https://learn.microsoft.com/entra/identity/users/groups-bulk-remove-members
#: https://learn.microsoft.com/entra/identity/users/groups-bulk-import-members ("Version number:
#: the first row that contains the version number must be included in the upload CSV")
ENTRA_CSV_VERSION = "version:v1.0"
ENTRA_CSV_HEADER = "Member object ID or user principal name [memberObjectIdOrUpn] Required"


#: A saved plan older than this is not applied from the CLI: plan again. The executor re-reads
#: each person before acting, but a day-old plan's entitlement may have changed since.
MAX_PLAN_AGE = timedelta(hours=24)


class NotApprovable(ValueError):
    """The run is not in a state that can be approved or applied; the message says why."""


class RunHeld(NotApprovable):
    """The run's revocations exceed the blast radius: it needs an approval first."""


class AdminService:
    def __init__(self, storage: Any, clock: Callable[[], datetime]):
        self.storage = storage
        self.clock = clock

    def run(self, run_id: str) -> Any:
        run = self.storage.runs.get(run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id!r}")
        return run

    def approve(self, run_id: str, approver: str) -> int:
        """Release a held run: enqueue its saved actions and record who approved it."""
        run = self.run(run_id)
        if run.status != "held":
            raise NotApprovable(f"run {run_id} is {run.status}, not held")
        self._not_superseded(run)
        actions = self.storage.results.actions(run_id)
        self.storage.queues.send_many("actions", [action_message(run_id, a) for a in actions])
        self._start_applying(run, approver, len(actions), approved=True)
        return len(actions)

    def _not_superseded(self, run: Any) -> None:
        """A plan with a newer plan of the same policy after it is stale: refuse to release it."""
        newest = self.storage.runs.list(policy=run.policy, limit=1)
        if newest and newest[0].run_id != run.run_id:
            raise NotApprovable(
                f"run {run.run_id} was superseded by run {newest[0].run_id} ({newest[0].status}): "
                f"review and release that one, or plan again"
            )

    def _start_applying(self, run: Any, actor: str, actions: int, *, approved: bool) -> None:
        self.storage.runs.set_status(run.run_id, "applying" if actions else "done")
        self.storage.audit.append(
            actor=actor,
            action="APPROVE_RUN" if approved else "APPLY_RUN",
            product=run.product,
            account_id="",
            run_id=run.run_id,
            action_id="",
            before={"status": run.status},
            after={"status": "applying", "actions": actions},
            why=run.verdict,
        )

    def appliable(self, run_id: str, *, approve: bool = False) -> Any:
        """The run, if its saved plan may be applied now; else `NotApprovable` saying why.

        A dry run (`report`) within the blast radius may be applied once reviewed; a `held`
        run, or a dry run over the blast radius, only with an approval (`approve=True`); an
        `applying` run is resumed (what is already done is not done again).
        """
        run = self.run(run_id)
        if run.status not in ("report", "held", "applying"):
            raise NotApprovable(
                f"run {run_id} is {run.status}: only a dry run, a held run or one being applied can be"
            )
        if run.status != "applying" and (run.status == "held" or run.verdict.get("held")) and not approve:
            raise RunHeld(
                f"run {run_id} is over the blast radius ({run.verdict.get('why', '')}): "
                f"approve it to apply it"
            )
        if run.status != "applying":
            self._not_superseded(run)
        age = self.clock() - run.started_at
        if age > MAX_PLAN_AGE:
            raise NotApprovable(
                f"run {run_id} was planned {age.days} day(s) {age.seconds // 3600} h ago; "
                f"plan again rather than apply a stale plan"
            )
        return run

    async def apply(
        self,
        run_id: str,
        executor: Any,
        actor: str,
        *,
        approve: bool = False,
        concurrency: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Apply a run's saved actions now, through the executor; outcomes counted by kind.

        The executor re-reads each person first and applies each action at most once, so an
        interrupted apply is simply run again: it resumes with the actions not yet finished.
        An action that fails with a vendor error is counted as `error` and the rest go on.
        Calls are paced by the clients, not here.
        """
        run = self.appliable(run_id, approve=approve)
        actions = self.storage.results.actions(run_id, outcomes=("planned", "waiting"))
        if run.status != "applying":
            self._start_applying(run, actor, len(actions), approved=run.status == "held" or approve)
        outcomes: Counter[str] = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(action: Any) -> None:
            async with gate:
                try:
                    outcomes[await executor.apply(action_message(run_id, action))] += 1
                except RemoteError:
                    outcomes["error"] += 1
            if progress:
                progress(sum(outcomes.values()), len(actions))

        await asyncio.gather(*(one(a) for a in actions))
        return dict(outcomes)

    def idp_csv(self, run_id: str) -> dict[str, str]:
        """One CSV per Entra group, for removals an Entra admin must make (`via: csv`)."""
        self.run(run_id)
        by_group: dict[str, list[str]] = {}
        for action in self.storage.results.actions(run_id):
            for op in action.ops:
                if op.via.value == "csv" and op.kind.value == "remove" and op.group_id:
                    by_group.setdefault(op.group_id, []).append(action.facts.email or action.account_id)
        files = {}
        for group_id, members in sorted(by_group.items()):
            buffer = io.StringIO()
            buffer.write(ENTRA_CSV_VERSION + "\r\n")
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow([ENTRA_CSV_HEADER])
            writer.writerows([m] for m in sorted(set(members)))
            files[group_id] = buffer.getvalue()
        return files
