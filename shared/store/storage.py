"""`Storage`: the one object that knows Seatwarden's tables and queues and hands out repositories."""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableServiceClient

from shared.store._base import Clock, sdk_client_options, table_name, utc_now
from shared.store.audit import AuditLog
from shared.store.errors import mapped
from shared.store.leases import LeaseRepo
from shared.store.queues import Queues
from shared.store.records import CursorRepo, DeliveryRepo, IdentityRepo, SubscriptionRepo
from shared.store.results import ResultRepo, RunRecords
from shared.store.runs import RunRepo
from shared.store.users import UserStateRepo

#: Every table Seatwarden keeps, before the prefix.
TABLES = ("users", "runs", "results", "audit", "deliveries", "leases", "cursors", "subscriptions")


class Storage:
    """Tables and queues of one storage account, under one prefix.

    The prefix lets tests, the demo and several installations share an account without
    seeing each other's rows. Build it once per process and reuse it: the SDK clients keep
    their connections.
    """

    def __init__(self, service: TableServiceClient, queues: Queues, prefix: str = "", clock: Clock = utc_now):
        self.prefix = prefix
        self.queues = queues
        self.table_names = {base: table_name(prefix, base) for base in TABLES}
        self._service = service
        tables = {base: service.get_table_client(name) for base, name in self.table_names.items()}
        self.users = UserStateRepo(tables["users"])
        self.runs = RunRepo(tables["runs"], clock)
        self.results = ResultRepo(tables["results"])
        self.calls = RunRecords(tables["results"], "calls")
        self.dues = RunRecords(tables["results"], "due")
        self.audit = AuditLog(tables["audit"], clock)
        self.deliveries = DeliveryRepo(tables["deliveries"], clock)
        self.leases = LeaseRepo(tables["leases"], clock)
        self.cursors = CursorRepo(tables["cursors"], clock)
        self.identities = IdentityRepo(tables["cursors"])
        self.subscriptions = SubscriptionRepo(tables["subscriptions"])

    @classmethod
    def from_connection_string(
        cls, conn: str, prefix: str = "", *, clock: Clock = utc_now, **client_options: Any
    ) -> Storage:
        """Storage for a connection string (Azurite's, or an account key / SAS one).

        ``client_options`` go to the azure SDK clients as they are (``retry_total``,
        ``connection_timeout``, ``raw_request_hook`` …).
        """
        with mapped("open the storage account"):
            service = TableServiceClient.from_connection_string(conn, **sdk_client_options(client_options))
            queues = Queues(conn, prefix, **client_options)
        return cls(service, queues, prefix, clock)

    def ensure(self) -> None:
        """Create every table and queue that is missing; safe to call on every start."""
        for base, name in self.table_names.items():
            with mapped(f"create table {name} ({base})"):
                self._service.create_table_if_not_exists(name)
        self.queues.ensure()
