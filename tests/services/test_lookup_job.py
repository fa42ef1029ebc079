"""The nightly reconcile in lookup mode is a job: queued batches, then one plan, restart-safe."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.config import PolicyFile
from shared.demo import environment
from shared.settings import Settings
from tests.functions.conftest import policies_with, policy_env, queue_message, run_function, timer


@contextmanager
def lookup_night(azurite: str, table_prefix: str) -> Iterator[tuple[Sandbox, PolicyFile, dict[str, str]]]:
    """A sandbox org whose users read carries no activity, the functions' settings in the
    environment, and the demo policies in report mode."""
    start = datetime.now(UTC).replace(microsecond=0)
    config = SandboxConfig(users=160, seed=4, frozen_clock=True, start=start, activity_in_search=False)
    with Sandbox.start(config) as sb:
        policies = policies_with(sb, mode="report")
        env = {
            **sb.env(),
            "AzureWebJobsStorage": azurite,
            "SEATWARDEN_TABLE_PREFIX": table_prefix,
            "SEATWARDEN_POLICY": policy_env(policies),
            "GRAPH_CLIENT_STATE": secrets.token_hex(8),
            "ENTRA_CLIENT_CERT_PATH": "",
        }
        with environment(env):
            yield sb, policies, env


def test_a_lookup_night_queues_batches_survives_a_restart_and_ends_in_one_plan(
    azurite: str, table_prefix: str
) -> None:
    with lookup_night(azurite, table_prefix) as (sb, policies, env):
        storage = App(Settings.from_env(env)).storage

        run_function("nightly_reconcile", timer())

        def plans() -> list:  # type: ignore[type-arg]
            return [r for r in storage.runs.list() if r.policy != "lookups"]

        assert plans() == [], "no plan before the lookups are done"
        batches = storage.queues.peek_count("lookups")
        assert batches > 1
        assert sb.request_counts().get("last-active", 0) == 0

        # One batch, then a "restart": the rest is still on the queue and carries on.
        (message, body), *_ = storage.queues.receive("lookups", max_messages=1)
        run_function("look_up_activity", queue_message(body))
        storage.queues.delete("lookups", message)
        assert plans() == []

        restarted = App(Settings.from_env(env)).storage
        handled = 1
        while batch := restarted.queues.receive("lookups", max_messages=8):
            for message, body in batch:
                run_function("look_up_activity", queue_message(body))
                restarted.queues.delete("lookups", message)
                handled += 1

        assert handled == batches
        runs = plans()
        assert sorted(r.policy for r in runs) == sorted(p.name for p in policies.policies)
        assert {r.status for r in runs} == {"report"}
        assert any(r.counts.get("INACTIVE") for r in runs), "stored lookups fed the plan"
        looked_up = sb.request_counts()["last-active"]

        # The same night again: every stored date is fresh, so it plans with no lookups.
        run_function("nightly_reconcile", timer())
        assert restarted.queues.peek_count("lookups") == 0
        assert sb.request_counts()["last-active"] == looked_up
        assert len(plans()) == 2 * len(policies.policies)


def test_a_poisoned_lookups_batch_leaves_its_people_alone_and_the_night_still_plans(
    azurite: str, table_prefix: str
) -> None:
    with lookup_night(azurite, table_prefix) as (_sb, policies, env):
        storage = App(Settings.from_env(env)).storage
        run_function("nightly_reconcile", timer())

        # The first batch fails every try: the host moves it to the poison queue.
        (message, given_up), *_ = storage.queues.receive("lookups", max_messages=1)
        storage.queues.delete("lookups", message)
        run_function("record_poisoned_lookups", queue_message(given_up, dequeue_count=5))
        while batch := storage.queues.receive("lookups", max_messages=8):
            for message, body in batch:
                run_function("look_up_activity", queue_message(body))
                storage.queues.delete("lookups", message)

        runs = [r for r in storage.runs.list() if r.policy != "lookups"]
        assert sorted(r.policy for r in runs) == sorted(p.name for p in policies.policies)
        (job,) = [r for r in storage.runs.list() if r.policy == "lookups"]
        assert job.outcomes.get("poisoned") == 1
        unknown = set(given_up["accounts"])
        for run in runs:
            decided = {r["account_id"]: r for r in storage.results.rows(run.run_id)}
            inactive = {a for a, r in decided.items() if r.get("reason") == "INACTIVE"}
            assert not inactive & unknown, "nobody whose lookup was given up on is idle"
        assert any(r.counts.get("INACTIVE") for r in runs), "the others were planned"
