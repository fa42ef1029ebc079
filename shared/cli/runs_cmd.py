"""Dry runs, approvals and applying; run history; the IdP CSV export.

seatwarden plan                 read the org, plan every policy, change nothing (a `report` run)
seatwarden approve RUN          release a held run to the executor functions (the queue)
seatwarden apply RUN            apply a dry run's or an approved run's actions from here, now
seatwarden runs list | show RUN run history and per-person results
seatwarden export idp-csv RUN   removals an Entra admin must make, one CSV per group
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.cli._common import (
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_OK,
    actor,
    confirm,
    err,
    failures_as_exit_codes,
    open_app,
    output_format,
    print_json,
    progress_bar,
    render,
    run,
)
from shared.services.admin import AdminService, NotApprovable, RunHeld

runs_app = typer.Typer(no_args_is_help=True, help="Run history and per-person results.")
export_app = typer.Typer(no_args_is_help=True, help="Exports for other systems.")

PolicyFileOption = Annotated[
    Path | None,
    typer.Option("--policies", help="a policy file; default: SEATWARDEN_POLICY or SEATWARDEN_POLICY_FILE"),
]

ACTION_COLUMNS = ["policy", "account_id", "email", "reason", "idle_days", "last_active", "threshold", "ops"]
RUN_COLUMNS = [
    "run_id",
    "policy",
    "mode",
    "status",
    "started_at",
    "actions",
    "applied",
    "failed",
    "poisoned",
    "licensed_before",
    "licensed_after",
]
RESULT_COLUMNS = ["account_id", "email", "reason", "outcome", "idle_days", "detail"]

#: A table shows this many actions per policy; --json and --csv give them all.
TABLE_ROWS = 50


def _ops_text(ops: list[dict[str, Any]]) -> str:
    """`remove access; add marker`, with `via entra`/`via csv` where the change is not made in Atlassian."""
    return "; ".join(
        f"{o['kind']} {o.get('role') or ''} {'via ' + o['via'] if o['via'] != 'atlassian' else ''}".strip()
        for o in ops
    )


def _action_row(row: dict[str, Any]) -> dict[str, Any]:
    facts = row.get("facts") or {}
    return {
        "run_id": row["run_id"],
        "policy": row["policy"],
        "account_id": row["account_id"],
        "email": facts.get("email", ""),
        "reason": row["reason"],
        "idle_days": facts.get("idle_days"),
        "last_active": facts.get("last_active"),
        "threshold": facts.get("threshold_days"),
        "ops": _ops_text(row.get("ops") or []),
        "outcome": row["outcome"],
        "detail": row["detail"],
    }


def _run_row(r: Any) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "policy": r.policy,
        "mode": r.mode,
        "status": r.status,
        "started_at": r.started_at.isoformat(timespec="seconds"),
        "actions": r.actions_total,
        "applied": r.actions_applied,
        "failed": r.actions_failed,
        "poisoned": r.actions_poisoned,
        "licensed_before": r.licensed_before,
        "licensed_after": r.licensed_after,
    }


def plan(
    policy: Annotated[
        list[str] | None, typer.Option("--policy", help="only this policy (repeatable)")
    ] = None,
    policies_file: PolicyFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="the runs and every action, as JSON")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="every action, as CSV")] = False,
) -> None:
    """A dry run: read the org, plan every policy, show the actions and their reasons.

    Nothing changes in Atlassian or Entra. Each policy's plan is saved as a `report` run, which
    `seatwarden apply RUN` can apply once reviewed. Exit 3 if a plan is over the blast radius.
    """
    from shared.services.reconcile import Reconciler

    fmt = output_format(as_json, as_csv)
    with failures_as_exit_codes():
        app = open_app(policies_file)
        chosen = [p for p in app.policies.policies if not policy or p.name in policy]
        unknown = sorted(set(policy or ()) - {p.name for p in app.policies.policies})
        if unknown:
            err.print(f"[red]error:[/red] no policy named {', '.join(unknown)}")
            raise typer.Exit(EXIT_FAILED)

        async def work() -> Any:
            async with app.clients() as (atlassian, graph):
                with progress_bar(quiet=fmt != "table") as bar:
                    return await Reconciler(app.storage, atlassian, graph, app.clock, holder="cli-plan").run(
                        chosen, mode="report", enqueue=False, lookups="inline", progress=bar
                    )

        report = run(work)
        rows = [
            _action_row(r)
            for o in report.outcomes
            if o.run_id
            for r in app.storage.results.rows(o.run_id)
            if r["action_id"]
        ]
    held = [o for o in report.outcomes if o.verdict.get("held")]
    if fmt == "json":
        print_json({"runs": [o.to_dict() for o in report.outcomes], "actions": rows})
    elif fmt == "csv":
        render(rows, ["run_id", *ACTION_COLUMNS], "csv")
    else:
        for o in report.outcomes:
            mine = [r for r in rows if r["policy"] == o.policy]
            if mine:
                render(mine[:TABLE_ROWS], ACTION_COLUMNS[1:], "table", title=f"{o.policy}: planned actions")
            more = len(mine) - TABLE_ROWS
            err.print(
                f"[bold]{o.policy}[/bold] run {o.run_id or '-'}: {o.status}; {sum(o.counts.values())} "
                f"actions {o.counts}; licensed {o.licensed_before} -> {o.licensed_after}; {o.why}"
                + (f"; {more} more actions: --json or --csv for all" if more > 0 else ""),
                highlight=False,
            )
        if held:
            err.print("[yellow]over the blast radius[/yellow]: enforcing would hold these runs for approval")
        if any(o.run_id for o in report.outcomes):
            err.print("to apply a plan after review: seatwarden apply RUN")
    raise typer.Exit(EXIT_HELD if held else EXIT_OK)


def approve(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="a held run's id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approve a held run: its saved actions go on the queue for the executor functions."""
    with failures_as_exit_codes():
        app = open_app()
        admin = AdminService(app.storage, app.clock)
        held = admin.run(run_id)
        if held.status != "held":
            err.print(f"[red]error:[/red] run {run_id} is {held.status}, not held")
            raise typer.Exit(EXIT_FAILED)
        err.print(
            f"run {run_id} ({held.policy}): {held.counts}; {held.verdict.get('why', '')}", highlight=False
        )
        confirm(f"approve run {run_id} and queue its {held.actions_total} actions", yes)
        try:
            count = admin.approve(run_id, actor())
        except NotApprovable as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        print_json({"run_id": run_id, "enqueued": count})
    else:
        err.print(
            f"approved: {count} actions queued for the executor function "
            f"(or apply them from here: seatwarden apply {run_id})"
        )
    raise typer.Exit(EXIT_OK)


