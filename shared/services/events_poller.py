"""Poll the org events stream from a stored cursor and feed the webhook's classifier.

For orgs without the audit-log webhook. The stream's cursor can be reused to poll for new
events (WIRE.md §7); the endpoint allows about 10 requests a minute, so one poll reads a
bounded number of pages and leaves the rest for the next minute.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.services.webhooks import BadRequest, classify_audit_event

log = logging.getLogger("seatwarden.events")

CURSOR = "org-events-stream"
MAX_PAGES_PER_POLL = 5


class EventsPoller:
    def __init__(self, storage: Any, atlassian: Any):
        self.storage = storage
        self.atlassian = atlassian

    async def poll(self) -> dict[str, int]:
        cursor = self.storage.cursors.get(CURSOR)
        seen = queued = 0
        for _ in range(MAX_PAGES_PER_POLL):
            events, next_cursor = await self.atlassian.events_stream(cursor=cursor)
            for event in events:
                seen += 1
                try:
                    found = classify_audit_event(event.model_dump(by_alias=True))
                except BadRequest as exc:
                    log.warning("skipped an unreadable org event: %s", exc)
                    continue
                if found and self.storage.deliveries.first_time(found.source, found.delivery_id):
                    self.storage.queues.send("returns", found.to_message())
                    queued += 1
            if next_cursor:
                # Stored after each page: a crash re-reads at most one page, and de-duplication
                # by event id makes that harmless.
                self.storage.cursors.set(CURSOR, next_cursor)
            if not events or next_cursor in (None, cursor):
                break
            cursor = next_cursor
        return {"events": seen, "queued": queued}
