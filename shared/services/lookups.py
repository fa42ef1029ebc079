"""Last-active lookups as queued batches: the nightly reconcile as a job, not one long call.

Where the org's users read carries no activity, a large org's first night needs one lookup
per candidate, paced to about 200 a minute: hours, far past any single function call. So the
nightly timer reads the org, enqueues the lookups in batches and stops; each batch is a short
queue-triggered invocation that stores what it learned (dates only move forward); the batch
that finds the queue empty claims the night's plan, once, and runs the reconcile again,
which now finds the stored dates fresh and plans. A restart loses nothing: unfinished batches
are still on the queue, and finished ones are in the user state. A lookup that keeps failing
leaves the person unknown for the night (the second pass does not enqueue again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from shared.errors import SeatwardenError
from shared.services.snapshot import product_key

log = logging.getLogger("seatwarden.lookups")

#: People per queue message: one short invocation's worth of lookups at the vendor's pace.
BATCH_SIZE = 50


#: The job's entry in the runs table (policy name), so `runs list` shows lookup nights too.
JOB_POLICY = "lookups"


def lookup_messages(
    job_id: str, day: date, accounts: Iterable[str], products: Iterable[str]
) -> list[dict[str, Any]]:
    ordered = sorted(accounts)
    keys = sorted({product_key(p) for p in products})
    return [
        {
            "type": "lookups",
            "job_id": job_id,
            "day": day.isoformat(),
            "products": keys,
            "accounts": ordered[i : i + BATCH_SIZE],
        }
        for i in range(0, len(ordered), BATCH_SIZE)
    ]


def plan_claim(day: date) -> tuple[str, str]:
    """The delivery id that lets exactly one batch start the night's plan."""
    return "plan", day.isoformat()


class LookupWorker:
    def __init__(self, storage: Any, atlassian: Any, clock: Callable[[], datetime]):
        self.storage = storage
        self.atlassian = atlassian
        self.clock = clock

    async def apply(self, message: dict[str, Any]) -> dict[str, int]:
        """Look up one batch and store what was learned; failures stay unknown."""
        today = self.clock().date()
        products = [str(p) for p in message.get("products") or ()]
        done = failed = 0
        for account_id in message.get("accounts") or ():
            try:
                found = await self.atlassian.last_active_dates(str(account_id))
            except SeatwardenError as exc:
                failed += 1
                log.warning("last-active lookup for %s failed: %s", account_id, exc)
                continue
            done += 1
            by_product = {product_key(k): v for k, v in found.products.items() if v is not None}
            for product in products:
                stamp = by_product.get(product)
                self._store(product, str(account_id), stamp.date() if stamp else None, today)
        return {"looked_up": done, "failed": failed}

    def _store(self, product: str, account_id: str, day: date | None, today: date) -> None:
        existing = self.storage.users.get(product, account_id)
        if existing is None:
            return  # not licensed for this product at the last read: nothing to prove

        def mutate(state: Any) -> Any:
            last = state.last_active
            if day is not None and (last is None or day > last):
                last = day
            return replace(state, last_active=last, last_lookup=today)

        self.storage.users.update(product, account_id, mutate)

    def batch_done(self, message: dict[str, Any], outcome: str = "applied") -> bool:
        """Count this batch against its job; True once, for whoever completes the job.

        The queue's own length cannot tell (it counts messages still being processed, this
        one included), so the job is a run whose outcomes count finished batches. A
        redelivered batch counts once; the plan is claimed once per night. A batch the host
        gave up on counts too, as ``poisoned``: its people are unknown tonight and left
        alone, and the others' plan is not held up by them.
        """
        job_id = str(message.get("job_id") or "")
        batch = f"{job_id}:{(message.get('accounts') or [''])[0]}"
        if job_id and self.storage.deliveries.first_time("lookup-batch", batch):
            job = self.storage.runs.record_outcome(job_id, outcome)
        else:
            job = self.storage.runs.get(job_id) if job_id else None
        if job is None or job.status != "done":
            return False
        source, key = plan_claim(date.fromisoformat(str(message["day"])))
        return bool(self.storage.deliveries.first_time(source, key))
