"""Events between nights: return events and Entra changes, decided by the same rules.

A webhook names a person; this service reads that person as Atlassian sees them now (one
users search filtered by account id, with groups and activity), builds a snapshot of just
them, and runs the ordinary rules on it, so exclusions, admins, targeting and seat caps hold
between nights exactly as at night. The resulting actions go straight to the executor: a
returning, entitled person gets the license back within seconds.

Each action applied here first leaves a delayed copy on the actions queue, taken back once
the executor is done with it. A worker that dies between a change and its audit entry
leaves the copy behind, and the executor function finishes that very action later: the
event's own redelivery would plan afresh from the changed state, find nothing to do, and
leave the change without its audit entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.config import Policy
from shared.model import Action, Group, ProductActivity, Reason, Snapshot
from shared.rules import plan_product, plan_relicense
from shared.services.execute import Executor, person_lease
from shared.services.reconcile import action_message
from shared.services.snapshot import ADMIN_ROLES, _status, product_key

log = logging.getLogger("seatwarden.returns")

#: Group lists change rarely; a process keeps them this long between webhook calls.
GROUPS_TTL_SECONDS = 300
#: When the actions queue gets an action applied here if this worker dies before it is done:
#: long enough that the queue never races a worker that is merely slow.
RECOVERY_DELAY = timedelta(minutes=2)

_groups_cache: dict[str, tuple[float, list[Group]]] = {}


@dataclass
class EventOutcome:
    account_id: str
    actions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "actions": self.actions}


class PeopleReader:
    """Reads a few people and the org's groups into a small snapshot."""

    def __init__(self, atlassian: Any, storage: Any, clock: Any):
        self.atlassian = atlassian
        self.storage = storage
        self.clock = clock

    async def groups(self) -> list[Group]:
        key = f"{self.atlassian.base_url}|{self.atlassian.org_id}"
        cached = _groups_cache.get(key)
        if cached and time.monotonic() - cached[0] < GROUPS_TTL_SECONDS:
            return cached[1]
        groups = [Group(g.id, g.name, g.is_synced) for g in await self.atlassian.search_groups()]
        _groups_cache[key] = (time.monotonic(), groups)
        return groups

    async def account_by_email(self, addresses: Iterable[str]) -> str | None:
        """The account whose Atlassian email is one of `addresses`, matched as the night does.

        One users search filtered by email; None when no account has any of them.
        """
        wanted = [a.lower() for a in addresses if a]
        if not wanted:
            return None
        async for page in self.atlassian.iter_user_pages(emails=wanted, expand=()):
            for found in page:
                if (found.email or "").lower() in wanted:
                    return str(found.account_id)
        return None

    async def snapshot(
        self,
        account_ids: Iterable[str],
        policies: Iterable[Policy],
        entra_overrides: Mapping[str, Mapping[str, bool]] | None = None,
    ) -> Snapshot:
        """A snapshot of `account_ids`; Entra entitlement comes from stored state plus overrides.

        `entra_overrides` maps an Entra group id to {account id: member now?}, from a delta.
        """
        from shared.model import Person

        now = self.clock()
        wanted = sorted(set(account_ids))
        groups = await self.groups()
        known = {g.id for g in groups}
        people: list[Person] = []
        members: dict[str, set[str]] = {}
        activity: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            async for page in self.atlassian.iter_user_pages(account_ids=wanted[start : start + 100]):
                for user in page:
                    if user.account_id not in wanted:
                        continue
                    people.append(
                        Person(
                            user.account_id,
                            (user.email or "").lower(),
                            _status(user),
                            bool(set(user.platform_roles or ()) & ADMIN_ROLES),
                            None,
                            user.name or "",
                        )
                    )
                    for g in user.groups or ():
                        if g.id in known:
                            members.setdefault(g.id, set()).add(user.account_id)
                    for access in user.product_access or ():
                        if access.last_active_timestamp is not None:
                            activity.setdefault(product_key(access.key), {})[user.account_id] = (
                                access.last_active_timestamp.date()
                            )
        seen = {p.account_id for p in people}
        entra: dict[str, set[str]] = {}
        products: dict[str, ProductActivity] = {}
        for policy in policies:
            product = product_key(policy.product)
            stored = {a: self.storage.users.get(product, a) for a in seen}
            states = {a: s[0] for a, s in stored.items() if s is not None}
            last = {a: s.last_active for a, s in states.items() if s.last_active}
            for a, day in activity.get(product, {}).items():
                last[a] = max(day, last.get(a, day))
            since = {a: s.licensed_since for a, s in states.items() if s.licensed and s.licensed_since}
            products[product] = ProductActivity(last, frozenset(), since)
            gid = policy.entitlement.entra_group_id
            if gid:
                overrides = (entra_overrides or {}).get(gid, {})
                current = {a for a, s in states.items() if s.entitled}
                current |= {a for a, yes in overrides.items() if yes}
                current -= {a for a, yes in overrides.items() if not yes}
                entra[gid] = current & seen
        return Snapshot.build(now, people, groups, members, entra, products)


