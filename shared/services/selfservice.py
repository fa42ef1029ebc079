"""Self-service return: a signed-in person asks for a product's license back, and gets it at once.

The warning mail links to `GET /api/relicense?product=<key>`. App Service authentication signs
the person in with Entra and hands the function their claims in `X-MS-CLIENT-PRINCIPAL`
(`Principal.from_headers`). This service maps the Entra object id to the Atlassian account,
reads that one person as a return event does (`PeopleReader`), and lets the ordinary rules
decide: RELICENSE (`plan_relicense`) for an entitled, marked person; GRANT (`plan_product`)
for an entitled person who holds no license and carries no marker, the license the next night
would give anyway. Nothing else is given: exclusions, targeting, the policy's mode and its
`seat_cap` hold exactly as at night, and the Atlassian seat limit (`ADMIN-409-3`) makes the
executor wait. The action goes straight to the `Executor`, which applies it idempotently and
writes the audit entry, with the route and the signed-in principal as its actor.

Without a product, nothing is changed: the result lists what can be given back, one link each.
A license is per product and costs per product; the person knows which one they need, and
the mail names one.

How far the principal header can be trusted (the facts behind `Principal.from_headers`):

- App Service authentication injects `X-MS-CLIENT-PRINCIPAL` (Base64 JSON: `auth_typ`,
  `claims` [{`typ`, `val`}], `name_typ`, `role_typ`), `-ID`, `-NAME` and `-IDP`, and
  "external requests aren't allowed to set these headers, so they're present only if App
  Service sets them"
  (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
- Claim names go through the default claims mapping: the Entra object id (`oid`) arrives as
  `http://schemas.microsoft.com/identity/claims/objectidentifier`, the UPN as
  `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn` or `preferred_username`.
- That holds only where App Service authentication runs in front of the app. The Functions
  host itself reads the principal only when the platform sets `WEBSITE_AUTH_ENABLED=true`
  (Azure/azure-functions-host, `AuthenticationLevelHandler.cs`), and so does this route
  (`Settings.easy_auth_enabled`). During the Flex Consumption preview its docs said "EasyAuth
  isn't currently supported. Unauthenticated callers currently aren't blocked when EasyAuth
  is enabled" (MicrosoftDocs/azure-docs, articles/azure-functions/flex-consumption-plan.md,
  2024); whether the GA plan lifts that is UNCONFIRMED here, so the README says how to check
  a deployment. The worst a forged principal can do is what the rules allow for the person
  it names: give an entitled person their license back (a cost, never a removal).
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.config import Policy
from shared.errors import RemoteError
from shared.model import Action, GroupRole, Reason, Snapshot
from shared.rules import _Groups, _scope, plan_product, plan_relicense
from shared.services.execute import Executor, is_transient
from shared.services.reconcile import action_message
from shared.services.returns import PeopleReader
from shared.services.snapshot import product_key
from shared.untrusted import load_json

log = logging.getLogger("seatwarden.selfservice")

#: The route, as it appears in audit entries.
ROUTE = "/api/relicense"

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
PRINCIPAL_IDP_HEADER = "x-ms-client-principal-idp"

#: `auth_typ` and X-MS-CLIENT-PRINCIPAL-IDP of the Microsoft Entra provider.
ENTRA_PROVIDER = "aad"

OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
UPN_CLAIMS = ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "preferred_username")
NAME_CLAIMS = ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")

#: A principal with every claim of a large token is a few KiB; anything far beyond is not one.
MAX_PRINCIPAL_CHARS = 32 * 1024

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PRODUCT = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class BadPrincipal(ValueError):
    """The principal headers are present but cannot be read: a forged or garbled request (400)."""


class UnknownProduct(LookupError):
    """The requested product is not one Seatwarden manages (404); `known` lists those it does."""

    def __init__(self, product: str, known: Iterable[str]):
        self.product = product
        self.known = sorted(set(known))
        super().__init__(f"no policy manages product {product!r}")


@dataclass(frozen=True)
class Principal:
    """The signed-in person, as App Service authentication describes them."""

    object_id: str | None
    upn: str | None
    name: str
    tenant_id: str | None
    identity_provider: str

    @property
    def label(self) -> str:
        """Who, for audit entries, logs and the page: the UPN (or name) and the object id."""
        who = self.upn or self.name or "an unnamed principal"
        return f"{who} (oid {self.object_id})" if self.object_id else who

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Principal | None:
        """The principal from request headers (names in any case); None when there is none.

        Raises `BadPrincipal` for a header that is not Base64 JSON in the documented shape,
        names no one, or disagrees with X-MS-CLIENT-PRINCIPAL-ID.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        raw = (lowered.get(PRINCIPAL_HEADER) or "").strip()
        if not raw:
            return None
        if len(raw) > MAX_PRINCIPAL_CHARS:
            raise BadPrincipal("the principal header is too long")
        try:
            document = load_json(base64.b64decode(raw, validate=True))
        except ValueError as exc:  # binascii.Error, Unreadable, and b64decode refusing non-ASCII text
            raise BadPrincipal("the principal header is not Base64-encoded JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
            raise BadPrincipal("the principal header has no claims list")
        claims: dict[str, str] = {}
        for claim in document["claims"]:
            typ, val = (claim.get("typ"), claim.get("val")) if isinstance(claim, dict) else (None, None)
            if not (isinstance(typ, str) and isinstance(val, str)):
                raise BadPrincipal("a claim in the principal header is not {typ, val} strings")
            claims.setdefault(typ, val)
        auth_typ = document.get("auth_typ")
        if not isinstance(auth_typ, str) or not auth_typ:
            raise BadPrincipal("the principal header names no identity provider")

        def first(names: Iterable[str]) -> str | None:
            return next((claims[n].strip() for n in names if claims.get(n, "").strip()), None)

        object_id = first(OBJECT_ID_CLAIMS)
        if object_id is not None and not _GUID.match(object_id):
            raise BadPrincipal("the principal's object id is not a GUID")
        upn = first(UPN_CLAIMS)
        if object_id is None and upn is None:
            raise BadPrincipal("the principal names neither an object id nor a user principal name")
        stated_id = (lowered.get(PRINCIPAL_ID_HEADER) or "").strip()
        if stated_id and object_id and stated_id.lower() != object_id.lower():
            raise BadPrincipal("X-MS-CLIENT-PRINCIPAL-ID and the principal's object id disagree")
        stated_idp = (lowered.get(PRINCIPAL_IDP_HEADER) or "").strip()
        if stated_idp and stated_idp.lower() != auth_typ.lower():
            raise BadPrincipal("X-MS-CLIENT-PRINCIPAL-IDP and the principal's provider disagree")
        return cls(
            object_id=object_id.lower() if object_id else None,
            upn=upn.lower() if upn else None,
            name=first(NAME_CLAIMS) or (lowered.get(PRINCIPAL_NAME_HEADER) or "").strip(),
            tenant_id=(first(TENANT_CLAIMS) or "").lower() or None,
            identity_provider=auth_typ.lower(),
        )


class Verdict(enum.StrEnum):
    """What the self-service page tells the person, per product."""

    RELICENSED = "relicensed"  # RELICENSE applied: the license is back
    GRANTED = "granted"  # GRANT applied: entitled, never marked, now licensed
    AVAILABLE = "available"  # no product asked: this one can be given back now
    ALREADY_LICENSED = "already_licensed"
    PENDING = "pending"  # Atlassian did not answer in time: the actions queue finishes it
    WAITING_FOR_SEAT = "waiting_for_seat"  # the policy's seat cap or Atlassian's seat limit
    NOT_ENTITLED = "not_entitled"
    OUT_OF_SCOPE = "out_of_scope"  # outside the policy's targeting, or the account is not active
    MANAGED_IN_ENTRA = "managed_in_entra"  # the access group is synced from Entra
    REPORT_ONLY = "report_only"  # the policy is in report mode: it changes nothing
    FAILED = "failed"  # Atlassian refused for good; an administrator has to look


#: Verdicts where the person holds the license when the page is shown.
HOLDS_LICENSE = frozenset({Verdict.RELICENSED, Verdict.GRANTED, Verdict.ALREADY_LICENSED})


@dataclass(frozen=True)
class ProductOutcome:
    policy: str
    product: str
    verdict: Verdict
    at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class SelfServiceResult:
    principal: Principal
    #: The product asked for; None: the page offers what can be given back.
    asked: str | None
    account_id: str | None
    outcomes: tuple[ProductOutcome, ...] = ()
    #: Why no Atlassian account was found for the principal (an unknown person).
    unknown: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "account_id": self.account_id,
            "unknown": self.unknown,
            "outcomes": [
                {
                    "policy": o.policy,
                    "product": o.product,
                    "verdict": o.verdict.value,
                    "at": o.at.isoformat() if o.at else None,
                    "detail": o.detail,
                }
                for o in self.outcomes
            ],
        }


