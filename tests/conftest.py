"""Shared fixtures: one Azurite per test session, started from npm on loopback and always stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sandbox.azurite import running_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """A connection string to a real Azurite on 127.0.0.1, for the whole session."""
    with running_azurite() as connection_string:
        yield connection_string


@pytest.fixture
def table_prefix() -> str:
    """A fresh prefix per test, so tests sharing one Azurite never see each other's tables."""
    return "t" + uuid.uuid4().hex[:10]
