"""``POST /$batch``: up to 20 Graph requests in one, each answered on its own.

WIRE.md §15 and https://learn.microsoft.com/graph/json-batching: the outer status is 200
even when items fail; responses come in any order (the sandbox shuffles them, seeded,
so clients that assume order fail here first); ``dependsOn`` items whose dependency
failed get 424; each item is throttled on its own and carries its own ``Retry-After``;
more than 20 items or duplicate ids fail the whole batch with 400.

Items run through the same handlers as direct requests. Of the injected faults only
``5xx`` and ``429`` apply to items; the others concern the connection.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from .faults import Faults
from .graph_common import GRAPH_PREFIX, graph_error, graph_json
from .ratelimit import GRAPH, RateLimiter
from .routing import ApiRequest, ApiResponse, BadJson, Router

MAX_REQUESTS = 20
ITEM_HEADERS = ("content-type", "retry-after", "location")


class BatchRunner:
    def __init__(
        self, router: Router, *, limiter: RateLimiter, faults: Faults, count: Callable[[str], None], seed: int
    ) -> None:
        self._router = router
        self._limiter = limiter
        self._faults = faults
        self._count = count
        self._rng = random.Random(f"{seed}:batch")

    # POST /$batch: https://learn.microsoft.com/graph/json-batching
    def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            payload = req.json(allow_empty=False)
        except BadJson as exc:
            return graph_error(400, "BadRequest", f"Invalid batch payload format: {exc}")
        items = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            return graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > MAX_REQUESTS:
            return graph_error(
                400, "BadRequest", f"Number of batch requests exceeds the limit of {MAX_REQUESTS}."
            )
        ids = [str(item.get("id", "")) for item in items]
        if len(set(ids)) != len(ids) or not all(ids):
            return graph_error(400, "BadRequest", "Batch request ids must be present and unique.")
        order = _dependency_order(items, ids)
        if order is None:
            return graph_error(400, "BadRequest", "dependsOn refers to an unknown or circular id.")
        results: dict[str, dict[str, Any]] = {}
        for index in order:
            results[ids[index]] = self._run_item(req, items[index], results)
        responses = [results[i] for i in ids]
        self._rng.shuffle(responses)
        return graph_json(200, {"responses": responses})

    def _run_item(
        self, outer: ApiRequest, item: dict[str, Any], done: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        item_id = str(item["id"])
        failed = [d for d in _depends_on(item) if done[d]["status"] >= 400]
        if failed:
            return _item(item_id, graph_error(424, "FailedDependency", f"Dependency {failed[0]} failed."))
        method = str(item.get("method", "GET")).upper()
        url = str(item.get("url", ""))
        headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
        body = b""
        if "body" in item:
            if not any(k.lower() == "content-type" for k in headers):
                return _item(
                    item_id,
                    graph_error(
                        400,
                        "BadRequest",
                        f"Write request id : {item_id} does not contain Content-Type header or body.",
                    ),
                )
            body = json.dumps(item["body"]).encode()
        target = f"{GRAPH_PREFIX}/{url.lstrip('/')}"
        self._count(GRAPH)
        fault = self._faults.take(target, kinds=("5xx", "429"))
        if fault is not None and fault.kind == "429":
            return _item(item_id, _throttled(fault.retry_after))
        if fault is not None:
            return _item(
                item_id,
                graph_error(fault.status, "serviceNotAvailable", "The service is temporarily unavailable."),
            )
        admission = self._limiter.admit(GRAPH)
        if admission is not None and not admission.allowed:
            return _item(item_id, _throttled(admission.retry_after))
        request = ApiRequest.build(method, target, {**outer.headers, **headers}, body, outer.base_url)
        found = self._router.match(method, request.path)
        if found is None:
            return _item(
                item_id, graph_error(400, "BadRequest", f"Resource not found for the segment '{url}'.")
            )
        return _item(item_id, found.route.handler(request, **found.params))


def _throttled(retry_after: int) -> ApiResponse:
    return graph_error(
        429, "TooManyRequests", "Too many requests.", headers={"Retry-After": str(retry_after)}
    )


def _depends_on(item: dict[str, Any]) -> list[str]:
    return [str(d) for d in item.get("dependsOn") or []]


def _dependency_order(items: list[dict[str, Any]], ids: list[str]) -> list[int] | None:
    """Item indices with every item after its dependencies; None for unknown ids or cycles."""
    position = {item_id: i for i, item_id in enumerate(ids)}
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(items):
        progressed = False
        for index, item in enumerate(items):
            if index in placed:
                continue
            deps = _depends_on(item)
            if any(d not in position for d in deps):
                return None
            if all(position[d] in placed for d in deps):
                order.append(index)
                placed.add(index)
                progressed = True
        if not progressed:
            return None
    return order


def _item(item_id: str, response: ApiResponse) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k.lower() in ITEM_HEADERS}
    rendered: dict[str, Any] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body:
        rendered["body"] = response.payload()
    return rendered
