"""The README's benchmark table, made from bench/results.json so the two cannot drift apart.

    python -m bench.table            # print the table
    python -m bench.table --write    # put it in README.md, between its bench-table markers

Each figure stands beside its target and whether this run met it, and, where a benchmark
measures one in the same run, beside the naive way. A benchmark that did not finish says how
much of it the figures cover; one never run says so instead of showing old figures as new.
tests/test_bench_table.py holds README.md to what this prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"

HEADER = (
    "| What | Measured | Target | Met | Naive way, same run | Command |",
    "|---|---|---|---|---|---|",
)

Row = tuple[str, str, str, str, str, str]


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def _plan_rows(plan: dict[str, Any]) -> list[Row]:
    command = "`python -m bench.plan_bench`"
    rows: list[Row] = []
    for size in sorted(plan, key=int):
        r = plan[size]
        people = f"{int(size):,} people, 3 products"
        target_s, target_mb = r.get("target_plan_seconds"), r.get("target_peak_mb")
        rows.append(
            (
                f"Planning {people}: wall time",
                f"{r['plan_seconds']:.2f} s",
                f"< {target_s:g} s" if target_s else "—",
                _met(r["plan_seconds"] < target_s if target_s else None),
                "—",
                command,
            )
        )
        rows.append(
            (
                f"Planning {people}: peak memory",
                f"{r['peak_rss_mb']:,.0f} MB",
                f"< {target_mb / 1024:g} GB" if target_mb else "—",
                _met(r["peak_rss_mb"] < target_mb if target_mb else None),
                "—",
                command,
            )
        )
    return rows


def _webhook_rows(hooks: dict[str, Any]) -> list[Row]:
    command = "`python -m bench.webhook_bench`"
    answer, again, targets = hooks["answer_ms"], hooks["licensed_again_seconds"], hooks["targets"]
    latency = hooks["sandbox_latency_ms"]
    return [
        (
            f"Webhook answered ({answer['n']} signed deliveries)",
            f"p50 {answer['p50']:.0f} ms, p99 {answer['p99']:.0f} ms",
            f"p99 < {targets['answer_p99_ms']:g} ms",
            _met(answer["p99"] < targets["answer_p99_ms"]),
            "—",
            command,
        ),
        (
            f"Licensed again after a return event ({again['n']} people, sandbox at {latency} ms)",
            f"p50 {again['p50']:.2f} s, p99 {again['p99']:.2f} s",
            f"p99 < {targets['licensed_again_p99_s']:g} s",
            _met(again["p99"] < targets["licensed_again_p99_s"]),
            "the next nightly run: up to 24 h (not measured)",
            command,
        ),
    ]


def _steal(done: list[dict[str, Any]]) -> str:
    """The hypervisor's steal over the nights, where the run recorded it: time figures from
    a machine that lost a share of its CPUs to other guests mean less."""
    steals = [n["steal_percent"] for n in done if n.get("steal_percent") is not None]
    return f"; CPU steal {min(steals):g}-{max(steals):g}%" if steals else ""


def _nights_rows(nights: dict[str, Any]) -> list[Row]:
    p, targets = nights["parameters"], nights["targets"]
    command = "`python -m bench.nights_bench`"
    planned = p["nights_after_first"] + 1
    where = f"{p['users']:,} people, {p['latency_ms']} ms latency, rate limits x{p['rate_scale']:g}"
    rows: list[Row] = []
    modes = (("activity_in_read", "activity in the users read"), ("lookups", "activity by lookups"))
    for mode, label in modes:
        done = nights["modes"].get(mode, {}).get("nights", [])
        if not done:
            continue
        count = f"{len(done)} of {planned} nights" + ("" if len(done) == planned else ", run unfinished")
        worst_calls = max(n["ratio"] for n in done)
        rows.append(
            (
                f"Nights, {label} ({where}; {count}): API calls / lower bound, worst night",
                f"{worst_calls:.3f}",
                f"≤ {targets['calls_ratio']:g}",
                _met(worst_calls <= targets["calls_ratio"]),
                "—",
                command,
            )
        )
        if mode == "lookups" and len(done) > 1:
            steady = done[1:]
            factor = sum(n["naive_calls"] for n in steady) / sum(n["calls"] for n in steady)
            target = targets["steady_naive_factor_lookup_mode"]
            rows.append(
                (
                    f"Nights, {label}: the naive way's calls / ours, steady nights",
                    f"{factor:.1f}x fewer",
                    f"≥ {target:g}x",
                    _met(factor >= target),
                    _naive_calls(done),
                    command,
                )
            )
        first, rest = done[0], done[1:]
        rows.append(
            (
                f"Nights, {label}: wall time / time bound",
                f"first night {first['time_ratio']:.2f} ({first['wall_seconds']:.0f} s)"
                + (f"; worst later night {max(n['time_ratio'] for n in rest):.2f}" if rest else "")
                + _steal(done),
                f"≤ {targets['time_ratio']:g}",
                _met(all(n["time_ratio"] <= targets["time_ratio"] for n in done)),
                _naive_time(nights["modes"][mode].get("summary", {}).get("naive_night")),
                command,
            )
        )
    return rows


def _naive_calls(done: Sequence[dict[str, Any]]) -> str:
    steady = done[1:] or done
    mean = sum(n["naive_calls"] for n in steady) / len(steady)
    return f"{mean:,.0f} calls a night (every licensed person looked up)"


def _naive_time(night: dict[str, Any] | None) -> str:
    if night is None:
        return "—"
    return (
        f"{night['wall_seconds_without_changes']:.0f} s a night before any change "
        f"({night['at_unscaled_rate_hours']:g} h at the vendor's unscaled rate)"
    )


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    if "plan" in results:
        out += _plan_rows(results["plan"])
    if "webhooks" in results:
        out += _webhook_rows(results["webhooks"])
    if "nights" in results:
        out += _nights_rows(results["nights"])
    return out


def table(results: dict[str, Any]) -> str:
    lines: Iterable[str] = (*HEADER, *("| " + " | ".join(r) + " |" for r in rows(results)))
    return "\n".join(lines) + "\n"


def with_table(readme: str, results: dict[str, Any]) -> str:
    """`readme` with the text between the markers replaced by the table."""
    head, start, rest = readme.partition(START)
    _old, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md has no {START} … {END} markers")
    return f"{head}{START}\n{table(results)}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    if args.write:
        README.write_text(with_table(README.read_text(encoding="utf-8"), results), encoding="utf-8")
    else:
        sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
