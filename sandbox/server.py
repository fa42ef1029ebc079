"""The HTTP side: threaded servers on 127.0.0.1, and everything between socket and handler.

Per request, in this order: control paths (``/_sandbox``) go straight to the control
router; API paths are routed, counted per endpoint class, delayed by the configured
latency, subjected to an injected fault if one fires, admitted by the class's rate
limiter (429 in the vendor's shape when not), handled, and written. Responses use
HTTP/1.1 keep-alive with an exact Content-Length, so clients pool connections as they
would against the real services.

Each server speaks for one vendor (``Vendor``): its error shape for 404/405/5xx/429 and
whether it sends Atlassian's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import FaultRule, Faults
from .ratelimit import Admission, RateLimiter
from .routing import ApiRequest, ApiResponse, Router
from .timeutil import UTC, iso_seconds

LOOPBACK = "127.0.0.1"
CONTROL_PREFIX = "/_sandbox"
IDLE_TIMEOUT_S = 120  # keep-alive connections idle longer than this are closed


@dataclass(frozen=True)
class Vendor:
    """How one server speaks: its errors, and its rate-limit headers."""

    name: str
    error: Callable[[ApiRequest, int, str], ApiResponse]  # (request, status, message)
    throttled: Callable[[ApiRequest, int], ApiResponse]  # (request, retry_after seconds)
    rate_limit_headers: bool  # Atlassian sends X-RateLimit-* on every response


class RequestCounter:
    """Requests per endpoint class, and in total. Thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, endpoint_class: str) -> None:
        with self._lock:
            self._counts[endpoint_class] = self._counts.get(endpoint_class, 0) + 1
            self._counts["total"] = self._counts.get("total", 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass
class Traffic:
    """The knobs shared by both servers: latency, faults, limits, counts."""

    faults: Faults
    limiter: RateLimiter
    counter: RequestCounter
    latency_ms: int = 0


class SandboxServer(ThreadingHTTPServer):
    """One vendor's server, on 127.0.0.1, optionally TLS, with its own router."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int,
        *,
        vendor: Vendor,
        router: Router,
        traffic: Traffic,
        control: Router | None = None,
        tls: ssl.SSLContext | None = None,
        verbose: bool = False,
    ) -> None:
        self.vendor = vendor
        self.router = router
        self.control = control
        self.traffic = traffic
        self.tls = tls
        self.verbose = verbose
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, port), SandboxRequestHandler)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.server_address[1]}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.vendor.name}",
            daemon=True,
        )
        thread.start()
        return thread

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs on the connection's own thread, so a slow TLS handshake blocks no one else.
        connection = request
        try:
            # Headers and body leave in separate writes; without NODELAY, Nagle and the
            # client's delayed ACK would add ~40 ms to every response.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                request.settimeout(10)
                connection = self.tls.wrap_socket(request, server_side=True)
                connection.settimeout(None)
        except OSError:  # includes ssl.SSLError: a failed handshake
            return
        with self._connections_lock:
            self._connections.add(connection)
        try:
            super().finish_request(connection, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)
            if connection is not request:
                _close_quietly(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # resets, TLS failures, timeouts
            return  # clients hang up; that is their right
        traceback.print_exc()

    def stop(self) -> None:
        """Stop accepting, wake sleeping handlers and close open connections."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _close_quietly(connection: socket.socket) -> None:
    try:
        connection.close()
    except OSError:
        pass


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SeatwardenSandbox/1.0"
    timeout = IDLE_TIMEOUT_S
    server: SandboxServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        server = self.server
        body = self._read_body()
        host = self.headers.get("Host") or f"{LOOPBACK}:{server.server_address[1]}"
        scheme = "https" if server.tls else "http"
        request = ApiRequest.build(
            self.command, self.path, dict(self.headers.items()), body, f"{scheme}://{host}"
        )
        if server.control is not None and request.path.startswith(CONTROL_PREFIX):
            self._write(self._dispatch(server.control, request, control=True))
            return
        match = server.router.match(request.method, request.path)
        if match is None:
            status = 405 if server.router.allows_other_method(request.path) else 404
            message = "Method not allowed" if status == 405 else f"No route for {request.path}"
            self._write(server.vendor.error(request, status, message))
            return
        traffic = server.traffic
        traffic.counter.add(match.route.endpoint_class)
        if traffic.latency_ms > 0 and server.stopping.wait(traffic.latency_ms / 1000):
            return
        fault = traffic.faults.take(self.path)
        if fault is not None and fault.kind != "truncated":
            self._inflict(fault, request, match.route.endpoint_class)
            return
        admission = traffic.limiter.admit(match.route.endpoint_class) if match.route.rate_limited else None
        if admission is not None and not admission.allowed:
            response = server.vendor.throttled(request, admission.retry_after)
        else:
            response = self._dispatch(server.router, request)
        if admission is not None and server.vendor.rate_limit_headers:
            response.headers.update(_rate_limit_headers(admission))
        self._write(response, truncate=fault is not None)

    def _dispatch(self, router: Router, request: ApiRequest, control: bool = False) -> ApiResponse:
        match = router.match(request.method, request.path)
        if match is None:
            return (
                ApiResponse.json(404, {"error": f"no control route {request.path}"})
                if control
                else self.server.vendor.error(request, 404, "Not found")
            )
        try:
            return match.route.handler(request, **match.params)
        except Exception:  # a sandbox bug: say so loudly, answer like the vendor would
            traceback.print_exc()
            return self.server.vendor.error(request, 500, "Internal server error")

    def _inflict(self, fault: FaultRule, request: ApiRequest, endpoint_class: str) -> None:
        vendor = self.server.vendor
        if fault.kind == "5xx":
            self._write(vendor.error(request, fault.status, "Service unavailable"))
        elif fault.kind == "429":
            response = vendor.throttled(request, fault.retry_after)
            if vendor.rate_limit_headers:
                limit = self.server.traffic.limiter.limits().get(endpoint_class, 0)
                response.headers.update(
                    _rate_limit_headers(
                        Admission(
                            allowed=False,
                            limit=int(limit),
                            remaining=0,
                            retry_after=fault.retry_after,
                            reset_at=datetime.now(UTC) + timedelta(seconds=fault.retry_after),
                        )
                    )
                )
            self._write(response)
        elif fault.kind == "drop":
            self._hang_up()
        elif fault.kind == "timeout":
            self._wait_for_client_to_give_up()
            self._hang_up()

    def _wait_for_client_to_give_up(self) -> None:
        """Sleep until the client closes, the fault's time passes, or the server stops.

        A selector, not `select.select`: that refuses a descriptor numbered 1024 or more
        (ValueError), which a long test session reaches, and the fault then hung up at once.
        """
        deadline = time.monotonic() + self.server.traffic.faults.timeout_s
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(self.connection, selectors.EVENT_READ)
            except (OSError, ValueError):
                return
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                try:
                    readable = selector.select(0.1)
                except OSError:
                    return
                if readable:
                    return  # the client closed (or sent more): it is no longer waiting for us

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self, response: ApiResponse, truncate: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        body = response.body
        try:
            if truncate:
                # Promise the whole body, deliver half of it, hang up.
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self._hang_up()
                return
            if self.command != "HEAD" and body:
                self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _rate_limit_headers(admission: Admission) -> dict[str, str]:
    """Atlassian's admin API rate-limit headers; Reset is an ISO 8601 UTC instant
    (https://developer.atlassian.com/cloud/admin/organization/rest/intro/#rate-limits)."""
    headers = {
        "X-RateLimit-Limit": str(admission.limit),
        "X-RateLimit-Remaining": str(admission.remaining),
        "X-RateLimit-Reset": iso_seconds(admission.reset_at),
    }
    if not admission.allowed:
        headers["Retry-After"] = str(admission.retry_after)
    return headers
