"""Transport-free requests, responses and a small path router.

The API modules are written against these types, not against ``http.server``, so the
same handler serves a real HTTP request and an item of a Graph ``$batch``, and the
server module alone owns sockets, latency, faults and rate limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote


class BadJson(ValueError):
    """The request body is not the JSON the endpoint expects."""


@dataclass
class ApiRequest:
    """One request as an endpoint sees it; ``headers`` keys are lower-case."""

    method: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str  # scheme://host:port the client addressed, for links we hand back

    @classmethod
    def build(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes, base_url: str
    ) -> ApiRequest:
        raw_path, _, raw_query = target.partition("?")
        return cls(
            method.upper(),
            unquote(raw_path),
            parse_qs(raw_query, keep_blank_values=True),
            {k.lower(): v for k, v in headers.items()},
            body,
            base_url,
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self, *, allow_empty: bool = True) -> Any:
        """The body parsed as JSON; an empty body is ``{}`` when ``allow_empty``."""
        if not self.body.strip():
            if allow_empty:
                return {}
            raise BadJson("a JSON body is required")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(f"the body is not valid JSON: {exc}") from exc

    def bearer_token(self) -> str | None:
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> ApiResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def empty(cls, status: int, *, headers: Mapping[str, str] | None = None) -> ApiResponse:
        return cls(status, b"", dict(headers or {}))

    @classmethod
    def text(cls, status: int, text: str) -> ApiResponse:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def payload(self) -> Any:
        """The body parsed back from JSON (for ``$batch`` items); None when empty."""
        return json.loads(self.body) if self.body else None


Handler = Callable[..., ApiResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    endpoint_class: str
    handler: Handler
    rate_limited: bool = True


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    params: dict[str, str]


class Router:
    """Maps ``METHOD /path/{param}`` templates to handlers and their endpoint class."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self, method: str, template: str, endpoint_class: str, handler: Handler, *, rate_limited: bool = True
    ) -> None:
        parts = re.split(r"\{(\w+)\}", template)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
        )
        self._routes.append(
            Route(method.upper(), re.compile(f"^{regex}/?$"), endpoint_class, handler, rate_limited)
        )

    def match(self, method: str, path: str) -> RouteMatch | None:
        for route in self._routes:
            if route.method != method.upper():
                continue
            found = route.pattern.match(path)
            if found:
                return RouteMatch(route, found.groupdict())
        return None

    def allows_other_method(self, path: str) -> bool:
        """True when the path exists under another method (for 405 over 404)."""
        return any(route.pattern.match(path) for route in self._routes)
