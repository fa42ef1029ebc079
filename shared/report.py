"""The HTML report: one self-contained page from `shared.services.report.ReportData`.

`render_report(data)` is pure: the same data gives the same page. The page carries its CSS
and its charts (inline SVG) and nothing else: no script, no font, no image, no link out, and a
Content-Security-Policy of its own that forbids loading anything, so it can be mailed, archived
or printed and shows the same everywhere. Every value from storage or the policy goes through
`_e` (HTML escaping) on its way in.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from shared.model import Reason
from shared.rules import ACTIVITY_LAG_DAYS
from shared.services.report import PolicyReport, ReportData, RunPoint
from shared.services.warnings import product_name

#: How many people the "due next" table lists; the total is always given.
DUE_ROWS = 50

#: The page may load nothing: styles are inline, charts are inline SVG, there is no script.
#: (https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy: a
#: `<meta http-equiv>` policy applies to the document like the header does.)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)

#: Reasons in the order the legend and the stacks show them, with what each means.
REASONS: tuple[tuple[Reason, str, str], ...] = (
    (Reason.GRANT, "Granted", "entitled in Entra, given the license"),
    (Reason.RELICENSE, "Relicensed", "came back and got the license again"),
    (Reason.RETURNED, "Returned", "licensed again by other means: marker removed"),
    (Reason.INACTIVE, "Inactive", "not used for the policy's days: license taken"),
    (Reason.REVOKE_UNENTITLED, "Not entitled", "no longer entitled in Entra: license taken"),
    (Reason.SEAT_CAP, "Seat cap", "over the seat cap: the longest idle lost it"),
    (Reason.CLEAR_STALE_MARKER, "Stale marker", "marker removed, entitlement ended"),
)


def _e(value: object) -> str:
    """Text or attribute value, escaped for HTML."""
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _day(value: date | datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


# ---- charts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    value: int
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Column:
    """One bar of a chart: a stack of segments, its axis label and the class of its group."""

    label: str
    segments: tuple[Segment, ...]
    group_css: str = ""
    top_label: str = ""


def nice_ceiling(value: int) -> tuple[int, int]:
    """A round axis maximum at or above `value`, and the step between its gridlines."""
    if value <= 0:
        return 1, 1
    rough = value / 4
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    step = max(1, int(step))
    return step * math.ceil(value / step), step


def bar_chart(
    name: str, columns: Sequence[Column], *, caption: str, width: int = 560, height: int = 230
) -> str:
    """An inline SVG of stacked bars, one `g.column` per column, one `rect.bar` per segment."""
    left, right, top, bottom = 46, 8, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max((sum(s.value for s in c.segments) for c in columns), default=0)
    y_max, step = nice_ceiling(top_value)
    parts = [
        f'<svg class="chart" data-chart="{_e(name)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(caption)}" preserveAspectRatio="xMidYMid meet">'
    ]
    for tick in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * tick / y_max
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end">{_e(_n(tick))}</text>'
        )
    count = max(len(columns), 1)
    slot = plot_w / count
    bar_w = max(2.0, min(44.0, slot * 0.72))
    every = max(1, math.ceil(count / 10))  # at most ~10 axis labels
    for i, column in enumerate(columns):
        x = left + slot * i + (slot - bar_w) / 2
        css = f"column {column.group_css}".strip()
        parts.append(f'<g class="{_e(css)}">')
        y = top + plot_h
        for segment in column.segments:
            if segment.value <= 0:
                continue
            h = plot_h * segment.value / y_max
            y -= h
            parts.append(
                f'<rect class="bar {_e(segment.css)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(h, 0.5):.1f}"><title>{_e(segment.title)}</title></rect>'
            )
        if column.top_label:
            parts.append(
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" '
                f'text-anchor="middle">{_e(column.top_label)}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - bottom + 15}" '
                f'text-anchor="middle">{_e(column.label)}</text>'
            )
        parts.append("</g>")
    parts.append(
        f'<line class="baseline" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _run_label(run: RunPoint, runs: Sequence[RunPoint]) -> str:
    """Dates as axis labels; the time as well where one day has several runs."""
    same_day = sum(1 for r in runs if r.started_at.date() == run.started_at.date())
    return run.started_at.strftime("%m-%d %H:%M" if same_day > 1 else "%m-%d")


def seats_chart(policy: PolicyReport) -> str:
    columns = []
    for i, run in enumerate(policy.runs):
        kind = "held" if run.status == "held" else run.mode
        title = (
            f"{_when(run.started_at)}, {run.mode} run, {run.status}: {_n(run.licensed_before)} licensed "
            f"at the start, {_n(run.licensed_after)} after its plan"
        )
        last = i == len(policy.runs) - 1
        columns.append(
            Column(
                _run_label(run, policy.runs),
                (Segment(run.licensed_before, f"seats {kind}", title),),
                group_css=f"run {kind}",
                top_label=_n(run.licensed_before) if last or i == 0 else "",
            )
        )
    return bar_chart(f"seats-{policy.name}", columns, caption=f"Licensed seats per run, {policy.name}")


def actions_chart(policy: PolicyReport) -> str:
    columns = []
    for run in policy.runs:
        segments = tuple(
            Segment(run.counts.get(reason.value, 0), f"reason-{reason.value}", f"{label}: {_n(n)}")
            for reason, label, _ in REASONS
            if (n := run.counts.get(reason.value, 0))
        )
        columns.append(
            Column(
                _run_label(run, policy.runs),
                segments,
                group_css=f"run {run.mode}",
                top_label=_n(run.actions) if run.actions else "",
            )
        )
    return bar_chart(f"actions-{policy.name}", columns, caption=f"Actions per run by reason, {policy.name}")


def idle_chart(policy: PolicyReport) -> str:
    columns = [
        Column(
            bucket.label,
            (
                Segment(
                    bucket.people,
                    "idle past" if bucket.past_threshold else "idle within",
                    f"{_n(bucket.people)} licensed people idle {bucket.label} days",
                ),
            ),
            group_css="bucket",
            top_label=_n(bucket.people) if bucket.people else "",
        )
        for bucket in policy.idle
    ]
    caption = f"Idle days of the people licensed now, {policy.name}"
    return bar_chart(f"idle-{policy.name}", columns, caption=caption)


# ---- sections -------------------------------------------------------------------------------


def _legend(items: Iterable[tuple[str, str]]) -> str:
    return (
        '<ul class="legend">'
        + "".join(f'<li><span class="swatch {_e(css)}"></span>{_e(text)}</li>' for css, text in items)
        + "</ul>"
    )


def _tile(label: str, value: str, note: str, css: str = "") -> str:
    return (
        f'<div class="tile {_e(css)}"><p class="label">{_e(label)}</p>'
        f'<p class="figure">{_e(value)}</p><p class="note">{_e(note)}</p></div>'
    )


def _tiles(data: ReportData) -> str:
    freed_seats = sum(p.saving.freed_seats for p in data.policies)
    waiting_seats = sum(p.saving.waiting_seats for p in data.policies)
    dues = data.due_next
    held = data.held
    waiting = data.awaiting_approval
    tiles = [
        _tile("Licensed now", _n(data.licensed_now), f"seats across {len(data.policies)} products"),
        _tile(
            "Saving a month (est.)",
            _money(data.freed_monthly) if data.priced else "—",
            f"{_n(freed_seats)} seats freed and still free" if data.priced else "no seat_price in the policy",
            "good",
        ),
        _tile(
            "A decision away",
            _money(data.waiting_monthly) if data.priced else "—",
            f"{_n(waiting_seats)} revocations planned, not applied",
        ),
        _tile(
            "Due to lose a license",
            _n(len(dues)),
            f"next on {_day(dues[0].due.due_on)}" if dues else "nobody within the forecast",
        ),
        _tile(
            "Awaiting approval",
            _n(len(waiting)),
            "held runs, each its policy's latest plan"
            if waiting
            else f"{_n(len(held))} older held run{'s' if len(held) != 1 else ''}, superseded"
            if held
            else "no run is held",
            "warn" if waiting else "",
        ),
    ]
    return f'<section class="tiles" id="summary" aria-label="Summary">{"".join(tiles)}</section>'


def _saving_section(data: ReportData) -> str:
    rows = []
    for p in data.policies:
        s = p.saving
        price = "not set" if s.seat_price is None else _money(s.seat_price)
        freed = "—" if s.freed_monthly is None else _money(s.freed_monthly)
        waiting = "—" if s.waiting_monthly is None else _money(s.waiting_monthly)
        why_waiting = {
            "report": "the latest run was in report mode",
            "held": "the latest run is held for approval",
        }.get(s.waiting_status or "", "nothing: the latest plan was applied")
        named = f'<span class="sub">policy {_e(p.name)}</span>' if p.name != p.product else ""
        rows.append(
            f'<tr><th scope="row">{_e(product_name(p.product))}{named}</th>'
            f'<td class="num">{_e(price)}</td>'
            f'<td class="num">{_e(_n(s.freed_seats))}</td><td class="num strong">{_e(freed)}</td>'
            f'<td class="num">{_e(_n(s.waiting_seats))}</td><td class="num">{_e(waiting)}</td>'
            f'<td class="muted">{_e(why_waiting)}</td></tr>'
        )
    total = (
        f'<tr class="total"><th scope="row">All products</th><td></td>'
        f'<td class="num">{_e(_n(sum(p.saving.freed_seats for p in data.policies)))}</td>'
        f'<td class="num strong" id="saving-total">{_e(_money(data.freed_monthly))}</td>'
        f'<td class="num">{_e(_n(sum(p.saving.waiting_seats for p in data.policies)))}</td>'
        f'<td class="num">{_e(_money(data.waiting_monthly))}</td><td></td></tr>'
    )
    return (
        '<section id="saving" class="card"><h2>Estimated monthly saving</h2>'
        '<p class="lead"><strong>Seats freed</strong>: people whose license an enforce run (of the last '
        f"{_e(data.runs_per_policy)} runs of each policy) took away, and who still hold none; times the "
        "policy's <code>seat_price</code>, a month, in the currency of your Atlassian contract. "
        "<strong>Revocations waiting</strong>: what the latest plan would free if approved, or if its "
        "policy ran in enforce mode.</p>"
        '<div class="scroll"><table><thead><tr><th scope="col">Product</th>'
        '<th scope="col" class="num">Seat price</th>'
        '<th scope="col" class="num">Seats freed</th><th scope="col" class="num">Saving a month</th>'
        '<th scope="col" class="num">Revocations waiting</th><th scope="col" class="num">Would save</th>'
        '<th scope="col">Why waiting</th></tr></thead>'
        f"<tbody>{''.join(rows)}{total if len(data.policies) > 1 else ''}</tbody></table></div></section>"
    )


def _held_section(data: ReportData) -> str:
    held = data.held
    if not held:
        return (
            '<section id="held" class="card"><h2>Held runs</h2>'
            '<p class="empty">No run is held: every plan stayed within its blast radius.</p></section>'
        )
    items = "".join(
        f'<li class="held-run{" superseded" if p.superseded(run) else ""}">'
        f'<div class="held-what"><strong>{_e(product_name(p.product))}</strong>'
        f'<span class="sub">started {_e(_when(run.started_at))}</span>'
        f'<p class="held-figure">{_e(_n(run.revocations))} revocations planned'
        f"{_e(f', {_n(run.limit)} allowed' if run.limit is not None else '')}</p>"
        f'<p class="why">{_e(run.verdict_why or "over the blast radius")}</p>'
        + (
            '<p class="superseded-note">Superseded: a newer run has planned since, so this older '
            "plan can no longer be approved; review the newer one.</p>"
            if p.superseded(run)
            else ""
        )
        + "</div>"
        + (
            f'<div class="held-how"><p class="sub">run <code>{_e(run.run_id)}</code></p></div></li>'
            if p.superseded(run)
            else f'<div class="held-how"><p class="sub">run <code>{_e(run.run_id)}</code>; to apply it:</p>'
            f"<code>seatwarden approve {_e(run.run_id)}</code>"
            f"<code>POST /api/admin/runs/{_e(run.run_id)}/approve</code></div></li>"
        )
        for p, run in held
    )
    heading = "Held runs: waiting for approval" if data.awaiting_approval else "Held runs"
    css = "card attention" if data.awaiting_approval else "card"
    return (
        f'<section id="held" class="{css}"><h2>{_e(heading)}</h2>'
        '<p class="lead">These plans would take more licenses than the policy\'s blast radius allows, so '
        "nothing was applied. Read the plan (<code>GET /api/admin/runs/RUN</code>), then approve it "
        "with either command, or leave it: the next night plans afresh.</p>"
        f'<ul class="held-list">{items}</ul></section>'
    )


def _due_section(data: ReportData) -> str:
    dues = data.due_next
    if not dues:
        return (
            '<section id="due" class="card"><h2>Due to lose a license next</h2>'
            '<p class="empty">Nobody is due to lose a license within the forecast of the latest runs.</p>'
            "</section>"
        )
    today = data.generated_at.date()
    rows = []
    for i, row in enumerate(dues[:DUE_ROWS], start=1):
        due = row.due
        days = (due.due_on - today).days
        when = {0: "today", 1: "tomorrow"}.get(days, f"in {days} days" if days > 1 else "overdue")
        rows.append(
            f'<tr class="due"><td class="num muted">{i}</td><td class="nowrap">{_e(_day(due.due_on))}'
            f'<span class="sub">{_e(when)}</span></td>'
            f'<td class="person">{_e(due.email or due.account_id)}</td>'
            f"<td>{_e(product_name(row.product))}</td>"
            f'<td class="num">{_e(_n(due.idle_days))}'
            f'<span class="sub">of {_e(_n(due.threshold_days))}</span></td>'
            f'<td class="nowrap">{_e(_day(due.last_active) if due.last_active else "never")}</td></tr>'
        )
    shown = min(len(dues), DUE_ROWS)
    return (
        '<section id="due" class="card"><h2>Due to lose a license next</h2>'
        f'<p class="lead">Showing <strong id="due-shown">{_e(_n(shown))}</strong> of '
        f'<strong id="due-total">{_e(_n(len(dues)))}</strong>, soonest first: people the rules will take '
        "the license from on that day unless they use the product before it. From the latest run's "
        "forecast, less anyone who used the product or lost the license since.</p>"
        '<div class="scroll"><table id="due-table"><thead><tr><th scope="col" class="num">#</th>'
        '<th scope="col">Due on</th><th scope="col">Person</th><th scope="col">Product</th>'
        '<th scope="col" class="num">Idle days</th><th scope="col">Last used</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _recent_runs(policy: PolicyReport) -> str:
    rows = "".join(
        f'<tr><td class="nowrap">{_e(r.started_at.strftime("%Y-%m-%d %H:%M"))}</td>'
        f'<td><span class="status {_e(r.status)}">{_e(r.status)}</span></td>'
        f'<td class="num">{_e(_n(r.actions))}</td><td class="num">{_e(_n(r.revocations))}</td>'
        f'<td class="num">{_e(_n(r.applied))}</td></tr>'
        for r in reversed(policy.runs[-6:])
    )
    return (
        '<div class="scroll"><table class="compact"><thead><tr>'
        '<th scope="col">Started, UTC</th><th scope="col">Status</th><th scope="col" class="num">Actions</th>'
        '<th scope="col" class="num">Revoke</th><th scope="col" class="num">Applied</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _policy_section(policy: PolicyReport, data: ReportData) -> str:
    name = product_name(policy.product)
    threshold = f"licenses taken after {policy.inactive_after_days} idle days"
    if policy.external_inactive_after_days is not None:
        threshold += f" ({policy.external_inactive_after_days} outside the internal domains)"
    price = policy.saving.seat_price
    facts = [policy.mode + " mode", threshold]
    if price is not None:
        facts.append(f"{_money(price)} a seat a month")
    head = (
        f'<header class="policy-head"><div><h2>{_e(name)}</h2>'
        f'<p class="sub">policy <code>{_e(policy.name)}</code> · {_e(" · ".join(facts))}</p></div>'
        f'<p class="policy-figure"><strong>{_e(_n(policy.licensed_now))}</strong> licensed now</p></header>'
    )
    if not policy.runs:
        return (
            f'<section class="card policy" id="policy-{_e(policy.name)}">{head}'
            '<p class="empty">No runs yet: the first nightly reconcile fills this in.</p></section>'
        )
    present = {reason for run in policy.runs for reason, n in run.counts.items() if n}
    idle_note = (
        f"Bars past {policy.inactive_after_days} days are people the rules take the license from "
        f"(after the threshold plus {ACTIVITY_LAG_DAYS} day of reporting lag; people never active get "
        "their grace days first), unless they are excluded or admins, who keep it."
    )
    if policy.idle_unknown:
        idle_note += f" {_n(policy.idle_unknown)} licensed people have no known activity yet (not shown)."
    return (
        f'<section class="card policy" id="policy-{_e(policy.name)}">{head}<div class="grid">'
        f'<figure><figcaption>Licensed seats per run <span class="sub">last {_e(len(policy.runs))} runs'
        f"</span></figcaption>{seats_chart(policy)}"
        + _legend(
            [
                ("seats enforce", "enforce run"),
                ("seats report", "report run"),
                ("seats held", "held run"),
            ]
        )
        + "</figure>"
        f"<figure><figcaption>Actions per run, by reason</figcaption>{actions_chart(policy)}"
        + _legend((f"reason-{r.value}", label) for r, label, _ in REASONS if r.value in present)
        + "</figure>"
        f"<figure><figcaption>Idle days of the people licensed now</figcaption>{idle_chart(policy)}"
        + _legend([("idle within", "kept"), ("idle past", f"past {policy.inactive_after_days} days")])
        + f'<p class="note">{_e(idle_note)}</p></figure>'
        f"<figure><figcaption>Latest runs</figcaption>{_recent_runs(policy)}</figure>"
        "</div></section>"
    )


def _method_section(data: ReportData) -> str:
    # How Atlassian bills: per user a month on monthly subscriptions, by user tier on annual ones
    # (https://support.atlassian.com/subscriptions-and-billing/docs/manage-users-and-user-tiers/).
    reasons = "".join(f"<dt>{_e(label)}</dt><dd>{_e(meaning)}</dd>" for _, label, meaning in REASONS)
    return (
        '<section id="method" class="card"><h2>How to read this report</h2><div class="columns">'
        "<div><h3>The numbers</h3><p><strong>Licensed seats</strong> are the members of each product's "
        "access group when a run started. <strong>Idle days</strong> count from the later of the last use "
        "Atlassian reports and the day the license was given, as the rules count them. "
        "<strong>Held runs</strong> planned more revocations than the blast radius allows and wait for an "
        "administrator. <strong>Due next</strong> is the latest run's forecast of who loses a license "
        "to inactivity, and when, if they do not use the product first.</p>"
        "<p><strong>The saving</strong> is an estimate: seats freed by revocations that were applied (not "
        "merely planned, skipped because the person was active again, or left to an Entra admin's CSV) "
        "and whose people still hold no license, times <code>seat_price</code>. On a monthly "
        "subscription Atlassian charges for the users with product access each month, so a freed "
        "seat leaves the next bill; an annual subscription is priced by user tier, so the saving "
        "comes when the tier is lowered.</p>"
        "</div>"
        f"<div><h3>Reasons</h3><dl>{reasons}</dl></div></div></section>"
    )


_CSS = (
    """
