"""The poison-queue functions: an action the host gave up on is recorded against its run, and
every other poisoned message is logged as an error naming it."""

from __future__ import annotations

import logging

import pytest

from shared.store import POISON_SUFFIX, QUEUE_KINDS
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


@pytest.mark.parametrize(
    ("function", "kind"),
    [
        ("record_poisoned_return", "returns"),
        ("record_poisoned_graph_change", "graph"),
        ("record_poisoned_warnings", "warnings"),
        ("record_poisoned_preview", "previews"),
    ],
)
def test_every_other_poison_queue_is_logged_as_an_error_naming_the_message(
    function: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="seatwarden.functions"):
        run_function(function, queue_message({"type": "relicense"}, "msg-7", dequeue_count=5))
        run_function(function, queue_message("not an object", "msg-8", dequeue_count=5))
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lines == [
        f"poisoned {kind} message msg-7 (relicense) after 5 tries",
        f"poisoned {kind} message msg-8 (not JSON) after 5 tries",
    ]


def test_every_work_queue_has_a_poison_handler() -> None:
    """Each queue the app works from has a function on its -poison twin (the alert counts them)."""
    import function_app
    from sandbox.funcserver import registered

    poison_queues = {
        binding.queue_name  # type: ignore[attr-defined]
        for f in registered(function_app.app)
        if f.get_function_name().startswith("record_poisoned_")
        for binding in f.get_bindings()
        if binding.type == "queueTrigger"
    }
    assert poison_queues == {f"seatwarden-{kind}{POISON_SUFFIX}" for kind in QUEUE_KINDS}
