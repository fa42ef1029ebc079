"""The `seatwarden` command: exit codes scripts can rely on, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import app

runner = CliRunner()

GOOD = """
policies:
  - name: confluence
    product: confluence
    entitlement: {atlassian_group: confluence-user-role}
    access_group: confluence-users
    marker_group: confluence-unlicensed-users
"""

BAD = """
policies:
  - name: Confluence
    product: confluense
    entitlement: {atlassian_group: confluence-user-role}
    access_group: confluence-users
    marker_group: confluence-guests
    inactive_after_days: 0
"""


def test_config_check_passes_a_good_policy_with_exit_code_0(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(GOOD)
    result = runner.invoke(app, ["config", "check", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0, result.output


def test_config_check_lists_every_problem_as_json_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BAD)
    result = runner.invoke(app, ["config", "check", str(tmp_path / "p.yaml"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    fields = {p["field"] for p in report["problems"]}
    assert {"policies[0].name", "policies[0].product", "policies[0].inactive_after_days"} <= fields
    assert "Traceback" not in result.output


def test_config_check_of_a_missing_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_audit_verify_without_storage_names_the_missing_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("SEATWARDEN_STORAGE", raising=False)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 2
    assert "AzureWebJobsStorage" in result.output


def test_audit_verify_on_an_intact_trail_exits_0(azurite: str, table_prefix: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shared.store import Storage

    storage = Storage.from_connection_string(azurite, prefix=table_prefix)
    storage.ensure()
    storage.audit.append(actor="test", action="GRANT", product="confluence", account_id="a")
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("SEATWARDEN_TABLE_PREFIX", table_prefix)
    result = runner.invoke(app, ["audit", "verify", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "entries": 1, "problems": []}
