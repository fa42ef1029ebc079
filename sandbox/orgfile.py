"""The org JSON format: load an exact org from a file, or dump any org to one.

The loader builds the same in-memory ``Org`` the generator does, so a test can pin a
handful of people with known dates, and ``dump_org`` writes a generated org in the same
format (``python -m sandbox dump``) to start from. The format is documented in
``sandbox/README.md``; ``sandbox/examples/small-org.json`` is a small example.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .clock import Clock
from .model import BASIC_ROLE, EntraGroup, Group, Product, User
from .org import ACCESS_SUFFIX, Org, OrgIdentity
from .timeutil import from_epoch, iso_seconds, parse_iso

FORMAT_VERSION = 1


class OrgFileError(ValueError):
    """The org document is not valid; the message names the field."""


def load_org(
    source: str | Path | Mapping[str, Any], *, start: datetime | None = None, frozen: bool = False
) -> Org:
    """Build an Org from a JSON file path or an already parsed document.

    The clock starts at ``start`` if given, else at the document's ``clockStart``, else now.
    """
    if isinstance(source, Mapping):
        document: Mapping[str, Any] = source
    else:
        try:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise OrgFileError(f"{source}: {exc}") from exc
    if not isinstance(document, Mapping):
        raise OrgFileError("the org document must be a JSON object")
    clock_start = start or _optional_instant(document, "clockStart", "")
    clock = Clock(clock_start, frozen=frozen)
    identity = _identity(document.get("org") or {})
    products = [
        _product(item, f"products[{i}]") for i, item in enumerate(_list(document, "products", "products"))
    ]
    if not products:
        raise OrgFileError("products: at least one product is required")
    keys = [p.key for p in products]
    default_added = clock.start - timedelta(days=365)
    users = [
        _user(item, f"users[{i}]", keys, default_added)
        for i, item in enumerate(_list(document, "users", "users"))
    ]
    entra_groups = [
        _entra_group(item, f"entraGroups[{i}]") for i, item in enumerate(document.get("entraGroups") or [])
    ]
    groups = [
        _group(item, f"groups[{i}]", keys, identity.org_id)
        for i, item in enumerate(document.get("groups") or [])
    ]
    try:
        return Org(identity, products, users, groups, entra_groups, clock)
    except ValueError as exc:
        raise OrgFileError(str(exc)) from exc


def dump_org(org: Org) -> dict[str, Any]:
    """The org as a document ``load_org`` reads back into the same org."""
    with org.lock:
        keys = [p.key for p in org.products]
        ident = org.identity
        return {
            "formatVersion": FORMAT_VERSION,
            "org": {
                "id": ident.org_id,
                "name": ident.org_name,
                "directoryId": ident.directory_id,
                "directoryName": ident.directory_name,
                "siteId": ident.site_id,
                "siteName": ident.site_name,
                "tenantId": ident.tenant_id,
                "apiKeyId": ident.api_key_id,
            },
            "clockStart": iso_seconds(org.clock.start),
            "products": [{"key": p.key, "seatLimit": p.seat_limit} for p in org.products],
            "users": [_dump_user(u, keys) for u in org.users],
            "entraGroups": [
                {"id": g.id, "displayName": g.display_name, "members": sorted(g.members)}
                for g in org.entra_groups
            ],
            "groups": [_dump_group(g) for g in org.groups],
        }


def _dump_user(user: User, keys: list[str]) -> dict[str, Any]:
    return {
        "accountId": user.account_id,
        "entraObjectId": user.entra_object_id,
        "name": user.name,
        "email": user.email,
        "addedToOrg": iso_seconds(user.added_to_org),
        "accountStatus": user.account_status,
        "suspended": user.suspended,
        "accountEnabled": user.account_enabled,
        "platformRoles": list(user.platform_roles),
        "claimStatus": user.claim_status,
        "jobTitle": user.job_title,
        "department": user.department,
        "mfaEnabled": user.mfa_enabled,
        "dailyUseProbability": user.daily_use_probability,
        "lastActive": {
            key: iso_seconds(from_epoch(stamp))
            for key, stamp in zip(keys, user.last_active, strict=True)
            if stamp
        },
    }


def _dump_group(group: Group) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "grants": list(group.grants),
    }
    if group.synced_from is not None:
        document["syncedFrom"] = group.synced_from  # members follow the Entra group
    else:
        document["members"] = sorted(group.members)
    return document


def _identity(raw: Mapping[str, Any]) -> OrgIdentity:
    """Ids default to fixed UUIDs derived from their names, so a small file stays small."""

    def pick(field: str, default_label: str) -> str:
        value = raw.get(field)
        if value is None:
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"seatwarden-sandbox:{default_label}"))
        if not isinstance(value, str) or not value:
            raise OrgFileError(f"org.{field}: must be a non-empty string")
        return value

    return OrgIdentity(
        org_id=pick("id", "org"),
        org_name=str(raw.get("name", "Example Org")),
        directory_id=pick("directoryId", "directory"),
        directory_name=str(raw.get("directoryName", "Example directory")),
        site_id=pick("siteId", "site"),
        site_name=str(raw.get("siteName", "example-sandbox")),
        tenant_id=pick("tenantId", "tenant"),
        api_key_id=pick("apiKeyId", "api-key"),
    )


def _product(raw: Any, where: str) -> Product:
    if isinstance(raw, str):
        return Product(raw)
    item = _object(raw, where)
    limit = item.get("seatLimit")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise OrgFileError(f"{where}.seatLimit: must be a non-negative integer or null")
    return Product(_string(item, "key", where), limit)


def _user(raw: Any, where: str, keys: list[str], default_added: datetime) -> User:
    item = _object(raw, where)
    status = item.get("accountStatus", "active")
    if status not in ("active", "inactive", "closed"):
        raise OrgFileError(f"{where}.accountStatus: must be active, inactive or closed")
    last_active = [0] * len(keys)
    activity = item.get("lastActive") or {}
    if not isinstance(activity, Mapping):
        raise OrgFileError(f"{where}.lastActive: must be an object of product: instant")
    for key, text in activity.items():
        if key not in keys:
            raise OrgFileError(f"{where}.lastActive: unknown product {key!r}")
        last_active[keys.index(key)] = int(_instant(text, f"{where}.lastActive.{key}").timestamp())
    roles = item.get("platformRoles", [BASIC_ROLE])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise OrgFileError(f"{where}.platformRoles: must be a list of strings")
    probability = item.get("dailyUseProbability", 0.0)
    if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise OrgFileError(f"{where}.dailyUseProbability: must be between 0 and 1")
    return User(
        account_id=_string(item, "accountId", where),
        entra_object_id=_string(item, "entraObjectId", where),
        name=_string(item, "name", where),
        email=_string(item, "email", where),
        added_to_org=_optional_instant(item, "addedToOrg", where) or default_added,
        account_status=status,
        suspended=bool(item.get("suspended", False)),
        account_enabled=bool(item.get("accountEnabled", status == "active")),
        platform_roles=tuple(roles),
        claim_status=str(item.get("claimStatus", "managed")),
        job_title=item.get("jobTitle"),
        department=item.get("department"),
        mfa_enabled=bool(item.get("mfaEnabled", False)),
        daily_use_probability=float(probability),
        last_active=last_active,
    )


def _entra_group(raw: Any, where: str) -> EntraGroup:
    item = _object(raw, where)
    return EntraGroup(
        _string(item, "id", where),
        _string(item, "displayName", where),
        set(_string_list(item, "members", where)),
    )


def _group(raw: Any, where: str, keys: list[str], org_id: str) -> Group:
    item = _object(raw, where)
    name = _string(item, "name", where)
    group_id = item.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/groups/{name}"))
    if "grants" in item:
        grants = tuple(_string_list(item, "grants", where))
    else:  # the naming convention: {product}-users licenses the product
        grants = tuple(k for k in keys if name == f"{k}{ACCESS_SUFFIX}")
    synced = item.get("syncedFrom")
    if synced is not None and not isinstance(synced, str):
        raise OrgFileError(f"{where}.syncedFrom: must be an Entra group id")
    return Group(
        str(group_id),
        name,
        str(item.get("description", "")),
        set(_string_list(item, "members", where)),
        synced_from=synced,
        grants=grants,
    )


def _object(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise OrgFileError(f"{where}: must be an object")
    return raw


def _list(document: Mapping[str, Any], field: str, where: str) -> list[Any]:
    value = document.get(field)
    if not isinstance(value, list):
        raise OrgFileError(f"{where}: must be a list")
    return value


def _string(item: Mapping[str, Any], field: str, where: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise OrgFileError(f"{where}.{field}: required, a non-empty string")
    return value


def _string_list(item: Mapping[str, Any], field: str, where: str) -> list[str]:
    value = item.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OrgFileError(f"{where}.{field}: must be a list of strings")
    return value


def _instant(text: Any, where: str) -> datetime:
    if not isinstance(text, str):
        raise OrgFileError(f"{where}: must be an ISO 8601 instant")
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise OrgFileError(f"{where}: {exc}") from exc


def _optional_instant(item: Mapping[str, Any], field: str, where: str) -> datetime | None:
    """``where`` is the path of ``item`` in the document; empty for the top level."""
    value = item.get(field)
    return None if value is None else _instant(value, f"{where}.{field}" if where else field)
