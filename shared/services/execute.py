"""The action executor: apply one queued action, at most once, against current state.

Queues deliver at least once, so every step is safe to repeat (DESIGN.md "Safety"):

1. Read the person as Atlassian sees them now. A revocation whose premise no longer holds
   (the person used the product since the plan, or is no longer an active account) is
   skipped: a stale plan never takes a license.
2. Apply only the operations not already in effect, in order, stopping at the first refusal
   (a GRANT without a free seat waits; its marker is not removed).
3. Update the user state, the run's per-user result and its counters.
4. Claim the action id in the ledger and write one audit entry, last of all. A redelivery
   after a crash between the change and the audit write finds the change in effect and the
   audit entry missing, and does 3 and 4 then: every change has exactly one audit entry.
   So that the entry then says the change was made rather than found, each op is noted in
   the ledger (source ``"action-op"``) before it is sent: an op in effect that an earlier
   try set out to make is this action's change, not someone else's. (An earlier try whose
   op was refused, followed by someone else making that very change before the retry,
   would be taken for this action's: a narrow case, and the trail then names one cause
   too many, never none.)

All of it happens under the person's lease (`person_lease`): one writer per person at a time,
so a return event never reads someone halfway through losing the license (access gone,
marker not yet set) and finds nothing to give back.

Transient failures (rate limits after retries, timeouts, 5xx) raise, so the queue retries and
finally moves the message to the poison queue; permanent refusals are recorded as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared.errors import (
    GroupIsSynced,
    NotFound,
    RemoteError,
    SeatLimitReached,
)
from shared.model import REVOKING_REASONS, Action, Facts, Op, OpKind, Reason, Via
from shared.services.snapshot import product_key

log = logging.getLogger("seatwarden.execute")

#: How long a person's lease lasts if its holder dies: far longer than one action takes, and
#: short enough to free within a message's tries (host.json: 5 tries, 30 s apart, each of
#: which waits `PERSON_LEASE_WAIT_SECONDS`), so a dead holder never poisons the next writer.
PERSON_LEASE_TTL = timedelta(minutes=2)
#: How long a second writer waits for the first before giving up (its queue retries it).
PERSON_LEASE_WAIT_SECONDS = 30.0
#: The person leases this task holds, so a return event's executor does not wait for itself.
_held_people: ContextVar[frozenset[str]] = ContextVar("seatwarden_person_leases", default=frozenset())


@asynccontextmanager
async def person_lease(
    storage: Any, clock: Callable[[], datetime], account_id: str, holder: str
) -> AsyncIterator[None]:
    """One writer per person at a time: the executor and the return events take this lease.

    Reading a person and acting on what was read must not interleave with another writer
    doing the same: an executor between removing the access and adding the marker would
    show a returning person as neither licensed nor marked, and the return would give nothing
    back. A second writer waits (bounded) for the first; after `PERSON_LEASE_WAIT_SECONDS`
    it raises `LeaseHeld`, so its queue message is retried later. Held already by this task:
    no second acquisition.
    """
    from shared.store import LeaseHeld

    name = f"person-{account_id}"
    held = _held_people.get()
    if name in held:
        yield
        return
    deadline = time.monotonic() + PERSON_LEASE_WAIT_SECONDS
    attempt = 0
    while (lease := storage.leases.acquire(name, holder, PERSON_LEASE_TTL, clock())) is None:
        if time.monotonic() >= deadline:
            other = storage.leases.get(name)
            raise LeaseHeld(name, other.holder, other.expires_at) if other else LeaseHeld(name)
        if attempt == 0:
            log.info("%s waits for another writer of %s to finish", holder, account_id)
        await asyncio.sleep(min(0.02 * 2**attempt, 0.5))
        attempt += 1
    token = _held_people.set(held | {name})
    try:
        yield
    finally:
        _held_people.reset(token)
        storage.leases.release(lease)


#: The ledger source of the ops an action set out to make (`Executor.apply`).
OP_LEDGER = "action-op"


def op_attempt(action_id: str, index: int) -> str:
    """The ledger id of an action's op number `index`."""
    return f"{action_id}/{index}"


class BadMessage(ValueError):
    """A queue message that is not an action: raising sends it to the poison queue."""


def parse_action(message: Mapping[str, Any]) -> tuple[str, Action]:
    try:
        if message.get("type") != "action":
            raise BadMessage(f"not an action message: type={message.get('type')!r}")
        body = message["action"]
        action = Action(
            id=str(body["id"]),
            policy=str(body["policy"]),
            product=str(body["product"]),
            account_id=str(body["account_id"]),
            reason=Reason(body["reason"]),
            ops=tuple(Op.from_dict(o) for o in body["ops"]),
            facts=Facts.from_dict(body.get("facts") or {}),
        )
        return str(message.get("run_id") or ""), action
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadMessage):
            raise
        raise BadMessage(f"malformed action message: {exc}") from exc


