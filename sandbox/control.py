"""``/_sandbox/...``: the sandbox's own controls over HTTP, for a separately started
sandbox (``python -m sandbox serve``) driven by a benchmark or a demo script.

Served on the Atlassian server, outside ``/admin``: never counted, throttled, delayed
or faulted. No authentication: the servers listen on loopback only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .routing import ApiRequest, ApiResponse, BadJson, Handler, Router

if TYPE_CHECKING:
    from .runtime import Sandbox

CONTROL = "control"


def _body(req: ApiRequest) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise BadJson("the body must be a JSON object")
    return body


def _bad(message: str) -> ApiResponse:
    return ApiResponse.json(400, {"error": message})


def control_router(sandbox: Sandbox) -> Router:
    router = Router()

    def info(req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(200, {**sandbox.env(), "now": sandbox.clock.now().isoformat()})

    def changes(req: ApiRequest) -> ApiResponse:
        since = req.param("since") or "0"
        if not since.isdigit():
            return _bad("since must be a change seq")
        return ApiResponse.json(200, {"data": [c.to_json() for c in sandbox.changes(since=int(since))]})

    def advance(req: ApiRequest) -> ApiResponse:
        try:
            days = _body(req).get("days", 1)
        except BadJson as exc:
            return _bad(str(exc))
        if not isinstance(days, int) or days < 0:
            return _bad("days must be a non-negative integer")
        result = sandbox.advance(days=days)
        return ApiResponse.json(
            200,
            {
                "now": sandbox.clock.now().isoformat(),
                "uses": result.uses,
                "returns": [list(r) for r in result.returns],
            },
        )

    def add_fault(req: ApiRequest) -> ApiResponse:
        try:
            body = _body(req)
            rule = sandbox.faults.inject(
                kind=str(body.get("kind")),
                path_contains=str(body.get("path_contains", "")),
                count=body.get("count", 1),
                probability=body.get("probability"),
                status=body.get("status"),
                retry_after=int(body.get("retry_after", 1)),
            )
        except (BadJson, ValueError, TypeError) as exc:
            return _bad(str(exc))
        return ApiResponse.json(
            201,
            {
                "kind": rule.kind,
                "path_contains": rule.path_contains,
                "count": rule.remaining,
                "probability": rule.probability,
            },
        )

    def clear_faults(req: ApiRequest) -> ApiResponse:
        sandbox.faults.clear()
        return ApiResponse.empty(204)

    def counts(req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(200, sandbox.request_counts())

    def reset_counts(req: ApiRequest) -> ApiResponse:
        sandbox.reset_counts()
        return ApiResponse.empty(204)

    def latency(req: ApiRequest) -> ApiResponse:
        try:
            ms = _body(req).get("ms")
        except BadJson as exc:
            return _bad(str(exc))
        if not isinstance(ms, int) or ms < 0:
            return _bad("ms must be a non-negative integer")
        sandbox.set_latency(ms)
        return ApiResponse.empty(204)

    def rate_limit(req: ApiRequest) -> ApiResponse:
        try:
            body = _body(req)
            sandbox.set_rate_limit(str(body["endpoint_class"]), body.get("per_minute"))
        except (BadJson, KeyError, ValueError, TypeError) as exc:
            return _bad(f"endpoint_class and per_minute expected: {exc}")
        return ApiResponse.json(200, sandbox.rate_limits())

    def mails(req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(200, {"data": [m.to_json() for m in sandbox.mails()]})

    def entra_member(req: ApiRequest) -> ApiResponse:
        try:
            body = _body(req)
            change = (
                sandbox.entra_add_member if body.get("op", "add") == "add" else sandbox.entra_remove_member
            )
            changed = change(str(body["group_id"]), str(body["object_id"]))
        except (BadJson, KeyError, LookupError) as exc:
            return _bad(f"group_id and object_id of known objects expected: {exc}")
        return ApiResponse.json(200, {"changed": changed})

    def seat_limit(req: ApiRequest) -> ApiResponse:
        try:
            body = _body(req)
            sandbox.org.set_seat_limit(str(body["product"]), body.get("limit"))
        except (BadJson, KeyError) as exc:
            return _bad(f"product and limit expected: {exc}")
        return ApiResponse.empty(204)

    def rights(key: str, change: Callable[[list[str] | None], None], now: Callable[[], Any]) -> Handler:
        """Set a list of rights from ``{key: [names] | null}`` and answer with what holds now."""

        def handler(req: ApiRequest) -> ApiResponse:
            try:
                value = _body(req).get(key)
                if value is not None and (
                    not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                ):
                    raise BadJson(f"{key} must be a list of strings, or null")
            except BadJson as exc:
                return _bad(str(exc))
            change(value)
            held = now()
            return ApiResponse.json(200, {key: None if held is None else sorted(held)})

        return handler

    api_key_scopes = rights("scopes", sandbox.set_api_key_scopes, sandbox.api_key_scopes)
    graph_permissions = rights("permissions", sandbox.set_graph_permissions, sandbox.graph_permissions)

    for method, path, handler in (
        ("GET", "/_sandbox/info", info),
        ("GET", "/_sandbox/changes", changes),
        ("POST", "/_sandbox/advance", advance),
        ("POST", "/_sandbox/faults", add_fault),
        ("DELETE", "/_sandbox/faults", clear_faults),
        ("GET", "/_sandbox/counts", counts),
        ("DELETE", "/_sandbox/counts", reset_counts),
        ("POST", "/_sandbox/latency", latency),
        ("POST", "/_sandbox/rate-limits", rate_limit),
        ("GET", "/_sandbox/mails", mails),
        ("POST", "/_sandbox/entra/members", entra_member),
        ("POST", "/_sandbox/seat-limits", seat_limit),
        ("POST", "/_sandbox/api-key-scopes", api_key_scopes),
        ("POST", "/_sandbox/graph-permissions", graph_permissions),
    ):
        router.add(method, path, CONTROL, handler)
    return router