def apply(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="a dry run, held run or run being applied")],
    approve_held: Annotated[
        bool, typer.Option("--approve", help="approve a run over the blast radius and apply it")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply a run's saved actions now, from here, each re-checked against current state.

    A dry run (`seatwarden plan`) within the blast radius is applied once confirmed; a run over
    the blast radius needs `--approve` (exit 3 without). An interrupted apply resumes.
    """
    from shared.services.execute import Executor

    with failures_as_exit_codes():
        app = open_app()
        admin = AdminService(app.storage, app.clock)
        try:
            chosen = admin.appliable(run_id, approve=approve_held)
        except RunHeld as exc:
            err.print(f"[yellow]held:[/yellow] {exc} (--approve)", highlight=False)
            raise typer.Exit(EXIT_HELD) from None
        except NotApprovable as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(EXIT_FAILED) from None
        err.print(f"run {run_id} ({chosen.policy}, {chosen.status}): {chosen.counts}", highlight=False)
        confirm(f"apply the actions of run {run_id} to Atlassian now", yes)
        who = actor()

        async def work() -> dict[str, int]:
            async with app.clients() as (atlassian, graph):
                executor = Executor(app.storage, atlassian, graph, app.clock, actor=who)
                with progress_bar(quiet=as_json) as bar:
                    return await admin.apply(
                        run_id,
                        executor,
                        who,
                        approve=approve_held,
                        progress=lambda done, total: bar("actions", done, total),
                    )

        outcomes = run(work)
        after = admin.run(run_id)
    failed = outcomes.get("failed", 0) + outcomes.get("error", 0)
    if as_json:
        print_json({"run_id": run_id, "status": after.status, "outcomes": outcomes})
    else:
        err.print(f"run {run_id}: {after.status}; outcomes {outcomes}", highlight=False)
        if outcomes.get("error"):
            err.print(
                f"{outcomes['error']} actions met a vendor error: run `seatwarden apply {run_id}` again"
            )
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@runs_app.command("list")
def runs_list(
    policy: Annotated[str | None, typer.Option(help="one policy's runs")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """Runs, newest first."""
    fmt = output_format(as_json, as_csv)
    with failures_as_exit_codes():
        runs = open_app().storage.runs.list(policy=policy, limit=limit)
    if fmt == "json":
        print_json([r.to_dict() for r in runs])
    else:
        render([_run_row(r) for r in runs], RUN_COLUMNS, fmt, title="runs")
    raise typer.Exit(EXIT_OK)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    outcome: Annotated[
        str | None, typer.Option(help="only results with this outcome (poisoned, failed …)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the run and every per-person result")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """One run: what it found, what it decided about each person, and what became of it."""
    fmt = output_format(as_json, as_csv)
    with failures_as_exit_codes():
        app = open_app()
        chosen = AdminService(app.storage, app.clock).run(run_id)
        results = [r for r in app.storage.results.rows(run_id) if outcome is None or r["outcome"] == outcome]
    if fmt == "json":
        print_json({"run": chosen.to_dict(), "results": results})
    else:
        rows = [_action_row(r) for r in results]
        if fmt == "table":
            err.print(
                f"run {chosen.run_id}: {chosen.policy} ({chosen.product}), {chosen.mode}, {chosen.status}; "
                f"planned {chosen.counts}; outcomes {chosen.outcomes}; {chosen.verdict.get('why', '')}"
                + (f"; error: {chosen.error}" if chosen.error else ""),
                highlight=False,
            )
        render(rows[:TABLE_ROWS] if fmt == "table" else rows, RESULT_COLUMNS, fmt, title="results")
        if fmt == "table" and len(rows) > TABLE_ROWS:
            err.print(f"{len(rows) - TABLE_ROWS} more: --json or --csv for all")
    raise typer.Exit(EXIT_FAILED if chosen.status == "failed" else EXIT_OK)


def _file_name(group_id: str, policy: Any) -> str:
    """`<access group>.csv` where the policy names its access group, else the group's id."""
    name = policy.access_group if policy is not None else group_id
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".csv"


@export_app.command("idp-csv")
def export_idp_csv(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    out: Annotated[Path, typer.Option("--out", help="directory to write the CSV files into")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One CSV per Entra group for Entra's "Bulk remove members" page: removals an Entra admin makes.

    Written where the access group is synced from Entra and the policy says `csv`.
    https://learn.microsoft.com/entra/identity/users/groups-bulk-remove-members
    """
    with failures_as_exit_codes():
        app = open_app()
        admin = AdminService(app.storage, app.clock)
        chosen = admin.run(run_id)
        files = admin.idp_csv(run_id)
        policy = next((p for p in app.policies.policies if p.name == chosen.policy), None) if files else None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for group_id, text in files.items():
        path = out / _file_name(group_id, policy if len(files) == 1 else None)
        path.write_text(text, encoding="utf-8", newline="")
        written.append({"group_id": group_id, "file": str(path), "members": text.count("\r\n") - 2})
    if as_json:
        print_json({"run_id": run_id, "files": written})
    elif not written:
        err.print(f"run {run_id} has no removals for an Entra admin to make")
    else:
        render(written, ["group_id", "members", "file"], "table", title="IdP CSV files")
        err.print(
            "upload each file in Entra: Groups > the group > Members > Bulk operations > Remove members"
        )
    raise typer.Exit(EXIT_OK)
