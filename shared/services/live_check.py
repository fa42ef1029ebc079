"""The live configuration check behind `seatwarden config check --live`.

The static check proves a policy file is well formed; this one asks the configured services
whether it will work: every group a policy names exists (with its member count and whether
it is synced from the IdP), the Atlassian API key and the Graph app may make the calls the
policies need, and each Entra entitlement group has a live change-notification subscription.
Each finding is a `Check` that names what to fix: the policy field, the group, the Atlassian
scope, the Graph application permission, the app setting.

It only reads. A write is never tried to test a write permission: what enforcing needs is
named instead, with whether the policies enforce yet. And it makes few calls: one groups
search by name for every group the policies name (plus one by id for the references no name
matched), one users search for one person, one last-active lookup where that read carries no
activity, one events-stream page where the events poller runs; a token, one member count per
Entra group, one subscriptions list.

    report = await LiveCheck(policies, atlassian, graph, clock, storage=storage, settings=settings).run()
    report.ok          # no check is an error
    report.to_dict()   # {"ok", "checked_at", "errors", "warnings", "checks": [...]}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.config import Policy, PolicyFile, policy_warnings
from shared.errors import (
    ATLASSIAN_API_BASE_SETTING,
    ATLASSIAN_API_KEY_SETTING,
    ATLASSIAN_DIRECTORY_ID_SETTING,
    ATLASSIAN_ORG_ID_SETTING,
    CA_BUNDLE_SETTING,
    ENTRA_AUTHORITY_HOST_SETTING,
    ENTRA_CERTIFICATE_SETTING,
    ENTRA_CERTIFICATE_THUMBPRINT_SETTING,
    ENTRA_CLIENT_ID_SETTING,
    ENTRA_CLIENT_SECRET_SETTING,
    ENTRA_TENANT_ID_SETTING,
    GRAPH_API_BASE_SETTING,
    AtlassianError,
    AuthenticationFailed,
    GraphAuthError,
    GraphNotFound,
    GraphThrottled,
    NotCentralizedUserManagement,
    NotFound,
    RateLimited,
    ScopeMissing,
    SeatwardenError,
    TransportFailed,
)
from shared.services.subscriptions import RENEW_WITHIN, notification_urls
from shared.settings import MissingSetting

if TYPE_CHECKING:
    from shared.atlassian import AtlassianClient, AtlassianGroup, AtlassianUser
    from shared.bootstrap import App
    from shared.graph import GraphClient, Subscription
    from shared.settings import Settings
    from shared.store import Storage

__all__ = ["Check", "LiveCheck", "LiveReport", "Status", "run_live_check"]

Status = Literal["ok", "warning", "error"]

# Atlassian documents no scope for the v2 membership and suspend/restore writes, so enforcing
# takes an organization API key without scopes (https://developer.atlassian.com/cloud/admin/scopes/).
KEY_WITHOUT_SCOPES = "a key without scopes"
ATLASSIAN_SCOPES_URL = "https://developer.atlassian.com/cloud/admin/scopes/"
# The scopes a key *with* scopes needs for the reads, as the client names them in its 403
# messages (shared/atlassian.py): the v2 directory reads, and the org events stream.
READ_DIRECTORIES = "read:directories:admin"
READ_EVENTS = "read:events:admin"
# Application permissions (https://learn.microsoft.com/graph/permissions-reference), each from
# its API page: transitive members (group-list-transitivemembers), member removal through
# /$ref (group-delete-members), sendMail (user-sendmail).
READ_MEMBERS = "GroupMember.Read.All"
WRITE_MEMBERS = "GroupMember.ReadWrite.All"
SEND_MAIL = "Mail.Send"
# The functions whose work this check looks ahead to (functions/timers.py).
KEEPER_FUNCTION = "keep_subscriptions"
POLLER_FUNCTION = "poll_org_events"
PUBLIC_URL_SETTING = "SEATWARDEN_PUBLIC_URL"
CLIENT_STATE_SETTING = "GRAPH_CLIENT_STATE"
MAIL_SENDER_SETTING = "SEATWARDEN_MAIL_SENDER"
GRAPH_SETTINGS = (
    f"{ENTRA_TENANT_ID_SETTING}, {ENTRA_CLIENT_ID_SETTING} and {ENTRA_CLIENT_SECRET_SETTING} "
    f"(or {ENTRA_CERTIFICATE_SETTING} with {ENTRA_CERTIFICATE_THUMBPRINT_SETTING})"
)
# The org-not-found code (WIRE.md §6): the org id is wrong, not the group or user.
_ORG_NOT_FOUND = "ADMIN-404-2"


@dataclass(frozen=True)
class Check:
    """One finding: what was looked at, how it stands, what was found, and what to fix.

    ``subject`` says what the check is about ("group 'confluence-users'", "scope
    read:directories:admin", "permission GroupMember.Read.All", "setting ATLASSIAN_API_KEY");
    ``policy`` and ``field`` (``policies[0].access_group``) place it in the policy file.
    ``fix`` is set for anything not ok; ``note`` says what an ok check could not prove.
    """

    name: str
    subject: str
    status: Status
    found: dict[str, Any] = field(default_factory=dict)
    fix: str | None = None
    policy: str | None = None
    field: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LiveReport:
    checked_at: datetime
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check is an error (warnings do not stop anything)."""
        return not self.errors

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.status == "error"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_at": self.checked_at.isoformat(),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class _GroupRef:
    """A group a policy names, and where."""

    index: int
    policy: Policy
    role: str  # access_group, marker_group, entitlement_group, targeting_group, excluded_group
    field: str
    ref: str


def _group_refs(policies: Iterable[Policy]) -> list[_GroupRef]:
    refs: list[_GroupRef] = []
    for i, policy in enumerate(policies):
        at = f"policies[{i}]"
        refs.append(_GroupRef(i, policy, "access_group", f"{at}.access_group", policy.access_group))
        refs.append(_GroupRef(i, policy, "marker_group", f"{at}.marker_group", policy.marker_group))
        mirror = policy.entitlement.atlassian_group
        if mirror is not None:
            refs.append(
                _GroupRef(i, policy, "entitlement_group", f"{at}.entitlement.atlassian_group", mirror)
            )
        for j, name in enumerate(policy.targeting.groups):
            refs.append(_GroupRef(i, policy, "targeting_group", f"{at}.targeting.groups[{j}]", name))
        for j, name in enumerate(policy.exclusions.groups):
            refs.append(_GroupRef(i, policy, "excluded_group", f"{at}.exclusions.groups[{j}]", name))
    return refs


def _group_facts(group: AtlassianGroup) -> dict[str, Any]:
    return {
        "group_id": group.id,
        "name": group.name,
        "members": group.counts.users if group.counts else None,
        "synced": group.is_synced,
        "managed_by": group.managed_by,
    }


def _error_facts(exc: SeatwardenError) -> dict[str, Any]:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    return {k: v for k, v in {"http_status": status, "code": code}.items() if v is not None}


def _atlassian_failure(name: str, capability: str, exc: SeatwardenError) -> Check:
    """A refused or failed Atlassian call as a check naming what to fix.

    The client has already turned the answer into an error that says what to do (shared/errors.py);
    this names the subject: the setting, or the scope the call takes.
    """
    found = {"capability": capability, **_error_facts(exc)}
    fix = getattr(exc, "detail", None) or str(exc)
    status: Status = "error"
    if isinstance(exc, AuthenticationFailed):
        subject = f"setting {ATLASSIAN_API_KEY_SETTING}"
    elif isinstance(exc, ScopeMissing):
        subject = f"scope {exc.needed}" if exc.needed else f"setting {ATLASSIAN_API_KEY_SETTING}"
    elif isinstance(exc, NotCentralizedUserManagement):
        subject = f"setting {ATLASSIAN_DIRECTORY_ID_SETTING}"
    elif isinstance(exc, NotFound) and exc.code == _ORG_NOT_FOUND:
        subject = f"setting {ATLASSIAN_ORG_ID_SETTING}"
    elif isinstance(exc, TransportFailed):
        subject = f"setting {ATLASSIAN_API_BASE_SETTING}"
        fix = (
            f"Atlassian could not be reached ({exc.detail}): check {ATLASSIAN_API_BASE_SETTING}"
            if exc.retryable
            else f"{exc.detail} ({CA_BUNDLE_SETTING})"
        )
    elif isinstance(exc, RateLimited):
        subject, status = capability, "warning"
        fix = f"Atlassian throttled the check ({exc.detail}): run it again in a minute"
    else:
        subject = capability
    return Check(name, subject, status, found, fix=fix)


def _stops_atlassian(exc: SeatwardenError) -> bool:
    """After one of these every other Atlassian call would fail the same way."""
    return isinstance(exc, (AuthenticationFailed, NotCentralizedUserManagement, TransportFailed)) or (
        isinstance(exc, NotFound) and exc.code == _ORG_NOT_FOUND
    )


def _graph_failure(
    name: str, what: str, exc: SeatwardenError, *, policy: str | None = None, field: str | None = None
) -> Check:
    """A refused or failed Graph (or Entra token) call as a check naming what to fix."""
    found = {"call": what, **_error_facts(exc)}
    fix = getattr(exc, "detail", None) or str(exc)
    status: Status = "error"
    if isinstance(exc, GraphAuthError) and exc.needed:
        subject = f"permission {exc.needed}"
    elif isinstance(exc, GraphAuthError):
        subject = f"settings {ENTRA_TENANT_ID_SETTING}, {ENTRA_CLIENT_ID_SETTING} and the app's credential"
    elif isinstance(exc, TransportFailed):
        where = ENTRA_AUTHORITY_HOST_SETTING if exc.vendor == "entra" else GRAPH_API_BASE_SETTING
        subject = f"setting {where}"
        if exc.retryable:
            service = "Entra" if exc.vendor == "entra" else "Graph"
            fix = f"{service} could not be reached ({exc.detail}): check {where}"
        else:
            fix = f"{exc.detail} ({CA_BUNDLE_SETTING})"
    elif isinstance(exc, GraphThrottled):
        subject, status = what, "warning"
        fix = f"Graph throttled the check ({exc.detail}): run it again in a minute"
    else:
        subject = what
    return Check(name, subject, status, found, fix=fix, policy=policy, field=field)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class LiveCheck:
    """Checks the policies against the configured services; `run()` returns a `LiveReport`.

    ``atlassian`` may be None (its settings are missing: the caller reports that); ``graph``
    is None where Graph is not configured, and entitlement then comes from the Atlassian
    mirror groups. ``storage`` (optional) holds the subscriptions Seatwarden recorded;
    ``settings`` (optional) says where mail, the subscription keeper and the events poller
    stand. Nothing here writes to Atlassian or Graph.
    """

    def __init__(
        self,
        policies: PolicyFile,
        atlassian: AtlassianClient | None,
        graph: GraphClient | None,
        clock: Callable[[], datetime],
        *,
        storage: Storage | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.policies = policies
        self.atlassian = atlassian
        self.graph = graph
        self.clock = clock
        self.storage = storage
        self.settings = settings
        self._checks: list[Check] = []
        self._atlassian_up = atlassian is not None
        self._key_has_scopes = False  # a read was refused for a scope: the key is a scoped one
        self._graph_up = graph is not None
        self._entra_counts: dict[str, int | SeatwardenError] = {}

    def _add(self, check: Check) -> None:
        self._checks.append(check)

    async def run(self) -> LiveReport:
        now = self.clock()
        self._checks = []
        groups = await self._resolve_groups() if self._atlassian_up else None
        await self._check_key(groups)
        await self._check_graph_token()
        for i, policy in enumerate(self.policies.policies):
            await self._check_policy(i, policy, groups)
        await self._check_subscriptions(now)
        self._check_mail()
        return LiveReport(now, list(self._checks))

    # --- Atlassian ---------------------------------------------------------------------------

    async def _resolve_groups(self) -> dict[str, AtlassianGroup | None] | None:
        """Every group reference resolved (None: no such group), or None if the search failed.

        One search by name for all references; the ones no name matched are tried as ids in a
        second (Atlassian refuses names and ids in one search, WIRE.md §4). A reference
        resolves as the snapshot resolves it: by id first, then by name, case-insensitively.
        """
        assert self.atlassian is not None
        refs = list(dict.fromkeys(r.ref for r in _group_refs(self.policies.policies)))
        name = "atlassian.groups_search"
        try:
            found = await self.atlassian.search_groups(names=refs)
            by_name = {g.name.casefold(): g for g in found}
            by_id = {g.id: g for g in found}
            unmatched = [r for r in refs if r not in by_id and r.casefold() not in by_name]
            if unmatched:
                try:
                    by_id.update({g.id: g for g in await self.atlassian.search_groups(ids=unmatched)})
                except AtlassianError as exc:
                    # A reference that is neither a name nor an id might be refused as a
                    # malformed id (UNCONFIRMED: Atlassian documents no id format): then none
                    # of them is a group, which the group checks say, by field.
                    if exc.status != 400:
                        raise
        except SeatwardenError as exc:
            self._atlassian_failed(name, "groups search", exc)
            return None
        self._key_ok(name, READ_DIRECTORIES, "groups search", groups_named=len(refs), groups_found=len(by_id))
        return {r: by_id.get(r) or by_name.get(r.casefold()) for r in refs}

    def _key_ok(self, name: str, scope: str, capability: str, note: str | None = None, **facts: Any) -> None:
        self._add(Check(name, f"scope {scope}", "ok", {"capability": capability, **facts}, note=note))

    def _atlassian_failed(self, name: str, capability: str, exc: SeatwardenError) -> None:
        self._add(_atlassian_failure(name, capability, exc))
        if isinstance(exc, ScopeMissing):
            self._key_has_scopes = True
        if _stops_atlassian(exc):
            self._atlassian_up = False

    async def _check_key(self, groups: dict[str, AtlassianGroup | None] | None) -> None:
        """One cheap call per capability the policies need, and what enforcing needs."""
        sample = await self._sample_user(groups) if self._atlassian_up else None
        if sample is not None and self._atlassian_up:
            await self._check_last_active(sample)
        if self._atlassian_up:
            await self._check_events()
        if self._atlassian_up:  # the events call may have found the key or the org wrong
            self._check_writes()

    async def _sample_user(self, groups: dict[str, AtlassianGroup | None] | None) -> AtlassianUser | None:
        """One person from the users search, from an access group where one resolved: a
        licensed person is the one whose activity the rules read."""
        assert self.atlassian is not None
        access_ids = [
            g.id
            for g in ((groups or {}).get(p.access_group) for p in self.policies.policies)
            if g is not None
        ]
        name = "atlassian.users_search"
        try:
            async with aclosing(
                self.atlassian.iter_user_pages(group_ids=access_ids or None, limit=1, read_ahead=False)
            ) as pages:
                sample = None
                async for page in pages:
                    sample = page[0] if page else None
                    break
        except SeatwardenError as exc:
            self._atlassian_failed(name, "users search", exc)
            return None
        if sample is None:
            self._add(
                Check(
                    name,
                    f"scope {READ_DIRECTORIES}",
                    "warning",
                    {"capability": "users search", "sample_account_id": None},
                    fix=f"The users search returned nobody: check {ATLASSIAN_ORG_ID_SETTING}",
                )
            )
        else:
            self._key_ok(name, READ_DIRECTORIES, "users search", sample_account_id=sample.account_id)
        return sample

    async def _check_last_active(self, sample: AtlassianUser) -> None:
        """Where the users search carries activity the nightly read needs no lookups; where it
        does not, one lookup proves the key may make them."""
        assert self.atlassian is not None
        name, capability = "atlassian.last_active", "last-active dates"
        if any(p.last_active_timestamp is not None for p in sample.product_access or ()):
            note = "The users search carries last-active dates: no per-person lookups are needed."
            self._key_ok(name, READ_DIRECTORIES, capability, note, activity_in_users_search=True)
            return
        try:
            await self.atlassian.last_active_dates(sample.account_id)
        except SeatwardenError as exc:
            self._atlassian_failed(name, capability, exc)
            return
        self._key_ok(
            name, READ_DIRECTORIES, capability, activity_in_users_search=False, account_id=sample.account_id
        )

    async def _check_events(self) -> None:
        assert self.atlassian is not None
        name, capability = "atlassian.events", "org events stream"
        if self.settings is not None and self.settings.function_disabled(POLLER_FUNCTION):
            note = f"{POLLER_FUNCTION} is off (AzureWebJobs.{POLLER_FUNCTION}.Disabled): not tried."
            self._key_ok(name, READ_EVENTS, capability, note, poller="disabled")
            return
        try:
            await self.atlassian.events_stream(limit=1)
        except SeatwardenError as exc:
            self._atlassian_failed(name, capability, exc)
            return
        self._key_ok(name, READ_EVENTS, capability)

    def _check_writes(self) -> None:
        """Enforcing changes group memberships (and suspends, with `on_inactive: suspend`):
        never tried here, so the check names what it needs."""
        enforcing = [p.name for p in self.policies.policies if p.mode == "enforce"]
        found = {"enforcing_policies": enforcing, "tested": False}
        needs = (
            f"Enforcing needs an organization API key without scopes: Atlassian documents no scope "
            f"for the membership and suspend writes ({ATLASSIAN_SCOPES_URL})"
        )
        if self._key_has_scopes and enforcing:
            self._add(
                Check(
                    "atlassian.writes",
                    KEY_WITHOUT_SCOPES,
                    "error",
                    found,
                    fix=f"The key has scopes (a read was refused for want of one), and "
                    f"{', '.join(enforcing)} {'enforces' if len(enforcing) == 1 else 'enforce'}. "
                    f"{needs}: set {ATLASSIAN_API_KEY_SETTING} to one",
                )
            )
            return
        when = (
            f"{', '.join(enforcing)} {'enforces' if len(enforcing) == 1 else 'enforce'}"
            if enforcing
            else "no policy enforces yet (all are in report mode)"
        )
        self._add(
            Check(
                "atlassian.writes",
                KEY_WITHOUT_SCOPES,
                "ok",
                found,
                note=f"{needs}; {when}. Not tried: the check never writes.",
            )
        )

    # --- Graph -----------------------------------------------------------------------------

    async def _check_graph_token(self) -> None:
        if self.graph is None:
            return
        try:
            await self.graph.authenticate()
        except SeatwardenError as exc:
            self._add(_graph_failure("graph.token", "Entra token", exc))
            self._graph_up = False
            return
        self._add(Check("graph.token", "Entra app registration", "ok", {"scope": self.graph.scope}))

    async def _entra_count(self, group_id: str) -> int | SeatwardenError:
        """The group's user count, read once per group (GroupMember.Read.All)."""
        assert self.graph is not None
        if group_id not in self._entra_counts:
            try:
                self._entra_counts[group_id] = await self.graph.count_transitive_members(group_id)
            except SeatwardenError as exc:
                self._entra_counts[group_id] = exc
            except ValueError:  # not shaped like an object id: no group has it
                self._entra_counts[group_id] = GraphNotFound(f"{group_id!r} is not a Graph object id")
        return self._entra_counts[group_id]

    # --- per policy --------------------------------------------------------------------------

    async def _check_policy(
        self, index: int, policy: Policy, groups: dict[str, AtlassianGroup | None] | None
    ) -> None:
        if groups is not None:
            for ref in _group_refs(self.policies.policies):
                if ref.index != index:
                    continue
                group = groups[ref.ref]
                if group is None:
                    self._add(self._missing_group(ref))
                elif ref.role == "access_group":
                    self._add(self._access_group(ref, group))
                    if group.is_synced:
                        await self._check_synced_access_group(ref, group)
                elif ref.role == "marker_group":
                    self._add(self._marker_group(ref, group))
                elif ref.role == "entitlement_group":
                    self._add(self._mirror_group(ref, group))
                else:
                    self._add(self._plain_group(ref, group))
        await self._check_entra_entitlement(index, policy)
        self._check_warning_mail(index, policy)

    def _missing_group(self, ref: _GroupRef) -> Check:
        return Check(
            ref.role,
            f"group {ref.ref!r}",
            "error",
            {"ref": ref.ref, "exists": False},
            fix=f"{ref.field} names {ref.ref!r}, which is not a group in the org (by name or id): "
            "correct the field, or create the group in admin.atlassian.com > Directory > Groups",
            policy=ref.policy.name,
            field=ref.field,
        )

    def _plain_group(self, ref: _GroupRef, group: AtlassianGroup, note: str | None = None) -> Check:
        return Check(
            ref.role,
            f"group {ref.ref!r}",
            "ok",
            _group_facts(group),
            policy=ref.policy.name,
            field=ref.field,
            note=note,
        )

    def _access_group(self, ref: _GroupRef, group: AtlassianGroup) -> Check:
        """A local access group is Seatwarden's to change; a synced one is checked further."""
        policy = ref.policy
        note = None
        if group.is_synced:
            note = "Synced from the IdP: Atlassian refuses changes to it, so removals go to Entra."
        elif policy.synced_access_group == "entra_write" and policy.access_entra_group_id:
            note = (
                f"The group is local, so policies[{ref.index}].synced_access_group and "
                "access_entra_group_id are not used."
            )
        return self._plain_group(ref, group, note)

    async def _check_synced_access_group(self, ref: _GroupRef, group: AtlassianGroup) -> None:
        """An access group synced from Entra is read-only in Atlassian: a removal is an Entra
        change, through Graph (`entra_write`) or a CSV for Entra's bulk remove (`csv`)."""
        policy, at = ref.policy, f"policies[{ref.index}]"
        setting, id_field = f"{at}.synced_access_group", f"{at}.access_entra_group_id"
        facts: dict[str, Any] = {
            "group": group.name,
            "synced_access_group": policy.synced_access_group,
            "access_entra_group_id": policy.access_entra_group_id,
        }

        def check(status: Status, subject: str, field_path: str, **more: Any) -> None:
            self._add(
                Check(
                    "synced_access_group",
                    subject,
                    status,
                    facts,
                    policy=policy.name,
                    field=field_path,
                    **more,
                )
            )

        or_csv = f"or set {setting}: csv to list removals for Entra's bulk remove"
        if policy.synced_access_group == "csv":
            check(
                "ok",
                f"group {group.name!r}",
                setting,
                note="Removals are written to a per-group CSV in the format of Entra's Bulk remove "
                "members page (https://learn.microsoft.com/entra/identity/users/groups-bulk-remove-members), "
                "for someone to upload; entra_write would apply them through Graph.",
            )
        elif policy.access_entra_group_id is None:
            check(
                "error",
                f"group {group.name!r}",
                id_field,
                fix=f"{group.name!r} is synced from Entra and {setting} is entra_write, but {id_field} is "
                f"not set: set it to the object id of the Entra group synced into {group.name!r}, {or_csv}",
            )
        elif self.graph is None:
            check(
                "error",
                f"setting {ENTRA_CLIENT_ID_SETTING}",
                setting,
                fix=f"{setting} is entra_write, which removes people through Graph, and Graph is not "
                f"configured: set {GRAPH_SETTINGS} for an app with the application permission "
                f"{WRITE_MEMBERS}, {or_csv}",
            )
        elif self._graph_up:
            count = await self._entra_count(policy.access_entra_group_id)
            if isinstance(count, GraphNotFound):
                check(
                    "error",
                    f"Entra group {policy.access_entra_group_id}",
                    id_field,
                    fix=f"There is no Entra group {policy.access_entra_group_id}: set {id_field} to the "
                    f"object id of the Entra group synced into {group.name!r}",
                )
            elif isinstance(count, SeatwardenError):
                self._add(
                    _graph_failure(
                        "synced_access_group", "Entra access group", count, policy=policy.name, field=id_field
                    )
                )
            else:
                facts["entra_members"] = count
                check(
                    "ok",
                    f"permission {WRITE_MEMBERS}",
                    setting,
                    note=f"Removing people from the Entra group needs the application permission "
                    f"{WRITE_MEMBERS} (always /members/{{id}}/$ref). Not tried: the check never writes.",
                )

    def _marker_group(self, ref: _GroupRef, group: AtlassianGroup) -> Check:
        """Seatwarden adds people to the marker group, so it must be local; a product guest
        group draws the static check's warning (shared/config.py `policy_warnings`)."""
        facts = _group_facts(group)
        subject, policy = f"group {ref.ref!r}", ref.policy.name
        if group.is_synced:
            return Check(
                ref.role,
                subject,
                "error",
                facts,
                fix=f"Seatwarden adds people to the marker group, and {group.name!r} is synced from the "
                f"IdP, so Atlassian refuses changes to it: set {ref.field} to a local group",
                policy=policy,
                field=ref.field,
            )
        guest = next((w for w in policy_warnings(self.policies) if w.field == ref.field), None)
        if guest is not None:
            return Check(
                ref.role, subject, "warning", facts, fix=guest.allowed, policy=policy, field=ref.field
            )
        return self._plain_group(ref, group)

    def _mirror_group(self, ref: _GroupRef, group: AtlassianGroup) -> Check:
        """The entitlement mirror should be the group Entra syncs in (DESIGN.md, "Three groups")."""
        if group.is_synced:
            return self._plain_group(ref, group)
        return Check(
            ref.role,
            f"group {ref.ref!r}",
            "warning",
            _group_facts(group),
            fix=f"{group.name!r} is a local group, not synced from the IdP: entitlement would be whatever "
            f"admins put in it. Set {ref.field} to the group Entra syncs in, or read the Entra group "
            f"through Graph (policies[{ref.index}].entitlement.entra_group_id)",
            policy=ref.policy.name,
            field=ref.field,
        )

    async def _check_entra_entitlement(self, index: int, policy: Policy) -> None:
        """Entitlement read from Entra: Graph must be configured, and the group readable."""
        gid = policy.entitlement.entra_group_id
        if gid is None:
            return
        field_path = f"policies[{index}].entitlement.entra_group_id"
        subject = f"Entra group {gid}"
        if self.graph is None:
            self._add(
                Check(
                    "entitlement_group",
                    f"setting {ENTRA_CLIENT_ID_SETTING}",
                    "error",
                    {"entra_group_id": gid},
                    fix=f"{field_path} reads entitlement from Entra through Graph, and Graph is not "
                    f"configured: set {GRAPH_SETTINGS} for an app with the application permission "
                    f"{READ_MEMBERS}, or read the synced mirror instead "
                    f"(policies[{index}].entitlement.atlassian_group)",
                    policy=policy.name,
                    field=field_path,
                )
            )
            return
        if not self._graph_up:
            return  # the token check says why
        count = await self._entra_count(gid)
        if isinstance(count, GraphNotFound):
            self._add(
                Check(
                    "entitlement_group",
                    subject,
                    "error",
                    {"entra_group_id": gid, "exists": False},
                    fix=f"There is no Entra group {gid}: set {field_path} to the object id of the group "
                    "whose members should have the product",
                    policy=policy.name,
                    field=field_path,
                )
            )
        elif isinstance(count, SeatwardenError):
            self._add(
                _graph_failure("entitlement_group", subject, count, policy=policy.name, field=field_path)
            )
        else:
            self._add(
                Check(
                    "entitlement_group",
                    f"permission {READ_MEMBERS}",
                    "ok",
                    {"entra_group_id": gid, "members": count},
                    policy=policy.name,
                    field=field_path,
                )
            )

    def _check_warning_mail(self, index: int, policy: Policy) -> None:
        if self.settings is None or policy.warn_before_days == 0 or self.settings.mail_sender:
            return
        field_path = f"policies[{index}].warn_before_days"
        self._add(
            Check(
                "warning_mail",
                f"setting {MAIL_SENDER_SETTING}",
                "warning",
                {"warn_before_days": policy.warn_before_days, "mail_sender": None},
                fix=f"{field_path} is {policy.warn_before_days}, and no mail is sent without "
                f"{MAIL_SENDER_SETTING}: set it to the mailbox to send from (Graph needs {SEND_MAIL})",
                policy=policy.name,
                field=field_path,
            )
        )

    # --- subscriptions and mail ----------------------------------------------------------------

    def _entra_groups(self) -> dict[str, list[str]]:
        """Entra entitlement group id -> the policies reading it."""
        groups: dict[str, list[str]] = {}
        for policy in self.policies.policies:
            if policy.entitlement.entra_group_id:
                groups.setdefault(policy.entitlement.entra_group_id, []).append(policy.name)
        return groups

    def _keeper_needs(self) -> str:
        """What the subscription keeper needs to create or renew a subscription, and what is missing."""
        s = self.settings
        missing = [
            name
            for name, value in (
                (PUBLIC_URL_SETTING, s.public_base_url if s else "?"),
                (CLIENT_STATE_SETTING, s.graph_client_state if s else "?"),
            )
            if not value
        ]
        text = (
            f"the {KEEPER_FUNCTION} function creates and renews it on its timer "
            f"(SUBSCRIPTION_KEEPER_SCHEDULE) and needs {PUBLIC_URL_SETTING} and {CLIENT_STATE_SETTING}"
        )
        if missing:
            text += f"; {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
        if s is not None and s.function_disabled(KEEPER_FUNCTION):
            text += f"; it is disabled: remove AzureWebJobs.{KEEPER_FUNCTION}.Disabled"
        return text

    def _keeper_ready(self) -> bool:
        s = self.settings
        return bool(
            s is not None
            and s.public_base_url
            and s.graph_client_state
            and not s.function_disabled(KEEPER_FUNCTION)
        )

    async def _check_subscriptions(self, now: datetime) -> None:
        """Each Entra entitlement group needs a subscription that is not about to lapse, so its
        changes arrive within seconds (DESIGN.md, "Flows" 4 and 5)."""
        wanted = self._entra_groups()
        if not wanted or self.graph is None or not self._graph_up:
            return
        name = "subscription"
        try:
            subscriptions = await self.graph.list_subscriptions()
        except SeatwardenError as exc:
            self._add(_graph_failure(name, "Graph subscriptions", exc))
            return
        recorded = self._recorded_subscriptions()
        live_ids = {s.id for s in subscriptions}
        expected_url = (
            notification_urls(self.settings.public_base_url)[0]
            if self.settings is not None and self.settings.public_base_url
            else None
        )
        for gid, policies in wanted.items():
            resource = f"groups/{gid}"
            mine = [s for s in subscriptions if (s.resource or "").strip("/").lower() == resource.lower()]
            subject = f"subscription {resource}"
            if not mine:
                self._add(
                    Check(
                        name,
                        subject,
                        "warning" if self._keeper_ready() else "error",
                        {"resource": resource, "policies": policies, "exists": False},
                        fix=f"Graph has no change-notification subscription on Entra group {gid}, so its "
                        f"changes wait for the night: {self._keeper_needs()}",
                    )
                )
                continue
            self._add(
                self._subscription_check(subject, resource, policies, mine, now, expected_url, recorded)
            )
        if recorded is None:
            return
        for stored in recorded.values():
            if stored.id not in live_ids:
                self._add(
                    Check(
                        name,
                        f"subscription {stored.resource}",
                        "warning",
                        {"subscription_id": stored.id, "resource": stored.resource, "in_graph": False},
                        fix=f"Seatwarden recorded subscription {stored.id}, and Graph no longer has it "
                        f"(expired or deleted): {self._keeper_needs()}",
                    )
                )

    def _subscription_check(
        self,
        subject: str,
        resource: str,
        policies: list[str],
        mine: list[Subscription],
        now: datetime,
        expected_url: str | None,
        recorded: dict[str, Any] | None,
    ) -> Check:
        best = max(mine, key=lambda s: s.expiration_date_time or now)
        expires = best.expiration_date_time
        facts: dict[str, Any] = {
            "resource": resource,
            "policies": policies,
            "subscription_id": best.id,
            "expires": _iso(expires),
            "notification_url": best.notification_url,
            "recorded": None if recorded is None else best.id in recorded,
        }
        if expires is None or expires - now < RENEW_WITHIN:
            return Check(
                "subscription",
                subject,
                "warning",
                facts,
                fix=f"The subscription expires within a day ({_iso(expires)}): {self._keeper_needs()}; "
                "it renews those expiring within a day on its next run",
            )
        if expected_url and best.notification_url and best.notification_url != expected_url:
            return Check(
                "subscription",
                subject,
                "warning",
                facts,
                fix=f"Notifications go to {best.notification_url}, not {expected_url} "
                f"({PUBLIC_URL_SETTING}): correct {PUBLIC_URL_SETTING}, or delete subscription {best.id} "
                f"so {KEEPER_FUNCTION} creates one for this deployment",
            )
        return Check("subscription", subject, "ok", facts)

    def _recorded_subscriptions(self) -> dict[str, Any] | None:
        """The subscriptions Seatwarden recorded, by id (None: no storage, or it cannot be read)."""
        if self.storage is None:
            return None
        try:
            return {s.id: s for s in self.storage.subscriptions.list()}
        except SeatwardenError as exc:
            self._add(
                Check(
                    "storage",
                    "setting AzureWebJobsStorage",
                    "warning",
                    {"table": "subscriptions"},
                    fix=f"The recorded subscriptions could not be read ({exc}): check AzureWebJobsStorage "
                    "or SEATWARDEN_STORAGE",
                )
            )
            return None

    def _check_mail(self) -> None:
        """Warning mail goes through Graph's sendMail, which takes Mail.Send; never tried here."""
        if self.settings is None or not self.settings.mail_sender:
            return
        sender = self.settings.mail_sender
        if self.graph is None:
            self._add(
                Check(
                    "mail",
                    f"setting {MAIL_SENDER_SETTING}",
                    "error",
                    {"mail_sender": sender},
                    fix=f"{MAIL_SENDER_SETTING} is set, and mail is sent through Graph, which is not "
                    f"configured: set {GRAPH_SETTINGS} for an app with the application permission "
                    f"{SEND_MAIL}",
                )
            )
            return
        self._add(
            Check(
                "mail",
                f"permission {SEND_MAIL}",
                "ok",
                {"mail_sender": sender, "tested": False},
                note=f"Sending as {sender} needs the application permission {SEND_MAIL}. "
                "Not tried: the check sends no mail.",
            )
        )


# --- from the app's settings ------------------------------------------------------------------


def _missing_setting(exc: MissingSetting) -> Check:
    return Check(
        "setting",
        f"setting {exc.name}",
        "error",
        {"setting": exc.name, "set": False},
        fix=f"{str(exc)[:1].upper()}{str(exc)[1:]}. Set it in the Function App's settings "
        "(for the CLI, in the environment)",
    )


def _graph_settings_missing(settings: Settings) -> list[str]:
    """The Graph settings still missing where some are set (none set: Graph is simply off)."""
    given = {
        ENTRA_TENANT_ID_SETTING: settings.entra_tenant_id,
        ENTRA_CLIENT_ID_SETTING: settings.entra_client_id,
        f"{ENTRA_CLIENT_SECRET_SETTING} or {ENTRA_CERTIFICATE_SETTING}": settings.entra_client_secret
        or settings.entra_client_cert_path,
    }
    if not any(given.values()):
        return []
    return [name for name, value in given.items() if not value]


async def run_live_check(app: App, policies: PolicyFile | None = None) -> LiveReport:
    """The live check with the app's own clients and storage, always closed afterwards.

    A missing or unusable setting becomes a check naming it, never a crash; the checks that
    need it are left out. ``policies`` defaults to the app's (SEATWARDEN_POLICY[_FILE]).
    """
    policies = policies if policies is not None else app.policies
    settings = app.settings
    early: list[Check] = []
    atlassian: AtlassianClient | None = None
    graph: GraphClient | None = None
    storage: Storage | None = None
    unset = [
        MissingSetting(name, why)
        for name, value, why in (
            (ATLASSIAN_ORG_ID_SETTING, settings.atlassian_org_id, "every Atlassian call names the org"),
            (
                ATLASSIAN_API_KEY_SETTING,
                settings.atlassian_api_key,
                "the Admin API takes an organization API key",
            ),
        )
        if not value
    ]
    early.extend(_missing_setting(exc) for exc in unset)
    if not unset:
        try:
            atlassian = app.atlassian()
        except MissingSetting as exc:
            early.append(_missing_setting(exc))
    missing = _graph_settings_missing(settings)
    if missing:
        early.append(
            Check(
                "setting",
                f"setting {missing[0]}",
                "error",
                {"missing": missing},
                fix=f"Graph is half configured: set {' and '.join(missing)} too "
                f"(Graph needs {GRAPH_SETTINGS})",
            )
        )
    else:
        try:
            graph = app.graph()
        except (OSError, ValueError, SeatwardenError) as exc:
            early.append(
                Check(
                    "setting",
                    f"setting {ENTRA_CERTIFICATE_SETTING}",
                    "error",
                    {"error": str(exc)},
                    fix=f"The Graph credential cannot be used ({exc}): check {ENTRA_CERTIFICATE_SETTING} "
                    f"and {ENTRA_CERTIFICATE_THUMBPRINT_SETTING}, or use {ENTRA_CLIENT_SECRET_SETTING}",
                )
            )
    try:
        storage = app.storage
    except MissingSetting as exc:
        early.append(
            Check(
                "setting",
                f"setting {exc.name}",
                "warning",
                {"setting": exc.name, "set": False},
                fix=f"Set {exc.name} to compare the subscriptions Seatwarden recorded with Graph's "
                "(every function needs it too)",
            )
        )
    except SeatwardenError as exc:
        early.append(
            Check(
                "storage",
                "setting AzureWebJobsStorage",
                "warning",
                {"error": str(exc)},
                fix=f"Storage cannot be opened ({exc}): check AzureWebJobsStorage or SEATWARDEN_STORAGE",
            )
        )
    try:
        report = await LiveCheck(
            policies, atlassian, graph, app.clock, storage=storage, settings=settings
        ).run()
    finally:
        if atlassian is not None:
            await atlassian.aclose()
        if graph is not None:
            await graph.aclose()
    return LiveReport(report.checked_at, early + report.checks)
