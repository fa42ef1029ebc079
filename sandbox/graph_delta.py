"""``GET /groups/delta``: membership changes of Entra groups since a token.

Graph semantics kept here (WIRE.md §13, https://learn.microsoft.com/graph/api/group-delta,
https://learn.microsoft.com/graph/delta-query-groups):

- The first round returns every member of the filtered groups, paged by
  ``@odata.nextLink``; a large group repeats across pages (clients merge by id). The last
  page carries ``@odata.deltaLink``.
- A delta token returns what changed since it was issued: ``members@delta`` entries, with
  ``"@removed": {"reason": "deleted"}`` for members who left. The same token can be
  replayed and answers the same changes again (clients must be idempotent).
- ``$deltatoken=latest`` returns only a deltaLink ("sync from now").
- Only ``id eq '…'`` filters joined by ``or`` (at most 50); ``$top``, ``$orderby`` and
  ``$expand`` are refused. Parameters are baked into the returned links.
- Tokens expire after 7 days of sandbox time: 400 ``syncStateNotFound``
  (https://devblogs.microsoft.com/microsoft365dev/duration-of-change-tracking-tokens-for-identity-and-education-resources/).
- After ``force_resync()``, the next token use gets ``410 Gone`` with a ``Location`` to
  start over, as Graph does when it cannot serve changes for a token.

All paging state lives in the opaque tokens, so concurrent clients cost nothing.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_right
from datetime import timedelta
from typing import Any

from .cursor import InvalidCursor, decode_cursor, encode_cursor
from .graph_common import graph_base, graph_error, graph_json, parse_select, query_string
from .org import Org
from .routing import ApiRequest, ApiResponse

DELTA_PAGE_SIZE = 500  # member entries per page: Graph does not document it; sandbox choice
TOKEN_LIFETIME = timedelta(days=7)
MAX_FILTER_IDS = 50
SYNC_FROM_NOW = "latest"  # the $deltatoken value meaning "from now on"
_ID_EQ = re.compile(r"^\s*id\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)
_UNSUPPORTED = ("$top", "$orderby", "$expand")


class GroupsDelta:
    def __init__(self, org: Org, page_size: int = DELTA_PAGE_SIZE) -> None:
        self._org = org
        self.page_size = page_size
        self._resync_pending = False
        self._lock = threading.Lock()

    def force_resync(self) -> None:
        """Make the next request with a delta token get 410 Gone (a full resync)."""
        with self._lock:
            self._resync_pending = True

    # GET /groups/delta: https://learn.microsoft.com/graph/api/group-delta
    def handle(self, req: ApiRequest) -> ApiResponse:
        for name in _UNSUPPORTED:
            if req.param(name) is not None:
                return graph_error(
                    400, "Request_UnsupportedQuery", f"Unsupported query option '{name}' for delta queries."
                )
        try:
            if req.param("$skiptoken"):
                return self._page(req, decode_cursor("delta-page", req.param("$skiptoken") or ""))
            delta_token = req.param("$deltatoken")
            if delta_token and delta_token != SYNC_FROM_NOW:
                return self._changes_since(req, decode_cursor("delta", delta_token))
        except InvalidCursor:
            return graph_error(400, "Request_BadRequest", "The delta or skip token is invalid.")
        groups = self._filtered_groups(req)
        if isinstance(groups, ApiResponse):
            return groups
        select = parse_select(req) or ["id"]
        with self._org.lock:
            seq = self._org.entra_seq
            if delta_token == SYNC_FROM_NOW:
                return graph_json(
                    200, self._envelope(req, select, [], delta=self._delta_state(groups, select, seq))
                )
            return self._page(req, {"m": "full", "g": groups, "sel": select, "to": seq, "gi": 0, "after": ""})

    def _filtered_groups(self, req: ApiRequest) -> list[str] | ApiResponse:
        raw = req.param("$filter")
        if raw is None:
            return [g.id for g in self._org.entra_groups]
        ids: list[str] = []
        for clause in re.split(r"\s+or\s+", raw.strip(), flags=re.IGNORECASE):
            found = _ID_EQ.match(clause)
            if not found:
                return graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Only 'id eq' filters joined by 'or' are supported on groups/delta.",
                )
            ids.append(found.group(1))
        if len(ids) > MAX_FILTER_IDS:
            return graph_error(
                400, "Request_BadRequest", f"At most {MAX_FILTER_IDS} ids may be filtered in one delta query."
            )
        return sorted(set(ids))

    def _changes_since(self, req: ApiRequest, state: dict[str, Any]) -> ApiResponse:
        with self._lock:
            resync, self._resync_pending = self._resync_pending, False
        if resync:
            fresh = query_string(
                {
                    "$select": ",".join(state["sel"]),
                    "$filter": " or ".join(f"id eq '{g}'" for g in state["g"]),
                }
            )
            return graph_error(
                410,
                "resyncRequired",
                "The delta token cannot be served; start a full synchronization again.",
                headers={"Location": f"{graph_base(req)}/groups/delta?{fresh}"},
            )
        with self._org.lock:
            issued = float(state["t"])
            if self._org.clock.now().timestamp() - issued > TOKEN_LIFETIME.total_seconds():
                return graph_error(
                    400,
                    "syncStateNotFound",
                    "The sync state generation is not found. The delta token is "
                    "expired and data must be synchronized again.",
                )
            return self._page(
                req,
                {
                    "m": "changes",
                    "g": state["g"],
                    "sel": state["sel"],
                    "from": state["s"],
                    "to": self._org.entra_seq,
                    "pos": 0,
                },
            )

    def _page(self, req: ApiRequest, state: dict[str, Any]) -> ApiResponse:
        with self._org.lock:
            if state["m"] == "full":
                value, state, done = self._full_page(state)
            else:
                value, state, done = self._changes_page(state)
            if done:
                delta = self._delta_state(state["g"], state["sel"], state["to"])
                return graph_json(200, self._envelope(req, state["sel"], value, delta=delta))
            return graph_json(200, self._envelope(req, state["sel"], value, page=state))

    def _full_page(self, state: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        groups: list[str] = state["g"]
        with_members = "members" in state["sel"]
        index, after = int(state["gi"]), str(state["after"])
        budget = self.page_size
        value: list[dict[str, Any]] = []
        while index < len(groups) and budget > 0:
            group = self._org.find_entra_group(groups[index])
            if group is None:
                index, after = index + 1, ""
                continue
            obj = self._group_entry(groups[index], state["sel"])
            budget -= 1
            if with_members:
                members = self._org.sorted_entra_members(group.id)
                start = bisect_right(members, after) if after else 0
                chunk = members[start : start + max(budget, 1)]
                obj["members@delta"] = [_member(oid) for oid in chunk]
                budget -= len(chunk)
                value.append(obj)
                if start + len(chunk) < len(members):
                    after = chunk[-1]
                    break
            else:
                value.append(obj)
            index, after = index + 1, ""
        next_state = {**state, "gi": index, "after": after}
        return value, next_state, index >= len(groups)

    def _changes_page(self, state: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        wanted = set(state["g"])
        latest: dict[tuple[str, str], bool] = {}
        for change in self._org.entra_changes(int(state["from"]), int(state["to"])):
            if change.group_id in wanted:
                latest[(change.group_id, change.object_id)] = change.added
        ordered = sorted(latest.items())
        position = int(state["pos"])
        chunk = ordered[position : position + self.page_size]
        value: list[dict[str, Any]] = []
        for (group_id, object_id), added in chunk:
            if not value or value[-1]["id"] != group_id:
                value.append(self._group_entry(group_id, state["sel"]))
                value[-1]["members@delta"] = []
            value[-1]["members@delta"].append(_member(object_id, removed=not added))
        position += len(chunk)
        return value, {**state, "pos": position}, position >= len(ordered)

    def _group_entry(self, group_id: str, select: list[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"@odata.type": "#microsoft.graph.group", "id": group_id}
        group = self._org.find_entra_group(group_id)
        if group is not None and "displayName" in select:
            entry["displayName"] = group.display_name
        return entry

    def _delta_state(self, groups: list[str], select: list[str], seq: int) -> dict[str, Any]:
        return {"g": groups, "sel": select, "s": seq, "t": self._org.clock.now().timestamp()}

    def _envelope(
        self,
        req: ApiRequest,
        select: list[str],
        value: list[dict[str, Any]],
        *,
        page: dict[str, Any] | None = None,
        delta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        base = f"{graph_base(req)}/groups/delta"
        body: dict[str, Any] = {"@odata.context": f"{graph_base(req)}/$metadata#groups({','.join(select)})"}
        if page is not None:
            skip = encode_cursor("delta-page", **page)
            body["@odata.nextLink"] = f"{base}?{query_string({'$skiptoken': skip})}"
        if delta is not None:
            token = encode_cursor("delta", **delta)
            body["@odata.deltaLink"] = f"{base}?{query_string({'$deltatoken': token})}"
        body["value"] = value
        return body


def _member(object_id: str, *, removed: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"@odata.type": "#microsoft.graph.user", "id": object_id}
    if removed:
        entry["@removed"] = {"reason": "deleted"}
    return entry
