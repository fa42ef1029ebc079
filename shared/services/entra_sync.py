"""Entra change notifications, turned into license changes within seconds.

A notification only says "this group changed". The delta query on the entitlement group,
from the stored delta link, says who joined and who left
(https://learn.microsoft.com/graph/delta-query-groups); each Entra object id maps to an
Atlassian account through the identities the nightly read recorded; the ordinary rules then
decide (EventService.entitlement_changed). A `reauthorizationRequired` lifecycle event leads
to a reauthorization (https://learn.microsoft.com/graph/change-notifications-lifecycle-events).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from shared.config import Policy
from shared.errors import DeltaResyncRequired
from shared.services.returns import EventService

log = logging.getLogger("seatwarden.entra")


def delta_cursor(group_id: str) -> str:
    """The nightly read's delta link: where the entitlement written to user state stands.

    Only the night moves it, and only once that night's state is written: the night reads
    last night's entitlement from state plus the delta since this link, so a link that moved
    past changes the state never took in would make those people "not entitled".
    """
    return f"delta-{group_id}"


def events_cursor(group_id: str) -> str:
    """The change notifications' own delta link, so a notification reads only what is new.

    Started from the night's link (or the subscription keeper's baseline); it never moves
    the night's.
    """
    return f"delta-events-{group_id}"


class EntraSync:
    def __init__(
        self, storage: Any, atlassian: Any, graph: Any | None, clock: Any, policies: Iterable[Policy]
    ):
        self.storage = storage
        self.atlassian = atlassian
        self.graph = graph
        self.policies = list(policies)
        self.events = EventService(storage, atlassian, graph, clock, self.policies)

    async def handle(self, message: Mapping[str, Any]) -> dict[str, Any]:
        if self.graph is None:
            return {"ignored": "Graph is not configured"}
        if message.get("type") == "lifecycle":
            return await self._lifecycle(message)
        group_id = message.get("group_id")
        results: dict[str, Any] = {}
        for policy in self.policies:
            gid = policy.entitlement.entra_group_id
            if gid and (group_id is None or gid == group_id):
                results[policy.name] = await self.sync_group(policy, gid)
        return results

    async def _lifecycle(self, message: Mapping[str, Any]) -> dict[str, Any]:
        event = message.get("lifecycle_event")
        subscription_id = str(message.get("subscription_id") or "")
        if event == "reauthorizationRequired" and subscription_id:
            assert self.graph is not None
            await self.graph.reauthorize_subscription(subscription_id)
            log.info("reauthorized Graph subscription %s", subscription_id)
            return {"reauthorized": subscription_id}
        log.warning("Graph lifecycle event %s for subscription %s: nothing to do", event, subscription_id)
        return {"ignored": event}

    async def _match(self, object_id: str) -> str | None:
        """A member not seen at the last nightly read: match them by email, as the night does."""
        assert self.graph is not None
        user = await self.graph.get_user(object_id)
        if user is None:
            return None
        addresses = [user.user_principal_name or "", user.mail or ""]
        account_id = await self.events.reader.account_by_email(addresses)
        if account_id is not None:
            self.storage.identities.record({object_id: account_id}, known={})
        return account_id

    async def sync_group(self, policy: Policy, group_id: str) -> dict[str, Any]:
        """Apply what changed in one entitlement group since the stored delta link."""
        assert self.graph is not None
        link = self.storage.cursors.get(events_cursor(group_id)) or self.storage.cursors.get(
            delta_cursor(group_id)
        )
        try:
            delta = await self.graph.group_delta([group_id], link)
        except DeltaResyncRequired:
            log.warning("delta link for %s expired; reading the group afresh", group_id)
            delta = await self.graph.group_delta([group_id], None)
        changes: dict[str, bool] = {}
        unknown = 0
        for object_id in delta.added.get(group_id, set()):
            account_id = self.storage.identities.account_for(object_id) or await self._match(object_id)
            if account_id is None:
                unknown += 1
                continue
            changes[account_id] = True
        for object_id in delta.removed.get(group_id, set()):
            account_id = self.storage.identities.account_for(object_id)
            if account_id is not None:
                changes[account_id] = False
        # Drop what the stored state already agrees with: a first (full) delta round repeats
        # every member, and replays are allowed.
        product = policy.product
        for account_id in list(changes):
            stored = self.storage.users.get(product, account_id)
            if stored is not None and stored[0].entitled == changes[account_id]:
                del changes[account_id]
        outcomes = await self.events.entitlement_changed(policy, changes)
        # Record the new entitlement even where no action followed (someone added who was
        # already licensed), so the next notification compares against the truth.
        for account_id, joined in changes.items():
            if self.storage.users.get(product, account_id) is not None:
                self.storage.users.update(
                    product, account_id, lambda state, joined=joined: replace(state, entitled=joined)
                )
        # Only now, with the changes applied, is the new link stored: a failure above means
        # the next notification reads the same changes again (the rules make that harmless).
        self.storage.cursors.set(events_cursor(group_id), delta.delta_link)
        if unknown:
            log.info(
                "%d new Entra member(s) of %s have no Atlassian account yet; the nightly run "
                "will license them once SCIM has created them",
                unknown,
                group_id,
            )
        return {"changes": len(changes), "unknown": unknown, "outcomes": [o.to_dict() for o in outcomes]}
