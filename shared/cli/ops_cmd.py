"""Operating Seatwarden: `diagnose` a run's calls, the `demo`, and the local `sandbox`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.cli._common import EXIT_FAILED, EXIT_OK, err, failures_as_exit_codes, open_app, render

sandbox_app = typer.Typer(no_args_is_help=True, help="The local stand-ins for Atlassian and Microsoft.")


# -- report -----------------------------------------------------------------------------------


def report(
    out: Annotated[Path, typer.Option("--out", help="the HTML file")] = Path("seatwarden-report.html"),
    policy: Annotated[str | None, typer.Option(help="one policy only")] = None,
    runs: Annotated[int, typer.Option(min=1, max=200, help="runs per policy to chart")] = 30,
) -> None:
    """Write the HTML report: seats across runs, idle days, actions, held runs, saving, who is due next.

    One self-contained file (no scripts, nothing loaded from elsewhere), the same page the admin
    API serves at GET /api/admin/report.
    """
    from shared.report import render_report
    from shared.services.report import UnknownPolicy, build_report

    with failures_as_exit_codes():
        app = open_app()
        try:
            data = build_report(app.storage, app.policies, app.clock(), policy=policy, runs_per_policy=runs)
        except UnknownPolicy as exc:
            err.print(f"[red]error:[/red] {exc.args[0]}")
            raise typer.Exit(EXIT_FAILED) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data), encoding="utf-8")
    err.print(f"report written to {out.resolve()}")
    raise typer.Exit(EXIT_OK)


# -- diagnose ---------------------------------------------------------------------------------


def diagnose(
    run: Annotated[str | None, typer.Option(help="a run id; default: the newest run")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The calls a run made to Atlassian and Microsoft (secrets redacted), and its errors."""
    with failures_as_exit_codes():
        storage = open_app().storage
        chosen = storage.runs.get(run) if run else next(iter(storage.runs.list(limit=1)), None)
        if chosen is None:
            err.print("no runs yet" if not run else f"no run {run}")
            raise typer.Exit(EXIT_FAILED)
        calls = storage.calls.load(chosen.run_id)
    summary: dict[tuple[str, str, str], dict[str, Any]] = {}
    for call in calls:
        row = summary.setdefault(
            (call["vendor"], call["endpoint_class"], str(call["status"])),
            {
                "vendor": call["vendor"],
                "endpoint": call["endpoint_class"],
                "status": call["status"],
                "calls": 0,
                "retries": 0,
                "max_ms": 0.0,
            },
        )
        row["calls"] += 1
        row["retries"] += max(0, int(call["tries"]) - 1)
        row["max_ms"] = max(row["max_ms"], round(float(call["duration_ms"]), 1))
    errors = [c for c in calls if c.get("error_code") or c.get("status") is None or c["status"] >= 400]
    if as_json:
        report = {"run": chosen.to_dict(), "calls": calls, "errors": errors}
        sys.stdout.write(json.dumps(report, default=str) + "\n")
    else:
        err.print(f"run {chosen.run_id}: {chosen.status}; {len(calls)} calls, {len(errors)} with errors")
        render(
            list(summary.values()), ["vendor", "endpoint", "status", "calls", "retries", "max_ms"], "table"
        )
        if errors:
            render(
                errors[-20:],
                ["at", "method", "path", "status", "tries", "error_code"],
                "table",
                "last errors",
            )
    raise typer.Exit(EXIT_FAILED if chosen.status == "failed" else EXIT_OK)


# -- demo -------------------------------------------------------------------------------------


def demo(
    users: Annotated[int, typer.Option(help="people in the generated org")] = 500,
    seed: Annotated[int, typer.Option(help="the same seed gives the same org")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON summary on stdout")] = False,
    report_file: Annotated[Path, typer.Option("--report", help="where to write the HTML report")] = Path(
        "out/seatwarden-demo-report.html"
    ),
) -> None:
    """Azurite and the sandbox, a dry run, an enforce run, a return, an Entra change, the report.

    Exit 0 when the demo did what it shows: the audit trail intact, the returning person licensed
    again and the new Entra member licensed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from shared.demo import run_demo

    def say(line: str) -> None:
        if not as_json:
            err.print(line, highlight=False)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("applying actions", total=None)
        summary = run_demo(users, seed, say, lambda done: bar.update(task, completed=done), report_file)
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        rows = [
            {"what": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
            for k, v in summary.items()
        ]
        render(rows, ["what", "value"], "table", title="Seatwarden demo")
        err.print(f"the report: {summary['report']}", highlight=False)
    worked = summary["audit_intact"] and summary["relicensed"] and summary["entra_granted"]
    raise typer.Exit(EXIT_OK if worked else EXIT_FAILED)


# -- sandbox ----------------------------------------------------------------------------------


@sandbox_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox_serve(ctx: typer.Context) -> None:
    """Serve the sandbox (Atlassian Admin API, Entra token endpoint, Graph) on loopback."""
    from sandbox.__main__ import main as sandbox_main

    raise typer.Exit(sandbox_main(["serve", *ctx.args]))
