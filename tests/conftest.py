"""Shared fixtures: one Azurite per test session, started from npm on loopback and always stopped;
sandboxes started per test and always stopped."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox import Sandbox, SandboxConfig
from sandbox.azurite import running_azurite

SANDBOX_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """A connection string to a real Azurite on 127.0.0.1, for the whole session."""
    with running_azurite() as connection_string:
        yield connection_string


@pytest.fixture
def table_prefix() -> str:
    """A fresh prefix per test, so tests sharing one Azurite never see each other's tables."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with config overrides; all are stopped after the test."""
    started: list[Sandbox] = []

    def start(**overrides: Any) -> Sandbox:
        options: dict[str, Any] = {"users": 200, "seed": 7, "start": SANDBOX_START}
        options.update(overrides)
        sandbox = Sandbox.start(SandboxConfig(**options))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()
