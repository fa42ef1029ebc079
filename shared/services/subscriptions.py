"""Keep one Graph change-notification subscription per Entra entitlement group alive.

Group subscriptions live at most 41,760 minutes (just under 29 days) and must be renewed
before they expire (https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime).
The keeper creates what is missing, renews what expires within a day, and on creation takes
a baseline delta link so the first notification reads only what changed after it. Each
subscription it keeps is recorded in the subscriptions table (DESIGN.md, "State"), with the
name of the setting that holds its clientState, never the value: `config check --live`
compares the record with what Graph has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.config import Policy
from shared.services.entra_sync import events_cursor
from shared.store.records import Subscription as Recorded

log = logging.getLogger("seatwarden.subscriptions")

MAX_LIFETIME = timedelta(minutes=41760)
#: Ask for a little less than the maximum, so clock skew never makes Graph refuse it.
REQUESTED_LIFETIME = MAX_LIFETIME - timedelta(hours=1)
RENEW_WITHIN = timedelta(days=1)
#: Where the clientState comes from, recorded beside each subscription instead of the secret.
CLIENT_STATE_SETTING = "GRAPH_CLIENT_STATE"


def notification_urls(public_url: str) -> tuple[str, str]:
    """Where Graph sends change notifications and lifecycle events for a deployment at
    `public_url` (SEATWARDEN_PUBLIC_URL): the graph_webhook functions' routes."""
    base = public_url.rstrip("/")
    return f"{base}/api/webhooks/graph", f"{base}/api/webhooks/graph/lifecycle"


class SubscriptionKeeper:
    def __init__(
        self,
        storage: Any,
        graph: Any,
        clock: Callable[[], datetime],
        policies: Iterable[Policy],
        public_url: str,
        client_state: str,
    ):
        self.storage = storage
        self.graph = graph
        self.clock = clock
        self.policies = list(policies)
        self.public_url = public_url.rstrip("/")
        self.client_state = client_state

    def groups(self) -> list[str]:
        return sorted({p.entitlement.entra_group_id for p in self.policies if p.entitlement.entra_group_id})

    async def keep(self) -> dict[str, list[str]]:
        now = self.clock()
        done: dict[str, list[str]] = {"created": [], "renewed": [], "kept": []}
        existing = {(s.resource or "").lower(): s for s in await self.graph.list_subscriptions()}
        for group_id in self.groups():
            resource = f"groups/{group_id}"
            current = existing.get(resource.lower())
            if current is None:
                if self.storage.cursors.get(events_cursor(group_id)) is None:
                    # What the notifications will be read against (never the night's link).
                    baseline = await self.graph.group_delta([group_id], None)
                    self.storage.cursors.set(events_cursor(group_id), baseline.delta_link)
                notification_url, lifecycle_url = notification_urls(self.public_url)
                created = await self.graph.create_subscription(
                    resource=resource,
                    notification_url=notification_url,
                    lifecycle_url=lifecycle_url,
                    client_state=self.client_state,
                    expires=now + REQUESTED_LIFETIME,
                )
                done["created"].append(created.id)
                self._record(created, resource, group_id, now)
                log.info("created Graph subscription %s for %s", created.id, resource)
            elif current.expiration_date_time is None or current.expiration_date_time - now < RENEW_WITHIN:
                renewed = await self.graph.renew_subscription(current.id, now + REQUESTED_LIFETIME)
                done["renewed"].append(current.id)
                self._record(renewed, resource, group_id, now)
                log.info("renewed Graph subscription %s for %s", current.id, resource)
            else:
                done["kept"].append(current.id)
                self._record(current, resource, group_id, now)
        return done

    def _record(self, subscription: Any, resource: str, group_id: str, now: datetime) -> None:
        """Write down a subscription as Graph last described it (its expiry as asked for
        where Graph left it out)."""
        expires = subscription.expiration_date_time or now + REQUESTED_LIFETIME
        self.storage.subscriptions.upsert(
            Recorded(subscription.id, resource, group_id, expires, CLIENT_STATE_SETTING)
        )
