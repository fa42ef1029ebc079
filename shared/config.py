"""Policies: what Seatwarden should do for each product, and the checks behind `config check`.

A policy file (YAML or JSON) lists one policy per product. It can also come from app settings:
`SEATWARDEN_POLICY` holds the document inline (JSON), `SEATWARDEN_POLICY_FILE` a path to it.
Loading never raises a traceback at a person: every problem is collected into a
`PolicyError`, each naming the field, the value given and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.untrusted import MAX_DEPTH, TooDeep, Unreadable, check_shape

#: Product keys as the Atlassian Admin API reports them in `productAccess[].key`
#: (https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/ and the
#: last-active-dates model, which spells Jira Service Management `jira-servicedesk` in some
#: places and `jira-service-desk` in others; both are accepted).
PRODUCT_KEYS = frozenset(
    {
        "confluence",
        "jira-software",
        "jira-servicedesk",
        "jira-service-desk",
        "jira-core",
        "jira-product-discovery",
        "bitbucket",
        "statuspage",
        "opsgenie",
        "compass",
        "loom",
        "trello",
        "atlas",
    }
)

#: Atlassian's guest terms: a guest is an external collaborator, not a paying user moved aside.
GUEST_TERMS_URL = (
    "https://support.atlassian.com/confluence-cloud/docs/invite-guests-for-external-collaboration/"
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")

Days = Annotated[int, Field(ge=1, le=3650)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _domains(values: list[str]) -> list[str]:
    cleaned = [v.strip().lower().lstrip("@") for v in values]
    bad = [v for v in cleaned if not _DOMAIN.match(v)]
    if bad:
        raise ValueError(f"not an email domain: {', '.join(bad)} (expected e.g. example.com)")
    return cleaned


class Entitlement(_Strict):
    """Who SHOULD have the product: an Entra group (read through Graph) or its Atlassian mirror."""

    entra_group_id: str | None = None
    atlassian_group: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Entitlement:
        if (self.entra_group_id is None) == (self.atlassian_group is None):
            raise ValueError("give exactly one of entra_group_id or atlassian_group")
        return self


class Targeting(_Strict):
    """Whom the policy manages. Empty means everyone; groups and domains add up."""

    groups: list[str] = []
    domains: list[str] = []
    external_only: bool = False

    _check_domains = field_validator("domains")(_domains)


class Exclusions(_Strict):
    """People who never lose a license to a rule: service accounts, executives, admins."""

    accounts: list[str] = []
    groups: list[str] = []
    domains: list[str] = []

    _check_domains = field_validator("domains")(_domains)


class BlastRadius(_Strict):
    """A run revoking more than this is held for approval, its plan saved, nothing applied."""

    max_revocations: int = Field(default=50, ge=0)
    max_revocation_percent: float = Field(default=10.0, ge=0, le=100)


class Policy(_Strict):
    """One product's rules. See DESIGN.md, "Rules, per product"."""

    name: str
    product: str
    entitlement: Entitlement
    access_group: str
    marker_group: str
    inactive_after_days: Days = 90
    grace_days: int = Field(default=14, ge=0, le=3650)
    warn_before_days: int = Field(default=0, ge=0, le=3650)
    targeting: Targeting = Targeting()
    internal_domains: list[str] = []
    external_inactive_after_days: Days | None = None
    exclusions: Exclusions = Exclusions()
    seat_cap: int | None = Field(default=None, ge=0)
    seat_price: float | None = Field(default=None, ge=0, description="monthly price of a seat")
    blast_radius: BlastRadius = BlastRadius()
    mode: Literal["report", "enforce"] = "report"
    on_inactive: Literal["remove_access", "suspend"] = "remove_access"
    synced_access_group: Literal["entra_write", "csv"] = "csv"
    access_entra_group_id: str | None = None

    _check_domains = field_validator("internal_domains")(_domains)

    @field_validator("name")
    @classmethod
    def _name_is_a_key(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lowercase letters, digits and dashes (it keys the state tables)")
        return value

    @field_validator("product")
    @classmethod
    def _known_product(cls, value: str) -> str:
        if value not in PRODUCT_KEYS:
            raise ValueError(f"unknown product; allowed: {', '.join(sorted(PRODUCT_KEYS))}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Policy:
        if self.access_group.casefold() == self.marker_group.casefold():
            raise ValueError("access_group and marker_group must be different groups")
        mirror = self.entitlement.atlassian_group
        if mirror and mirror.casefold() in {
            self.access_group.casefold(),
            self.marker_group.casefold(),
        }:
            raise ValueError("the entitlement group must differ from the access and marker groups")
        if self.warn_before_days >= self.inactive_after_days:
            raise ValueError("warn_before_days must be less than inactive_after_days")
        if self.targeting.external_only and not self.internal_domains:
            raise ValueError("targeting.external_only needs internal_domains to tell who is external")
        if self.external_inactive_after_days is not None and not self.internal_domains:
            raise ValueError("external_inactive_after_days needs internal_domains")
        return self

    def threshold_for(self, domain: str) -> int:
        """Idle days after which a person at `domain` loses the license."""
        if self.external_inactive_after_days is not None and domain not in self.internal_domains:
            return self.external_inactive_after_days
        return self.inactive_after_days


class PolicyFile(_Strict):
    version: Literal[1] = 1
    policies: list[Policy] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PolicyFile:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique; repeated: {_repeated(names)}")
        products = [p.product for p in self.policies]
        if len(set(products)) != len(products):
            raise ValueError(
                f"one policy per product (one writer per product); repeated: {_repeated(products)}"
            )
        return self

    def policy(self, name: str) -> Policy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(f"no policy named {name!r}; known: {', '.join(p.name for p in self.policies)}")


def _repeated(values: list[str]) -> str:
    return ", ".join(sorted({v for v in values if values.count(v) > 1}))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: where, what was given, what is allowed."""

    field: str
    given: Any
    allowed: str
    severity: Literal["error", "warning"] = "error"

    @property
    def missing(self) -> bool:
        return self.given is _MISSING

    @property
    def field_text(self) -> str:
        """The field for a terminal: a key from the file may hold control characters."""
        return printable(self.field)

    @property
    def given_text(self) -> str:
        return "(missing)" if self.missing else printable(json.dumps(self.given, default=str))

    def __str__(self) -> str:
        return f"{self.severity}: {self.field_text}: given {self.given_text}: {printable(self.allowed)}"


def printable(text: str) -> str:
    """`text` with each character a terminal would act on (a backspace, an escape) written as
    its escape sequence, so a hostile key cannot rewrite what an administrator reads."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


_MISSING: Any = object()


class PolicyError(ValueError):
    """The policy cannot be used. `problems` lists every error found, not just the first."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{printable(source)}: {len(problems)} problem(s) in the policy\n{lines}")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def _problems_from(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        given = item.get("input", _MISSING) if item["type"] != "missing" else _MISSING
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        problems.append(Problem(_field_path(tuple(item["loc"])), given, message))
    return problems


def parse_policy(document: Any, source: str = "policy") -> PolicyFile:
    """Validate a decoded document; raise `PolicyError` listing every problem."""
    if not isinstance(document, Mapping):
        raise PolicyError(source, [Problem("(document)", document, "expected a mapping with 'policies'")])
    try:
        return PolicyFile.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(source, _problems_from(exc)) from None


def decode_policy_text(text: str, source: str) -> Any:
    """YAML is a superset of JSON, so one parser reads both; a syntax error names the line.

    A document nested or aliased past what any policy needs is refused before validation
    walks it (shared.untrusted): PyYAML recurses on nesting, and an alias bomb of ten lines
    took validation minutes. PyYAML converts integers with int(), which raises ValueError past
    4,300 digits; that is a refused document too.
    """
    try:
        return check_shape(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        problem = " ".join(str(problem).split())  # a reader error spans lines
        raise PolicyError(source, [Problem(f"(syntax at {where})", _MISSING, problem)]) from None
    except RecursionError:
        raise PolicyError(source, [Problem("(document)", _MISSING, str(TooDeep(MAX_DEPTH)))]) from None
    except Unreadable as exc:
        raise PolicyError(source, [Problem("(document)", _MISSING, str(exc))]) from None
    except ValueError as exc:  # an integer past Python's 4,300-digit limit on int(str)
        raise PolicyError(source, [Problem("(document)", _MISSING, str(exc))]) from None


def load_policy_file(path: str | Path) -> PolicyFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the path
        raise PolicyError(str(path), [Problem("(file)", str(path), f"cannot be read: {exc}")]) from None
    return parse_policy(decode_policy_text(text, str(path)), str(path))


def load_policy_from_settings(env: Mapping[str, str] | None = None) -> PolicyFile:
    """The policy from app settings: `SEATWARDEN_POLICY` (inline) or `SEATWARDEN_POLICY_FILE`."""
    env = os.environ if env is None else env
    inline = env.get("SEATWARDEN_POLICY")
    if inline:
        return parse_policy(decode_policy_text(inline, "SEATWARDEN_POLICY"), "SEATWARDEN_POLICY")
    path = env.get("SEATWARDEN_POLICY_FILE")
    if path:
        return load_policy_file(path)
    raise PolicyError(
        "app settings",
        [Problem("SEATWARDEN_POLICY / SEATWARDEN_POLICY_FILE", _MISSING, "set one of them")],
    )


def policy_warnings(policies: PolicyFile) -> list[Problem]:
    """Things that are allowed but probably not meant. They do not stop a run."""
    warnings: list[Problem] = []
    for i, policy in enumerate(policies.policies):
        at = f"policies[{i}]"
        if "guest" in policy.marker_group.casefold():
            warnings.append(
                Problem(
                    f"{at}.marker_group",
                    policy.marker_group,
                    "looks like a product guest group: turning a paid user into a guest is "
                    f"against Atlassian's guest terms ({GUEST_TERMS_URL}); use a local marker group",
                    "warning",
                )
            )
        ext = policy.external_inactive_after_days
        if ext is not None and ext > policy.inactive_after_days:
            warnings.append(
                Problem(
                    f"{at}.external_inactive_after_days",
                    ext,
                    f"is longer than inactive_after_days ({policy.inactive_after_days}); "
                    "external people usually get the shorter threshold",
                    "warning",
                )
            )
        if policy.mode == "enforce" and policy.blast_radius.max_revocations == 0:
            warnings.append(
                Problem(
                    f"{at}.blast_radius.max_revocations",
                    0,
                    "every run that revokes anything will be held for approval",
                    "warning",
                )
            )
    return warnings