@dataclass(frozen=True)
class _Decision:
    verdict: Verdict
    action: Action | None = None
    detail: str = ""


class SelfService:
    """Decides and applies a signed-in person's request for a license, through the rules."""

    def __init__(
        self,
        storage: Any,
        atlassian: Any,
        graph: Any | None,
        clock: Callable[[], datetime],
        policies: Iterable[Policy],
        tenant_id: str | None = None,
    ):
        self.storage = storage
        self.atlassian = atlassian
        self.graph = graph
        self.clock = clock
        self.policies = list(policies)
        self.tenant_id = tenant_id.lower() if tenant_id else None
        self.reader = PeopleReader(atlassian, storage, clock)

    def policies_for(self, product: str | None) -> list[Policy]:
        """The policies a request concerns: those of `product` (key or policy name), or all."""
        if product is None:
            return list(self.policies)
        wanted = product.strip().lower()
        known = {product_key(p.product) for p in self.policies}
        if not _PRODUCT.match(wanted):
            raise UnknownProduct(product, known)
        key = product_key(wanted)
        chosen = [p for p in self.policies if product_key(p.product) == key or p.name == wanted]
        if not chosen:
            raise UnknownProduct(product, known)
        return chosen

    async def relicense(self, principal: Principal, product: str | None) -> SelfServiceResult:
        """Give `principal` the license for `product` if the rules say so; `product` None: only list.

        Raises `UnknownProduct`. A failed read (`RemoteError`, `IncompleteRead`, `StorageError`)
        propagates before anything changed, so the caller can say "try again"; a transient
        failure while applying hands the action to the actions queue (`Verdict.PENDING`).
        """
        policies = self.policies_for(product)
        account_id, unknown = await self.account_for(principal)
        if account_id is None:
            return SelfServiceResult(principal, product, None, unknown=unknown)
        snapshot = await self.reader.snapshot([account_id], policies)
        if account_id not in snapshot.people:
            why = "the Atlassian account Seatwarden recorded for you is no longer in the organization"
            return SelfServiceResult(principal, product, account_id, unknown=why)
        now = self.clock()
        outcomes = []
        for policy in policies:
            decision = await self._decide(snapshot, policy, account_id, now)
            if decision.action is not None and product is not None:
                outcomes.append(await self._apply(principal, policy, decision.action))
            elif decision.action is not None:
                outcomes.append(ProductOutcome(policy.name, policy.product, Verdict.AVAILABLE))
            else:
                outcomes.append(
                    ProductOutcome(policy.name, policy.product, decision.verdict, detail=decision.detail)
                )
        result = SelfServiceResult(principal, product, account_id, tuple(outcomes))
        log.info("self-service %s for %s: %s", product or "-", principal.label, json.dumps(result.to_dict()))
        return result

    # -- who is asking -------------------------------------------------------------------------

    async def account_for(self, principal: Principal) -> tuple[str | None, str | None]:
        """(account id, None), or (None, why not): the principal's Atlassian account.

        The identities the nightly read recorded first; then, as for a new Entra member, the
        directory's own UPN and mail for the object id (Graph), matched by email. Only where
        Graph is not configured does the UPN claim itself stand in: for a member of the
        tenant it is the UPN an administrator set.
        """
        if principal.identity_provider != ENTRA_PROVIDER:
            provider = principal.identity_provider
            return None, f"you signed in with {provider}, not with your Microsoft work account"
        if self.tenant_id and principal.tenant_id and principal.tenant_id != self.tenant_id:
            return None, "you signed in with an account from another Microsoft Entra tenant"
        if principal.object_id:
            known = self.storage.identities.account_for(principal.object_id)
            if known:
                return known, None
            if self.graph is not None:
                user = await self.graph.get_user(principal.object_id)
                if user is None:
                    return None, "Microsoft Entra ID has no user with your object id"
                found = await self.reader.account_by_email([user.user_principal_name or "", user.mail or ""])
                if found:
                    self.storage.identities.record({principal.object_id: found}, known={})
                    return found, None
                return None, "no Atlassian account has your work email address"
        if self.graph is None and principal.upn:
            found = await self.reader.account_by_email([principal.upn])
            if found:
                return found, None
        return None, "no Atlassian account has your work email address"

    # -- what the rules say --------------------------------------------------------------------

    async def _decide(self, snapshot: Snapshot, policy: Policy, account_id: str, now: datetime) -> _Decision:
        groups = _Groups(snapshot, policy)
        ignored, _ = _scope(snapshot, policy)
        if account_id in groups.licensed:
            return _Decision(Verdict.ALREADY_LICENSED)
        if account_id in snapshot.unmanaged:
            return _Decision(Verdict.OUT_OF_SCOPE, detail="your Atlassian account is suspended or closed")
        if account_id in ignored:
            return _Decision(Verdict.OUT_OF_SCOPE, detail="this product's policy does not cover your account")
        if account_id not in groups.entitled:
            return _Decision(Verdict.NOT_ENTITLED)
        if account_id in groups.marked:
            action = plan_relicense(snapshot, policy, account_id, now)
            if action is None:
                return _Decision(Verdict.MANAGED_IN_ENTRA)
        else:
            plan = plan_product(snapshot, policy, now)
            found = [a for a in plan.actions if a.account_id == account_id and a.reason is Reason.GRANT]
            if not found:
                waits = [w.why for w in plan.waiting if w.account_id == account_id]
                seat = any("seat cap" in why for why in waits)
                verdict = Verdict.WAITING_FOR_SEAT if seat else Verdict.MANAGED_IN_ENTRA
                return _Decision(verdict, detail="; ".join(waits))
            action = found[0]
        if policy.mode != "enforce":
            return _Decision(Verdict.REPORT_ONLY)
        if policy.seat_cap is not None and not await self._seat_free(groups.access.id, policy.seat_cap):
            return _Decision(Verdict.WAITING_FOR_SEAT, detail=f"seat cap {policy.seat_cap} reached")
        return _Decision(Verdict.AVAILABLE, action)

    async def _seat_free(self, access_group_id: str, cap: int) -> bool:
        """Is the access group (the rules' `licensed`) below the policy's seat cap right now?

        The rules check the cap against the whole org at night; between nights the group's
        member count, from the groups search, stands in for it. No count: no proof of room,
        so the license waits for the night.
        """
        found = await self.atlassian.search_groups(ids=[access_group_id])
        counts = found[0].counts if found else None
        return counts is not None and counts.users is not None and counts.users < cap

    # -- doing it ------------------------------------------------------------------------------

    async def _apply(self, principal: Principal, policy: Policy, action: Action) -> ProductOutcome:
        """Apply `action` now; a transient failure hands it to the actions queue to finish."""
        message = action_message("", action)
        message["actor"] = f"self-service {ROUTE}: {principal.label}"
        if principal.object_id:
            message["entra_id"] = principal.object_id  # for an access group written through Entra
        executor = Executor(self.storage, self.atlassian, self.graph, self.clock)
        try:
            outcome = await executor.apply(message)
        except RemoteError as exc:
            if not is_transient(exc):
                raise
            # Part of it may be done (the license given, the marker not yet removed): the
            # executor on the queue finishes it, at most once, and writes the audit entry.
            self.storage.queues.send("actions", message)
            log.warning("self-service %s for %s queued after %s", action.id, principal.label, exc)
            outcome = "queued"

        def said(verdict: Verdict, detail: str = "", at: datetime | None = None) -> ProductOutcome:
            return ProductOutcome(policy.name, policy.product, verdict, at=at, detail=detail)

        if outcome == "applied":
            done = Verdict.RELICENSED if action.reason is Reason.RELICENSE else Verdict.GRANTED
            return said(done, at=self.clock())
        if outcome == "unchanged":
            return said(Verdict.ALREADY_LICENSED)
        if outcome == "waiting":
            return said(Verdict.WAITING_FOR_SEAT, "no free seat")
        if outcome == "queued":
            return said(Verdict.PENDING)
        if outcome == "skipped":
            return said(Verdict.OUT_OF_SCOPE, "your Atlassian account is not active")
        if outcome == "duplicate":
            # The same decision was applied earlier today; say what holds now.
            current = await executor.current(action.account_id)
            access = next((op.group_id for op in action.ops if op.role is GroupRole.ACCESS), None)
            if access and access in current.groups:
                return said(Verdict.ALREADY_LICENSED)
            return said(Verdict.FAILED, "given back once today already, and taken again since")
        return said(Verdict.FAILED, "Atlassian refused the change")