:root{--ink:#172033;--muted:#5b6476;--line:#e3e7ee;--bg:#f4f6f9;--card:#fff;--accent:#1f4fd1;
--good:#0f7b4f;--warn:#b45309;--warn-bg:#fff7eb;
--c-GRANT:#2f6fe4;--c-RELICENSE:#14a3b8;--c-RETURNED:#34b37e;--c-INACTIVE:#f2a33a;
--c-REVOKE_UNENTITLED:#d9483b;--c-SEAT_CAP:#8a5cf6;--c-CLEAR_STALE_MARKER:#a7afbd}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue","Liberation Sans",Arial,sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.top{background:linear-gradient(120deg,#14213d,#1f4fd1);color:#fff;padding:28px 0 64px}
.wrap{max-width:1160px;margin:0 auto;padding:0 24px}
.eyebrow{margin:0;text-transform:uppercase;letter-spacing:.14em;font-size:12px;opacity:.75}
h1{margin:4px 0 6px;font-size:30px;line-height:1.2;font-weight:650}
.top .sub{margin:0;color:#d5def7;font-size:14px}
main.wrap{margin-top:-44px;padding-bottom:32px}
h2{font-size:19px;margin:0 0 6px;font-weight:650}
h3{font-size:14px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(170px,100%),1fr));gap:14px;margin-bottom:18px}
.tile{background:var(--card);border-radius:12px;padding:16px 18px;box-shadow:0 1px 2px rgba(20,33,61,.08),
0 6px 18px rgba(20,33,61,.06);border-top:4px solid var(--accent)}
.tile.good{border-top-color:var(--good)}.tile.warn{border-top-color:var(--warn);background:var(--warn-bg)}
.tile .label{margin:0;color:var(--muted);font-size:13px;font-weight:600}
.tile .figure{margin:2px 0 0;font-size:28px;font-weight:700;font-variant-numeric:tabular-nums}
.tile.good .figure{color:var(--good)}.tile.warn .figure{color:var(--warn)}
.tile .note{margin:0;color:var(--muted);font-size:13px}
.card{background:var(--card);border-radius:12px;padding:20px 22px;margin-bottom:18px;
box-shadow:0 1px 2px rgba(20,33,61,.08),0 6px 18px rgba(20,33,61,.05)}
.card.attention{border-left:5px solid var(--warn)}
.lead{margin:0 0 12px;color:var(--muted);max-width:80ch}
.empty{margin:0;color:var(--muted)}
.sub{display:block;color:var(--muted);font-size:12.5px;font-weight:400}
.policy-head{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap;
border-bottom:1px solid var(--line);padding-bottom:10px;margin-bottom:14px}
.policy-head .sub{display:block}
.policy-figure{margin:0;color:var(--muted)}.policy-figure strong{font-size:24px;color:var(--ink)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:18px 26px}
figure{margin:0;min-width:0}
figcaption{font-weight:600;margin-bottom:4px}
figcaption .sub{display:inline;margin-left:6px}
.chart{display:block;width:100%;height:auto;overflow:visible}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .baseline{stroke:#9aa3b2;stroke-width:1}
.chart text{font-size:11px;fill:var(--muted);font-variant-numeric:tabular-nums}
.chart text.value{fill:var(--ink);font-weight:600}
.bar.seats.enforce,.swatch.seats.enforce{fill:#1f4fd1;background:#1f4fd1}
.bar.seats.report,.swatch.seats.report{fill:#9db8f2;background:#9db8f2}
.bar.seats.held,.swatch.seats.held{fill:#f2a33a;background:#f2a33a}
.bar.idle.within,.swatch.idle.within{fill:#6c93e8;background:#6c93e8}
.bar.idle.past,.swatch.idle.past{fill:#e4572e;background:#e4572e}
"""
    + "".join(
        f".bar.reason-{r.value},.swatch.reason-{r.value}{{fill:var(--c-{r.value});background:var(--c-{r.value})}}\n"
        for r, _, _ in REASONS
    )
    + """
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px;
color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.note{font-size:12.5px;color:var(--muted);margin:6px 0 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600;
border-bottom:2px solid var(--line)}
tbody th{font-weight:600}
table.compact td,table.compact th{padding:5px 8px;font-size:13px}
.num{text-align:right}.strong{font-weight:700;color:var(--good)}.muted{color:var(--muted)}
.nowrap{white-space:nowrap}
tr.total th,tr.total td{border-top:2px solid var(--line);border-bottom:0;font-weight:700}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
background:#f0f2f6;border-radius:4px;padding:1px 5px;overflow-wrap:anywhere}
.held-list{list-style:none;margin:0;padding:0}
.held-run{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(260px,100%),1fr));gap:8px 24px;
padding:12px 0;border-top:1px solid var(--line)}
.held-figure{margin:4px 0 0;font-size:18px;font-weight:700;color:var(--warn)}
.held-run .why{margin:2px 0 0;color:var(--muted);font-size:13.5px}
.held-run.superseded .held-figure{color:var(--muted)}
.superseded-note{margin:6px 0 0;font-size:13px;color:var(--warn)}
.held-how code{display:block;margin:4px 0 0;width:max-content;max-width:100%}
.held-how .sub code{display:inline;margin:0}
td.person,.why{overflow-wrap:anywhere}
.status{display:inline-block;padding:0 8px;border-radius:999px;font-size:12px;background:#eef1f6}
.status.held{background:#fde7c4;color:#7a3e00}.status.done{background:#d9f2e6;color:#0b5c3a}
.status.failed{background:#fbd9d5;color:#8a1c12}.status.applying,.status.approved{background:#dfe8fd}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(300px,100%),1fr));gap:10px 32px}
.columns p{margin:0 0 10px}
dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;font-size:14px}
dt{font-weight:600}dd{margin:0;color:var(--muted)}
footer{color:var(--muted);font-size:12.5px;padding:0 0 28px}
@media (max-width:520px){.grid{grid-template-columns:1fr}h1{font-size:24px}.wrap{padding:0 14px}}
@media print{
@page{size:A4;margin:12mm}
body{background:#fff;font-size:12px}
.top{background:#14213d;padding:16px 0 18px}
main.wrap{margin-top:14px}
.wrap{max-width:none;padding:0}
.card,.tile{box-shadow:none;border:1px solid var(--line)}
.tile,figure,tr,.held-run{break-inside:avoid}
h2,figcaption,.policy-head{break-after:avoid}
.tiles{grid-template-columns:repeat(5,1fr);gap:8px}
.tile{padding:10px 12px}.tile .figure{font-size:22px}
.grid{grid-template-columns:1fr 1fr}
.scroll{overflow:visible}
thead th{letter-spacing:0;font-size:9.5px}
table.compact td,table.compact th{padding:3px 4px;font-size:10px}
}
"""
)


def render_report(data: ReportData) -> str:
    """The report as one self-contained HTML document (UTF-8)."""
    products = ", ".join(product_name(p.product) for p in data.policies) or "no policies"
    body = [
        _tiles(data),
        _held_section(data) if data.awaiting_approval else "",
        _saving_section(data),
        *(_policy_section(p, data) for p in data.policies),
        _due_section(data),
        "" if data.awaiting_approval else _held_section(data),
        _method_section(data),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">'
        f"<title>Seatwarden license report, {_e(_day(data.generated_at))}</title>"
        f"<style>{_CSS}</style></head><body>"
        '<header class="top"><div class="wrap"><p class="eyebrow">Seatwarden</p>'
        "<h1>Atlassian license report</h1>"
        f'<p class="sub">{_e(products)} · as of {_e(_when(data.generated_at))} · '
        f"the last {_e(data.runs_per_policy)} runs of each policy</p></div></header>"
        f'<main class="wrap">{"".join(body)}</main>'
        '<footer class="wrap">Made by Seatwarden from its own run history, per-person results and user '
        "state in your storage account. Nothing on this page was loaded from elsewhere.</footer>"
        "</body></html>\n"
    )


__all__ = ["CONTENT_SECURITY_POLICY", "DUE_ROWS", "render_report"]
