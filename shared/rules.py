"""The rules engine: a snapshot, a policy and the time in; a plan out. No I/O, no clock reads.

The rules (DESIGN.md, "Rules, per product") over each person's three memberships,
E (entitled), L (licensed: in the access group) and M (marked: in the marker group):

    GRANT               E, not L, not M             add to L
    REVOKE_UNENTITLED   L, not E                    remove from L (and from M)
    RETURNED            L, E, M                     remove from M
    INACTIVE            E, L, not M, idle too long  remove from L, add to M (or suspend)
    CLEAR_STALE_MARKER  M, not E, not L             remove from M
    SEAT_CAP            more licensed than the cap  INACTIVE for the longest idle first

Suspended and closed accounts and people outside the policy's targeting get no action.
Excluded people and admins never lose a license. A person whose activity is unknown tonight
never loses one to inactivity. Planning again after applying a plan yields no actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from shared.config import Policy
from shared.model import (
    Action,
    Facts,
    Group,
    GroupRole,
    Op,
    OpKind,
    Plan,
    Reason,
    Snapshot,
    SnapshotError,
    Via,
    Waiting,
    action_id,
)

#: Atlassian reports last-active dates up to 24 hours late, so one day is added to every
#: threshold: a person is never called idle on data that may not have caught up yet.
#: https://developer.atlassian.com/cloud/admin/organization/user-last-active-dates/
ACTIVITY_LAG_DAYS = 1


class UnknownGroup(SnapshotError):
    """A policy names a group the org does not have."""


def resolve_group(snapshot: Snapshot, ref: str, what: str, policy: Policy) -> Group:
    group = snapshot.find_group(ref)
    if group is None:
        raise UnknownGroup(f"policy {policy.name}: {what} {ref!r} is not a group in the org")
    return group


def _union(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    out: set[str] = set()
    for s in sets:
        out |= s
    return frozenset(out)


class _Groups:
    """The three groups of one policy, resolved against the snapshot."""

    def __init__(self, snapshot: Snapshot, policy: Policy):
        self.access = resolve_group(snapshot, policy.access_group, "access_group", policy)
        self.marker = resolve_group(snapshot, policy.marker_group, "marker_group", policy)
        source = policy.entitlement
        if source.entra_group_id is not None:
            if source.entra_group_id not in snapshot.entra_members:
                raise SnapshotError(
                    f"policy {policy.name}: the snapshot has no members for Entra group "
                    f"{source.entra_group_id}; it was not read, so no plan can be made"
                )
            self.entitled = snapshot.entra_members[source.entra_group_id]
        else:
            assert source.atlassian_group is not None
            mirror = resolve_group(snapshot, source.atlassian_group, "entitlement group", policy)
            self.entitled = snapshot.members_of(mirror.id)
        self.licensed = snapshot.members_of(self.access.id)
        self.marked = snapshot.members_of(self.marker.id)


def _scope(snapshot: Snapshot, policy: Policy) -> tuple[frozenset[str], frozenset[str]]:
    """(ignored, protected): people the policy does not touch, and people it never revokes."""
    ignored: frozenset[str] = snapshot.unmanaged
    targeting = policy.targeting
    if targeting.groups or targeting.domains or targeting.external_only:
        targeted: frozenset[str] = frozenset()
        if targeting.groups or targeting.domains:
            targeted = _union(
                snapshot.members_of(resolve_group(snapshot, g, "targeting group", policy).id)
                for g in targeting.groups
            ) | snapshot.in_domains(targeting.domains)
        if targeting.external_only:
            external = frozenset(snapshot.people) - snapshot.in_domains(policy.internal_domains)
            targeted = (targeted & external) if (targeting.groups or targeting.domains) else external
        ignored = ignored | (frozenset(snapshot.people) - targeted)
    exclusions = policy.exclusions
    protected = (
        snapshot.admins
        | frozenset(exclusions.accounts)
        | _union(
            snapshot.members_of(resolve_group(snapshot, g, "excluded group", policy).id)
            for g in exclusions.groups
        )
        | snapshot.in_domains(exclusions.domains)
    )
    return ignored, protected


class _Planner:
    """Builds one policy's actions; kept as a class so the per-person helpers share state."""

    def __init__(self, snapshot: Snapshot, policy: Policy, now: datetime):
        self.snapshot = snapshot
        self.policy = policy
        self.today = now.date()
        self.groups = _Groups(snapshot, policy)
        self.activity = snapshot.activity.get(policy.product)
        self.actions: list[Action] = []
        self.waiting: list[Waiting] = []

    # -- operations -------------------------------------------------------------------------

    def _access_removal(self, account_id: str) -> Op | str:
        """How to take someone out of the access group, or why it cannot be done here."""
        access = self.groups.access
        if not access.synced:
            return Op(OpKind.REMOVE, GroupRole.ACCESS, access.id)
        if self.policy.synced_access_group == "csv":
            return Op(OpKind.REMOVE, GroupRole.ACCESS, access.id, Via.CSV)
        person = self.snapshot.people[account_id]
        if self.policy.access_entra_group_id and person.entra_id:
            return Op(OpKind.REMOVE, GroupRole.ACCESS, self.policy.access_entra_group_id, Via.ENTRA)
        return (
            "access group is synced from Entra and entra_write needs access_entra_group_id "
            "and the person's Entra object id"
        )

    def _access_grant(self) -> Op | str:
        access = self.groups.access
        if not access.synced:
            return Op(OpKind.ADD, GroupRole.ACCESS, access.id)
        if self.policy.synced_access_group == "entra_write" and self.policy.access_entra_group_id:
            return Op(OpKind.ADD, GroupRole.ACCESS, self.policy.access_entra_group_id, Via.ENTRA)
        return "access group is synced from Entra: add the person to it in Entra"

    def _marker(self, kind: OpKind) -> Op:
        return Op(kind, GroupRole.MARKER, self.groups.marker.id)

    def _facts(self, account_id: str, **extra: object) -> Facts:
        g = self.groups
        return Facts(
            entitled=account_id in g.entitled,
            licensed=account_id in g.licensed,
            marked=account_id in g.marked,
            email=self.snapshot.people[account_id].email,
            **extra,  # type: ignore[arg-type]
        )

    def _add(self, account_id: str, reason: Reason, ops: list[Op | str], facts: Facts) -> bool:
        blocked = [o for o in ops if isinstance(o, str)]
        if blocked:
            self.waiting.append(Waiting(account_id, reason, blocked[0]))
            return False
        self.actions.append(
            Action(
                id=action_id(self.policy.name, account_id, reason, self.today),
                policy=self.policy.name,
                product=self.policy.product,
                account_id=account_id,
                reason=reason,
                ops=tuple(o for o in ops if isinstance(o, Op)),
                facts=facts,
            )
        )
        return True

    def _revoke_ops(self, account_id: str) -> list[Op | str]:
        if self.policy.on_inactive == "suspend":
            return [self._marker(OpKind.ADD), Op(OpKind.SUSPEND, None, None)]
        return [self._access_removal(account_id), self._marker(OpKind.ADD)]

    # -- idleness ---------------------------------------------------------------------------

    def idle(self, account_id: str) -> tuple[int, int, date | None] | None:
        """(idle days, threshold in days, last active), or None when activity is unknown.

        Idle counts from the later of the last use and the day the license was (re)given;
        a person never active counts from the day they were licensed, with `grace_days`,
        and one first seen tonight counts from tonight: never from the epoch.
        """
        activity = self.activity
        if activity is None or account_id in activity.unknown:
            return None
        person = self.snapshot.people[account_id]
        threshold = self.policy.threshold_for(person.domain)
        last = activity.last_active.get(account_id)
        since = activity.licensed_since.get(account_id)
        if last is None:
            start = since or self.today
            threshold += self.policy.grace_days
        else:
            start = max(last, since) if since else last
        return (self.today - start).days, threshold, last

    # -- the rules --------------------------------------------------------------------------

    def plan(self) -> Plan:
        g = self.groups
        ignored, protected = _scope(self.snapshot, self.policy)
        everyone = (g.entitled | g.licensed | g.marked) - ignored

        for account_id in sorted((g.entitled - g.licensed - g.marked) & everyone):
            self._add(account_id, Reason.GRANT, [self._access_grant()], self._facts(account_id))

        for account_id in sorted((g.licensed - g.entitled) & everyone - protected):
            ops = [self._access_removal(account_id)]
            if account_id in g.marked:
                ops.append(self._marker(OpKind.REMOVE))
            self._add(account_id, Reason.REVOKE_UNENTITLED, ops, self._facts(account_id))

        for account_id in sorted(g.licensed & g.entitled & g.marked & everyone):
            self._add(account_id, Reason.RETURNED, [self._marker(OpKind.REMOVE)], self._facts(account_id))

        for account_id in sorted((g.marked - g.entitled - g.licensed) & everyone):
            self._add(
                account_id, Reason.CLEAR_STALE_MARKER, [self._marker(OpKind.REMOVE)], self._facts(account_id)
            )

        # INACTIVE, and the candidates SEAT_CAP may take from (longest idle first).
        keepers: list[tuple[int, str]] = []
        for account_id in ((g.entitled & g.licensed) - g.marked) & everyone - protected:
            idle = self.idle(account_id)
            if idle is None:
                continue
            days, threshold, last = idle
            if days >= threshold + ACTIVITY_LAG_DAYS:
                facts = self._facts(account_id, last_active=last, idle_days=days, threshold_days=threshold)
                self._add(account_id, Reason.INACTIVE, self._revoke_ops(account_id), facts)
            else:
                keepers.append((days, account_id))

        self._seat_cap(keepers)
        self.actions.sort(key=lambda a: a.account_id)
        self.waiting.sort(key=lambda w: w.account_id)
        licensed_after = len(g.licensed) + sum(
            1 if a.reason is Reason.GRANT else -1
            for a in self.actions
            if a.reason is Reason.GRANT or a.revokes
        )
        return Plan(
            policy=self.policy.name,
            product=self.policy.product,
            planned_at=self.snapshot.taken_at,
            actions=tuple(self.actions),
            waiting=tuple(self.waiting),
            licensed_before=len(g.licensed),
            licensed_after=licensed_after,
        )

    def _seat_cap(self, keepers: list[tuple[int, str]]) -> None:
        cap = self.policy.seat_cap
        if cap is None:
            return
        g = self.groups
        grants = [a for a in self.actions if a.reason is Reason.GRANT]
        revoked = sum(1 for a in self.actions if a.revokes)
        over = len(g.licensed) + len(grants) - revoked - cap
        if over <= 0:
            return
        # The longest idle go first; ties by account id so the plan is independent of order.
        keepers.sort(key=lambda k: (-k[0], k[1]))
        for days, account_id in keepers[:over]:
            last = self.activity.last_active.get(account_id) if self.activity else None
            facts = self._facts(
                account_id, last_active=last, idle_days=days, note=f"seat cap {cap}"
            )
            if self._add(account_id, Reason.SEAT_CAP, self._revoke_ops(account_id), facts):
                over -= 1
        if over <= 0:
            return
        # Nobody left to take a seat from: the newest grants wait for a seat.
        for grant in sorted(grants, key=lambda a: a.account_id, reverse=True)[:over]:
            self.actions.remove(grant)
            self.waiting.append(Waiting(grant.account_id, Reason.GRANT, f"seat cap {cap} reached"))