@dataclass
class Current:
    """The person as Atlassian sees them at the moment of applying."""

    exists: bool
    active: bool = False
    suspended: bool = False
    groups: frozenset[str] = frozenset()
    last_active: dict[str, date] | None = None


class Executor:
    def __init__(
        self,
        storage: Any,
        atlassian: Any,
        graph: Any | None,
        clock: Callable[[], datetime],
        actor: str = "executor",
    ):
        self.storage = storage
        self.atlassian = atlassian
        self.graph = graph
        self.clock = clock
        self.actor = actor

    async def current(self, account_id: str) -> Current:
        async for page in self.atlassian.iter_user_pages(account_ids=[account_id]):
            for user in page:
                if user.account_id != account_id:
                    continue
                activity = {
                    product_key(a.key): a.last_active_timestamp.date()
                    for a in (user.product_access or ())
                    if a.last_active_timestamp is not None
                }
                return Current(
                    exists=True,
                    active=(user.status or "active") == "active"
                    and (user.account_status or "active") == "active",
                    suspended=(user.status or "") == "suspended",
                    groups=frozenset(g.id for g in (user.groups or ())),
                    last_active=activity,
                )
        return Current(exists=False)

    def _premise_gone(self, action: Action, now: Current) -> str | None:
        if not now.exists:
            return "the account no longer exists"
        if action.reason in REVOKING_REASONS or action.reason in (Reason.GRANT, Reason.RELICENSE):
            if not now.active:
                return "the account is no longer active"
        if action.reason in (Reason.INACTIVE, Reason.SEAT_CAP) and now.last_active:
            used = now.last_active.get(product_key(action.product))
            planned = action.facts.last_active
            if used is not None and (planned is None or used > planned):
                return f"used {action.product} on {used.isoformat()}, after the plan's {planned}"
        return None

    def _entitled_again(self, run_id: str, action: Action) -> str | None:
        """Why a plan's REVOKE_UNENTITLED no longer holds: Entra has entitled the person since.

        The night writes the entitlement it planned from before it queues the actions, and an
        Entra change between nights is written to the person's state as it is handled
        (`shared.services.entra_sync`), so a stored entitlement is newer than the plan. An
        action decided by an event (no run) rests on that event's own fresh read.
        """
        if action.reason is not Reason.REVOKE_UNENTITLED or not run_id:
            return None
        found = self.storage.users.get(product_key(action.product), action.account_id)
        if found is not None and found[0].entitled:
            return "entitled again since the plan (an Entra change handled after it)"
        return None

    def _made_earlier(self, action: Action, now: Current) -> list[Op]:
        """The ops in effect that an earlier try of `action` set out to make."""
        return [
            op
            for index, op in enumerate(action.ops)
            if self._in_effect(op, now)
            and self.storage.deliveries.seen(OP_LEDGER, op_attempt(action.id, index))
        ]

    def _in_effect(self, op: Op, now: Current) -> bool:
        if op.via is not Via.ATLASSIAN:
            return False
        if op.kind is OpKind.SUSPEND:
            return now.suspended
        in_group = op.group_id in now.groups
        return in_group if op.kind is OpKind.ADD else not in_group

    async def _apply_op(self, op: Op, account_id: str, entra_id: str | None) -> None:
        if op.via is Via.ATLASSIAN:
            assert op.kind is OpKind.SUSPEND or op.group_id
            if op.kind is OpKind.SUSPEND:
                await self.atlassian.suspend(account_id)
            elif op.kind is OpKind.ADD:
                await self.atlassian.add_member(op.group_id, account_id)
            else:
                await self.atlassian.remove_member(op.group_id, account_id)
        elif op.via is Via.ENTRA:
            if self.graph is None or not entra_id or not op.group_id:
                raise NotFound("Entra write needs Graph settings and the person's Entra object id")
            if op.kind is OpKind.ADD:
                await self.graph.add_member(op.group_id, entra_id)
            else:
                await self.graph.remove_member(op.group_id, entra_id)

    async def apply(self, message: Mapping[str, Any]) -> str:
        """Apply one action message, under the person's lease; returns the outcome recorded."""
        run_id, action = parse_action(message)
        async with person_lease(self.storage, self.clock, action.account_id, self.actor):
            return await self._apply(message, run_id, action)

    async def _apply(self, message: Mapping[str, Any], run_id: str, action: Action) -> str:
        # A message may name who asked for it (the self-service route handing over to the
        # queue); the audit entry then says so instead of naming this executor.
        actor = str(message.get("actor") or self.actor)
        if self.storage.deliveries.seen("action", action.id):
            if self.storage.audit.has_action(action.id):
                return "duplicate"
        now = await self.current(action.account_id)
        why_not = self._premise_gone(action, now) or self._entitled_again(run_id, action)
        if why_not:
            # What an earlier try made before it died is this action's all the same: its
            # audit entry says so, and the next night's plan puts right what needs it.
            return self._finish(
                run_id, action, "skipped", why_not, self._made_earlier(action, now), [], actor
            )
        entra_id = message.get("entra_id")
        changed: list[Op] = []
        already: list[Op] = []
        for index, op in enumerate(action.ops):
            if op.via is Via.CSV:
                return self._finish(
                    run_id,
                    action,
                    "waiting",
                    "listed in the IdP CSV export for an Entra admin to apply",
                    changed,
                    already,
                    actor,
                )
            if self._in_effect(op, now):
                # In effect: made by an earlier try of this action that died before its audit
                # entry (a crash, a failure of a later op), or found so.
                made = self.storage.deliveries.seen(OP_LEDGER, op_attempt(action.id, index))
                (changed if made else already).append(op)
                continue
            self.storage.deliveries.first_time(OP_LEDGER, op_attempt(action.id, index))
            try:
                await self._apply_op(op, action.account_id, entra_id)
            except SeatLimitReached:
                return self._finish(
                    run_id, action, "waiting", "no free seat: waits for one", changed, already, actor
                )
            except (GroupIsSynced, NotFound) as exc:
                return self._finish(run_id, action, "failed", str(exc), changed, already, actor)
            changed.append(op)
        outcome = "applied" if changed else "unchanged"
        return self._finish(run_id, action, outcome, "", changed, already, actor)

    def _finish(
        self,
        run_id: str,
        action: Action,
        outcome: str,
        detail: str,
        changed: list[Op],
        already: list[Op],
        actor: str,
    ) -> str:
        today = self.clock().date()
        # State and result first, the audit entry last: a redelivery finds the audit entry
        # missing and does it all again (each step is idempotent), but one that finds the
        # entry written stops at once ("duplicate"), so nothing may be left to do after it.
        # A GRANT whose state update was lost would have no licensed-since day, and the next
        # night would count its idle days from a use years before the grant.
        if changed or already:
            self._update_state(action, today)
        if run_id:
            previous = self.storage.results.set_outcome(run_id, action.account_id, outcome, detail)
            if previous != outcome:  # a redelivered action is counted once
                self.storage.runs.record_outcome(run_id, outcome)
        if changed or already:
            first = self.storage.deliveries.first_time("action", action.id)
            if first or not self.storage.audit.has_action(action.id):
                self.storage.audit.append(
                    actor=actor,
                    action=action.reason.value,
                    product=action.product,
                    account_id=action.account_id,
                    run_id=run_id,
                    action_id=action.id,
                    before={
                        "entitled": action.facts.entitled,
                        "licensed": action.facts.licensed,
                        "marked": action.facts.marked,
                    },
                    after={
                        "changed": [o.to_dict() for o in changed],
                        "already_in_effect": [o.to_dict() for o in already],
                        "outcome": outcome,
                    },
                    why=action.facts.to_dict(),
                )
        log.info("action %s %s %s: %s %s", action.id, action.reason.value, action.account_id, outcome, detail)
        return outcome

    def _update_state(self, action: Action, today: date) -> None:
        self.storage.users.update(
            product_key(action.product), action.account_id, lambda state: state_after(action, state, today)
        )