class EventService:
    """Return events and Entra changes, applied through the executor."""

    def __init__(
        self, storage: Any, atlassian: Any, graph: Any | None, clock: Any, policies: Iterable[Policy]
    ):
        self.storage = storage
        self.policies = list(policies)
        self.clock = clock
        self.reader = PeopleReader(atlassian, storage, clock)
        self.executor = Executor(storage, atlassian, graph, clock, actor="events")

    async def _execute(self, actions: Iterable[Action]) -> list[dict[str, Any]]:
        """Apply each action, except under a policy in `report` mode: that one only reports.

        A new policy starts in report mode (DESIGN.md, "Safety"): events between nights must not
        change what the nightly run is not yet allowed to change.
        """
        reporting = {p.name for p in self.policies if p.mode == "report"}
        done = []
        for action in actions:
            if action.policy in reporting:
                log.info(
                    "policy %s is in report mode: %s for %s not applied",
                    action.policy,
                    action.reason.value,
                    action.account_id,
                )
                outcome = "report"
            else:
                message = {**action_message("", action), "actor": self.executor.actor}
                pending = self.storage.queues.send_cancellable("actions", message, RECOVERY_DELAY)
                outcome = await self.executor.apply(message)
                self.storage.queues.cancel("actions", *pending)
            done.append({"policy": action.policy, "reason": action.reason.value, "outcome": outcome})
        return done

    async def person_returned(self, account_id: str) -> EventOutcome:
        """RELICENSE for every policy where the person is entitled and marked.

        Read and applied under the person's lease, so an executor taking the license at this
        moment finishes first and the return then finds the marker it set.
        """
        async with person_lease(self.storage, self.clock, account_id, "events"):
            snapshot = await self.reader.snapshot([account_id], self.policies)
            now: datetime = self.clock()
            actions = [a for p in self.policies if (a := plan_relicense(snapshot, p, account_id, now))]
            return EventOutcome(account_id, await self._execute(actions))

    async def entitlement_changed(self, policy: Policy, changes: Mapping[str, bool]) -> list[EventOutcome]:
        """Entra says these people joined (True) or left (False) `policy`'s entitlement group.

        The ordinary rules decide: GRANT or RELICENSE for a newly entitled person, and
        REVOKE_UNENTITLED (never for the excluded or admins) for one who left.
        """
        gid = policy.entitlement.entra_group_id
        if not gid or not changes:
            return []
        snapshot = await self.reader.snapshot(changes.keys(), [policy], {gid: changes})
        now: datetime = self.clock()
        plan = plan_product(snapshot, policy, now)
        wanted = {Reason.GRANT, Reason.REVOKE_UNENTITLED, Reason.RETURNED, Reason.CLEAR_STALE_MARKER}
        actions = [a for a in plan.actions if a.reason in wanted]
        revoking = [a for a in actions if a.revokes]
        if len(revoking) > policy.blast_radius.max_revocations:
            # A mass removal in Entra is exactly what the blast radius exists for: leave the
            # revocations to the nightly run, which holds them for approval.
            log.warning(
                "policy %s: an Entra change would revoke %d licenses at once (limit %d); "
                "left for the nightly run to hold for approval",
                policy.name,
                len(revoking),
                policy.blast_radius.max_revocations,
            )
            actions = [a for a in actions if not a.revokes]
        for account_id, joined in changes.items():
            if joined and (relicense := plan_relicense(snapshot, policy, account_id, now)):
                actions.append(relicense)
        outcomes: dict[str, list[dict[str, Any]]] = {}
        for action in actions:
            outcomes.setdefault(action.account_id, []).extend(await self._execute([action]))
        return [EventOutcome(a, o) for a, o in outcomes.items()]
