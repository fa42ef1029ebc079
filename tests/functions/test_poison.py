"""The poison-queue function records an action the host gave up on against its run."""

from __future__ import annotations

from tests.functions.conftest import World, queue_message, run_function


def test_the_poison_function_records_a_poisoned_action_against_its_run(world: World) -> None:
    world.nightly()
    (message, body), *_ = world.storage.queues.receive("actions", max_messages=1)
    person = body["action"]["account_id"]

    run_function("record_poisoned_action", queue_message(body, message.id, dequeue_count=5))

    result = world.storage.results.get(body["run_id"], person)
    assert result is not None and result["outcome"] == "poisoned"
    assert "5 tries" in result.get("detail", "")
    assert world.storage.runs.get(body["run_id"]).outcomes.get("poisoned") == 1


def test_a_poisoned_message_that_is_not_an_action_is_dropped_quietly(world: World) -> None:
    run_function("record_poisoned_action", queue_message({"type": "something else"}, dequeue_count=5))
    run_function("record_poisoned_action", queue_message("not even an object", dequeue_count=5))
