"""Seatwarden's state and audit trail in Azure Table Storage, and its work queues.

DESIGN.md, "State in Table Storage". Start from `Storage`; it hands out one repository per
table. Every write that can race is guarded by an ETag or a create-if-absent; every azure-core
error leaves as a `StorageError` (see `shared.store.errors`).

    storage = Storage.from_connection_string(conn, prefix="")
    storage.ensure()
    storage.users      UserStateRepo   users: product / account id
    storage.runs       RunRepo         runs: policy / inverted start time
    storage.results    ResultRepo      results: run id / account id
    storage.calls      RunRecords      results: run id~calls (outbound calls, for diagnose)
    storage.dues       RunRecords      results: run id~due (who is due to lose a license soon)
    storage.audit      AuditLog        audit: month / inverted time + seq, hash-chained
    storage.deliveries DeliveryRepo    deliveries: source / delivery id
    storage.leases     LeaseRepo       leases
    storage.cursors    CursorRepo      cursors
    storage.identities IdentityRepo    cursors: Entra object id -> account id
    storage.subscriptions SubscriptionRepo subscriptions
    storage.queues     Queues          actions, lookups, returns, graph, warnings (+ -poison)
"""

from shared.store.audit import GENESIS_HASH, AuditEntry, AuditLog, VerifyReport
from shared.store.errors import (
    EntityTooLarge,
    LeaseHeld,
    RunNotFound,
    StaleWrite,
    StorageError,
    StorageUnavailable,
    storage_error,
)
from shared.store.leases import Lease, LeaseRepo
from shared.store.queues import POISON_SUFFIX, QUEUE_KINDS, Queues, queue_name
from shared.store.records import CursorRepo, DeliveryRepo, IdentityRepo, Subscription, SubscriptionRepo
from shared.store.results import ResultRepo
from shared.store.runs import OUTCOMES, RUN_STATUSES, Run, RunRepo
from shared.store.storage import TABLES, Storage
from shared.store.users import UserState, UserStateRepo

__all__ = [
    "GENESIS_HASH",
    "OUTCOMES",
    "POISON_SUFFIX",
    "QUEUE_KINDS",
    "RUN_STATUSES",
    "TABLES",
    "AuditEntry",
    "AuditLog",
    "CursorRepo",
    "DeliveryRepo",
    "EntityTooLarge",
    "IdentityRepo",
    "Lease",
    "LeaseHeld",
    "LeaseRepo",
    "Queues",
    "ResultRepo",
    "Run",
    "RunNotFound",
    "RunRepo",
    "StaleWrite",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "Subscription",
    "SubscriptionRepo",
    "UserState",
    "UserStateRepo",
    "VerifyReport",
    "queue_name",
    "storage_error",
]
