"""Serve the app's HTTP functions on loopback, without the Functions host.

Core Tools cannot be installed here, so this adapter turns each HTTP request into the
azure-functions library's own `func.HttpRequest`, calls the registered function's user code
and writes its `func.HttpResponse` back. The sandbox can then POST webhooks to a real URL,
exactly as Atlassian and Graph would, in tests, the demo and the benchmarks. Route templates
like `admin/runs/{run_id}` are matched; function keys are not checked (loopback only).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

_FUNCTIONS: dict[int, list[Any]] = {}


def registered(app: Any) -> list[Any]:
    """The app's functions. `get_functions()` registers names and refuses a second call."""
    if id(app) not in _FUNCTIONS:
        _FUNCTIONS[id(app)] = list(app.get_functions())
    return _FUNCTIONS[id(app)]


def user_function(app: Any, name: str) -> Any:
    """The Python callable behind a registered function, to call with func.* objects."""
    for function in registered(app):
        if function.get_function_name() == name:
            return function.get_user_function()
    raise KeyError(f"no function named {name}")


def _routes(app: Any) -> list[tuple[re.Pattern[str], set[str], Any]]:
    routes = []
    for function in registered(app):
        trigger = function.get_trigger()
        route = getattr(trigger, "route", None)
        if route is None:
            continue
        methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or ["GET", "POST"])}
        pattern = re.sub(r"\{(\w+)(:[^}]*)?\}", r"(?P<\1>[^/]+)", route.strip("/"))
        routes.append((re.compile(f"^api/{pattern}$"), methods, function.get_user_function()))
    # Literal routes before templated ones, as the host does.
    routes.sort(key=lambda r: r[0].pattern.count("(?P<"))
    return routes


def call(function: Any, request: func.HttpRequest) -> func.HttpResponse:
    """Call a function's user code, sync or async, as the Python worker would."""
    result = function(request)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app`'s HTTP functions at the yielded base URL (http://127.0.0.1:port)."""
    routes = _routes(app)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK of the headers, some 40 ms on every
        # answer, which the Functions host does not add (sandbox/server.py does the same).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = parts.path.strip("/")
            for pattern, methods, function in routes:
                match = pattern.match(path)
                if match and self.command in methods:
                    request = func.HttpRequest(
                        method=self.command,
                        url=f"http://127.0.0.1{self.path}",
                        headers=dict(self.headers.items()),
                        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                        route_params=match.groupdict(),
                        body=body,
                    )
                    try:
                        response = call(function, request)
                    except Exception:  # the host answers 500 to an unhandled error, without detail
                        self._send(500, b'{"error":"internal error"}', "application/json")
                        return
                    self._send(
                        response.status_code,
                        response.get_body(),
                        response.mimetype or "text/plain",
                        dict(response.headers.items()),
                    )
                    return
            self._send(404, b'{"error":"no such function"}', "application/json")

        def _send(
            self, status: int, body: bytes, mimetype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", mimetype)
            for key, value in (headers or {}).items():
                if key.lower() not in {"content-type", "content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
