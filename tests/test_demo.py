"""`seatwarden demo`: the whole product on one machine ends as the README says it does."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import app

KEYS = {
    "run_id",
    "users",
    "licensed_before",
    "licensed_after",
    "actions",
    "api_calls",
    "audit_entries",
    "relicense_seconds",
}


def test_the_demo_relicenses_a_returning_person_grants_an_entra_newcomer_and_writes_the_report(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.html"

    result = CliRunner().invoke(app, ["demo", "--users", "150", "--json", "--report", str(report)])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert KEYS <= summary.keys()
    assert summary["users"] == 150
    assert summary["relicensed"] is True
    assert summary["entra_granted"] is True
    assert summary["audit_intact"] is True
    assert summary["audit_entries"] >= sum(summary["actions"].values()) > 0
    assert summary["relicense_seconds"] < 3
    assert summary["report"] == str(report.resolve())
    assert report.read_text(encoding="utf-8").lower().startswith("<!doctype html>")
