"""The org audit log over the Organizations API: the events stream, one event, and the
list of action keys (WIRE.md §7;
https://developer.atlassian.com/cloud/admin/organization/rest/api-group-events/).

``render_event`` is also what the audit-log webhook carries (``runtime.send_audit_webhook``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .actions import EVENT_ACTIONS
from .atlassian_common import READ_EVENTS, V1, Guard, atlassian_error, parse_limit
from .cursor import InvalidCursor, decode_cursor, encode_cursor
from .model import OrgEvent
from .org import Org
from .ratelimit import EVENTS
from .routing import ApiRequest, ApiResponse, Router
from .timeutil import epoch_ms, iso_ms

EVENTS_DEFAULT_LIMIT = 200  # WIRE.md §7 (go-atlassian)
EVENTS_MAX_LIMIT = 500
# Documentation addresses only (TEST-NET-3), for the events' location block.
EVENT_LOCATION = {
    "ip": "203.0.113.10",
    "geo": "52.37,4.90",
    "countryName": "Netherlands",
    "regionName": "North Holland",
    "city": "Amsterdam",
}


def render_event(org: Org, event: OrgEvent, base_url: str) -> dict[str, Any]:
    """An audit-log event as the events API and the audit-log webhook carry it (WIRE.md §7)."""
    root = f"{base_url}/admin/v1/orgs/{org.org_id}"
    actor = dict(event.actor)
    if actor.get("auth", {}).get("authType") == "session":
        actor["links"] = {
            "self": f"{root}/users/{actor['id']}",
            "alt": f"https://{org.identity.site_name}.atlassian.net/people/{actor['id']}",
        }
    context = []
    for item in event.context:
        kind = item["type"]
        link = f"{root}/{kind}/{item['id']}" if kind in ("users", "groups") else None
        context.append({**item, "links": {"self": link} if link else {}})
    site = org.identity
    return {
        "id": event.id,
        "type": "events",
        "attributes": {
            "time": iso_ms(event.time),
            "processedAt": iso_ms(event.time),
            "action": event.action,
            "actor": actor,
            "context": context,
            "container": [
                {
                    "id": site.site_id,
                    "type": "sites",
                    "attributes": {
                        "siteName": site.site_name,
                        "siteHostName": f"{site.site_name}.atlassian.net",
                    },
                }
            ],
            "location": dict(EVENT_LOCATION),
        },
        "links": {"self": f"{root}/events/{event.id}"},
        "message": {"content": event.message, "format": "simple"},
    }


class AtlassianEvents:
    def __init__(self, org: Org) -> None:
        self._org = org

    def register(self, router: Router, guard: Guard) -> None:
        router.add("GET", V1 + "/events-stream", EVENTS, guard(self.events_stream, READ_EVENTS))
        router.add("GET", V1 + "/events/{event_id}", EVENTS, guard(self.get_event, READ_EVENTS))
        router.add("GET", V1 + "/event-actions", EVENTS, guard(self.event_actions, READ_EVENTS))

    # GET /v1/orgs/{orgId}/events-stream (WIRE.md §7): cursor, from/to in epoch ms,
    # limit (default 200, max 500). meta.next is always a cursor, so a poller keeps it
    # and asks again later for what happened since; an empty page means "nothing yet".
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-events/
    def events_stream(self, req: ApiRequest) -> ApiResponse:
        limit = parse_limit(req.param("limit"), EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT)
        if isinstance(limit, ApiResponse):
            return limit
        bounds: dict[str, int | None] = {}
        for name in ("from", "to"):
            text = req.param(name)
            if text is not None and not text.lstrip("-").isdigit():
                return atlassian_error(
                    400, "ADMIN-400-3", "Invalid time", f"{name} must be epoch milliseconds."
                )
            bounds[name] = int(text) if text is not None else None
        after: int | None = None
        if req.param("cursor"):
            try:
                after = int(decode_cursor("events", req.param("cursor") or "")["after"])
            except (InvalidCursor, KeyError, ValueError):
                return atlassian_error(
                    400, "ADMIN-400-1", "Invalid cursor", "The cursor is not valid for this request."
                )
        with self._org.lock:
            events = self._org.events
            start = after if after is not None else _first_at_or_after(events, bounds["from"])
            page: list[OrgEvent] = []
            position = start
            for event in events[start:]:
                stamp = epoch_ms(event.time)
                if bounds["to"] is not None and stamp > bounds["to"]:
                    break
                position = event.seq
                if bounds["from"] is not None and stamp < bounds["from"]:
                    continue
                page.append(event)
                if len(page) == limit:
                    break
            data = [render_event(self._org, e, req.base_url) for e in page]
        next_cursor = encode_cursor("events", after=position)
        query = {"cursor": next_cursor, "limit": str(limit)}
        if bounds["to"] is not None:
            query["to"] = str(bounds["to"])
        return ApiResponse.json(
            200,
            {
                "data": data,
                "meta": {"next": next_cursor, "prev": None, "page_size": limit},
                "links": {
                    "next": f"{req.base_url}/admin/v1/orgs/{self._org.org_id}/events-stream?"
                    + urlencode(query)
                },
            },
        )

    # GET /v1/orgs/{orgId}/events/{eventId} (WIRE.md §7)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-events/
    def get_event(self, req: ApiRequest, event_id: str) -> ApiResponse:
        with self._org.lock:
            found = next((e for e in reversed(self._org.events) if e.id == event_id), None)
            if found is None:
                return atlassian_error(404, "ADMIN-404-4", "Event not found", f"No event with id {event_id}.")
            return ApiResponse.json(200, {"data": render_event(self._org, found, req.base_url)})

    # GET /v1/orgs/{orgId}/event-actions (WIRE.md §7); keys in actions.py are UNCONFIRMED.
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-events/
    def event_actions(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(
            200,
            {
                "data": [
                    {
                        "id": a.key,
                        "type": "event-actions",
                        "attributes": {
                            "displayName": a.display_name,
                            "groupDisplayName": a.group_display_name,
                        },
                    }
                    for a in EVENT_ACTIONS.values()
                ]
            },
        )


def _first_at_or_after(events: list[OrgEvent], from_ms: int | None) -> int:
    """Index of the first event at or after ``from_ms`` (events are in time order)."""
    if from_ms is None:
        return 0
    low, high = 0, len(events)
    while low < high:
        middle = (low + high) // 2
        if epoch_ms(events[middle].time) < from_ms:
            low = middle + 1
        else:
            high = middle
    return low
