"""Access tokens the sandbox's Entra issues and its Graph accepts.

Opaque random strings with a real-time expiry (clients cache them against the wall
clock, not the sandbox clock). Graph answers a missing, unknown or expired token with
its ``InvalidAuthenticationToken`` error, which clients must handle by getting a new one.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum

TOKEN_LIFETIME_S = 3599  # what Entra reports in expires_in (WIRE.md §11)


class TokenState(Enum):
    VALID = "valid"
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True)
class IssuedToken:
    value: str
    client_id: str
    expires_at: float  # time.time()


class TokenStore:
    def __init__(self, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self.lifetime_s = lifetime_s
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str) -> IssuedToken:
        now = time.time()
        token = IssuedToken(secrets.token_urlsafe(48), client_id, now + self.lifetime_s)
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now}
            self._tokens[token.value] = token
        return token

    def check(self, value: str | None) -> TokenState:
        if not value:
            return TokenState.MISSING
        with self._lock:
            token = self._tokens.get(value)
        if token is None:
            return TokenState.UNKNOWN
        return TokenState.VALID if token.expires_at > time.time() else TokenState.EXPIRED

    def expire_all(self) -> None:
        """Make every issued token expired: lets a test prove a client re-authenticates."""
        with self._lock:
            self._tokens = {k: IssuedToken(v.value, v.client_id, 0.0) for k, v in self._tokens.items()}
