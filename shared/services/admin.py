"""What administrators ask of the system: runs, approvals, IdP CSV exports, the audit trail.

The admin HTTP API (functions/admin.py) and the CLI both call these.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.services.reconcile import action_message
from shared.store import RunNotFound

#: Entra's bulk-remove template: a version row, then the column header, then one member a row.
#: https://learn.microsoft.com/entra/identity/users/groups-bulk-remove-members
#: https://learn.microsoft.com/entra/identity/users/groups-bulk-import-members ("Version number:
#: the first row that contains the version number must be included in the upload CSV")
ENTRA_CSV_VERSION = "version:v1.0"
ENTRA_CSV_HEADER = "Member object ID or user principal name [memberObjectIdOrUpn] Required"


class NotApprovable(ValueError):
    pass


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
        actions = self.storage.results.actions(run_id)
        self.storage.queues.send_many("actions", [action_message(run_id, a) for a in actions])
        self.storage.runs.set_status(run_id, "applying" if actions else "done")
        self.storage.audit.append(
            actor=approver,
            action="APPROVE_RUN",
            product=run.product,
            account_id="",
            run_id=run_id,
            action_id="",
            before={"status": "held"},
            after={"status": "applying", "actions": len(actions)},
            why=run.verdict,
        )
        return len(actions)

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
