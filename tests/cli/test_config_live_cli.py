"""`seatwarden config check --live`: the policy file against the configured services."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Shell
from tests.functions.conftest import policies_with, run_function, timer


def _write(tmp_path: Path, shell: Shell, **changes: object) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policies_with(shell.sb, **changes).model_dump(mode="json")))
    return path


def test_a_correct_setup_passes_the_live_check_with_the_groups_member_counts(
    shell: Shell, tmp_path: Path
) -> None:
    # the subscription keeper has run, as it does in Azure every few hours
    shell.monkeypatch.setenv("SEATWARDEN_PUBLIC_URL", "http://127.0.0.1:7071")  # stored only, never called
    shell.monkeypatch.setenv("GRAPH_CLIENT_STATE", "state-for-tests")
    run_function("keep_subscriptions", timer())

    code, out = shell.json("config", "check", str(_write(tmp_path, shell)), "--live")

    assert code == 0, out
    assert out["ok"] is True
    assert out["live"]["ok"] is True
    groups = [c for c in out["live"]["checks"] if c["subject"].startswith("group ")]
    assert groups and all(c["status"] == "ok" for c in groups)
    subscriptions = [c for c in out["live"]["checks"] if c["subject"].startswith("subscription ")]
    assert subscriptions and all(c["status"] == "ok" for c in subscriptions)
    assert shell.changes() == []


def test_a_missing_subscription_is_an_error_that_names_the_keeper(shell: Shell, tmp_path: Path) -> None:
    result = shell.seatwarden("config", "check", str(_write(tmp_path, shell)), "--live")
    assert result.exit_code == 1
    assert "keep_subscriptions" in result.output.replace("\n", "")


def test_a_group_that_does_not_exist_fails_the_live_check_by_name(shell: Shell, tmp_path: Path) -> None:
    path = _write(tmp_path, shell, marker_group="no-such-marker")

    result = shell.seatwarden("config", "check", str(path), "--live")

    assert result.exit_code == 1
    assert "no-such-marker" in result.output
    assert "fix:" in result.output


def test_the_live_check_is_not_tried_on_a_file_with_errors(shell: Shell, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("policies: []\n")
    code, out = shell.json("config", "check", str(path), "--live")
    assert code == 1
    assert "live" not in out
