"""Timestamp helpers: the vendors' wire formats for instants, in one place.

Atlassian writes ISO 8601 with milliseconds and a ``Z`` (``2024-05-01T09:30:00.123Z``),
its last-active endpoint also plain dates, its event filters take epoch milliseconds;
Microsoft Graph writes ISO 8601 with a ``Z`` as well. Keeping the formatting here means
every endpoint renders the same instant the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["UTC", "epoch_ms", "from_epoch", "iso_date", "iso_ms", "iso_seconds", "parse_iso"]


def iso_ms(moment: datetime) -> str:
    """``2024-05-01T09:30:00.123Z``: Atlassian's and Graph's usual rendering."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(moment: datetime) -> str:
    """``2024-05-01T09:30:00Z``: the last-active endpoint's ``*_timestamp`` fields."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(moment: datetime) -> str:
    """``2024-05-01``: the last-active endpoint's date-only fields."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 instant; a missing offset is taken as UTC.

    Raises ``ValueError`` for text that is not an ISO 8601 date-time.
    Graph clients send up to seven fractional digits (.NET style), which
    ``datetime.fromisoformat`` rejects, so the fraction is cut to microseconds first.
    """
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    if "." in cleaned:
        head, _, rest = cleaned.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        offset = rest[len(digits) :]
        cleaned = f"{head}.{digits[:6].ljust(6, '0')}{offset}"
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as the org events API filters take them."""
    return int(moment.timestamp() * 1000)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
