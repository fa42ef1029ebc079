"""Dry runs, approvals and applying from the terminal; run history; the IdP CSV export."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.model import REVOKING_REASONS, Action, Facts, GroupRole, Op, OpKind, Plan, Reason, Via
from shared.services.admin import ENTRA_CSV_HEADER, ENTRA_CSV_VERSION
from shared.services.reconcile import Reconciler
from tests.cli.conftest import Shell
from tests.functions.conftest import policies_with


def test_plan_is_a_dry_run_that_saves_report_runs_and_changes_nothing(shell: Shell) -> None:
    code, out = shell.json("plan")

    assert code == 0
    assert {r["status"] for r in out["runs"]} == {"report"}
    assert out["actions"], "a generated org always has something to do"
    assert {a["reason"] for a in out["actions"]} <= {r.value for r in Reason}
    assert shell.changes() == []
    for run in out["runs"]:
        saved = [r for r in shell.storage.results.rows(run["run_id"]) if r["action_id"]]
        assert len(saved) == sum(run["counts"].values())


def test_plan_of_one_policy_plans_only_that_policy(shell: Shell) -> None:
    code, out = shell.json("plan", "--policy", "confluence")
    assert code == 0
    assert [r["policy"] for r in out["runs"]] == ["confluence"]
    assert {a["policy"] for a in out["actions"]} == {"confluence"}


def test_plan_of_an_unknown_policy_names_it_and_exits_1(shell: Shell) -> None:
    result = shell.seatwarden("plan", "--policy", "nope")
    assert result.exit_code == 1
    assert "nope" in result.output


def test_apply_of_a_reviewed_dry_run_makes_the_planned_changes_with_an_audit_entry_each(
    shell: Shell,
) -> None:
    _, planned = shell.json("plan", "--policy", "confluence")
    run_id = planned["runs"][0]["run_id"]

    code, out = shell.json("apply", run_id, "--yes")

    assert code == 0, out
    assert out["status"] == "done"
    applied = out["outcomes"].get("applied", 0)
    assert applied == len(planned["actions"]) - sum(
        out["outcomes"].get(k, 0) for k in ("skipped", "unchanged", "waiting")
    )
    entries = [e for e in shell.storage.audit.query(limit=10_000) if e.run_id == run_id]
    assert len([e for e in entries if e.action != "APPLY_RUN"]) == applied
    assert [e.actor.startswith("cli") for e in entries] == [True] * len(entries)
    touched = {c.details["account_id"] for c in shell.changes()}
    assert touched == {
        a["account_id"]
        for a in planned["actions"]
        if shell.storage.results.get(run_id, a["account_id"])["outcome"] == "applied"
    }


def test_applying_again_changes_nothing_more(shell: Shell) -> None:
    _, planned = shell.json("plan", "--policy", "confluence")
    run_id = planned["runs"][0]["run_id"]
    shell.json("apply", run_id, "--yes")
    changes = len(shell.changes())

    result = shell.seatwarden("apply", run_id, "--yes")

    assert result.exit_code == 1
    assert "done" in result.output
    assert len(shell.changes()) == changes


def test_apply_without_yes_and_without_a_terminal_refuses_and_changes_nothing(shell: Shell) -> None:
    _, planned = shell.json("plan", "--policy", "confluence")
    result = shell.seatwarden("apply", planned["runs"][0]["run_id"])
    assert result.exit_code == 2
    assert "--yes" in result.output
    assert shell.changes() == []


def test_a_plan_over_the_blast_radius_exits_3_and_applying_it_needs_approve(shell: Shell) -> None:
    shell.set_policies(policies_with(shell.sb, blast_radius={"max_revocations": 1}))
    code, planned = shell.json("plan", "--policy", "confluence")
    assert code == 3
    run_id = planned["runs"][0]["run_id"]
    assert planned["runs"][0]["verdict"]["held"] is True

    refused = shell.seatwarden("apply", run_id, "--yes")
    assert refused.exit_code == 3
    assert "--approve" in refused.output
    assert shell.changes() == []

    code, out = shell.json("apply", run_id, "--approve", "--yes")
    assert code == 0
    assert out["outcomes"].get("applied", 0) > 0
    assert [e.run_id for e in shell.storage.audit.query(action="APPROVE_RUN")] == [run_id]


def test_approve_queues_a_held_runs_actions_for_the_executor_once(shell: Shell) -> None:
    policies = policies_with(shell.sb, mode="enforce", blast_radius={"max_revocations": 1})

    async def nightly():  # type: ignore[no-untyped-def]
        async with shell.app.clients() as (atlassian, graph):
            return await Reconciler(shell.storage, atlassian, graph, shell.app.clock).run(
                policies.policies[:1]
            )

    held = asyncio.run(nightly()).outcomes[0]
    assert held.status == "held"

    code, out = shell.json("approve", held.run_id, "--yes")
    assert code == 0
    assert out["enqueued"] == shell.storage.queues.peek_count("actions") == sum(held.counts.values())
    assert shell.changes() == []  # the executor function applies them, not the approval

    again = shell.seatwarden("approve", held.run_id, "--yes")
    assert again.exit_code == 1
    assert "not held" in again.output


def test_runs_list_and_show_give_scripts_the_runs_and_every_per_person_result(shell: Shell) -> None:
    _, planned = shell.json("plan")
    code, runs = shell.json("runs", "list")
    assert code == 0
    assert {r["run_id"] for r in runs} == {r["run_id"] for r in planned["runs"]}

    run_id = planned["runs"][0]["run_id"]
    code, shown = shell.json("runs", "show", run_id)
    assert code == 0
    assert shown["run"]["run_id"] == run_id
    assert shown["results"] == shell.storage.results.rows(run_id)

    table = shell.seatwarden("runs", "show", run_id)
    assert table.exit_code == 0
    assert run_id in table.output


def test_runs_show_of_an_unknown_run_says_so_without_a_traceback(shell: Shell) -> None:
    result = shell.seatwarden("runs", "show", "confluence.0000000000001")
    assert result.exit_code == 1
    assert "no run" in result.output
    assert "Traceback" not in result.output


def test_export_idp_csv_writes_an_entra_bulk_remove_file_per_synced_group(
    shell: Shell, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    run = shell.storage.runs.create("confluence", "confluence", "enforce", now)
    removal = Op(OpKind.REMOVE, GroupRole.ACCESS, "g-synced-access", Via.CSV)
    actions = tuple(
        Action(
            f"id-{i}",
            "confluence",
            "confluence",
            f"acc-{i}",
            Reason.REVOKE_UNENTITLED,
            (removal,),
            Facts(False, True, False, email=f"person{i}@example.com"),
        )
        for i in range(3)
    )
    shell.storage.results.save_plan(run.run_id, Plan("confluence", "confluence", now, actions))
    assert all(a.reason in REVOKING_REASONS for a in actions)

    code, out = shell.json("export", "idp-csv", run.run_id, "--out", str(tmp_path))

    assert code == 0
    [written] = out["files"]
    assert written["members"] == 3
    path = Path(written["file"])
    assert path.name == "confluence-users.csv"  # named after the policy's access group
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == [ENTRA_CSV_VERSION]
    assert rows[1] == [ENTRA_CSV_HEADER]
    assert [r[0] for r in rows[2:]] == [f"person{i}@example.com" for i in range(3)]


def test_audit_lists_the_trail_by_person_action_and_day(shell: Shell) -> None:
    _, planned = shell.json("plan", "--policy", "confluence")
    run_id = planned["runs"][0]["run_id"]
    shell.json("apply", run_id, "--yes")
    person = next(a for a in planned["actions"] if a["reason"] == "INACTIVE")["account_id"]
    today = datetime.now(UTC).date()

    code, mine = shell.json("audit", "--account", person)
    _, inactive = shell.json("audit", "--action", "inactive", "--limit", "1000")
    _, tomorrow = shell.json("audit", "--since", (today + timedelta(days=1)).isoformat())
    _, until_today = shell.json("audit", "--until", today.isoformat(), "--limit", "1000")

    assert code == 0
    assert [e["account_id"] for e in mine] == [person]
    assert mine[0]["action"] == "INACTIVE" and mine[0]["run_id"] == run_id
    assert inactive and {e["action"] for e in inactive} == {"INACTIVE"}
    assert tomorrow == []
    assert len(until_today) == len(shell.storage.audit.query(limit=1000))
    bad = shell.seatwarden("audit", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output


def test_a_plan_superseded_by_a_newer_plan_is_neither_approved_nor_applied(shell: Shell) -> None:
    _, first = shell.json("plan", "--policy", "confluence")
    _, second = shell.json("plan", "--policy", "confluence")
    stale, fresh = first["runs"][0]["run_id"], second["runs"][0]["run_id"]

    refused = shell.seatwarden("apply", stale, "--yes")

    assert refused.exit_code == 1
    assert "superseded" in refused.output and fresh in refused.output.replace("\n", "")
    assert shell.changes() == []


def test_report_writes_the_html_report_of_the_runs_and_names_an_unknown_policy(
    shell: Shell, tmp_path: Path
) -> None:
    _, planned = shell.json("plan")
    out = tmp_path / "r" / "report.html"

    written = shell.seatwarden("report", "--out", str(out))
    unknown = shell.seatwarden("report", "--out", str(tmp_path / "x.html"), "--policy", "nope")

    assert written.exit_code == 0, written.output
    page = out.read_text(encoding="utf-8")
    assert all(f">{run['policy']}<" in page for run in planned["runs"])
    assert unknown.exit_code == 1
    assert "nope" in unknown.output
    assert not (tmp_path / "x.html").exists()
