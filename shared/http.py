"""The one retry, pacing and paging policy for Seatwarden's remote calls, and the request log.

Both vendor clients (``shared.atlassian``, ``shared.graph``) send every request through an
``HttpCaller``. It applies, in this order:

1. ``Pacer``: a token bucket per endpoint class (requests per minute), so a batch of
   lookups is spread over the vendor's limit instead of bouncing off it, plus a bound on
   concurrent requests.
2. ``RetryPolicy``: 429 waits for ``Retry-After`` or the rate-limit reset header; 408 and
   5xx, timeouts and connection errors back off exponentially with full jitter; tries are
   bounded; a request that may already have been applied is retried only when the
   operation is idempotent.
3. Error mapping: a vendor-specific mapper turns a failed response into a
   ``shared.errors.RemoteError``; every httpx exception becomes ``TransportFailed``.
4. ``RequestLog``: one record per call (time, method, redacted path, status, duration,
   tries, vendor error code). Never headers, tokens, secrets or keys.

``iter_pages`` is the one pagination loop: it follows cursors, detects a cursor that
repeats, and turns a page that fails into ``IncompleteRead``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import enum
import functools
import json as _json
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from shared.errors import (
    AuthenticationFailed,
    DeltaResyncRequired,
    GraphAuthError,
    GraphNotFound,
    IncompleteRead,
    NotCentralizedUserManagement,
    NotFound,
    RemoteError,
    ScopeMissing,
    TransportFailed,
    redact_text,
    redact_url,
)

__all__ = [
    "DEFAULT_RATES_PER_MINUTE",
    "PASSTHROUGH_ERRORS",
    "AuthHook",
    "CallContext",
    "ErrorMapper",
    "HttpCaller",
    "MembershipChange",
    "Pacer",
    "RequestLog",
    "RequestRecord",
    "RetryPolicy",
    "Sleep",
    "SpreadTransport",
    "iter_pages",
    "make_async_client",
    "parse_rate_limit_reset",
    "parse_retry_after",
]

log = logging.getLogger("seatwarden.http")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
AuthHook = Callable[[], Awaitable[Mapping[str, str]]]

# Methods whose repetition has the same effect as one call (RFC 9110 §9.2.2). POST is
# idempotent only where the caller says so (searches, membership changes): see
# ``HttpCaller.send``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# 408 and these 5xx mean "try again"; 501 and 505 mean "never".
RETRYABLE_STATUSES = frozenset({408, 500, 502, 503, 504})


# --- retry -------------------------------------------------------------------------------

# Names of the "when does the window reset" header, in the order we trust them.
# Atlassian documents X-RateLimit-Reset as an ISO 8601 UTC timestamp for its admin APIs
# (https://developer.atlassian.com/cloud/admin/api-access/rest/intro/ and
# https://developer.atlassian.com/cloud/admin/organization/rest/intro/, "Rate limit response
# headers"); the Jira guide gives the same name in `yyyy-MM-ddTHH:mmZ` form
# (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/). Other services use
# epoch seconds, epoch milliseconds or delta seconds under the same or the IETF draft's
# name (RateLimit-Reset), so each form is accepted. Atlassian's `Beta-Retry-After` and
# `X-Beta-RateLimit-*` headers only announce limits that are not enforced yet, and are
# ignored (https://community.developer.atlassian.com/t/
# marketplace-partners-api-rate-limiting-for-free-apps-quick-reference-guide/89257).
RATE_LIMIT_RESET_HEADERS = ("X-RateLimit-Reset", "RateLimit-Reset", "X-Rate-Limit-Reset")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3). ``None`` when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def parse_rate_limit_reset(value: str | None, now: float) -> float | None:
    """Seconds until a rate-limit window resets, from an ISO 8601 timestamp (Atlassian),
    epoch seconds, epoch milliseconds, or delta seconds. ``None`` when unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number > 1e12:  # epoch milliseconds
            return max(0.0, number / 1000.0 - now)
        if number > 1e9:  # epoch seconds
            return max(0.0, number - now)
        return max(0.0, number)  # delta seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_retry_after(text, now) if "," in text else None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # Atlassian documents UTC
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, how long to wait between tries, and how long one try may take.

    ``max_tries`` counts the first try. Backoff is "full jitter": a uniform wait between 0
    and ``min(max_delay, base_delay * 2**(try-1))``, which spreads synchronized clients
    apart (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
    A server-given wait (``Retry-After``, reset header) is honoured as given, up to
    ``max_retry_after``; a longer one ends the call with ``RateLimited``/``GraphThrottled``
    carrying ``retry_after`` so a queue can reschedule rather than hold a Function
    invocation asleep. ``sleep``, ``random`` and ``wall_clock`` are injectable for tests.
    """

    max_tries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 30.0
    max_retry_after: float = 120.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("RetryPolicy.max_tries must be at least 1")

    def backoff(self, tries: int) -> float:
        """Wait before the next try after ``tries`` failed tries (full jitter)."""
        cap = min(self.max_delay, self.base_delay * (2.0 ** max(0, tries - 1)))
        return float(self.random()) * cap

    def server_delay(self, headers: httpx.Headers) -> float | None:
        """The wait the server asked for: ``Retry-After`` first, then a reset header."""
        now = self.wall_clock()
        delay = parse_retry_after(headers.get("Retry-After"), now)
        if delay is not None:
            return delay
        for name in RATE_LIMIT_RESET_HEADERS:
            delay = parse_rate_limit_reset(headers.get(name), now)
            if delay is not None:
                return delay
        return None


# --- pacing ------------------------------------------------------------------------------

# Requests per minute per endpoint class; a class not listed is not paced (only the
# concurrency bound and 429 handling apply). Sources:
# - atlassian.events: "10 requests per minute per user and per path" for
#   GET /v1/orgs/{orgId}/events (JJS src/admin/api/events.ts, WIRE.md §6).
# - atlassian.last_active: about 200 a minute has been reported for last-active-dates
#   (DESIGN.md, "Activity data"); Atlassian publishes no number.
# - graph.mail (`POST /users/{id}/sendMail`, shared.graph.MAIL): Exchange Online lets one
#   mailbox send 30 messages a minute and 10,000 recipients a day (rolling 24 h)
#   (https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits-1;
#   that it binds Graph's sendMail too: https://learn.microsoft.com/answers/questions/2258712/).
#   Graph's own Outlook limits are looser: 10,000 requests per 10 minutes per app and
#   mailbox, 4 concurrent requests per app (https://learn.microsoft.com/graph/throttling-limits,
#   "Outlook service limits"). SEATWARDEN_MAIL_PER_MINUTE overrides it (shared.bootstrap).
# Everything else on both vendors is undocumented as a number: Atlassian says only that
# all admin API requests are rate limited
# (https://developer.atlassian.com/cloud/admin/organization/rest/intro/), and Graph's
# limits are per service and tenant size (https://learn.microsoft.com/graph/throttling-limits).
DEFAULT_RATES_PER_MINUTE: Mapping[str, float] = {
    "atlassian.events": 10.0,
    "atlassian.last_active": 200.0,
    "graph.mail": 30.0,
}


@dataclass
class _Bucket:
    rate_per_second: float | None
    capacity: float
    tokens: float
    updated: float
    blocked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def refill(self, now: float) -> None:
        if self.rate_per_second is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_second)
        self.updated = now


class Pacer:
    """Spaces requests per endpoint class (a token bucket) and bounds their concurrency.

    ``burst`` is the bucket size: 1 (the default) spaces requests evenly at the rate,
    which stays under both fixed- and sliding-window limits. ``hold`` closes a class for
    a while: after a 429 every task of that class waits, not only the one that got it.
    ``clock`` and ``sleep`` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        rates_per_minute: Mapping[str, float] | None = None,
        *,
        concurrency: int = 8,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("Pacer concurrency must be at least 1")
        if burst < 1:
            raise ValueError("Pacer burst must be at least 1")
        self._rates = dict(DEFAULT_RATES_PER_MINUTE if rates_per_minute is None else rates_per_minute)
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(concurrency)
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def unpaced(cls, *, concurrency: int = 8) -> Pacer:
        """A pacer with no rates: only the concurrency bound and 429 holds."""
        return cls({}, concurrency=concurrency)

    def rate_per_minute(self, endpoint_class: str) -> float | None:
        return self._rates.get(endpoint_class)

    def _bucket(self, endpoint_class: str) -> _Bucket:
        bucket = self._buckets.get(endpoint_class)
        if bucket is None:
            rpm = self._rates.get(endpoint_class)
            bucket = _Bucket(
                rate_per_second=None if rpm is None else rpm / 60.0,
                capacity=self._burst,
                tokens=self._burst,
                updated=self._clock(),
            )
            self._buckets[endpoint_class] = bucket
        return bucket

    def hold(self, endpoint_class: str, seconds: float) -> None:
        """Let no request of ``endpoint_class`` start for ``seconds`` from now."""
        bucket = self._bucket(endpoint_class)
        bucket.blocked_until = max(bucket.blocked_until, self._clock() + max(0.0, seconds))

    async def _take(self, endpoint_class: str) -> None:
        bucket = self._bucket(endpoint_class)
        async with bucket.lock:  # FIFO: waiters of one class queue behind each other
            while True:
                now = self._clock()
                bucket.refill(now)
                wait = bucket.blocked_until - now
                if wait <= 0:
                    if bucket.rate_per_second is None:
                        return
                    if bucket.tokens >= 1:
                        bucket.tokens -= 1
                        return
                    wait = (1 - bucket.tokens) / bucket.rate_per_second
                await self._sleep(wait)

    @asynccontextmanager
    async def slot(self, endpoint_class: str) -> AsyncIterator[None]:
        """Wait for a token of ``endpoint_class`` and a concurrency slot; hold the slot."""
        await self._take(endpoint_class)
        async with self._semaphore:
            yield


# --- the request log -----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One outbound call, as an auditor or a benchmark may read it. No headers, no bodies."""

    at: datetime
    vendor: str
    endpoint_class: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    tries: int
    error_code: str | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class RequestLog:
    """The last ``maxlen`` calls, in memory. Bounded so a long run cannot grow it without end."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)

    def records(self) -> list[RequestRecord]:
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def clear(self) -> None:
        self._records.clear()

    def to_jsonl(self) -> str:
        return "".join(_json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in self._records)


# --- the caller ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    """What an error mapper may know about the call that failed.

    ``hint`` is what the call needs to be allowed (an Atlassian scope, a Graph
    permission), for messages that tell the operator what to fix.
    """

    vendor: str
    method: str
    url: str
    endpoint_class: str
    hint: str | None = None
    secrets: tuple[str, ...] = ()


ErrorMapper = Callable[[httpx.Response, CallContext], RemoteError]


class _Sent(enum.Enum):
    """Whether a failed try may have reached the server (and been applied)."""

    NO = "no"  # safe to repeat for any method
    MAYBE = "maybe"  # repeat only if idempotent
    FATAL = "fatal"  # configuration or programming error: repeating cannot help


# Every httpx exception a request can raise, by whether the request may have been applied.
# Exceptions not listed (subclasses added in later httpx versions) fall back to their
# nearest listed base class; anything else is FATAL.
_EXCEPTION_SENT: tuple[tuple[type[Exception], _Sent], ...] = (
    (httpx.ConnectTimeout, _Sent.NO),
    (httpx.PoolTimeout, _Sent.NO),
    (httpx.ConnectError, _Sent.NO),
    (httpx.ProxyError, _Sent.NO),
    (httpx.ReadTimeout, _Sent.MAYBE),
    (httpx.WriteTimeout, _Sent.MAYBE),
    (httpx.TimeoutException, _Sent.MAYBE),
    (httpx.ReadError, _Sent.MAYBE),
    (httpx.WriteError, _Sent.MAYBE),
    (httpx.CloseError, _Sent.MAYBE),
    (httpx.NetworkError, _Sent.MAYBE),
    (httpx.RemoteProtocolError, _Sent.MAYBE),
    (httpx.DecodingError, _Sent.MAYBE),
    (httpx.LocalProtocolError, _Sent.FATAL),
    (httpx.UnsupportedProtocol, _Sent.FATAL),
    (httpx.TooManyRedirects, _Sent.FATAL),
    (httpx.TransportError, _Sent.MAYBE),
    (httpx.RequestError, _Sent.FATAL),
    (httpx.HTTPError, _Sent.FATAL),
    (httpx.InvalidURL, _Sent.FATAL),
    (httpx.StreamError, _Sent.FATAL),
)
# What ``HttpCaller`` catches from httpx: the roots of every exception httpx defines
# that a request can raise (tests/clients/test_http.py walks their subclasses).
HTTPX_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


def _is_tls_verification_failure(exc: Exception) -> bool:
    return isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc).upper()


def _classify(exc: Exception) -> _Sent:
    if _is_tls_verification_failure(exc):
        return _Sent.FATAL  # an untrusted certificate stays untrusted: do not retry
    for kind, sent in _EXCEPTION_SENT:
        if isinstance(exc, kind):
            return sent
    return _Sent.FATAL


def _describe_transport(exc: Exception, sent: _Sent) -> str:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({name})"
    if _is_tls_verification_failure(exc):
        return f"TLS certificate not trusted ({name}); for a private CA set SEATWARDEN_CA_BUNDLE"
    if sent is _Sent.FATAL:
        return f"request could not be made ({name}); check the base URL setting"
    return f"connection failed ({name})"


class MalformedBody(ValueError):
    """A 2xx body that could not be parsed; raised by a ``parse`` function given to ``send``."""


#: Connection pools a client spreads its requests over (``SpreadTransport``).
POOLS = 4
#: Idle connections each pool keeps open: more than a pacer ever has in flight, so no
#: connection is closed after a call only to be opened again for the next (httpx keeps 20
#: by default, and a night's changes at a scaled rate keep 26 in flight).
KEEPALIVE_PER_POOL = 32


class SpreadTransport(httpx.AsyncBaseTransport):
    """Requests spread over ``pools`` httpx transports, each to the one with fewest in flight.

    httpcore's pool visits every connection it holds each time a request is queued or ends
    (is it idle, has it expired: a poll of its socket), so its CPU per request grows with
    the connections it holds. With the two dozen requests in flight of a night's changes
    at the scaled rate, the first night of a 30,000-person org took 57 s of client CPU and
    57 s to apply its changes through one pool (the host stealing 11% of the CPU), 27 s and
    32 s through four; the serial reads of later nights were no slower (19.0-19.2 s a night
    against 19.5-20.8 s). ``python -m bench.nights_bench --users 30000 --nights 3 --modes
    activity_in_read --no-naive-night --no-write --pools 1`` (and ``--pools 4``). The pools
    share the TLS context; each keeps its connections alive for reuse.
    """

    def __init__(self, *, pools: int | None = None, verify: ssl.SSLContext | bool | str = True) -> None:
        pools = POOLS if pools is None else pools
        if pools < 1:
            raise ValueError("SpreadTransport needs at least one pool")
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE_PER_POOL)
        context = verify if isinstance(verify, ssl.SSLContext) else ssl_context(verify)
        self.pools = [httpx.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(pools)]
        self.in_flight = [0] * pools

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.pools)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
        except BaseException:
            self.in_flight[index] -= 1
            raise
        # The connection stays this pool's until the body is read: count it until then.
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, lambda: self._release(index)),
            extensions=response.extensions,
        )

    def _release(self, index: int) -> None:
        self.in_flight[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


class _Released(httpx.AsyncByteStream):
    """A response body that calls ``release`` once, when it is closed."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._release is not None:
                release, self._release = self._release, None
                release()


@functools.lru_cache(maxsize=8)
def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS context per process for ``verify`` (True: httpx's CA bundle; a path: that
    bundle; False: no check). Building one loads the whole CA bundle, 39 ms here, and every
    function invocation opens new clients: each would pay it once a pool. A bundle file is
    therefore read once per process; a replaced one takes effect at the next restart."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def make_async_client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: bool | str = True,
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` both vendor clients open when not given one.

    Redirects are not followed: the vendors do not redirect these APIs, and a redirect
    is a place a bearer token could leak. ``verify`` may be a CA bundle path (the
    sandbox's self-signed certificate, ``SEATWARDEN_CA_BUNDLE``), made into the SSL context
    httpx 0.28 asks for (it deprecates a path). Requests go through a ``SpreadTransport``
    unless a transport is given; a proxy from the environment still applies (httpx mounts
    it beside the transport).
    """
    context = ssl_context(verify)
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport if transport is not None else SpreadTransport(verify=context),
        verify=context,
        timeout=httpx.Timeout(timeout),
        headers=dict(headers or {}),
        follow_redirects=False,
    )


class HttpCaller:
    """Sends one logical call through pacing, retries, error mapping and the request log.

    ``map_error`` turns a final non-2xx response into the vendor's ``RemoteError``;
    ``auth`` returns the credential headers for each try (so a token can be renewed
    between tries) and is never logged. ``secrets`` are removed from every message and
    log record this caller writes.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        vendor: str,
        map_error: ErrorMapper,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        log: RequestLog | None = None,
        auth: AuthHook | None = None,
        secrets: Iterable[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.vendor = vendor
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or Pacer()
        self.log = log if log is not None else RequestLog()
        self._map_error = map_error
        self._auth = auth
        self._secrets = tuple(s for s in secrets if s)
        # Values learned while running (bearer tokens): the last few are enough, since a
        # token older than that has expired and no vendor will echo it back.
        self._recent_secrets: deque[str] = deque(maxlen=8)
        self._monotonic = monotonic

    @property
    def secrets(self) -> tuple[str, ...]:
        return (*self._secrets, *self._recent_secrets)

    def add_secret(self, secret: str) -> None:
        """Register one more value (a fresh token) to keep out of logs and messages."""
        if secret and secret not in self._secrets and secret not in self._recent_secrets:
            self._recent_secrets.append(secret)

    async def send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        endpoint_class: str,
        idempotent: bool | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> httpx.Response:
        """Send a call and return its 2xx response, or raise the mapped error.

        ``idempotent`` defaults to the method's nature; pass ``True`` for a POST whose
        repetition is harmless (a search, a membership change, a suspend), so a try that
        timed out after the request left is repeated too.
        """
        response, _ = await self._call(
            method,
            url,
            endpoint_class=endpoint_class,
            idempotent=idempotent,
            json=json,
            params=params,
            headers=headers,
            hint=hint,
            parse=None,
            what=None,
        )
        return response

    async def send_json(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        what: str,
        endpoint_class: str,
        idempotent: bool | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
        decode: Callable[[bytes], Any] = _json.loads,
    ) -> Any:
        """Like ``send``, but parse the body as JSON. A body that does not parse is retried
        (idempotent calls) and then raises ``IncompleteRead`` naming ``what``.

        ``decode`` turns the body's bytes into the value returned, raising ``ValueError``
        when they are not JSON (a pydantic ``model_validate_json`` that raises on bad JSON
        only, for a page that is better parsed straight from bytes)."""
        _, body = await self._call(
            method,
            url,
            endpoint_class=endpoint_class,
            idempotent=idempotent,
            json=json,
            params=params,
            headers=headers,
            hint=hint,
            parse=lambda response: _parse_json(response, decode),
            what=what,
        )
        return body

    async def _call(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        endpoint_class: str,
        idempotent: bool | None,
        json: Any,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        hint: str | None,
        parse: Callable[[httpx.Response], Any] | None,
        what: str | None,
    ) -> tuple[httpx.Response, Any]:
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        request_url = self.client.build_request(method, url, params=params).url
        ctx = CallContext(
            vendor=self.vendor,
            method=method,
            url=redact_text(redact_url(request_url), self.secrets),
            endpoint_class=endpoint_class,
            hint=hint,
            secrets=self.secrets,
        )
        started = self._monotonic()
        retry = self.retry
        tries = 0
        while True:
            tries += 1
            outcome: httpx.Response | Exception
            delay: float | None
            async with self.pacer.slot(endpoint_class):
                try:
                    auth_headers = await self._auth() if self._auth is not None else {}
                    outcome = await self.client.request(
                        method,
                        request_url,
                        json=json,
                        headers={**(headers or {}), **auth_headers},
                        timeout=retry.timeout,
                    )
                except HTTPX_ERRORS as exc:
                    outcome = exc
                except TransportFailed as exc:  # the auth hook could not reach its token endpoint
                    outcome = exc

            if isinstance(outcome, Exception):
                if isinstance(outcome, TransportFailed):
                    sent = _Sent.NO if outcome.retryable else _Sent.FATAL
                else:
                    sent = _classify(outcome)
                may_retry = sent is _Sent.NO or (sent is _Sent.MAYBE and idempotent)
                if may_retry and tries < retry.max_tries:
                    delay = retry.backoff(tries)
                    log.info(
                        "%s %s: %s; try %d of %d in %.2fs",
                        method,
                        ctx.url,
                        type(outcome).__name__,
                        tries + 1,
                        retry.max_tries,
                        delay,
                    )
                    await retry.sleep(delay)
                    continue
                self._record(ctx, request_url, None, started, tries, type(outcome).__name__)
                if isinstance(outcome, TransportFailed):
                    raise outcome
                raise TransportFailed(
                    f"{self.vendor} {_describe_transport(outcome, sent)} "
                    f"after {tries} tr{'y' if tries == 1 else 'ies'}",
                    vendor=self.vendor,
                    method=method,
                    url=ctx.url,
                    secrets=self.secrets,
                ) from outcome

            response = outcome
            status = response.status_code
            if 200 <= status < 300:
                if parse is None:
                    self._record(ctx, request_url, status, started, tries, None)
                    return response, None
                try:
                    body = parse(response)
                except MalformedBody as exc:
                    if idempotent and tries < retry.max_tries:
                        await retry.sleep(retry.backoff(tries))
                        continue
                    self._record(ctx, request_url, status, started, tries, "malformed-body")
                    raise IncompleteRead(what or f"{method} {ctx.url}", str(exc)) from exc
                self._record(ctx, request_url, status, started, tries, None)
                return response, body

            delay = None
            if status == 429:
                # Safe to repeat for any method: a 429 was not applied.
                delay = retry.server_delay(response.headers)
                if delay is None:
                    delay = retry.backoff(tries)
                self.pacer.hold(endpoint_class, delay)
                may_retry = delay <= retry.max_retry_after
            elif status in RETRYABLE_STATUSES and idempotent:
                server = retry.server_delay(response.headers)
                delay = retry.backoff(tries) if server is None else server
                may_retry = delay <= retry.max_retry_after
            else:
                may_retry = False
            if may_retry and delay is not None and tries < retry.max_tries:
                log.info(
                    "%s %s: HTTP %d; try %d of %d in %.2fs",
                    method,
                    ctx.url,
                    status,
                    tries + 1,
                    retry.max_tries,
                    delay,
                )
                await retry.sleep(delay)
                continue

            # Secrets learned during this call (a fresh token) count too.
            error = self._map_error(response, dataclasses.replace(ctx, secrets=self.secrets))
            if status == 429 and delay is not None:
                error.retry_after = delay
            self._record(ctx, request_url, status, started, tries, error.code)
            raise error

    def _record(
        self,
        ctx: CallContext,
        url: httpx.URL,
        status: int | None,
        started: float,
        tries: int,
        error_code: str | None,
    ) -> None:
        path = url.raw_path.decode("ascii", errors="replace")
        self.log.add(
            RequestRecord(
                at=datetime.now(UTC),
                vendor=self.vendor,
                endpoint_class=ctx.endpoint_class,
                method=ctx.method,
                path=redact_text(redact_url(path), self.secrets),
                status=status,
                duration_ms=round((self._monotonic() - started) * 1000.0, 3),
                tries=tries,
                error_code=error_code,
            )
        )


def _parse_json(response: httpx.Response, decode: Callable[[bytes], Any]) -> Any:
    if not response.content:
        raise MalformedBody(f"HTTP {response.status_code} with an empty body where JSON was expected")
    try:
        return decode(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the response body is not valid JSON ({exc.__class__.__name__}: {exc})") from exc


class MembershipChange(enum.Enum):
    """What an idempotent membership write did: it changed something, or found it done.

    Both vendors' clients return it, so the audit trail can say "removed" or "was
    already not a member" instead of pretending every call changed state.
    """

    APPLIED = "applied"
    ALREADY_DONE = "already_done"


# --- paging ------------------------------------------------------------------------------------

# Errors that leave a paged read as themselves rather than as IncompleteRead: each names
# a fix (a setting, a permission) or a recovery (a delta resync, a vanished group) that
# the caller needs to see. They stop a plan all the same.
PASSTHROUGH_ERRORS: tuple[type[RemoteError], ...] = (
    AuthenticationFailed,
    ScopeMissing,
    NotCentralizedUserManagement,
    NotFound,
    GraphAuthError,
    GraphNotFound,
    DeltaResyncRequired,
)


_TURNS_TO_SEND = 8


async def iter_pages(
    fetch: Callable[[str | None], Awaitable[tuple[T, str | None]]],
    *,
    what: str,
    start: str | None = None,
    max_pages: int = 100_000,
    read_ahead: bool = True,
) -> AsyncIterator[T]:
    """Yield pages from ``fetch(cursor) -> (page, next_cursor)`` until there is no next.

    The cursor is whatever the vendor pages with: an opaque string sent back in the body
    or query (Atlassian) or a whole URL (Graph's ``@odata.nextLink``). A cursor seen
    before means the vendor is looping: ``IncompleteRead``. So is a page that fails after
    the retries, except for ``PASSTHROUGH_ERRORS``.

    The next page is asked for as soon as its cursor is known, before this page is
    yielded: what the caller does with a page overlaps the next page's round trip. The
    chain stays serial (one request of it in flight), and a caller that stops early
    leaves at most that one read unanswered, which is cancelled. A caller that wants only
    the first page (a check, a sample) passes ``read_ahead=False``: the next page is then
    asked for only when the caller comes back for it, so no call is spent on a page
    nobody reads.
    """
    seen: set[str] = set()
    cursor = start
    if cursor is not None:
        seen.add(cursor)
    pages = 0
    pending: asyncio.Future[tuple[T, str | None]] | None = asyncio.ensure_future(fetch(cursor))
    try:
        while pending is not None:
            try:
                page, next_cursor = await pending
            except PASSTHROUGH_ERRORS:
                raise
            except IncompleteRead as exc:
                raise IncompleteRead(what, exc.reason, pages_read=pages) from exc
            except RemoteError as exc:
                raise IncompleteRead(what, f"page {pages + 1} failed: {exc}", pages_read=pages) from exc
            pages += 1
            pending = None
            stop: IncompleteRead | None = None
            if next_cursor:
                if next_cursor in seen:
                    stop = IncompleteRead(
                        what,
                        f"the vendor returned a cursor it had already returned (page {pages + 1})",
                        pages_read=pages,
                    )
                elif pages >= max_pages:
                    stop = IncompleteRead(what, f"more than {max_pages} pages; giving up", pages_read=pages)
                elif not read_ahead:
                    seen.add(next_cursor)
                    yield page
                    pending = asyncio.ensure_future(fetch(next_cursor))
                    continue
                else:
                    seen.add(next_cursor)
                    pending = asyncio.ensure_future(fetch(next_cursor))
                    # A task runs only when the loop gets a turn, and a caller busy with a
                    # page gives it none: without these turns the request would leave only
                    # once the caller is done. Through the pacer, httpx and httpcore to the
                    # socket takes four turns (httpx 0.28, httpcore 1.0); eight for margin.
                    # Fewer than needed costs overlap, never correctness.
                    for _ in range(_TURNS_TO_SEND):
                        await asyncio.sleep(0)
            yield page
            if stop is not None:
                raise stop
    finally:
        if pending is not None:
            _abandon(pending)


def _abandon(future: asyncio.Future[Any]) -> None:
    """Cancel a read nobody will wait for, and keep its outcome out of the error log."""
    if future.done():
        if not future.cancelled():
            future.exception()
        return
    future.cancel()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
