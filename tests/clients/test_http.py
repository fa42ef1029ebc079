"""The one retry, pacing and paging policy (shared.http), on scripted vendors and a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import (
    AuthenticationFailed,
    IncompleteRead,
    RemoteError,
    TransportFailed,
)
from shared.http import (
    HTTPX_ERRORS,
    CallContext,
    HttpCaller,
    Pacer,
    RequestLog,
    RetryPolicy,
    iter_pages,
    parse_rate_limit_reset,
    parse_retry_after,
)
from tests.clients.conftest import WALL_START, FakeClock, Vendor

pytestmark = pytest.mark.anyio

API = "https://vendor.test/api"


def plain_error(response: httpx.Response, ctx: CallContext) -> RemoteError:
    return RemoteError(
        "vendor failed", method=ctx.method, url=ctx.url, status=response.status_code, code="X-1"
    )


def caller_for(vendor: Vendor, retry: RetryPolicy, pacer: Pacer, log: RequestLog | None = None) -> HttpCaller:
    client = httpx.AsyncClient(transport=vendor.transport)
    return HttpCaller(client, vendor="test", map_error=plain_error, retry=retry, pacer=pacer, log=log)


# --- headers -----------------------------------------------------------------------------


def test_retry_after_reads_delta_seconds_and_http_dates() -> None:
    now = WALL_START
    assert parse_retry_after("7", now) == 7.0
    http_date = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after(http_date, now) == pytest.approx(42.0)
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_rate_limit_reset_reads_atlassian_iso_and_epoch_forms() -> None:
    now = WALL_START
    later = datetime.fromtimestamp(now, UTC) + timedelta(seconds=90)
    # Atlassian admin APIs: ISO 8601 UTC; the Jira guide's form has minute precision.
    assert parse_rate_limit_reset(later.isoformat().replace("+00:00", "Z"), now) == pytest.approx(90.0)
    minute = (datetime.fromtimestamp(now, UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%MZ")
    assert 60.0 <= parse_rate_limit_reset(minute, now) <= 120.0  # type: ignore[operator]
    assert parse_rate_limit_reset(str(int(now + 30)), now) == pytest.approx(30.0)  # epoch seconds
    assert parse_rate_limit_reset(str(int((now + 30) * 1000)), now) == pytest.approx(30.0)  # epoch ms
    assert parse_rate_limit_reset("12", now) == 12.0  # delta seconds
    assert parse_rate_limit_reset("not a time", now) is None


@given(tries=st.integers(min_value=1, max_value=60), r=st.floats(min_value=0.0, max_value=0.999999))
def test_backoff_is_full_jitter_and_never_exceeds_the_cap(tries: int, r: float) -> None:
    policy = RetryPolicy(random=lambda: r)
    cap = min(policy.max_delay, policy.base_delay * 2 ** (tries - 1))
    assert 0.0 <= policy.backoff(tries) <= cap <= policy.max_delay


# --- retries -----------------------------------------------------------------------------


async def test_429_waits_for_retry_after_then_succeeds(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, clock: FakeClock
) -> None:
    vendor.on(
        "GET", "/api/x", httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={})
    )
    caller = caller_for(vendor, retry, pacer)
    response = await caller.send("GET", f"{API}/x", endpoint_class="t")
    assert response.status_code == 200
    assert clock.sleeps[0] == 3.0
    assert caller.log.records()[-1].tries == 2


async def test_429_waits_for_the_atlassian_reset_header_when_there_is_no_retry_after(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, clock: FakeClock
) -> None:
    reset = (datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=20)).isoformat()
    vendor.on(
        "POST", "/api/search", httpx.Response(429, headers={"X-RateLimit-Reset": reset}), httpx.Response(200)
    )
    caller = caller_for(vendor, retry, pacer)
    await caller.send("POST", f"{API}/search", endpoint_class="t", idempotent=False)
    assert clock.sleeps[0] == pytest.approx(20.0)
    assert len(vendor.requests) == 2  # a 429 was not applied: safe to repeat even a non-idempotent POST


async def test_429_that_asks_for_too_long_a_wait_is_not_slept_on(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, clock: FakeClock
) -> None:
    vendor.on("GET", "/api/x", httpx.Response(429, headers={"Retry-After": "3600"}))
    caller = caller_for(vendor, retry, pacer)
    with pytest.raises(RemoteError) as caught:
        await caller.send("GET", f"{API}/x", endpoint_class="t")
    assert caught.value.retry_after == 3600.0
    assert clock.sleeps == []
    assert len(vendor.requests) == 1


async def test_429_is_retried_a_bounded_number_of_times(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, clock: FakeClock
) -> None:
    vendor.on("GET", "/api/x", httpx.Response(429, headers={"Retry-After": "1"}))
    caller = caller_for(vendor, retry, pacer)
    with pytest.raises(RemoteError) as caught:
        await caller.send("GET", f"{API}/x", endpoint_class="t")
    assert len(vendor.requests) == retry.max_tries
    assert caught.value.status == 429 and caught.value.retry_after == 1.0
    assert caller.log.records()[-1].tries == retry.max_tries


async def test_5xx_backs_off_exponentially_and_stops_after_max_tries(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, clock: FakeClock
) -> None:
    vendor.on("GET", "/api/x", httpx.Response(503))
    caller = caller_for(vendor, retry, pacer)
    with pytest.raises(RemoteError) as caught:
        await caller.send("GET", f"{API}/x", endpoint_class="t")
    assert caught.value.status == 503
    assert len(vendor.requests) == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]  # jitter pinned to its maximum


async def test_5xx_on_a_post_that_may_have_been_applied_is_not_repeated(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("POST", "/api/mail", httpx.Response(500))
    with pytest.raises(RemoteError):
        await caller_for(vendor, retry, pacer).send("POST", f"{API}/mail", endpoint_class="t")
    assert len(vendor.requests) == 1


async def test_5xx_on_an_idempotent_post_is_repeated(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("POST", "/api/members", httpx.Response(502), httpx.Response(204))
    response = await caller_for(vendor, retry, pacer).send(
        "POST", f"{API}/members", endpoint_class="t", idempotent=True
    )
    assert response.status_code == 204 and len(vendor.requests) == 2


async def test_4xx_is_mapped_at_once_without_retry(vendor: Vendor, retry: RetryPolicy, pacer: Pacer) -> None:
    vendor.on("GET", "/api/x", httpx.Response(409, json={"errors": []}))
    with pytest.raises(RemoteError) as caught:
        await caller_for(vendor, retry, pacer).send("GET", f"{API}/x", endpoint_class="t")
    assert caught.value.status == 409 and len(vendor.requests) == 1


async def test_read_timeout_is_retried_for_reads_and_then_mapped(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("GET", "/api/x", httpx.ReadTimeout("slow"))
    with pytest.raises(TransportFailed) as caught:
        await caller_for(vendor, retry, pacer).send("GET", f"{API}/x", endpoint_class="t")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert "timed out" in str(caught.value)
    assert len(vendor.requests) == 5


async def test_read_timeout_on_a_non_idempotent_post_is_not_repeated(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("POST", "/api/mail", httpx.ReadTimeout("slow"))
    with pytest.raises(TransportFailed):
        await caller_for(vendor, retry, pacer).send("POST", f"{API}/mail", endpoint_class="t")
    assert len(vendor.requests) == 1


async def test_connect_error_is_repeated_even_for_a_non_idempotent_post(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("POST", "/api/mail", httpx.ConnectError("refused"), httpx.Response(202))
    response = await caller_for(vendor, retry, pacer).send("POST", f"{API}/mail", endpoint_class="t")
    assert response.status_code == 202 and len(vendor.requests) == 2


async def test_untrusted_certificate_is_not_retried_and_names_the_ca_setting(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("GET", "/api/x", httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"))
    with pytest.raises(TransportFailed) as caught:
        await caller_for(vendor, retry, pacer).send("GET", f"{API}/x", endpoint_class="t")
    assert "SEATWARDEN_CA_BUNDLE" in str(caught.value)
    assert len(vendor.requests) == 1


def _all_subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    found = {root}
    for sub in root.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def _instantiate(cls: type[BaseException], request: httpx.Request) -> BaseException:
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    for attempt in (lambda: cls("boom", request=request), lambda: cls("boom"), lambda: cls()):  # type: ignore[call-arg]
        try:
            return attempt()
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


HTTPX_EXCEPTION_CLASSES = sorted(
    {c for root in HTTPX_ERRORS for c in _all_subclasses(root) if c.__module__.startswith("httpx")},
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("exc_class", HTTPX_EXCEPTION_CLASSES, ids=lambda c: c.__name__)
async def test_every_httpx_exception_maps_to_transport_failed(
    exc_class: type[BaseException], retry: RetryPolicy, pacer: Pacer
) -> None:
    raised: list[BaseException] = []

    def handler(request: httpx.Request) -> httpx.Response:
        exc = _instantiate(exc_class, request)
        raised.append(exc)
        raise exc

    caller = HttpCaller(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        vendor="test",
        map_error=plain_error,
        retry=retry,
        pacer=pacer,
    )
    with pytest.raises(TransportFailed) as caught:
        await caller.send("GET", f"{API}/x", endpoint_class="t")
    assert caught.value.__cause__ is raised[-1]
    assert caught.value.vendor == "test"
    assert caller.log.records()[-1].error_code == exc_class.__name__


def test_the_httpx_exception_list_is_not_empty_and_covers_timeouts() -> None:
    names = {c.__name__ for c in HTTPX_EXCEPTION_CLASSES}
    assert {"ConnectTimeout", "ReadTimeout", "PoolTimeout", "ConnectError", "RemoteProtocolError"} <= names


async def test_malformed_json_is_retried_then_raises_incomplete_read(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("GET", "/api/page", httpx.Response(200, content=b'{"data": [{"accountId": "a'))
    with pytest.raises(IncompleteRead) as caught:
        await caller_for(vendor, retry, pacer).send_json(
            "GET", f"{API}/page", what="a page", endpoint_class="t"
        )
    assert "a page" in str(caught.value) and "not valid JSON" in str(caught.value)
    assert len(vendor.requests) == retry.max_tries


async def test_malformed_json_recovers_when_a_retry_reads_well(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on(
        "GET", "/api/page", httpx.Response(200, content=b'{"da'), httpx.Response(200, json={"data": []})
    )
    body = await caller_for(vendor, retry, pacer).send_json(
        "GET", f"{API}/page", what="p", endpoint_class="t"
    )
    assert body == {"data": []}


# --- the request log and redaction ---------------------------------------------------------------

PLANTED = "s3cr3t-planted-value-123"


async def test_request_log_records_calls_without_secrets(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("GET", "/api/x", httpx.Response(200, json={}))
    log = RequestLog()
    client = httpx.AsyncClient(transport=vendor.transport)

    async def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {PLANTED}"}

    caller = HttpCaller(
        client,
        vendor="test",
        map_error=plain_error,
        retry=retry,
        pacer=pacer,
        log=log,
        auth=auth,
        secrets=[PLANTED],
    )
    await caller.send(
        "GET",
        f"{API}/x",
        endpoint_class="t",
        params={"api_key": PLANTED, "client_secret": PLANTED, "code": PLANTED, "page": "2"},
    )
    assert vendor.requests[0].headers["Authorization"] == f"Bearer {PLANTED}"  # it was sent...
    record = log.records()[0]
    assert PLANTED not in log.to_jsonl()  # ...and never written down
    assert record.path.startswith("/api/x?") and "page=2" in record.path
    assert (record.method, record.status, record.tries, record.vendor) == ("GET", 200, 1, "test")
    assert record.duration_ms >= 0
    line = json.loads(log.to_jsonl().splitlines()[0])
    assert set(line) == {
        "at",
        "vendor",
        "endpoint_class",
        "method",
        "path",
        "status",
        "duration_ms",
        "tries",
        "error_code",
    }


async def test_exception_messages_do_not_carry_planted_secrets(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    def echo_error(response: httpx.Response, ctx: CallContext) -> RemoteError:
        # A vendor that echoes the credential back in its error text.
        return AuthenticationFailed(
            response.text, method=ctx.method, url=ctx.url, status=401, secrets=ctx.secrets
        )

    vendor.on(
        "GET", "/api/x", httpx.Response(401, text=f"bad key {PLANTED}; Authorization: Bearer {PLANTED}")
    )
    caller = HttpCaller(
        httpx.AsyncClient(transport=vendor.transport),
        vendor="test",
        map_error=echo_error,
        retry=retry,
        pacer=pacer,
        secrets=[PLANTED],
    )
    with pytest.raises(AuthenticationFailed) as caught:
        await caller.send("GET", f"{API}/x?token={PLANTED}", endpoint_class="t")
    assert PLANTED not in str(caught.value)
    assert PLANTED not in caught.value.url


def test_request_log_is_bounded() -> None:
    from shared.http import RequestRecord

    log = RequestLog(maxlen=3)
    for i in range(10):
        log.add(RequestRecord(datetime.now(UTC), "v", "c", "GET", f"/{i}", 200, 1.0, 1, None))
    assert [r.path for r in log.records()] == ["/7", "/8", "/9"]


# --- pacing ---------------------------------------------------------------------------------------


async def test_pacer_spaces_requests_to_the_class_rate(clock: FakeClock) -> None:
    pacer = Pacer({"atlassian.events": 10}, clock=clock.monotonic, sleep=clock.sleep)
    started: list[float] = []
    for _ in range(4):
        async with pacer.slot("atlassian.events"):
            started.append(clock.now - WALL_START)
    assert started == pytest.approx([0.0, 6.0, 12.0, 18.0])  # 10 a minute: one every 6 s


async def test_pacer_does_not_slow_unlisted_classes(clock: FakeClock) -> None:
    pacer = Pacer({"atlassian.events": 10}, clock=clock.monotonic, sleep=clock.sleep)
    for _ in range(20):
        async with pacer.slot("atlassian.users_search"):
            pass
    assert clock.sleeps == []


async def test_pacer_burst_allows_that_many_at_once(clock: FakeClock) -> None:
    pacer = Pacer({"c": 60}, burst=3, clock=clock.monotonic, sleep=clock.sleep)
    for _ in range(4):
        async with pacer.slot("c"):
            pass
    assert sum(clock.sleeps) == pytest.approx(1.0)


async def test_pacer_hold_makes_every_task_of_the_class_wait(clock: FakeClock) -> None:
    pacer = Pacer({}, clock=clock.monotonic, sleep=clock.sleep)
    pacer.hold("c", 5.0)
    async with pacer.slot("c"):
        assert clock.now - WALL_START == pytest.approx(5.0)
    async with pacer.slot("other"):
        assert clock.now - WALL_START == pytest.approx(5.0)


async def test_pacer_bounds_concurrency(clock: FakeClock) -> None:
    pacer = Pacer({}, concurrency=2, clock=clock.monotonic, sleep=clock.sleep)
    running = 0
    peak = 0

    async def one() -> None:
        nonlocal running, peak
        async with pacer.slot("c"):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1

    await asyncio.gather(*(one() for _ in range(8)))
    assert peak == 2


async def test_a_429_holds_the_class_for_other_tasks(
    vendor: Vendor, retry: RetryPolicy, clock: FakeClock
) -> None:
    pacer = Pacer({}, clock=clock.monotonic, sleep=clock.sleep)
    vendor.on("GET", "/api/x", httpx.Response(429, headers={"Retry-After": "9"}), httpx.Response(200))
    await caller_for(vendor, retry, pacer).send("GET", f"{API}/x", endpoint_class="c")
    pacer.hold("c", 0)  # no-op: the hold already passed on the shared clock
    before = clock.now
    async with pacer.slot("c"):
        assert clock.now == before


# --- paging ---------------------------------------------------------------------------------------


async def test_iter_pages_follows_cursors_until_there_is_none() -> None:
    pages = {None: ([1, 2], "b"), "b": ([3], "c"), "c": ([4], None)}

    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        return pages[cursor]

    assert [p async for p in iter_pages(fetch, what="numbers")] == [[1, 2], [3], [4]]


async def test_iter_pages_asks_for_the_next_page_while_the_caller_works_on_this_one() -> None:
    pages = {None: ([1], "b"), "b": ([2], "c"), "c": ([3], None)}
    asked: dict[str | None, asyncio.Event] = {c: asyncio.Event() for c in pages}
    in_flight = most = 0

    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        nonlocal in_flight, most
        asked[cursor].set()
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return pages[cursor]

    got = []
    async for page in iter_pages(fetch, what="numbers"):
        following = pages[None if not got else "bc"[len(got) - 1]][1]
        if following:  # the next page's request is out before this page is handled
            await asyncio.wait_for(asked[following].wait(), timeout=1)
        got.append(page)
    assert got == [[1], [2], [3]]
    assert most == 1, "the cursor chain stays serial"


async def test_iter_pages_left_early_cancels_the_page_it_asked_for() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        if cursor is None:
            return [1], "b"
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return [2], None

    pages = iter_pages(fetch, what="numbers")
    async for _ in pages:
        await asyncio.wait_for(started.wait(), timeout=1)
        break
    await pages.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(cancelled.wait(), timeout=1)


async def test_iter_pages_without_read_ahead_asks_only_for_pages_the_caller_comes_back_for() -> None:
    pages = {None: ([1], "b"), "b": ([2], "c"), "c": ([3], None)}
    asked: list[str | None] = []

    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        asked.append(cursor)
        return pages[cursor]

    first = iter_pages(fetch, what="numbers", read_ahead=False)
    async for page in first:
        assert page == [1]
        await asyncio.sleep(0.01)  # turns enough for a read-ahead to have gone out
        break
    await first.aclose()  # type: ignore[attr-defined]
    assert asked == [None], "a caller that stops after one page costs one call"
    assert [p async for p in iter_pages(fetch, what="numbers", read_ahead=False)] == [[1], [2], [3]]


async def test_iter_pages_stops_on_a_repeated_cursor() -> None:
    pages = {None: ([1], "b"), "b": ([2], "c"), "c": ([3], "b")}

    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        return pages[cursor]

    seen: list[list[int]] = []
    with pytest.raises(IncompleteRead) as caught:
        async for page in iter_pages(fetch, what="numbers"):
            seen.append(page)
    assert caught.value.pages_read == 3 and "already returned" in str(caught.value)


async def test_iter_pages_turns_a_failing_page_into_incomplete_read() -> None:
    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        if cursor is None:
            return [1], "b"
        raise RemoteError("HTTP 500 after retries", status=500)

    with pytest.raises(IncompleteRead) as caught:
        async for _ in iter_pages(fetch, what="numbers"):
            pass
    assert caught.value.pages_read == 1
    assert isinstance(caught.value.__cause__, RemoteError)


async def test_iter_pages_lets_configuration_errors_through() -> None:
    async def fetch(cursor: str | None) -> tuple[list[int], str | None]:
        raise AuthenticationFailed("set ATLASSIAN_API_KEY", status=401)

    with pytest.raises(AuthenticationFailed):
        async for _ in iter_pages(fetch, what="numbers"):
            pass
