"""Wiring in one place: settings in, storage, clients and services out.

The functions and the CLI both start here, so they are two doors into the same services.
Nothing is built at import time; each piece is built on first use and names the missing
setting when it cannot be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.config import PolicyFile, load_policy_from_settings
from shared.http import RequestLog
from shared.settings import Settings

#: One Storage per (connection, prefix) per process; the SDK clients keep their connections.
_STORAGE: dict[tuple[str, str], Any] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    """Everything a function invocation or a CLI command needs, built lazily from settings."""

    settings: Settings
    clock: Callable[[], datetime] = utc_now
    request_log: RequestLog = field(default_factory=RequestLog)
    _storage: Any = None
    _policies: PolicyFile | None = None

    @classmethod
    def from_env(cls) -> App:
        return cls(Settings.from_env())

    @property
    def verify(self) -> bool | str:
        return self.settings.ca_bundle or True

    @property
    def storage(self) -> Any:
        if self._storage is None:
            from shared.store import Storage

            conn = self.settings.require("storage_connection", "state, runs and the audit trail live there")
            key = (conn, self.settings.table_prefix)
            if key not in _STORAGE:
                # Build and ensure once per process: a webhook must not pay for sixteen
                # create-if-missing calls on every delivery.
                storage = Storage.from_connection_string(conn, prefix=self.settings.table_prefix)
                storage.ensure()
                _STORAGE[key] = storage
            self._storage = _STORAGE[key]
        return self._storage

    @property
    def policies(self) -> PolicyFile:
        if self._policies is None:
            self._policies = load_policy_from_settings()
        return self._policies

    def atlassian(self) -> Any:
        """A new Atlassian client (close it: `async with app.atlassian() as client`)."""
        from shared.atlassian import AtlassianClient

        s = self.settings
        return AtlassianClient(
            s.atlassian_api_base,
            s.require("atlassian_org_id", "every Atlassian call names the org"),
            s.require("atlassian_api_key", "the Admin API takes an organization API key"),
            log=self.request_log,
            verify=self.verify,
        )

    def graph(self) -> Any | None:
        """A new Graph client, or None where Graph is not configured (entitlement from mirrors)."""
        s = self.settings
        if not s.graph_configured:
            return None
        from shared.graph import GraphClient, GraphCredentials, token_provider

        pem = Path(s.entra_client_cert_path).read_text() if s.entra_client_cert_path else None
        creds = GraphCredentials(
            tenant_id=s.require("entra_tenant_id", "Graph tokens are issued per tenant"),
            client_id=s.require("entra_client_id", "the app registration Seatwarden signs in as"),
            client_secret=s.entra_client_secret if not pem else None,
            certificate_pem=pem,
            certificate_thumbprint=s.entra_client_cert_thumbprint if pem else None,
        )
        tokens = token_provider(s.entra_authority_host, creds, self.verify)
        return GraphClient(
            s.graph_api_base, tokens, log=self.request_log, verify=self.verify, pacer=self._graph_pacer()
        )

    def _graph_pacer(self) -> Any | None:
        """The default pacing, with the sender mailbox's rate where SEATWARDEN_MAIL_PER_MINUTE sets it."""
        rate = self.settings.mail_rate_per_minute
        if rate is None:
            return None
        from shared.graph import MAIL
        from shared.http import DEFAULT_RATES_PER_MINUTE, Pacer

        return Pacer({**DEFAULT_RATES_PER_MINUTE, MAIL: rate})

    @asynccontextmanager
    async def clients(self) -> AsyncIterator[tuple[Any, Any | None]]:
        """The Atlassian client and the Graph client (or None) for one piece of work, closed after."""
        atlassian = self.atlassian()
        graph = self.graph()
        try:
            yield atlassian, graph
        finally:
            await atlassian.aclose()
            if graph is not None:
                await graph.aclose()