def plan_product(snapshot: Snapshot, policy: Policy, now: datetime) -> Plan:
    """Plan one policy. Raises `UnknownGroup` or `SnapshotError` when it cannot plan safely."""
    return _Planner(snapshot, policy, now).plan()


def plan_relicense(snapshot: Snapshot, policy: Policy, account_id: str, now: datetime) -> Action | None:
    """RELICENSE: a return event for an entitled, marked person gives the license back now.

    Returns None when the event changes nothing: the person is not entitled, not marked,
    already licensed, out of scope, or not an active account.
    """
    planner = _Planner(snapshot, policy, now)
    g = planner.groups
    person = snapshot.people.get(account_id)
    ignored, _ = _scope(snapshot, policy)
    if person is None or account_id in ignored:
        return None
    if account_id not in g.entitled or account_id not in g.marked or account_id in g.licensed:
        return None
    grant = planner._access_grant()
    if isinstance(grant, str):
        return None
    return Action(
        id=action_id(policy.name, account_id, Reason.RELICENSE, now.date()),
        policy=policy.name,
        product=policy.product,
        account_id=account_id,
        reason=Reason.RELICENSE,
        ops=(grant, planner._marker(OpKind.REMOVE)),
        facts=planner._facts(account_id, note="return event"),
    )
