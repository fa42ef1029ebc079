"""Operating Seatwarden: `diagnose` a run's calls, the `demo`, and the local `sandbox`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from shared.cli._common import EXIT_FAILED, EXIT_OK, err, failures_as_exit_codes, open_app, render

sandbox_app = typer.Typer(no_args_is_help=True, help="The local stand-ins for Atlassian and Microsoft.")


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
) -> None:
    """Azurite and the sandbox, a report run, an enforce run, a return and an Entra change."""
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
        summary = run_demo(users, seed, say, lambda done: bar.update(task, completed=done))
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        rows = [
            {"what": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
            for k, v in summary.items()
        ]
        render(rows, ["what", "value"], "table", title="Seatwarden demo")
    raise typer.Exit(EXIT_OK if summary.get("audit_intact") else EXIT_FAILED)


# -- sandbox ----------------------------------------------------------------------------------


@sandbox_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox_serve(ctx: typer.Context) -> None:
    """Serve the sandbox (Atlassian Admin API, Entra token endpoint, Graph) on loopback."""
    from sandbox.__main__ import main as sandbox_main

    raise typer.Exit(sandbox_main(["serve", *ctx.args]))
