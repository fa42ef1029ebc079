"""`seatwarden diagnose`: the calls the last run made, retries and errors, and no secrets."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.cli import app as cli
from shared.services.reconcile import Reconciler
from shared.settings import Settings
from tests.services.test_snapshot_reader import mirror_policies


def test_diagnose_shows_the_last_runs_calls_and_retries_without_the_api_key(
    azurite: str, table_prefix: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with Sandbox.start(SandboxConfig(users=120, seed=2, frozen_clock=True)) as sb:
        env = {**sb.env(), "AzureWebJobsStorage": azurite, "SEATWARDEN_TABLE_PREFIX": table_prefix}
        app = App(Settings.from_env(env), clock=sb.clock.now)
        sb.faults.inject(kind="5xx", path_contains="/users/search", count=1, status=503)

        async def reconcile() -> None:
            client = app.atlassian()
            try:
                await Reconciler(app.storage, client, None, app.clock).run(mirror_policies(), mode="report")
            finally:
                await client.aclose()

        asyncio.run(reconcile())
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(cli, ["diagnose", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    searches = [c for c in report["calls"] if c["endpoint_class"] == "atlassian.users_search"]
    assert len(searches) == 2  # 120 people in pages of 100
    assert max(c["tries"] for c in searches) == 2  # the 503 was retried
    assert sb.api_key not in result.output
    assert "Bearer" not in result.output