def state_after(action: Action, state: Any, today: date) -> Any:
    """A person's stored state once `action` is applied: the executor's one state transition."""
    from shared.store import UserState

    ops = {(o.kind, o.role.value if o.role else None) for o in action.ops}
    base = state or UserState(
        account_id=action.account_id,
        product=product_key(action.product),
        email=action.facts.email,
        entitled=action.facts.entitled,
        licensed=action.facts.licensed,
        marked=action.facts.marked,
        last_active=action.facts.last_active,
        licensed_since=None,
        marked_at=None,
        warned_for=None,
        last_seen=today,
        last_lookup=None,
    )
    licensed, marked = base.licensed, base.marked
    if (OpKind.ADD, "access") in ops:
        licensed = True
    if (OpKind.REMOVE, "access") in ops or (OpKind.SUSPEND, None) in ops:
        licensed = False
    if (OpKind.ADD, "marker") in ops:
        marked = True
    if (OpKind.REMOVE, "marker") in ops:
        marked = False
    regained = action.reason in (Reason.GRANT, Reason.RELICENSE, Reason.RETURNED)
    return replace(
        base,
        # The action rests on the entitlement as read for it (an Entra change between nights,
        # say): keep it, or a later change back looks like no change at all.
        entitled=action.facts.entitled,
        licensed=licensed,
        marked=marked,
        licensed_since=today if regained else (base.licensed_since if licensed else None),
        marked_at=(base.marked_at or today) if marked else None,
        last_seen=today,
    )


def is_transient(exc: BaseException) -> bool:
    """Errors the queue should retry: anything remote that is not a definite refusal."""
    return isinstance(exc, RemoteError) and not isinstance(exc, (NotFound, GroupIsSynced, SeatLimitReached))
