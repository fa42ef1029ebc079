"""Opaque page cursors and tokens.

Clients must treat cursors as opaque; the sandbox encodes its position as base64url JSON
with a kind tag so a cursor from one endpoint is refused by another (as a real service
would refuse a forged one). Keeping page positions in the cursor, not in server memory,
lets any number of clients page concurrently at no cost.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class InvalidCursor(ValueError):
    pass


def encode_cursor(kind: str, **payload: Any) -> str:
    raw = json.dumps({"k": kind, **payload}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor(f"not a {kind} cursor") from exc
    if not isinstance(decoded, dict) or decoded.pop("k", None) != kind:
        raise InvalidCursor(f"not a {kind} cursor")
    return decoded
