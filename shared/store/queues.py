"""The work queues: actions, lookups, returns, graph, previews, warnings; each with a `-poison` twin.

Messages are JSON, base64-encoded: the Functions queue trigger expects base64 by default
(`host.json` ``extensions.queues.messageEncoding``, default ``base64``:
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json),
so what we send is what the trigger reads, with no host.json change. After the last of
``maxDequeueCount`` tries the host moves a message to ``<queue>-poison``
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages);
`Queues` creates those up front so they can be counted and read before the first poisoning.

A message holds at most 64 KiB; base64 makes 4 bytes of 3, so the JSON may be 48 KiB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.store._base import sdk_client_options
from shared.store.errors import EntityTooLarge, StorageError, mapped

#: The queues Seatwarden uses, by the short name callers pass.
QUEUE_KINDS = ("actions", "lookups", "returns", "graph", "previews", "warnings")
POISON_SUFFIX = "-poison"
_BASE = "seatwarden-"
#: 64 KiB per message, less base64's third.
MAX_MESSAGE_BYTES = 48 * 1024


def queue_name(prefix: str, kind: str) -> str:
    """``seatwarden-<kind>``, after the prefix if one is given: ``t1a2b-seatwarden-actions``.

    Queue names are 3-63 lowercase letters, digits and single dashes; the prefix is cleaned to fit.
    """
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", prefix.lower())).strip("-")
    name = f"{cleaned}-{_BASE}{kind}" if cleaned else f"{_BASE}{kind}"
    # Leave room for "-poison" on the longest name.
    if len(name) + len(POISON_SUFFIX) > 63:
        raise ValueError(f"queue name {name!r} is too long for Azure (63 characters with -poison)")
    return name


class Queues:
    """Send, receive and count JSON messages on Seatwarden's queues.

    ``queue`` arguments are a kind (``"actions"``) or a kind's poison queue (``"actions-poison"``).
    """

    def __init__(self, conn: str, prefix: str = "", **client_options: Any) -> None:
        self._clients: dict[str, QueueClient] = {}
        for kind in QUEUE_KINDS:
            for suffix in ("", POISON_SUFFIX):
                self._clients[kind + suffix] = QueueClient.from_connection_string(
                    conn,
                    queue_name(prefix, kind) + suffix,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                    **sdk_client_options(client_options),
                )

    def client(self, queue: str) -> QueueClient:
        try:
            return self._clients[queue]
        except KeyError:
            known = ", ".join(sorted(self._clients))
            raise ValueError(f"unknown queue {queue!r}; one of {known}") from None

    def name(self, queue: str) -> str:
        """The Azure queue name, for the trigger bindings and for operators."""
        return self.client(queue).queue_name

    @property
    def actions(self) -> QueueClient:
        return self._clients["actions"]

    @property
    def lookups(self) -> QueueClient:
        return self._clients["lookups"]

    @property
    def returns(self) -> QueueClient:
        return self._clients["returns"]

    @property
    def graph(self) -> QueueClient:
        return self._clients["graph"]

    @property
    def warnings(self) -> QueueClient:
        return self._clients["warnings"]

    def ensure(self) -> None:
        """Create every queue and its poison queue if missing."""
        for queue, client in self._clients.items():
            with mapped(f"create queue {queue}"):
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass

    def send(self, queue: str, message: Mapping[str, Any], delay: timedelta | None = None) -> str:
        """Put one JSON message on a queue, visible after ``delay``; returns its message id."""
        return self.send_cancellable(queue, message, delay)[0]

    def send_cancellable(
        self, queue: str, message: Mapping[str, Any], delay: timedelta | None = None
    ) -> tuple[str, str]:
        """Like `send`, and returns the message id and pop receipt `cancel` takes back."""
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)
        size = len(text.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise EntityTooLarge(
                f"a {queue} message of {size} bytes exceeds {MAX_MESSAGE_BYTES} (64 KiB once in base64)"
            )
        visibility = int(delay.total_seconds()) if delay else None
        with mapped(f"send a message to {queue}"):
            sent = self.client(queue).send_message(text, visibility_timeout=visibility)
        return str(sent.id), str(sent.pop_receipt)

    def cancel(self, queue: str, message_id: str, pop_receipt: str) -> None:
        """Delete a message this process sent (`send_cancellable`) before anyone took it."""
        with mapped(f"cancel a message on {queue}"):
            self.client(queue).delete_message(message_id, pop_receipt)

    def send_many(self, queue: str, messages: Iterable[Mapping[str, Any]]) -> int:
        """Put many messages on a queue (one request each: queues have no batch send)."""
        count = 0
        for message in messages:
            self.send(queue, message)
            count += 1
        return count

    def receive(
        self, queue: str, max_messages: int = 32, visibility: timedelta = timedelta(seconds=30)
    ) -> list[tuple[QueueMessage, dict[str, Any]]]:
        """Take up to ``max_messages``, each with its decoded JSON body; `delete` each when done.

        The Functions host does this itself; this is for tests and the local demo driver.
        """
        with mapped(f"receive messages from {queue}"):
            received = list(
                self.client(queue).receive_messages(
                    max_messages=max_messages,
                    messages_per_page=min(32, max_messages),
                    visibility_timeout=int(visibility.total_seconds()),
                )
            )
        out = []
        for message in received:
            try:
                body = json.loads(message.content)
            except (TypeError, ValueError) as exc:
                raise StorageError(f"message {message.id} on {queue} is not JSON") from exc
            out.append((message, body))
        return out

    def delete(self, queue: str, message: QueueMessage) -> None:
        with mapped(f"delete a message from {queue}"):
            self.client(queue).delete_message(message)

    def peek_count(self, queue: str) -> int:
        """The queue's approximate length, as the service reports it."""
        with mapped(f"count the messages on {queue}"):
            return int(self.client(queue).get_queue_properties().approximate_message_count or 0)
