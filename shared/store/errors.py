"""What can go wrong in Table and Queue Storage, by meaning, mapped from azure-core once.

The repositories never let an azure-core exception out: `mapped()` wraps every call and turns
what the SDK raised into one of these, ``raise ... from exc``, so the original stays on
``__cause__`` for the logs. Callers catch by meaning:

    SeatwardenError
    └── StorageError                 Table or Queue Storage refused or failed a call (status, code)
        ├── StorageUnavailable       no answer at all: connection refused, timeout, reset
        ├── StaleWrite               an ETag-guarded write kept losing to other writers
        ├── LeaseHeld                somebody else holds the lease (name, holder, until)
        ├── EntityTooLarge           a value over Table Storage's size limits (64 KiB a property)
        └── RunNotFound              no run with that id

Everything here is raised for a queue trigger to retry or an operator to read: messages pass
through ``redact_text`` because a SAS connection string puts its signature in every URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import SeatwardenError, redact_text, redact_url

_URL = re.compile(r"https?://[^\s'\"<>]+")


def _redacted(text: str) -> str:
    """``text`` with every URL's secrets (a SAS ``sig``) and any credential-looking value removed."""
    return redact_text(_URL.sub(lambda m: redact_url(m.group(0)), text))


__all__ = [
    "EntityTooLarge",
    "LeaseHeld",
    "RunNotFound",
    "StaleWrite",
    "StorageError",
    "StorageUnavailable",
    "error_code",
    "mapped",
    "storage_error",
]


class StorageError(SeatwardenError):
    """A Table or Queue Storage call failed. ``status`` and ``code`` are the service's, if any."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        facts = ", ".join(p for p in (f"HTTP {status}" if status else "", code or "") if p)
        super().__init__(_redacted(f"{message} ({facts})" if facts else message))


class StorageUnavailable(StorageError):
    """No usable answer from the storage account: worth retrying later, never a verdict."""


class StaleWrite(StorageError):
    """An ETag-guarded write lost to other writers on every try: nothing was overwritten."""


class LeaseHeld(StorageError):
    """The lease is held by somebody else until ``until``; the caller must not go ahead."""

    def __init__(self, name: str, holder: str | None = None, until: datetime | None = None) -> None:
        self.name = name
        self.holder = holder
        self.until = until
        who = f" by {holder}" if holder else ""
        when = f" until {until.isoformat()}" if until else ""
        super().__init__(f"lease {name!r} is held{who}{when}")


class EntityTooLarge(StorageError):
    """A value would break Table Storage's limits: 64 KiB a property, 1 MiB an entity.

    https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model
    """


class RunNotFound(StorageError):
    """No run has this id."""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def error_code(exc: BaseException) -> str | None:
    """The service's error code (``EntityAlreadyExists``) as sent on the wire, if any.

    The tables SDK gives a str-enum (``TableErrorCode``), the queue SDK a plain str.
    """
    raw = getattr(exc, "error_code", None)
    return str(getattr(raw, "value", raw)) if raw else None


def storage_error(exc: AzureError, what: str) -> StorageError:
    """The most specific ``StorageError`` for what azure-core raised while doing ``what``."""
    detail = f"{what}: {_first_line(exc)}"
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return StorageUnavailable(f"storage did not answer while trying to {detail}")
    if not isinstance(exc, HttpResponseError):
        return StorageError(f"storage call failed while trying to {detail}")
    status = exc.status_code
    code = error_code(exc)
    if isinstance(exc, ResourceModifiedError) or status == 412:
        return StaleWrite(f"someone else changed it first while trying to {detail}", status=status, code=code)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return StorageError(
            f"storage refused the credentials while trying to {detail}", status=status, code=code
        )
    if status == 413 or code in ("EntityTooLarge", "PropertyValueTooLarge", "RequestBodyTooLarge"):
        return EntityTooLarge(f"too large to store while trying to {detail}", status=status, code=code)
    if isinstance(exc, ResourceNotFoundError) and code in ("TableNotFound", "QueueNotFound"):
        return StorageError(
            f"the table or queue does not exist (call Storage.ensure() first) while trying to {detail}",
            status=status,
            code=code,
        )
    if status is not None and status >= 500:
        return StorageUnavailable(f"storage failed while trying to {detail}", status=status, code=code)
    return StorageError(f"storage refused to {detail}", status=status, code=code)


@contextmanager
def mapped(what: str) -> Iterator[None]:
    """Run a block of SDK calls; whatever azure-core raises leaves as a ``StorageError``.

    Expected outcomes (an entity that already exists, a lost ETag race) are caught inside the
    block by the caller, where they mean something; only the unexpected reach this edge.
    """
    try:
        yield
    except StorageError:
        raise
    except AzureError as exc:
        raise storage_error(exc, what) from exc
