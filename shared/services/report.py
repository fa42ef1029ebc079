"""The report's facts, gathered from storage and the policies: seats, idleness, actions, savings.

`build_report` reads what the runs, their results, the user states and the saved forecasts
record, and returns plain values; `shared.report.render_report` turns them into one HTML page.
The admin API (`GET /api/admin/report`) and the CLI (`seatwarden report --out FILE`) both call
the pair.

Reads per policy, whatever the size of the org: one page of the `runs` partition, the product's
user states (one paged partition query, pages of 1,000), the latest run's saved forecast (one
partition), and the result partition of each enforce run in the window that applied a
revocation (steady-state nights revoke a handful). Nothing is read per person.

What the saving means (it is an estimate, and says so on the page):

- *freed*: people whose license an enforce run in the window took away (a revocation applied,
  not merely planned, skipped or left to an Entra admin's CSV) and who still hold no license
  now, times the policy's `seat_price`. People who came back since are not counted.
- *waiting*: the revocations the latest run of a policy planned but did not apply, because it
  ran in report mode or is held over the blast radius: what enforcing or approving would free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from shared.config import Policy, PolicyFile
from shared.forecast import Due
from shared.model import REVOKING_REASONS
from shared.services.snapshot import product_key

#: Runs whose plan was made and saved (with its forecast); `planning` and `failed` ones were not.
PLANNED_STATUSES = frozenset({"report", "held", "approved", "applying", "done"})

#: Runs whose plan is being or has been carried out.
APPLIED_STATUSES = frozenset({"approved", "applying", "done"})

#: Upper ends of the idle-days histogram's bars (the threshold is added as one more edge).
IDLE_EDGES = (7, 30, 60, 90, 180, 365)

_REVOKING = frozenset(r.value for r in REVOKING_REASONS)


class UnknownPolicy(KeyError):
    """A report was asked for a policy the policy file does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class RunPoint:
    """One run as the charts and tables show it."""

    run_id: str
    started_at: datetime
    mode: str
    status: str
    licensed_before: int
    licensed_after: int
    counts: dict[str, int]
    revocations: int
    applied: int
    verdict_why: str
    limit: int | None

    @property
    def actions(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class IdleBucket:
    """People licensed now whose idle days fall in [low, high] (high None: no upper end)."""

    low: int
    high: int | None
    people: int
    past_threshold: bool

    @property
    def label(self) -> str:
        if self.high is None:
            return f"over {self.low - 1}"
        return f"{self.low}\N{EN DASH}{self.high}"


@dataclass(frozen=True, slots=True)
class Saving:
    """Seats freed and seats a decision away, for one policy (see the module docstring)."""

    seat_price: float | None
    freed_seats: int
    freed_runs: int
    waiting_seats: int
    waiting_run: str | None
    waiting_status: str | None

    @property
    def freed_monthly(self) -> float | None:
        return None if self.seat_price is None else self.freed_seats * self.seat_price

    @property
    def waiting_monthly(self) -> float | None:
        return None if self.seat_price is None else self.waiting_seats * self.seat_price


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """Everything the report shows about one policy."""

    name: str
    product: str
    mode: str
    inactive_after_days: int
    external_inactive_after_days: int | None
    runs: tuple[RunPoint, ...]  # oldest first
    licensed_now: int
    idle: tuple[IdleBucket, ...]
    idle_unknown: int
    dues: tuple[Due, ...]  # soonest first, from the latest planned run's forecast
    latest_planned: str | None  # the newest run that made and saved a plan
    saving: Saving

    @property
    def held(self) -> tuple[RunPoint, ...]:
        return tuple(r for r in self.runs if r.status == "held")

    def superseded(self, run: RunPoint) -> bool:
        """Whether a newer run has planned since `run`: it can no longer be approved or applied."""
        return run.run_id != self.latest_planned


@dataclass(frozen=True, slots=True)
class DueRow:
    policy: str
    product: str
    due: Due


@dataclass(frozen=True, slots=True)
class ReportData:
    """The whole report: one `PolicyReport` per policy, as of `generated_at`."""

    generated_at: datetime
    runs_per_policy: int
    policies: tuple[PolicyReport, ...]

    @property
    def licensed_now(self) -> int:
        return sum(p.licensed_now for p in self.policies)

    @property
    def held(self) -> list[tuple[PolicyReport, RunPoint]]:
        """Held runs, newest first."""
        found = [(p, r) for p in self.policies for r in p.held]
        found.sort(key=lambda pr: pr[1].started_at, reverse=True)
        return found

    @property
    def awaiting_approval(self) -> list[tuple[PolicyReport, RunPoint]]:
        """Held runs that are still their policy's latest plan."""
        return [(p, r) for p, r in self.held if not p.superseded(r)]

    @property
    def due_next(self) -> list[DueRow]:
        """Everyone due to lose a license, soonest first, across policies."""
        rows = [DueRow(p.name, p.product, d) for p in self.policies for d in p.dues]
        rows.sort(key=lambda r: (r.due.due_on, r.policy, r.due.account_id))
        return rows

    @property
    def priced(self) -> bool:
        """Whether any policy has a seat price, so that a saving can be estimated at all."""
        return any(p.saving.seat_price is not None for p in self.policies)

    @property
    def freed_monthly(self) -> float:
        return sum(p.saving.freed_monthly or 0.0 for p in self.policies)

    @property
    def waiting_monthly(self) -> float:
        return sum(p.saving.waiting_monthly or 0.0 for p in self.policies)


def build_report(
    storage: Any,
    policies: PolicyFile | Iterable[Policy],
    now: datetime,
    *,
    policy: str | None = None,
    runs_per_policy: int = 30,
) -> ReportData:
    """Gather the report of every policy (or of the one named `policy`) as of `now`.

    `runs_per_policy` is how many of each policy's latest runs the charts, the held runs and
    the freed seats cover. An unknown `policy` raises `UnknownPolicy` and reads nothing.
    """
    if runs_per_policy < 1:
        raise ValueError("runs_per_policy must be at least 1")
    chosen = list(policies.policies if isinstance(policies, PolicyFile) else policies)
    if policy is not None:
        chosen = [p for p in chosen if p.name == policy]
        if not chosen:
            raise UnknownPolicy(f"no policy named {policy!r}")
    return ReportData(
        generated_at=now,
        runs_per_policy=runs_per_policy,
        policies=tuple(_policy_report(storage, p, now.date(), runs_per_policy) for p in chosen),
    )


def _policy_report(storage: Any, policy: Policy, today: date, limit: int) -> PolicyReport:
    runs = [_point(r) for r in reversed(storage.runs.list(policy=policy.name, limit=limit))]
    states = storage.users.all(product_key(policy.product))
    licensed = [s for s in states.values() if s.licensed]
    latest = next((r for r in reversed(runs) if r.status in PLANNED_STATUSES), None)
    dues = (
        _current_dues(storage.dues.load(latest.run_id), states, (today - latest.started_at.date()).days)
        if latest
        else []
    )
    idle, unknown = idle_histogram(licensed, today, policy.inactive_after_days)
    return PolicyReport(
        name=policy.name,
        product=policy.product,
        mode=policy.mode,
        inactive_after_days=policy.inactive_after_days,
        external_inactive_after_days=policy.external_inactive_after_days,
        runs=tuple(runs),
        licensed_now=len(licensed),
        idle=idle,
        idle_unknown=unknown,
        dues=tuple(dues),
        latest_planned=latest.run_id if latest else None,
        saving=_saving(storage, policy, runs, latest, states),
    )


def _point(run: Any) -> RunPoint:
    verdict = run.verdict or {}
    limit = verdict.get("limit")
    return RunPoint(
        run_id=run.run_id,
        started_at=run.started_at,
        mode=run.mode,
        status=run.status,
        licensed_before=run.licensed_before,
        licensed_after=run.licensed_after,
        counts=dict(run.counts),
        revocations=sum(n for reason, n in run.counts.items() if reason in _REVOKING),
        applied=run.actions_applied,
        verdict_why=str(verdict.get("why") or ""),
        limit=int(limit) if isinstance(limit, int) else None,
    )


def _current_dues(records: list[dict[str, Any]], states: dict[str, Any], days_since: int) -> list[Due]:
    """The latest forecast, less anyone who lost the license or used the product since.

    The forecast counted idle days on the day of its run; `days_since` brings them to today.
    """
    dues = []
    for record in records:
        due = Due.from_dict(record)
        state = states.get(due.account_id)
        if state is not None:
            if not state.licensed:
                continue
            used = state.last_active
            if used is not None and (due.last_active is None or used > due.last_active):
                continue
        dues.append(replace(due, idle_days=due.idle_days + max(0, days_since)))
    dues.sort(key=lambda d: (d.due_on, d.account_id))
    return dues


def idle_days(state: Any, today: date) -> int | None:
    """Days since the later of the last use and the licensing day, as the rules count them.

    None when neither is known (a person whose activity is still to be looked up).
    """
    known = [d for d in (state.last_active, state.licensed_since) if d is not None]
    if not known:
        return None
    return max(0, (today - max(known)).days)


def idle_histogram(
    licensed: Sequence[Any], today: date, threshold: int
) -> tuple[tuple[IdleBucket, ...], int]:
    """Bars of the idle-days histogram of the people licensed now, and how many are unknown.

    The threshold is always a bar's upper end, so the bars past it are exactly the people the
    rules would take the license from (at threshold + the reporting lag, shared.rules).
    """
    edges = sorted({*IDLE_EDGES, threshold})
    counts = [0] * (len(edges) + 1)
    unknown = 0
    for state in licensed:
        days = idle_days(state, today)
        if days is None:
            unknown += 1
            continue
        counts[next((i for i, edge in enumerate(edges) if days <= edge), len(edges))] += 1
    buckets = []
    low = 0
    for i, people in enumerate(counts):
        high = edges[i] if i < len(edges) else None
        buckets.append(IdleBucket(low, high, people, past_threshold=low > threshold))
        low = (high or 0) + 1
    return tuple(buckets), unknown


def _saving(
    storage: Any, policy: Policy, runs: list[RunPoint], latest: RunPoint | None, states: dict[str, Any]
) -> Saving:
    freed: set[str] = set()
    counted = 0
    for run in runs:
        applied = run.mode == "enforce" and run.status in APPLIED_STATUSES and run.applied > 0
        if not applied or not run.revocations:
            continue
        counted += 1
        for row in storage.results.rows(run.run_id):
            if row["reason"] in _REVOKING and row["outcome"] == "applied":
                freed.add(row["account_id"])
    # Only people the state shows without a license now: anyone who came back is no saving.
    still_free = sum(1 for a in freed if a in states and not states[a].licensed)
    waiting = latest is not None and latest.status in ("report", "held")
    return Saving(
        seat_price=policy.seat_price,
        freed_seats=still_free,
        freed_runs=counted,
        waiting_seats=latest.revocations if waiting and latest else 0,
        waiting_run=latest.run_id if waiting and latest else None,
        waiting_status=latest.status if waiting and latest else None,
    )


__all__ = [
    "DueRow",
    "IdleBucket",
    "PolicyReport",
    "ReportData",
    "RunPoint",
    "Saving",
    "UnknownPolicy",
    "build_report",
    "idle_days",
    "idle_histogram",
]
