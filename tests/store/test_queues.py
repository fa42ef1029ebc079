"""Queues: JSON in base64 as the Functions trigger reads it, poison twins, counts."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from azure.storage.queue import QueueClient

from shared.store import EntityTooLarge, Storage, queue_name
from tests.store import open_storage


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


def test_a_message_round_trips_as_json_and_is_base64_on_the_wire(azurite: str, storage: Storage) -> None:
    message = {"type": "action", "run_id": "conf.1", "action": {"id": "a1", "note": "Grüße ✓"}}
    storage.queues.send("actions", message)
    # What the Functions host sees: the raw message text, base64 of the UTF-8 JSON.
    raw = QueueClient.from_connection_string(azurite, storage.queues.name("actions"))
    peeked = raw.peek_messages(max_messages=1)
    assert json.loads(base64.b64decode(peeked[0].content).decode("utf-8")) == message
    [(received, body)] = storage.queues.receive("actions", max_messages=5)
    assert body == message
    storage.queues.delete("actions", received)
    assert storage.queues.receive("actions") == []


def test_send_many_and_peek_count(storage: Storage) -> None:
    assert storage.queues.send_many("lookups", ({"n": i} for i in range(7))) == 7
    assert storage.queues.peek_count("lookups") == 7
    assert storage.queues.peek_count("returns") == 0
    bodies = sorted(body["n"] for _, body in storage.queues.receive("lookups", max_messages=10))
    assert bodies == list(range(7))


def test_a_delayed_message_is_invisible_until_its_time(storage: Storage) -> None:
    storage.queues.send("graph", {"n": 1}, delay=timedelta(minutes=5))
    assert storage.queues.receive("graph") == []


def test_queue_names_follow_the_prefix_and_the_poison_convention(storage: Storage, table_prefix: str) -> None:
    assert storage.queues.name("actions") == f"{table_prefix}-seatwarden-actions"
    assert storage.queues.name("actions-poison") == f"{table_prefix}-seatwarden-actions-poison"
    assert storage.queues.actions.queue_name == storage.queues.name("actions")
    assert queue_name("", "returns") == "seatwarden-returns"
    assert queue_name("My_Test--Env", "graph") == "mytest-env-seatwarden-graph"
    storage.queues.send("actions-poison", {"n": 1})
    assert storage.queues.peek_count("actions-poison") == 1
    with pytest.raises(ValueError, match="unknown queue"):
        storage.queues.send("nope", {})


def test_a_message_too_large_for_a_queue_is_refused_before_sending(storage: Storage) -> None:
    with pytest.raises(EntityTooLarge):
        storage.queues.send("actions", {"blob": "x" * 50_000})
