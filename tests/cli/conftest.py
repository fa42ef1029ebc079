"""The `seatwarden` command against Azurite and a sandbox org, as an administrator runs it.

Each test gets a small sandbox org, its own table prefix, and the app settings in the
environment, exactly as a shell with `seatwarden` configured would have them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.cli import app as cli
from shared.config import PolicyFile
from shared.settings import Settings
from tests.functions.conftest import policies_with, policy_env


@dataclass
class Shell:
    sb: Any
    env: dict[str, str]
    app: App
    monkeypatch: pytest.MonkeyPatch

    def seatwarden(self, *args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self.seatwarden(*args, "--json")
        assert "Traceback" not in result.output
        return result.exit_code, json.loads(result.stdout)

    def set_policies(self, policies: PolicyFile) -> None:
        self.monkeypatch.setenv("SEATWARDEN_POLICY", policy_env(policies))

    @property
    def storage(self) -> Any:
        return self.app.storage

    def changes(self) -> list[Any]:
        return [c for c in self.sb.changes() if c.system == "atlassian"]


@pytest.fixture
def shell(azurite: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    start = datetime.now(UTC).replace(microsecond=0)
    with Sandbox.start(SandboxConfig(users=150, seed=21, frozen_clock=True, start=start)) as sb:
        env = {
            **sb.env(),
            "AzureWebJobsStorage": azurite,
            "SEATWARDEN_TABLE_PREFIX": table_prefix,
            "SEATWARDEN_POLICY": policy_env(policies_with(sb)),
            "ENTRA_CLIENT_CERT_PATH": "",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Shell(sb, env, App(Settings.from_env(env), clock=sb.clock.now), monkeypatch)
