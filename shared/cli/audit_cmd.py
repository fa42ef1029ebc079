"""`seatwarden audit`: the trail by person, action and date; `audit verify`: its hash chain."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer

from shared.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    err,
    failures_as_exit_codes,
    open_app,
    output_format,
    print_json,
    render,
)

app = typer.Typer(help="Read and verify the audit trail.", invoke_without_command=True)

COLUMNS = ["at", "actor", "action", "product", "account_id", "run_id", "outcome", "why"]


def _day(value: str | None, option: str, end: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]error:[/red] {option} {value!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(EXIT_USAGE) from None
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start + timedelta(days=1) - timedelta(milliseconds=1) if end else start


@app.callback()
def audit(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="one person's Atlassian account id")] = None,
    action: Annotated[str | None, typer.Option(help="a reason code or action: INACTIVE, WARN …")] = None,
    since: Annotated[str | None, typer.Option(help="from this day, YYYY-MM-DD (UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="up to and including this day")] = None,
    limit: Annotated[int, typer.Option(min=1, help="newest entries first, at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """The audit trail, newest first, by person, action and date."""
    if ctx.invoked_subcommand is not None:
        return
    fmt = output_format(as_json, as_csv)
    with failures_as_exit_codes():
        entries = open_app().storage.audit.query(
            account_id=account,
            action=action.upper() if action else None,
            since=_day(since, "--since"),
            until=_day(until, "--until", end=True),
            limit=limit,
        )
    rows = []
    for entry in entries:
        row = entry.to_dict()
        after = row.get("after") or {}
        row["outcome"] = after.get("outcome", "") if isinstance(after, dict) else ""
        why = row.get("why")
        if fmt == "table" and isinstance(why, dict):
            row["why"] = ", ".join(f"{k}={v}" for k, v in why.items() if v not in (None, "", False))
        rows.append(row)
    if fmt == "json":
        print_json(rows)
    else:
        render(rows, COLUMNS, fmt, title="audit trail")
        if fmt == "table":
            err.print(f"{len(rows)} entries" + (" (--limit reached)" if len(rows) == limit else ""))
    raise typer.Exit(EXIT_OK)


@app.command("verify")
def verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Walk the hash chain; an edited, missing or reordered entry fails the check (exit 1)."""
    with failures_as_exit_codes():
        report = open_app().storage.audit.verify()
    if as_json:
        print_json({"ok": report.ok, "entries": report.entries, "problems": report.problems})
    else:
        for problem in report.problems:
            err.print(f"[red]broken[/red] {problem}", highlight=False)
        verdict = "[green]intact[/green]" if report.ok else "[red]NOT intact[/red]"
        err.print(f"audit trail {verdict}: {report.entries} entries checked")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)
