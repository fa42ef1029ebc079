"""Fixtures for the client tests: anyio on asyncio, a fake clock, scripted HTTP vendors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.http import Pacer, RequestLog, RetryPolicy

WALL_START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class FakeClock:
    """Monotonic and wall time that move only when something sleeps."""

    now: float = WALL_START
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def retry(clock: FakeClock) -> RetryPolicy:
    """Five tries, jitter pinned to its maximum, sleeping on the fake clock."""
    return RetryPolicy(sleep=clock.sleep, random=lambda: 1.0, wall_clock=clock.time)


@pytest.fixture
def pacer(clock: FakeClock) -> Pacer:
    return Pacer({}, clock=clock.monotonic, sleep=clock.sleep)


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


Handler = Callable[[httpx.Request], httpx.Response]


class Vendor:
    """A scripted vendor for httpx.MockTransport: routes by method and path prefix.

    ``on(method, path, *responses)`` queues answers; the last one repeats. A response may
    be an ``httpx.Response``, a callable taking the request, or an exception to raise.
    Every request is kept in ``requests``.
    """

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, list[Any]]] = []
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *responses: Any) -> Vendor:
        self.routes.append((method.upper(), path, list(responses)))
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.raw_path.decode()
        for method, prefix, queue in self.routes:
            if request.method == method and path.startswith(prefix):
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if isinstance(answer, BaseException):
                    raise answer
                if callable(answer):
                    return answer(request)
                return answer
        return httpx.Response(599, json={"unrouted": f"{request.method} {path}"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.raw_path.decode().startswith(path)]


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    yield Vendor()


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None
