"""What can go wrong when Seatwarden talks to Atlassian or Microsoft, sorted by meaning.

Callers catch these by what went wrong, not by which library noticed it: a planner
stops on ``IncompleteRead``; an executor puts a ``RateLimited`` action back on the queue
and parks a ``SeatLimitReached`` GRANT until a seat frees up; an operator reading a
``ScopeMissing`` learns which setting to change. httpx, msal and requests exceptions
never leave the clients: ``shared.http`` maps them here, once, ``raise ... from exc``.

The hierarchy::

    SeatwardenError
    ├── RemoteError                      a call to a vendor failed (method, redacted URL, status, code)
    │   ├── AtlassianError               Atlassian Organizations API
    │   │   ├── RateLimited              429 that outlasted the retries, or asked for too long a wait
    │   │   ├── SeatLimitReached         ADMIN-409-3 / ADMIN-UAM-409-3 / ADMIN-400-32 / LicenceExceeded
    │   │   ├── AuthenticationFailed     401: ATLASSIAN_API_KEY is not a valid organization API key
    │   │   ├── ScopeMissing             403: the key lacks the scope (or admin right) for this call
    │   │   ├── NotCentralizedUserManagement   the org refuses the all-directories ("-") selector
    │   │   ├── NotFound                 404: org, group or user does not exist
    │   │   └── GroupIsSynced            membership change refused: the group is synced from an IdP
    │   ├── GraphError                   Microsoft Graph and the Entra token endpoint
    │   │   ├── GraphThrottled           429 that outlasted the retries
    │   │   ├── GraphAuthError           token refused, or a Graph permission missing
    │   │   ├── GraphNotFound            404 Request_ResourceNotFound
    │   │   └── DeltaResyncRequired      410 / syncStateNotFound / resyncRequired: start delta over
    │   └── TransportFailed              no usable HTTP answer: timeouts, connection, TLS, protocol
    └── IncompleteRead                   a paged read did not complete; the plan must stop

``IncompleteRead`` is deliberately not a ``RemoteError``: it is a verdict about a whole
read (a page that still failed after retries, a body that did not parse, a cursor that
looped, a total that does not add up), and its cause, if any, is chained as
``__cause__``. Configuration errors (``AuthenticationFailed``, ``ScopeMissing``,
``NotCentralizedUserManagement``, ``GraphAuthError``) and ``DeltaResyncRequired`` pass
through a paged read unwrapped, because the operator's fix (or the caller's recovery)
is specific to them; every one of them stops a plan just the same.

Every message is built to be shown to an operator and written to logs: URLs pass through
``redact_url`` and vendor text through ``redact_text`` on the way in, so a secret that a
vendor echoes back (or that was planted in a query string) does not reach a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "ATLASSIAN_API_BASE_SETTING",
    "ATLASSIAN_API_KEY_SETTING",
    "ATLASSIAN_DIRECTORY_ID_SETTING",
    "ATLASSIAN_ORG_ID_SETTING",
    "CA_BUNDLE_SETTING",
    "ENTRA_AUTHORITY_HOST_SETTING",
    "ENTRA_CERTIFICATE_SETTING",
    "ENTRA_CERTIFICATE_THUMBPRINT_SETTING",
    "ENTRA_CLIENT_ID_SETTING",
    "ENTRA_CLIENT_SECRET_SETTING",
    "ENTRA_TENANT_ID_SETTING",
    "GRAPH_API_BASE_SETTING",
    "AtlassianError",
    "AuthenticationFailed",
    "DeltaResyncRequired",
    "GraphAuthError",
    "GraphError",
    "GraphNotFound",
    "GraphThrottled",
    "GroupIsSynced",
    "IncompleteRead",
    "NotCentralizedUserManagement",
    "NotFound",
    "RateLimited",
    "RemoteError",
    "ScopeMissing",
    "SeatLimitReached",
    "SeatwardenError",
    "TransportFailed",
    "redact_text",
    "redact_url",
]

# The settings an operator may have to fix (shared/settings.py reads them), named once so
# every message says the same.
ATLASSIAN_API_KEY_SETTING = "ATLASSIAN_API_KEY"
ATLASSIAN_ORG_ID_SETTING = "ATLASSIAN_ORG_ID"
ATLASSIAN_API_BASE_SETTING = "ATLASSIAN_API_BASE"
ATLASSIAN_DIRECTORY_ID_SETTING = "ATLASSIAN_DIRECTORY_ID"
ENTRA_TENANT_ID_SETTING = "ENTRA_TENANT_ID"
ENTRA_CLIENT_ID_SETTING = "ENTRA_CLIENT_ID"
ENTRA_CLIENT_SECRET_SETTING = "ENTRA_CLIENT_SECRET"  # noqa: S105 - a setting name, not a secret
ENTRA_CERTIFICATE_SETTING = "ENTRA_CLIENT_CERT_PATH"
ENTRA_CERTIFICATE_THUMBPRINT_SETTING = "ENTRA_CLIENT_CERT_THUMBPRINT"
ENTRA_AUTHORITY_HOST_SETTING = "ENTRA_AUTHORITY_HOST"
GRAPH_API_BASE_SETTING = "GRAPH_API_BASE"
CA_BUNDLE_SETTING = "SEATWARDEN_CA_BUNDLE"


# --- redaction -------------------------------------------------------------------------

REDACTED = "REDACTED"

# Query keys whose values never belong in a log. Matching on fragments is deliberately
# broad: Graph's `$skiptoken`/`$deltatoken` are redacted too. They are not credentials,
# but a log does not need them, and a pattern that tries to spare them is one more
# thing to get wrong.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|pwd|token|key|sig|signature|auth|assertion|credential|code|session)",
    re.IGNORECASE,
)
# Bearer/Basic credentials and anything shaped like a JWT, wherever they appear in text.
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# key=value / "key": "value" pairs inside free text (a vendor echoing a form body, say).
_INLINE_PAIR = re.compile(
    r"""(?ix)
    (["']?)
    ([\w$.-]*(?:secret|password|token|api[_-]?key|apikey|assertion|signature)[\w$.-]*)
    \1
    (\s*[:=]\s*)
    (["']?)
    ([^\s"'&,;}]+)
    """
)
# Words one of which every _INLINE_PAIR match contains ("key" covers api_key and apikey).
_INLINE_WORDS = ("secret", "password", "token", "key", "assertion", "signature")
# A known secret shorter than this is not substituted: replacing every "a" in a message
# because a test used "a" as a secret would make messages unreadable, and real keys,
# secrets and tokens are long.
_MIN_KNOWN_SECRET = 6


def redact_url(url: object) -> str:
    """Return ``url`` fit for a log: no userinfo, and secret-looking query values replaced.

    Accepts a ``str`` or anything whose ``str()`` is a URL (``httpx.URL``). A string that
    does not parse as a URL is passed through ``redact_text`` instead.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return redact_text(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if _SECRET_KEY.search(k) else v) for k, v in pairs],
            safe="$,'()*:@/",
        )
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with credentials removed: the ``secrets`` given, bearer/basic values,
    JWTs, and ``secret=...``-style pairs."""
    out = text
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_KNOWN_SECRET}, key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    # Each pattern runs only where its fixed words occur. The request log redacts every
    # call's URL, and _INLINE_PAIR backtracks over each word of a long path: run on every
    # lookup it cost about a millisecond a call, for URLs that hold no credential at all.
    lowered = out.lower()
    if "bearer" in lowered or "basic" in lowered:
        out = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    if "eyJ" in out:
        out = _JWT.sub(REDACTED, out)
    if any(word in lowered for word in _INLINE_WORDS):
        out = _INLINE_PAIR.sub(
            lambda m: f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{m.group(4)}{REDACTED}", out
        )
    return out


# --- the tree ----------------------------------------------------------------------------


class SeatwardenError(Exception):
    """Base of every error Seatwarden raises on purpose."""


class RemoteError(SeatwardenError):
    """A call to a vendor failed.

    ``url`` is redacted on the way in, so nobody can forget to; ``status`` is ``None``
    when no HTTP answer arrived (``TransportFailed``, token acquisition); ``code`` is the
    vendor's error code (``ADMIN-404-8``, ``Request_ResourceNotFound``, ``invalid_client``).
    ``retry_after`` is the wait the vendor asked for, when it asked for one, so a queue
    can reschedule instead of retrying hot.
    """

    vendor = "remote"

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: object = "",
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.method = method
        self.url = redact_text(redact_url(url), secrets) if url else ""
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.detail = redact_text(message, secrets)
        where = " ".join(p for p in (method, self.url) if p)
        facts = ", ".join(p for p in (f"HTTP {status}" if status is not None else "", code or "") if p)
        suffix = " ".join(p for p in (f"[{where}]" if where else "", f"({facts})" if facts else "") if p)
        super().__init__(f"{self.detail} {suffix}".rstrip())


class AtlassianError(RemoteError):
    """The Atlassian Organizations API answered with an error."""

    vendor = "atlassian"


class RateLimited(AtlassianError):
    """Atlassian kept answering 429, or asked for a longer wait than a run should sleep."""


class SeatLimitReached(AtlassianError):
    """A group add was refused because the product has no free seat.

    Not retried: a GRANT waits for a seat and says so (DESIGN.md, "Activity data").
    """


class AuthenticationFailed(AtlassianError):
    """401: the API key is missing, expired, revoked, or is a user API token."""


class ScopeMissing(AtlassianError):
    """403: the API key is valid but may not make this call (scope or admin right).

    ``needed`` names what the call takes (a scope, or "a key without scopes"), where known.
    """

    def __init__(self, message: str, *, needed: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.needed = needed


class NotCentralizedUserManagement(AtlassianError):
    """The org refused an all-directories (``-``) request.

    Organizations on Atlassian's original user-management experience have a directory
    per site and may have to name one (``ATLASSIAN_DIRECTORY_ID``); on the centralized
    experience there is one directory and ``-`` always works. Atlassian no longer
    migrates original-experience orgs to the centralized one, so naming the directory is
    the fix, not a migration.
    """


class NotFound(AtlassianError):
    """404: the org, group or user named in the call does not exist."""


class GroupIsSynced(AtlassianError):
    """Membership change refused: the group is synced from an identity provider.

    The change belongs in Entra (Graph, or the bulk-remove CSV), not in Atlassian.
    """


class GraphError(RemoteError):
    """Microsoft Graph, or the Entra token endpoint, answered with an error."""

    vendor = "graph"


class GraphThrottled(GraphError):
    """Graph kept answering 429, or asked for a longer wait than a run should sleep."""


class GraphAuthError(GraphError):
    """No usable token, or the app registration lacks a Graph application permission.

    ``needed`` names the application permission a refused call (403) takes, where known.
    """

    def __init__(self, message: str, *, needed: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.needed = needed


class GraphNotFound(GraphError):
    """404 ``Request_ResourceNotFound``."""


class DeltaResyncRequired(GraphError):
    """The stored delta link is no longer valid: drop it and start a full delta round.

    ``location`` is the ``Location`` header of a 410, when Graph sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: object = "",
        status: int | None = None,
        code: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, status=status, code=code)
        self.location = redact_url(location) if location else None


class TransportFailed(RemoteError):
    """No usable HTTP answer after the retries: timeout, connection, TLS or protocol error.

    ``vendor`` says which side: ``"atlassian"``, ``"graph"`` or ``"entra"``.
    ``retryable`` is False where repeating cannot help (an untrusted TLS certificate).
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "remote",
        method: str = "",
        url: object = "",
        secrets: Iterable[str] = (),
        retryable: bool = True,
    ) -> None:
        super().__init__(message, method=method, url=url, secrets=secrets)
        self.vendor = vendor
        self.retryable = retryable


class IncompleteRead(SeatwardenError):
    """A paged read did not complete. The planner must stop: "not seen" is not "not a member".

    ``what`` names the read (``"Atlassian users search"``); ``pages_read`` says how far it
    got. The failure that ended it, if any, is ``__cause__``.
    """

    def __init__(self, what: str, reason: str, *, pages_read: int = 0) -> None:
        self.what = what
        self.reason = redact_text(reason)
        self.pages_read = pages_read
        super().__init__(f"{what} did not complete after {pages_read} page(s): {self.reason}")

    @classmethod
    def count_mismatch(cls, what: str, *, expected: int, seen: int, pages_read: int = 0) -> IncompleteRead:
        """The error for a read whose items do not add up to the total the vendor reported."""
        return cls(
            what,
            f"the vendor reported {expected} item(s) but the read returned {seen}",
            pages_read=pages_read,
        )
