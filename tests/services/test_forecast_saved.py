"""Each run keeps, beside its plan, who is due to lose a license within the warning period."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.forecast import Due
from shared.services.reconcile import Reconciler
from shared.settings import Settings
from tests.services.test_snapshot_reader import mirror_policies


def test_a_reconcile_saves_the_people_due_within_the_horizon_and_none_decided_tonight(
    azurite: str, table_prefix: str
) -> None:
    with Sandbox.start(SandboxConfig(users=400, seed=5, frozen_clock=True)) as sb:
        env = {**sb.env(), "AzureWebJobsStorage": azurite, "SEATWARDEN_TABLE_PREFIX": table_prefix}
        app = App(Settings.from_env(env), clock=sb.clock.now)

        async def reconcile():  # type: ignore[no-untyped-def]
            client = app.atlassian()
            try:
                return await Reconciler(app.storage, client, None, app.clock).run(
                    mirror_policies(days=60), mode="report"
                )
            finally:
                await client.aclose()

        report = asyncio.run(reconcile())
        today = sb.clock.now().date()

    for outcome in report.outcomes:
        assert outcome.run_id
        due = [Due.from_dict(d) for d in app.storage.dues.load(outcome.run_id)]
        decided = {row["account_id"] for row in app.storage.results.rows(outcome.run_id)}
        assert due, f"a 400-person org has someone due within a week in {outcome.policy}"
        assert all(today < d.due_on <= today + timedelta(days=7) for d in due)
        assert not decided & {d.account_id for d in due}
        assert [d.due_on for d in due] == sorted(d.due_on for d in due)
