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

import hashlib
import heapq
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import NamedTuple

from shared.collector import collector_paused
from shared.config import Policy
from shared.model import (
    REVOKING_REASONS,
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
            external = snapshot.outside_domains(policy.internal_domains)
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


#: Why a removal through Entra cannot be made: for anyone, or for a person without an Entra id.
_NEEDS_ENTRA_ID = (
    "access group is synced from Entra and entra_write needs access_entra_group_id "
    "and the person's Entra object id"
)

#: Decisions before they become actions: each person, with the facts the decision rests on.
_Decided = list[tuple[str, Facts]]


class _Planner:
    """Builds one policy's actions; kept as a class so the rules share state."""

    def __init__(self, snapshot: Snapshot, policy: Policy, now: datetime):
        self.snapshot = snapshot
        self.policy = policy
        self.today = now.date()
        self.groups = _Groups(snapshot, policy)
        self.activity = snapshot.activity.get(policy.product)
        self.actions: list[Action] = []
        self.waiting: list[Waiting] = []
        self.given = 0  # licenses the actions give
        self.taken = 0  # licenses the actions take back
        # model.action_id's text on either side of the account id, made once per plan.
        self._id_head = f"{policy.name}|"
        self._id_tails = {reason: f"|{reason.value}|{self.today.isoformat()}" for reason in Reason}

    # -- operations -------------------------------------------------------------------------

    def _access_removal(self) -> Op | str:
        """How to take people out of the access group, or why it cannot be done here.

        A removal through Entra can only be made for people with an Entra object id
        (`_revoke` keeps the others waiting).
        """
        access = self.groups.access
        if not access.synced:
            return Op(OpKind.REMOVE, GroupRole.ACCESS, access.id)
        if self.policy.synced_access_group == "csv":
            return Op(OpKind.REMOVE, GroupRole.ACCESS, access.id, Via.CSV)
        if self.policy.access_entra_group_id:
            return Op(OpKind.REMOVE, GroupRole.ACCESS, self.policy.access_entra_group_id, Via.ENTRA)
        return _NEEDS_ENTRA_ID

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

    # -- actions ----------------------------------------------------------------------------

    def _emit(self, reason: Reason, ops: tuple[Op, ...], decided: _Decided) -> None:
        """One action per decision, all carried out by the same operations."""
        # Sorted by account here, so the plan's final sort only merges runs. Ids are
        # model.action_id's, built in the loop rather than through a call per action; and
        # each Action is made as its own `__new__` makes it, `tuple.__new__` with every
        # field in order, less the Python frame of that `__new__` (a third of the time).
        # Tests pin both: the ids are equal, the actions whole.
        decided.sort(key=itemgetter(0))
        head, tail, sha256 = self._id_head, self._id_tails[reason], hashlib.sha256
        name, product, new = self.policy.name, self.policy.product, tuple.__new__
        self.actions.extend(
            [
                new(
                    Action,
                    (sha256(f"{head}{a}{tail}".encode()).hexdigest()[:24], name, product, a, reason, ops, f),
                )
                for a, f in decided
            ]
        )
        if reason is Reason.GRANT:
            self.given += len(decided)
        elif reason in REVOKING_REASONS:
            self.taken += len(decided)

    def _revoke(self, reason: Reason, ops: tuple[Op, ...] | str, decided: _Decided) -> int:
        """Take licenses back, or keep them waiting where that cannot be done here.

        `ops` is a string when nobody's license can be taken back, saying why. Returns the
        number of actions made.
        """
        if isinstance(ops, str):
            self.waiting.extend(Waiting(a, reason, ops) for a, _ in decided)
            return 0
        if any(op.via is Via.ENTRA for op in ops):
            people = self.snapshot.people
            self.waiting.extend(
                Waiting(a, reason, _NEEDS_ENTRA_ID) for a, _ in decided if not people[a].entra_id
            )
            decided = [d for d in decided if people[d[0]].entra_id]
        self._emit(reason, ops, decided)
        return len(decided)

    # -- the rules --------------------------------------------------------------------------
    #
    # A million-person org must plan in seconds. The work is in two kinds of step, and both
    # are shaped for it:
    # - set algebra over memberships of up to a million ids: each operation walks one of
    #   its sets, so each starts from the smallest set it can, and the big sets are walked
    #   as few times as possible (every id a result holds is also a reference to count and,
    #   later, to drop);
    # - one comprehension per rule and threshold, where whatever can be made once per plan
    #   is: the operations, the action ids' fixed text, thresholds as cutoff dates, the
    #   external people as one set.
    # Every person gets at most one action or waiting entry, and both are sorted by account
    # at the end, so the rules below may visit people in any order.

    def plan(self) -> Plan:
        g = self.groups
        entitled, licensed, marked = g.entitled, g.licensed, g.marked
        ignored, protected = _scope(self.snapshot, self.policy)
        policy, today, people = self.policy, self.today, self.snapshot.people

        add_marker, remove_marker = self._marker(OpKind.ADD), self._marker(OpKind.REMOVE)
        removal = self._access_removal()
        revoke: tuple[Op, ...] | str  # for INACTIVE and SEAT_CAP
        if policy.on_inactive == "suspend":
            revoke = (add_marker, Op(OpKind.SUSPEND, None, None))
        else:
            revoke = removal if isinstance(removal, str) else (removal, add_marker)

        grant = self._access_grant()
        to_grant = entitled - licensed - marked - ignored
        if isinstance(grant, str):
            self.waiting.extend(Waiting(a, Reason.GRANT, grant) for a in to_grant)
        else:
            decided = [(a, Facts(True, False, False, email=people[a].email)) for a in to_grant]
            self._emit(Reason.GRANT, (grant,), decided)

        unentitled = licensed - entitled
        to_revoke = unentitled - ignored - protected
        for was_marked, accounts in ((True, to_revoke & marked), (False, to_revoke - marked)):
            decided = [(a, Facts(False, True, was_marked, email=people[a].email)) for a in accounts]
            if isinstance(removal, str):
                ops: tuple[Op, ...] | str = removal
            else:
                ops = (removal, remove_marker) if was_marked else (removal,)
            self._revoke(Reason.REVOKE_UNENTITLED, ops, decided)

        returned = (marked & licensed & entitled) - ignored
        decided = [(a, Facts(True, True, True, email=people[a].email)) for a in returned]
        self._emit(Reason.RETURNED, (remove_marker,), decided)

        stale = marked - entitled - licensed - ignored
        decided = [(a, Facts(False, False, True, email=people[a].email)) for a in stale]
        self._emit(Reason.CLEAR_STALE_MARKER, (remove_marker,), decided)

        # INACTIVE; the rest are the candidates SEAT_CAP may take from: those of each of
        # `later` last active after its cutoff, and `dated`, as (idle since, id).
        later: list[_Idle] = []
        dated: list[tuple[date, str]] = []
        activity = self.activity
        if activity is not None:
            internal = policy.inactive_after_days
            external_days = policy.external_inactive_after_days
            outside = external_days if external_days is not None else internal
            grace, lag = policy.grace_days, ACTIVITY_LAG_DAYS
            # Idle from `start` means idle for (today - start) days; idle too long when
            # start <= cutoff. Keyed by (external?, never active?).
            cutoff = {
                (ext, never): today
                - timedelta(days=(outside if ext else internal) + (grace if never else 0) + lag)
                for ext in (False, True)
                for never in (False, True)
            }
            last_active, last_get, since_of = (
                activity.last_active,
                activity.last_active.get,
                activity.licensed_since,
            )
            # INACTIVE weighs the licensed who are entitled, not marked, managed, not
            # protected, with activity known tonight: the licensed not in `skip`. Testing
            # `skip` (small) beside `licensed` spares building that set of most of the org,
            # whose every id would be a reference counted in and, later, out.
            skip = unentitled | marked | ignored | protected | activity.unknown
            external = (
                frozenset()
                if external_days is None
                else self.snapshot.outside_domains(policy.internal_domains)
            )
            # The common case, per threshold: no licensing date to weigh, so idle since the
            # last use (people never active and first seen tonight are idle from tonight:
            # neither INACTIVE nor a seat-cap candidate). The rest, below, one by one.
            thresholds: list[tuple[_Idle, int]] = (
                [(_Idle(licensed, skip, since_of, cutoff[False, False]), internal)]
                if external_days is None
                else [
                    (_Idle(licensed, skip | external, since_of, cutoff[False, False]), internal),
                    (
                        _Idle((licensed & external) - skip, frozenset(), since_of, cutoff[True, False]),
                        outside,
                    ),
                ]
            )
            for idle, threshold_days in thresholds:
                decided = [
                    (a, Facts(True, True, False, d, (today - d).days, threshold_days, people[a].email))
                    for a, d in idle.last_used(last_active)
                ]
                self._revoke(Reason.INACTIVE, revoke, decided)
                later.append(idle)
            # The licensing dates, read in the order they sit in memory (see `_Idle`).
            decided = []
            for account_id, since in since_of.items():
                if account_id not in licensed or account_id in skip:
                    continue
                last = last_get(account_id)
                if last is None:
                    start = since or today  # never active: from licensing; first seen tonight: from tonight
                else:
                    start = last if since is None or since < last else since
                ext = account_id in external
                if start > cutoff[ext, last is None]:
                    if policy.seat_cap is not None:
                        dated.append((start, account_id))
                    continue
                threshold = (outside if ext else internal) + (grace if last is None else 0)
                facts = Facts(
                    True, True, False, last, (today - start).days, threshold, people[account_id].email
                )
                decided.append((account_id, facts))
            self._revoke(Reason.INACTIVE, revoke, decided)

        if policy.seat_cap is not None:
            self._seat_cap(policy.seat_cap, later, dated, revoke)
        key = attrgetter("account_id")
        self.actions.sort(key=key)
        self.waiting.sort(key=key)
        return Plan(
            policy=policy.name,
            product=policy.product,
            planned_at=self.snapshot.taken_at,
            actions=tuple(self.actions),
            waiting=tuple(self.waiting),
            licensed_before=len(licensed),
            licensed_after=len(licensed) + self.given - self.taken,
        )

    def _seat_cap(
        self,
        cap: int,
        later: list[_Idle],
        dated: list[tuple[date, str]],
        revoke: tuple[Op, ...] | str,
    ) -> None:
        """Bring the active licensed down to `cap`, the longest idle first.

        Seats are held by active accounts (suspended and closed ones are not billed). Only
        people idle for at least a day are taken: someone licensed or active today keeps
        the seat, so a plan never takes back tonight the seat it grants tonight. When
        nobody is left to take from, the newest grants wait for a seat, and a plan that
        still ends over the cap says so in `waiting`.
        """
        licensed = self.groups.licensed
        seats = len(licensed) - len(self.snapshot.unmanaged & licensed)
        over = seats + self.given - self.taken - cap
        if over <= 0:
            return
        today, people = self.today, self.snapshot.people
        last_active = self.activity.last_active if self.activity else {}
        # Earliest "idle since" first, then by account id: order-independent.
        heapq.heapify(dated)
        keepers = heapq.merge(
            _in_idle_order(later, last_active, today, over),
            (heapq.heappop(dated) for _ in range(len(dated))),
        )
        for start, account_id in keepers:
            if over <= 0 or start >= today:
                break
            facts = Facts(
                True,
                True,
                False,
                last_active.get(account_id),
                (today - start).days,
                None,
                people[account_id].email,
                f"seat cap {cap}",
            )
            over -= self._revoke(Reason.SEAT_CAP, revoke, [(account_id, facts)])
        if over <= 0:
            return
        grants = sorted((a.account_id for a in self.actions if a.reason is Reason.GRANT), reverse=True)
        drop = set(grants[:over])
        if drop:
            self.actions[:] = [
                a for a in self.actions if not (a.reason is Reason.GRANT and a.account_id in drop)
            ]
            self.given -= len(drop)
            self.waiting.extend(Waiting(a, Reason.GRANT, f"seat cap {cap} reached") for a in sorted(drop))
            over -= len(drop)
        if over > 0:
            self.waiting.append(
                Waiting(
                    "", Reason.SEAT_CAP, f"{over} over the seat cap of {cap}, and nobody idle to take from"
                )
            )


class _Idle(NamedTuple):
    """People idle since their last use, for one threshold: those in `members`, in neither
    `skip` nor `dated` (whose licensing date is weighed apart), last active on or before
    `cut` (too long) or after it (a seat-cap candidate)."""

    members: frozenset[str]
    skip: Container[str]
    dated: Container[str]
    cut: date

    def last_used(self, last_active: Mapping[str, date]) -> list[tuple[str, date]]:
        """(person, day of last use) for those last active on or before the cutoff.

        Looking a person up in a million-entry dict costs a few cache misses; the dates
        can instead be read in the order they sit in memory, and only those on or before
        the cutoff looked up in the sets (fewer misses). So the dates are walked, unless
        the members are much the fewer.
        """
        members, skip, dated, cut = self
        if len(members) * 3 < len(last_active):
            get = last_active.get
            return [
                (a, d)
                for a in members
                if (d := get(a)) is not None and d <= cut and a not in skip and a not in dated
            ]
        return [
            (a, d)
            for a, d in last_active.items()
            if d <= cut and a in members and a not in skip and a not in dated
        ]

    def holds(self, account_id: str, last_used: date) -> bool:
        """Whether someone last active on `last_used` is one of these, after the cutoff."""
        return (
            last_used > self.cut
            and account_id in self.members
            and account_id not in self.skip
            and account_id not in self.dated
        )


def _in_idle_order(
    later: list[_Idle], last_active: Mapping[str, date], until: date, need: int
) -> Iterator[tuple[date, str]]:
    """(day of last use, person), earliest first, then by account id, for those of each of
    `later` last active after its cutoff and before `until`.

    The seat cap takes the first `need` or so of what may be hundreds of thousands. So
    instead of sorting them all, the days are taken a window at a time, each holding at
    least `need` people by a count of everyone's days (then twice as many, and so on),
    and a window's people found in one walk over the dates in memory order.
    """
    if not later:
        return
    counts = Counter(last_active.values())
    days = sorted(d for d in counts if min(idle.cut for idle in later) < d < until)
    first = 0
    while first < len(days):
        end, people = first, 0
        while end < len(days) and people < need:
            people += counts[days[end]]
            end += 1
        window = frozenset(days[first:end])
        yield from sorted(
            (d, a) for a, d in last_active.items() if d in window and any(idle.holds(a, d) for idle in later)
        )
        first, need = end, need * 2


def plan_product(snapshot: Snapshot, policy: Policy, now: datetime) -> Plan:
    """Plan one policy. Raises `UnknownGroup` or `SnapshotError` when it cannot plan safely."""
    # The planner makes no reference cycles, and full collections over a million-person
    # snapshot while hundreds of thousands of actions are created cost seconds.
    with collector_paused():
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
