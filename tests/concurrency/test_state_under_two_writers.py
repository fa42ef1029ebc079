"""User state written by the night and by executors at once: the later truth is what stays."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.services.snapshot import product_key
from shared.store import Queues
from tests.concurrency import Worker, log_in, stop_after_planning
from tests.functions.conftest import World

PRODUCT = "confluence"
MIRRORED = "jira-software"


def test_actions_applied_while_the_night_is_still_saving_keep_their_state(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Executors start on the first message the night enqueues, while the night goes on.
    real_send_many = Queues.send_many
    drained: list[int] = []

    def send_many(self: Queues, queue: str, messages: Any) -> int:
        sent = real_send_many(self, queue, messages)
        if queue == "actions" and threading.current_thread().name == "night" and sent:
            drained.append(Worker("executors", lambda: world.drain("actions")).result())
        return sent

    monkeypatch.setattr(Queues, "send_many", send_many)
    Worker("night", world.nightly).result()
    assert sum(drained) > 0, "the executors ran inside the night"

    sb = world.sb
    acted = {(e.account_id, e.product) for e in world.storage.audit.query(limit=10_000)}
    assert acted
    wrong = {}
    for account_id, product in sorted(acted):
        found = world.storage.users.get(product_key(product), account_id)
        assert found is not None
        state = found[0]
        truth = (
            sb.org.is_licensed(account_id, product),
            account_id in sb.org.members(f"{product}-unlicensed-users"),
        )
        if (state.licensed, state.marked) != truth:
            wrong[account_id] = {"stored": (state.licensed, state.marked), "org": truth}
    assert wrong == {}, "the night wrote what it saw before the actions over what they did"


def test_a_return_relicensed_while_the_night_plans_keeps_its_state(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = world.sb
    product = MIRRORED  # entitled through its Atlassian mirror, so a return needs no stored state
    person = sorted(
        a
        for a in sb.org.members(f"{product}-unlicensed-users") & sb.org.members(f"{product}-user-role")
        if not sb.org.is_licensed(a, product)
    )[0]
    # The first night has read the (empty) stored states and the org, and stops after planning.
    planned, _plans = stop_after_planning(monkeypatch, product)
    night = Worker("night", world.nightly)
    try:
        planned.wait_reached()
        log_in(world, person)
        assert world.drain("returns") == 1
        assert sb.org.is_licensed(person, product), "the return gave the license back"
    finally:
        planned.open()
    night.result()

    found = world.storage.users.get(product_key(product), person)
    assert found is not None
    state = found[0]
    assert (state.licensed, state.marked) == (True, False), "the night wrote its earlier view over the return"
    assert state.licensed_since == sb.clock.now().date()
