"""The nightly reconcile: lease, read, plan, judge the blast radius, save, enqueue, release.

Per policy (one product each), DESIGN.md "Flows" 1. Each run saves its plan and who is due to
lose a license within the warning period (`shared.forecast`). In `report` mode nothing is
enqueued; a plan over the blast radius is saved as `held` and waits for approval; otherwise its
actions go onto the actions queue, where the executor applies them one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared.config import Policy, PolicyFile
from shared.forecast import forecast_horizon, forecast_revocations
from shared.model import Plan, Snapshot
from shared.rules import _Groups, plan_product
from shared.safety import blast_radius
from shared.services.snapshot import ReadResult, SnapshotReader, product_key
from shared.services.warnings import enqueue_notices

log = logging.getLogger("seatwarden.reconcile")

#: How long a reconcile may hold a product before another run may take it over.
LEASE_TTL = timedelta(minutes=30)


@dataclass
class PolicyOutcome:
    policy: str
    product: str
    run_id: str | None
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    licensed_before: int = 0
    licensed_after: int = 0
    enqueued: int = 0
    waiting: int = 0
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReconcileReport:
    started_at: datetime
    outcomes: list[PolicyOutcome]
    read: dict[str, Any]
    pending_lookups: int = 0
    #: What `shared.services.warnings.enqueue_notices` queued: warnings, batches, or why none.
    notices: dict[str, Any] = field(default_factory=dict)


def action_message(run_id: str, action: Any) -> dict[str, Any]:
    """The queue message for one action: everything the executor needs, nothing secret."""
    return {
        "type": "action",
        "run_id": run_id,
        "action": {
            "id": action.id,
            "policy": action.policy,
            "product": action.product,
            "account_id": action.account_id,
            "reason": action.reason.value,
            "ops": [op.to_dict() for op in action.ops],
            "facts": action.facts.to_dict(),
        },
    }


def next_states(
    snapshot: Snapshot,
    policy: Policy,
    stored: dict[str, Any],
    learned: dict[str, date],
    looked_up: frozenset[str],
    today: date,
    state_type: type,
    unknown: frozenset[str] = frozenset(),
) -> list[Any]:
    """The user states that changed tonight: memberships as seen, activity moved forward.

    Only changes are written, so a steady-state night writes a handful of rows, not the org.
    `unknown` are people whose activity is still to be looked up: no idle clock starts for them.
    """
    groups = _Groups(snapshot, policy)
    product = product_key(policy.product)
    everyone = groups.entitled | groups.licensed | groups.marked | (stored.keys() & snapshot.people.keys())
    changed = []
    for account_id in everyone:
        before = stored.get(account_id)
        licensed = account_id in groups.licensed
        marked = account_id in groups.marked
        last = learned.get(account_id)
        if (
            before is not None
            and before.last_active is not None
            and (last is None or before.last_active > last)
        ):
            last = before.last_active
        # `licensed_since` starts an idle clock, so it is set only where it is known:
        # - seen licensed before: keep what was recorded;
        # - seen unlicensed before and licensed now: licensed tonight (an admin's add, say),
        #   so old activity from before the license does not count against them;
        # - never seen before: only for people never seen active, whose idle time counts
        #   from first sight; for the others the last-active date says all there is.
        if not licensed:
            since = None
        elif before is not None and before.licensed:
            since = before.licensed_since
            if since is None and last is None and account_id not in unknown:
                since = today  # now known never to have used it: idle from first sight
        elif before is not None:
            since = today
        else:
            since = today if last is None and account_id not in unknown else None
        marked_at = (before.marked_at if before is not None and before.marked else None) if marked else None
        if marked and marked_at is None:
            marked_at = today
        after = state_type(
            account_id=account_id,
            product=product,
            email=snapshot.people[account_id].email,
            entitled=account_id in groups.entitled,
            licensed=licensed,
            marked=marked,
            last_active=last,
            licensed_since=since,
            marked_at=marked_at,
            warned_for=before.warned_for if before is not None else None,
            last_seen=before.last_seen if before is not None else today,
            last_lookup=today if account_id in looked_up else (before.last_lookup if before else None),
        )
        if after != before:
            changed.append(replace(after, last_seen=today))
    return changed


class Reconciler:
    """Runs the nightly reconcile over every policy; the functions and the CLI both call it."""

    def __init__(
        self,
        storage: Any,
        atlassian: Any,
        graph: Any | None,
        clock: Callable[[], datetime],
        holder: str = "reconcile",
        mail: Any | None = None,
    ):
        self.storage = storage
        self.atlassian = atlassian
        self.graph = graph
        self.clock = clock
        self.holder = holder
        #: `shared.services.warnings.MailSetup`; None: no warnings, no summary (said once in the log).
        self.mail = mail
        #: The night's own view of the users table: its bulk write rests on its own read.
        self.users = storage.users.separate()

    async def run(
        self,
        policies: PolicyFile | Iterable[Policy],
        *,
        mode: str | None = None,
        enqueue: bool = True,
        lookups: str = "inline",
        progress: Callable[[str, int], None] | None = None,
    ) -> ReconcileReport:
        """Reconcile every policy. `mode` overrides the policies' own (`report` for a dry run).

        `lookups` says what to do with people whose activity must be looked up: `inline`
        (here and now: the CLI), `queue` (enqueue them in batches and plan when they are done:
        the nightly function), or `skip` (they are unknown tonight: the pass after the queue).
        """
        chosen = list(policies.policies if isinstance(policies, PolicyFile) else policies)
        now = self.clock()
        outcomes: list[PolicyOutcome] = []
        leases = {}
        mine: list[Policy] = []
        for policy in chosen:
            lease = self.storage.leases.acquire(
                f"product-{product_key(policy.product)}", self.holder, LEASE_TTL, now
            )
            if lease is None:
                outcomes.append(
                    PolicyOutcome(
                        policy.name,
                        policy.product,
                        None,
                        "skipped",
                        why="another run holds this product's lease",
                    )
                )
                continue
            leases[policy.name] = lease
            mine.append(policy)
        try:
            if not mine:
                return ReconcileReport(now, outcomes, {})
            reader, stored = self.reader(mine)
            result = await reader.read(mine, now, do_lookups=lookups == "inline", progress=progress)
            # Webhooks from Entra name object ids only: remember whom each one is in Atlassian.
            self.storage.identities.record(
                {p.entra_id: a for a, p in result.snapshot.people.items() if p.entra_id}
            )
            if lookups == "queue" and result.pending_lookups:
                return self._queue_lookups(mine, result, stored, now, outcomes)
            for policy in mine:
                outcomes.append(self._one(policy, result, stored, now, mode, enqueue))
            self._save_calls([o.run_id for o in outcomes if o.run_id])
            # Only now, with tonight's entitlement written to state, do the links move on.
            from shared.services.entra_sync import delta_cursor

            for group_id, link in reader.new_delta_links.items():
                self.storage.cursors.set(delta_cursor(group_id), link)
            notices = (
                enqueue_notices(self.storage, self.mail, self.graph, mine, outcomes, stored, now)
                if enqueue
                else {}
            )
            return ReconcileReport(
                now, outcomes, result.stats.to_dict(), len(result.pending_lookups), notices
            )
        finally:
            for lease in leases.values():
                self.storage.leases.release(lease)

    def reader(self, policies: list[Policy]) -> tuple[SnapshotReader, dict[str, dict[str, Any]]]:
        """A snapshot reader for `policies` over the stored state, and that state by product.

        Entra entitlement comes from the stored delta links; the caller decides whether the
        links move on (`new_delta_links`), as the nightly run does once state is written.
        """
        from shared.services.entra_sync import delta_cursor

        stored = {product_key(p.product): self.users.all(product_key(p.product)) for p in policies}
        entra_groups = {p.entitlement.entra_group_id for p in policies if p.entitlement.entra_group_id}
        reader = SnapshotReader(
            self.atlassian,
            self.graph,
            stored,
            delta_links={g: self.storage.cursors.get(delta_cursor(g)) for g in entra_groups},
            identities=self.storage.identities.all() if entra_groups else {},
        )
        return reader, stored

    def _save_calls(self, run_ids: list[str]) -> None:
        """Keep this reconcile's outbound calls with its runs, for `seatwarden diagnose`."""
        log = getattr(self.atlassian, "request_log", None)
        if log is None:
            return
        records = [r.to_dict() for r in log.records()]
        for run_id in run_ids:
            self.storage.calls.save(run_id, records)

    def _remember(
        self, policy: Policy, result: ReadResult, stored: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        from shared.store import UserState

        product = product_key(policy.product)
        changed = next_states(
            result.snapshot,
            policy,
            stored.get(product, {}),
            result.learned.get(product, {}),
            result.looked_up,
            now.date(),
            UserState,
            result.pending_lookups,
        )
        self.users.upsert_many(product, changed)

    def _queue_lookups(
        self,
        policies: list[Policy],
        result: ReadResult,
        stored: dict[str, dict[str, Any]],
        now: datetime,
        outcomes: list[PolicyOutcome],
    ) -> ReconcileReport:
        from shared.services.lookups import JOB_POLICY, lookup_messages

        for policy in policies:
            self._remember(policy, result, stored, now)
        job = self.storage.runs.create(JOB_POLICY, "all", "job", now)
        messages = lookup_messages(
            job.run_id, now.date(), result.pending_lookups, [p.product for p in policies]
        )
        self.storage.runs.set_status(job.run_id, "applying", actions_total=len(messages))
        self.storage.queues.send_many("lookups", messages)
        why = f"{len(result.pending_lookups)} last-active lookups queued in {len(messages)} batches"
        log.info("%s; the plan follows when they are done", why)
        outcomes.extend(PolicyOutcome(p.name, p.product, None, "looking-up", why=why) for p in policies)
        return ReconcileReport(now, outcomes, result.stats.to_dict(), len(result.pending_lookups))

    def _one(
        self,
        policy: Policy,
        result: ReadResult,
        stored: dict[str, dict[str, Any]],
        now: datetime,
        mode: str | None,
        enqueue: bool,
    ) -> PolicyOutcome:
        mode = mode or policy.mode
        run = self.storage.runs.create(policy.name, policy.product, mode, now)
        try:
            plan: Plan = plan_product(result.snapshot, policy, now)
            verdict = blast_radius(plan, policy)
            self.storage.results.save_plan(run.run_id, plan)
            due = forecast_revocations(result.snapshot, policy, now, plan, forecast_horizon(policy))
            self.storage.dues.save(run.run_id, [d.to_dict() for d in due])
            if mode == "report":
                status = "report"
            elif verdict.held:
                status = "held"
            else:
                status = "applying" if plan.actions else "done"
            # Tonight's view is written before the first action is queued: executors start on
            # the first message, and their state (after the change) must be the one that stays.
            self._remember(policy, result, stored, now)
            enqueued = 0
            if status == "applying" and enqueue:
                self.storage.queues.send_many(
                    "actions", [action_message(run.run_id, a) for a in plan.actions]
                )
                enqueued = len(plan.actions)
            self.storage.runs.set_status(
                run.run_id,
                status,
                counts=plan.counts(),
                verdict=verdict.to_dict(),
                licensed_before=plan.licensed_before,
                licensed_after=plan.licensed_after,
                actions_total=len(plan.actions),
                finished_at=self.clock() if status in ("report", "done", "held") else None,
            )
            log.info(
                "policy %s: run %s %s, %d actions %s, %d waiting; %s",
                policy.name,
                run.run_id,
                status,
                len(plan.actions),
                plan.counts(),
                len(plan.waiting),
                verdict.why,
            )
            return PolicyOutcome(
                policy.name,
                policy.product,
                run.run_id,
                status,
                plan.counts(),
                verdict.to_dict(),
                plan.licensed_before,
                plan.licensed_after,
                enqueued,
                len(plan.waiting),
                verdict.why,
            )
        except Exception as exc:
            self.storage.runs.set_status(
                run.run_id, "failed", error=f"{type(exc).__name__}: {exc}", finished_at=self.clock()
            )
            raise
