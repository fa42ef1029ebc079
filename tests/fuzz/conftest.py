"""Bad input against the HTTP functions and the policy loader: the harness.

What every fuzz test here proves, input by input:

- never a 5xx: the function returns (an exception is the host's 500) with a status below 500;
- never a state change: every request the app's storage clients make is recorded
  (`StorageWrites`), so a refused input must have made no write at all, and an accepted one
  exactly the writes its answer owns up to; each test also compares every table, every queue
  and the sandbox's change log before and after its inputs (`Fuzzed.unchanged`);
- always a clear error: a refused input gets a JSON `{"error": "..."}` (or the self-service
  page) that names the problem, never a traceback.

How many inputs each test tried goes to out/fuzz-counts.json when the session ends (the
README quotes a `make test` run). `HYPOTHESIS_PROFILE=soak` (what `make soak` sets) multiplies
every test's examples by `SOAK_FACTOR`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, settings

from shared import bootstrap
from shared.store import Storage
from shared.store.queues import POISON_SUFFIX, QUEUE_KINDS
from tests.functions.conftest import World, opened_world, run_function

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
SOAK_FACTOR = 20
COUNTS_FILE = Path(__file__).resolve().parents[2] / "out" / "fuzz-counts.json"

#: How many inputs each test tried in this session, and how each was answered.
TRIED: Counter[str] = Counter()
OUTCOMES: dict[str, Counter[str]] = {}


def fuzz_settings(examples: int) -> settings:
    """`examples` inputs (times SOAK_FACTOR under the soak profile); no deadline: Azurite's
    latency is not the code's."""
    return settings(
        max_examples=examples * (SOAK_FACTOR if PROFILE == "soak" else 1),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def tried(name: str, outcome: object = None) -> None:
    """Count one input of `name`; `outcome` (a status, an exit code) is counted beside it."""
    TRIED[name] += 1
    if outcome is not None:
        OUTCOMES.setdefault(name, Counter())[str(outcome)] += 1


@pytest.fixture(scope="session", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    if not TRIED:
        return
    COUNTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "profile": PROFILE,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": sum(TRIED.values()),
        "inputs": dict(sorted(TRIED.items())),
        "outcomes": {name: dict(sorted(counts.items())) for name, counts in sorted(OUTCOMES.items())},
    }
    COUNTS_FILE.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


# ---- what the app's storage clients did --------------------------------------------------


@dataclass
class StorageWrites:
    """Every storage request that could change something (anything but GET and HEAD)."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    def hook(self, pipeline_request: Any) -> None:
        request = pipeline_request.http_request
        if request.method not in ("GET", "HEAD"):
            self.requests.append((request.method, urlsplit(request.url).path))

    def clear(self) -> None:
        self.requests.clear()

    @property
    def queue_sends(self) -> int:
        return sum(1 for method, path in self.requests if method == "POST" and path.endswith("/messages"))

    @property
    def table_writes(self) -> int:
        return len(self.requests) - self.queue_sends


@dataclass
class State:
    """Every table row, every queued message and the sandbox's change count, to compare."""

    tables: dict[str, list[dict[str, Any]]]
    queues: dict[str, list[str]]
    sandbox_changes: int

    @classmethod
    def read(cls, world: World) -> State:
        storage = world.storage
        service = TableServiceClient.from_connection_string(world.env["AzureWebJobsStorage"])
        tables = {}
        for name in storage.table_names.values():
            rows = [
                {k: str(v) for k, v in entity.items() if k != "Timestamp"}
                for entity in service.get_table_client(name).list_entities()
            ]
            tables[name] = sorted(rows, key=lambda r: (r["PartitionKey"], r["RowKey"]))
        queues = {}
        for kind in QUEUE_KINDS:
            for queue in (kind, kind + POISON_SUFFIX):
                peeked = storage.queues.client(queue).peek_messages(max_messages=32)
                queues[queue] = sorted(m.content for m in peeked)
        return cls(tables, queues, len(world.sb.changes()))


class Fuzzed:
    """A world whose storage records its writes, and the calls the fuzz tests make into it."""

    def __init__(self, world: World, writes: StorageWrites) -> None:
        self.world = world
        self.writes = writes

    def __repr__(self) -> str:  # a failing example prints its arguments: not the world's secrets
        return "Fuzzed(...)"

    def call(self, function_name: str, request: func.HttpRequest) -> func.HttpResponse:
        """The function's answer; an exception (the host's 500) or a 5xx fails the input."""
        self.writes.clear()
        try:
            response = run_function(function_name, request)
        except Exception as exc:
            raise AssertionError(
                f"{function_name} raised {type(exc).__name__}: the host answers 500"
            ) from exc
        assert response.status_code < 500, (response.status_code, response.get_body()[:500])
        return response

    def refused_clearly(self, response: func.HttpResponse) -> str:
        """A 4xx that changed nothing and says why in JSON; returns the reason."""
        assert 400 <= response.status_code < 500, response.status_code
        assert self.writes.requests == [], f"a refused input wrote to storage: {self.writes.requests}"
        body = json.loads(response.get_body())
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
        assert "Traceback" not in body["error"] and 'File "' not in body["error"], body
        return str(body["error"])

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        """Every table, every queue and the sandbox's change log are the same after the block."""
        before = State.read(self.world)
        yield
        assert State.read(self.world) == before


@pytest.fixture(scope="module")
def fuzzed(azurite: str) -> Iterator[Fuzzed]:
    """One world per module (a sandbox org, Azurite, the app settings), its storage instrumented."""
    prefix = "fz" + uuid.uuid4().hex[:10]
    with opened_world(azurite, prefix, WEBSITE_AUTH_ENABLED="true") as world:
        writes = StorageWrites()
        storage = Storage.from_connection_string(
            world.env["AzureWebJobsStorage"], prefix=prefix, raw_request_hook=writes.hook
        )
        storage.ensure()
        bootstrap._STORAGE[(world.env["AzureWebJobsStorage"], prefix)] = storage
        world.app._storage = storage
        writes.clear()
        yield Fuzzed(world, writes)
