"""Warnings before a revocation, and the administrators' run summary.

DESIGN.md, "Safety": people are warned before they lose a license (`warn_before_days`), where
mail is configured. After a reconcile has saved its runs, `enqueue_notices` reads each
enforcing run's forecast (`shared.forecast`, `storage.dues`) and queues one warning per person
whose revocation falls within the policy's warning period and who was not warned for that day
yet, in batches on the `warnings` queue. `NoticeWorker` (the `send_warnings` function) sends a
batch through Graph `sendMail` from the configured mailbox, and the batch that completes the
reconcile's job sends the administrators one summary of all its runs.

Nobody gets two warnings for one revocation. Queues deliver at least once, invocations are
retried and may overlap, and a worker may stop between any two steps, so the order is:

1. Read the stored state: a person no longer licensed, already marked, warned for this day,
   or seen using the product since the forecast is not warned (nothing is claimed).
2. Claim the warning: `deliveries.first_time("warning", product|account|day)`. Creating a row
   that exists fails, so of any number of workers exactly one goes on.
3. Send. Only a send Graph certainly refused (a 4xx, 429 after the retries, or 503, none of
   which queue a mail) gives the claim back, so a later try may send it.
   Anything else (a timeout, a dropped connection, another 5xx) may have sent the mail: the
   claim stays and the warning is recorded as ``unconfirmed``. A missed warning is the lesser
   failure; a second one cannot happen.
4. Record: one `WARN` audit entry (who was told what, when, and why) and `warned_for` on the
   person's state, so the next night does not queue them again. A worker that stops between
   3 and 4 leaves the claim, so the mail is still never repeated, but that one warning has no
   audit entry; the claim row (`deliveries`, source ``warning``) still shows when it was made.

A person who uses the product after the warning gets a later date, and a warning for the new
date is a new warning. Excluded people, admins and those whose activity is unknown are never
in the forecast, so they are never warned.

Pacing: Exchange Online lets one mailbox send 30 messages a minute and 10,000 recipients a day
(see `shared.http.DEFAULT_RATES_PER_MINUTE` for the sources). A batch holds one minute's worth
of mail; batches become visible on the queue one interval apart (a visibility delay), so
however many invocations the host runs, the mailbox sees about its rate; inside a batch the
Graph client's `Pacer` spaces the sends, and a 429 holds them. At most
`MAX_WARNINGS_PER_NIGHT` warnings are queued a night, soonest revocation first, which keeps
the mailbox under its daily recipient limit; the rest are still due the next night.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared.config import Policy
from shared.errors import GraphError, RemoteError
from shared.forecast import Due
from shared.http import DEFAULT_RATES_PER_MINUTE
from shared.services.execute import BadMessage
from shared.services.snapshot import product_key
from shared.settings import Settings

log = logging.getLogger("seatwarden.warnings")

#: Warnings per queue message: one minute of mail at Exchange Online's 30 a minute.
BATCH_SIZE = 30
#: Exchange Online's 10,000 recipients a day per mailbox, less room for the summaries and
#: whatever else the mailbox sends.
MAX_WARNINGS_PER_NIGHT = 9_000
#: Batches are spaced a little wider than their mail takes at the rate, so two never overlap.
SPACING_SLACK = 1.25

#: `deliveries` sources: the claim of one warning, the batches of a job done, the warnings a
#: job sent (read back for the summary), the claim of a job's summary.
CLAIM_SOURCE = "warning"
_BATCHES = "warning-batches:"
_SENT = "warnings-sent:"
SUMMARY_SOURCE = "run-summary"

#: Runs whose forecast is announced: the policy enforces and tonight's plan was let through.
#: A held run waits for an administrator, and so do its warnings.
_WARNING_STATUSES = frozenset({"applying", "done"})
#: The order of runs in the summary: what needs an administrator first.
_SUMMARY_ORDER = {"held": 0, "failed": 1, "applying": 2, "done": 3, "report": 4}

#: How the products are called in the mails; any other key is shown as it is.
PRODUCT_NAMES = {
    "confluence": "Confluence",
    "jira-software": "Jira",
    "jira-core": "Jira Work Management",
    "jira-servicedesk": "Jira Service Management",
    "jira-service-desk": "Jira Service Management",
    "jira-product-discovery": "Jira Product Discovery",
    "bitbucket": "Bitbucket",
    "statuspage": "Statuspage",
    "opsgenie": "Opsgenie",
    "compass": "Compass",
    "loom": "Loom",
    "trello": "Trello",
    "atlas": "Atlas",
}


def product_name(product: str) -> str:
    return PRODUCT_NAMES.get(product_key(product), product)


def _day(value: date) -> str:
    """``Monday 9 March 2026``: unambiguous wherever the reader lives (strftime's C locale)."""
    return f"{value:%A} {value.day} {value:%B %Y}"


@dataclass(frozen=True)
class MailSetup:
    """Who sends, who gets the summary, where the links point, how fast the mailbox may send."""

    sender: str | None
    admins: tuple[str, ...] = ()
    public_url: str | None = None
    per_minute: float = DEFAULT_RATES_PER_MINUTE["graph.mail"]

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSetup:
        """Read the mail settings; an unusable one raises `InvalidSetting` naming it."""
        rate = settings.mail_rate_per_minute
        return cls(
            sender=settings.mail_sender,
            admins=settings.admin_addresses,
            public_url=(settings.public_base_url or "").rstrip("/") or None,
            per_minute=rate if rate is not None else DEFAULT_RATES_PER_MINUTE["graph.mail"],
        )

    def unavailable(self, graph: Any | None) -> str | None:
        """Why no mail can go out, or None when it can."""
        missing = [
            what
            for what, ok in (
                ("SEATWARDEN_MAIL_SENDER", bool(self.sender)),
                ("Graph (ENTRA_TENANT_ID, ENTRA_CLIENT_ID and a credential)", graph is not None),
            )
            if not ok
        ]
        return f"mail is not configured: {' and '.join(missing)} not set" if missing else None

    def relicense_link(self, product: str) -> str | None:
        """The self-service page that gives an entitled, marked person the license back."""
        if not self.public_url:
            return None
        return f"{self.public_url}/api/relicense?product={product_key(product)}"

    def batch_spacing(self) -> timedelta:
        """How far apart batches become visible on the queue."""
        return timedelta(seconds=BATCH_SIZE / self.per_minute * 60 * SPACING_SLACK)


@dataclass(frozen=True)
class PendingWarning:
    """One warning to send: the forecast's `Due`, with its policy, product and run."""

    policy: str
    product: str
    run_id: str
    due: Due

    @property
    def key(self) -> str:
        """One warning per person, product and revocation day, whoever sends it."""
        return f"{product_key(self.product)}|{self.due.account_id}|{self.due.due_on.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "product": self.product, "run_id": self.run_id, **self.due.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingWarning:
        return cls(
            str(data["policy"]),
            str(data["product"]),
            str(data.get("run_id") or ""),
            Due.from_dict(dict(data)),
        )


# --- what to warn about ------------------------------------------------------------------------


def warnings_due(
    storage: Any,
    policies: Iterable[Policy],
    outcomes: Iterable[Any],
    stored: Mapping[str, Mapping[str, Any]],
    today: date,
) -> list[PendingWarning]:
    """Tonight's warnings: from each enforcing run's forecast, those within its warning period
    and not yet warned for that day, soonest revocation first."""
    by_name = {p.name: p for p in policies}
    found: list[PendingWarning] = []
    for outcome in outcomes:
        policy = by_name.get(outcome.policy)
        # The status says whether the run enforced (a `mode` override included): only those warn.
        if policy is None or not outcome.run_id or outcome.status not in _WARNING_STATUSES:
            continue
        if policy.warn_before_days <= 0:
            continue
        product = product_key(policy.product)
        last_day = today + timedelta(days=policy.warn_before_days)
        states = stored.get(product, {})
        for raw in storage.dues.load(outcome.run_id):
            due = Due.from_dict(raw)
            state = states.get(due.account_id)
            if due.due_on > last_day or not due.email:
                continue
            if state is not None and state.warned_for == due.due_on:
                continue
            found.append(PendingWarning(policy.name, product, outcome.run_id, due))
    found.sort(key=lambda w: (w.due.due_on, w.product, w.due.account_id))
    return found


def job_id(run_ids: Iterable[str]) -> str:
    """The reconcile's notice job: named by its runs, so a retried enqueue names the same job."""
    return hashlib.sha256("|".join(sorted(run_ids)).encode()).hexdigest()[:24]


def notice_messages(
    job: str, day: date, run_ids: list[str], warnings: list[PendingWarning]
) -> list[dict[str, Any]]:
    """The job's queue messages: the warnings in batches, or one empty batch for the summary."""
    batches = [warnings[i : i + BATCH_SIZE] for i in range(0, len(warnings), BATCH_SIZE)] or [[]]
    return [
        {
            "type": "warnings",
            "job": job,
            "day": day.isoformat(),
            "runs": run_ids,
            "batch": index,
            "batches": len(batches),
            "warnings": [w.to_dict() for w in batch],
        }
        for index, batch in enumerate(batches)
    ]


def enqueue_notices(
    storage: Any,
    mail: MailSetup | None,
    graph: Any | None,
    policies: Iterable[Policy],
    outcomes: list[Any],
    stored: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """After a reconcile: queue tonight's warnings and the administrators' summary.

    Nothing is queued where mail is not configured; the reconcile's log says so once. Returns
    what was done, for the reconcile's report.
    """
    chosen = list(policies)
    run_ids = [o.run_id for o in outcomes if o.run_id]
    if not run_ids:
        return {}
    warnings = warnings_due(storage, chosen, outcomes, stored, now.date())
    why_not = mail.unavailable(graph) if mail is not None else "mail is not configured for this reconcile"
    if mail is None or why_not is not None:
        if warnings or (mail is not None and mail.admins):
            log.info("warnings and run summary not sent: %s (%d people due)", why_not, len(warnings))
        return {"warnings": 0, "not_sent": why_not}
    deferred = warnings[MAX_WARNINGS_PER_NIGHT:]
    warnings = warnings[:MAX_WARNINGS_PER_NIGHT]
    if deferred:
        log.warning(
            "%d warnings wait for the next night: one mailbox sends to at most 10,000 recipients a day",
            len(deferred),
        )
    if not warnings and not mail.admins:
        return {"warnings": 0, "deferred": 0}
    job = job_id(run_ids)
    messages = notice_messages(job, now.date(), run_ids, warnings)
    spacing = mail.batch_spacing()
    for index, message in enumerate(messages):
        storage.queues.send("warnings", message, delay=spacing * index if index else None)
    log.info(
        "%d warnings queued in %d batches, %s apart%s",
        len(warnings),
        len(messages),
        spacing,
        "; the run summary follows the last" if mail.admins else "",
    )
    return {"warnings": len(warnings), "batches": len(messages), "deferred": len(deferred), "job": job}


# --- the mails ---------------------------------------------------------------------------------


def warning_mail(warning: PendingWarning, mail: MailSetup) -> tuple[str, str]:
    """Subject and plain-text body of one warning."""
    name = product_name(warning.product)
    subject = f"Your {name} license will be removed on {_day(warning.due.due_on)} unless you use it"
    if warning.due.last_active is not None:
        since = f"You have not used {name} since {_day(warning.due.last_active)}."
    else:
        since = f"You have not used {name} since you were given access to it."
    # Atlassian counts viewing a product page for at least 2 seconds as activity and reports
    # it up to 24 hours late (https://developer.atlassian.com/cloud/admin/organization/
    # user-last-active-dates/), hence "a few seconds" and "by the day before".
    lines = [
        "Hello,",
        "",
        since,
        f"Your organization removes a {name} license after {warning.due.threshold_days} days without use,",
        f"so yours will be removed on {_day(warning.due.due_on)}.",
        "",
        f"To keep it, open {name} and look at any page for a few seconds. Atlassian can take up to",
        f"a day to notice, so please do it by {_day(warning.due.due_on - timedelta(days=1))}.",
        "",
    ]
    link = mail.relicense_link(warning.product)
    if link:
        lines += [
            "If the license has been removed and you need it again, you get it back at once here:",
            link,
        ]
    else:
        lines += ["If the license has been removed and you need it again, ask your Atlassian administrators."]
    lines += [
        "",
        "You get this reminder once for this date.",
        "",
        "Seatwarden, for your Atlassian administrators",
    ]
    return subject, "\n".join(lines) + "\n"


def _counts(counts: Mapping[str, int]) -> str:
    shown = [f"{reason} {n}" for reason, n in sorted(counts.items()) if n]
    return ", ".join(shown) if shown else "nothing"


def summary_mail(
    day: date,
    runs: list[Any],
    warned: Mapping[str, Mapping[str, int]],
    due: Mapping[str, int],
    mail: MailSetup,
) -> tuple[str, str]:
    """Subject and plain-text body of the administrators' summary of one reconcile.

    ``runs`` are `shared.store.Run` rows; ``warned`` maps a run id to warnings by outcome
    (``sent``, ``unconfirmed``); ``due`` a run id to the number of people due soon.
    """
    ordered = sorted(runs, key=lambda r: (_SUMMARY_ORDER.get(r.status, 9), r.policy))
    held = [r for r in ordered if r.status == "held"]
    subject = f"Seatwarden: {len(runs)} {'policy' if len(runs) == 1 else 'policies'} reconciled on {day}"
    if held:
        subject += f"; {len(held)} held for approval"
    lines = [
        f"Seatwarden reconciled {len(runs)} {'policy' if len(runs) == 1 else 'policies'} on {_day(day)}.",
        "",
    ]
    for run in ordered:
        lines.append(f"{run.status.upper()}: {run.policy} ({product_name(run.product)}), run {run.run_id}")
        if run.status == "held":
            lines.append(f"  Held: {run.verdict.get('why') or 'over the blast radius'}. Nothing was changed.")
            lines.append("  Read the plan, then approve it with either of:")
            lines.append(f"    seatwarden approve {run.run_id}")
            base = mail.public_url or "https://<your function app>"
            lines.append(f"    POST {base}/api/admin/runs/{run.run_id}/approve")
        elif run.status == "report":
            lines.append("  Report mode: planned only, nothing was changed.")
        elif run.status == "failed":
            lines.append(f"  Failed: {run.error or 'see the function logs'}")
        elif run.status == "applying":
            done = sum(v for k, v in run.outcomes.items() if k != "planned")
            lines.append(f"  Applying: {done} of {run.actions_total} actions finished so far.")
        lines.append(f"  Planned: {_counts(run.counts)}")
        lines.append(f"  Licensed: {run.licensed_before} before, {run.licensed_after} after")
        sent = warned.get(run.run_id, {})
        line = f"  Warned tonight: {sent.get('sent', 0)}"
        if run.status == "held":
            line += " (a held run warns nobody)"
        if sent.get("unconfirmed"):
            line += f" (and {sent['unconfirmed']} whose mail Graph did not confirm)"
        line += f"; due to lose the license soon: {due.get(run.run_id, 0)}"
        lines.append(line)
        lines.append("")
    if mail.public_url:
        lines.append(f"Report: {mail.public_url}/api/admin/report")
    return subject, "\n".join(lines).rstrip("\n") + "\n"


# --- sending -----------------------------------------------------------------------------------


def _not_sent(exc: RemoteError) -> bool:
    """Did Graph certainly not queue the mail? A 4xx (429 included) is a refusal; 503 is
    "temporarily unavailable, repeat after a delay" (https://learn.microsoft.com/graph/errors).
    No answer, or another 5xx, may have come after the mail was queued."""
    return (
        isinstance(exc, GraphError)
        and exc.status is not None
        and (400 <= exc.status < 500 or exc.status == 503)
    )


def _transient(exc: RemoteError) -> bool:
    """A refusal worth trying again later (throttling, a busy service), not a bad address."""
    return exc.status in (429, 503) or exc.retry_after is not None


class _Gone(Exception):
    """The person's state vanished between reading and recording."""


class NoticeWorker:
    """Sends one batch of warnings, and the summary when the batch completes its job."""

    def __init__(self, storage: Any, graph: Any, mail: MailSetup, clock: Callable[[], datetime]):
        self.storage = storage
        self.graph = graph
        self.mail = mail
        self.clock = clock

    async def apply(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send a batch; returns counts by outcome. A transient refusal raises (the queue retries);
        what was sent before it stays claimed, so the retry sends only the rest."""
        if message.get("type") != "warnings":
            raise BadMessage(f"not a warnings message: type={message.get('type')!r}")
        try:
            warnings = [PendingWarning.from_dict(w) for w in message.get("warnings") or ()]
            job = str(message["job"])
            int(message["batch"]), int(message["batches"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadMessage(f"malformed warnings message: {exc}") from exc
        why_not = self.mail.unavailable(self.graph)
        if why_not is not None:
            log.warning("warnings batch not sent: %s", why_not)
            return {"not_sent": why_not}
        counts: dict[str, Any] = {}
        for warning in warnings:
            outcome = await self._warn(warning, job)
            counts[outcome] = counts.get(outcome, 0) + 1
        if self._batch_done(message) and await self._send_summary(message):
            counts["summary"] = 1
        return counts

    def _stale(self, warning: PendingWarning, state: Any | None, today: date) -> str | None:
        """Why this warning should not go out now, or None."""
        if warning.due.due_on < today:
            return "the day has passed"
        if state is None or not state.licensed or state.marked:
            return "no longer licensed"
        if state.warned_for == warning.due.due_on:
            return "already warned"
        if state.last_active is not None and (
            warning.due.last_active is None or state.last_active > warning.due.last_active
        ):
            return "used the product since the forecast"
        return None

    async def _warn(self, warning: PendingWarning, job: str) -> str:
        found = self.storage.users.get(warning.product, warning.due.account_id)
        state = found[0] if found is not None else None
        if self._stale(warning, state, self.clock().date()) is not None:
            return "skipped"
        if not self.storage.deliveries.first_time(CLAIM_SOURCE, warning.key):
            return "already"  # another worker has it, or had it: never a second mail
        subject, body = warning_mail(warning, self.mail)
        assert self.mail.sender is not None
        try:
            await self.graph.send_mail(self.mail.sender, warning.due.email, subject, body)
        except RemoteError as exc:
            if not _not_sent(exc):
                log.warning("warning to %s may or may not have gone out: %s", warning.due.account_id, exc)
                self._record(warning, state, job, "unconfirmed", subject, str(exc))
                return "unconfirmed"
            self.storage.deliveries.forget(CLAIM_SOURCE, warning.key)
            if _transient(exc):
                raise
            log.warning("warning to %s refused by Graph: %s", warning.due.account_id, exc)
            if exc.status in (401, 403, 404):
                raise  # the mailbox or the permission is wrong: every other send fails too
            return "failed"
        self._record(warning, state, job, "sent", subject)
        return "sent"

    def _record(
        self,
        warning: PendingWarning,
        before: Any | None,
        job: str,
        outcome: str,
        subject: str,
        error: str = "",
    ) -> None:
        after: dict[str, Any] = {
            "warned_for": warning.due.due_on.isoformat(),
            "mail": outcome,
            "to": warning.due.email,
        }
        if error:
            after["error"] = error
        self.storage.audit.append(
            actor="warnings",
            action="WARN",
            product=warning.product,
            account_id=warning.due.account_id,
            run_id=warning.run_id,
            action_id=f"warn:{warning.key}",
            before={"warned_for": before.warned_for.isoformat() if before and before.warned_for else None},
            after=after,
            why={"policy": warning.policy, **warning.due.to_dict(), "subject": subject},
        )
        self.storage.deliveries.first_time(_SENT + job, f"{warning.run_id}|{outcome}|{warning.key}")

        def mutate(state: Any | None) -> Any:
            if state is None:
                raise _Gone
            return replace(state, warned_for=warning.due.due_on)

        try:
            self.storage.users.update(warning.product, warning.due.account_id, mutate)
        except _Gone:
            pass  # the claim and the audit entry already stop a second mail

    def _batch_done(self, message: Mapping[str, Any]) -> bool:
        """Count this batch against its job; True when every batch of the job is done.

        The queue's length cannot tell (it counts this message too), so each finished batch
        leaves a row, and the rows are counted. A redelivered batch counts once.
        """
        source = _BATCHES + str(message["job"])
        self.storage.deliveries.first_time(source, f"{int(message['batch']):06d}")
        return len(self.storage.deliveries.ids(source)) >= int(message["batches"])

    async def _send_summary(self, message: Mapping[str, Any]) -> bool:
        """The administrators' summary, once per job (claimed like a warning)."""
        if not self.mail.admins:
            return False
        job = str(message["job"])
        if not self.storage.deliveries.first_time(SUMMARY_SOURCE, job):
            return False
        runs = [
            r for r in (self.storage.runs.get(str(i)) for i in message.get("runs") or ()) if r is not None
        ]
        warned: dict[str, dict[str, int]] = {}
        for sent in self.storage.deliveries.ids(_SENT + job):
            run_id, outcome, _ = sent.split("|", 2)
            warned.setdefault(run_id, {}).setdefault(outcome, 0)
            warned[run_id][outcome] += 1
        due = {r.run_id: len(self.storage.dues.load(r.run_id)) for r in runs}
        subject, body = summary_mail(date.fromisoformat(str(message["day"])), runs, warned, due, self.mail)
        assert self.mail.sender is not None
        try:
            await self.graph.send_mail(self.mail.sender, list(self.mail.admins), subject, body)
        except RemoteError as exc:
            if _not_sent(exc):
                self.storage.deliveries.forget(SUMMARY_SOURCE, job)
                raise
            log.warning("run summary may or may not have gone out: %s", exc)
        return True
