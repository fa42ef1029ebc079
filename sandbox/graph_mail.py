"""``POST /users/{id}/sendMail``: queued, never delivered; recorded for assertions.

Success is 202 with an empty body (WIRE.md §17,
https://learn.microsoft.com/graph/api/user-sendmail). The sandbox keeps every message so
a test can read what Seatwarden told people (``Sandbox.mails()``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .graph_common import graph_error
from .model import User
from .org import Org
from .routing import ApiRequest, ApiResponse, BadJson
from .timeutil import iso_ms


@dataclass(frozen=True)
class Mail:
    at: datetime
    sender: str  # the mailbox's userPrincipalName
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    content_type: str
    content: str
    save_to_sent_items: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso_ms(self.at),
            "from": self.sender,
            "to": list(self.to),
            "cc": list(self.cc),
            "subject": self.subject,
            "contentType": self.content_type,
            "content": self.content,
            "saveToSentItems": self.save_to_sent_items,
        }


class Mailbox:
    def __init__(self, org: Org) -> None:
        self._org = org
        self._mails: list[Mail] = []
        self._lock = threading.Lock()

    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    # POST /users/{id | userPrincipalName}/sendMail:
    # https://learn.microsoft.com/graph/api/user-sendmail
    def send_mail(self, req: ApiRequest, user_id: str) -> ApiResponse:
        sender = self._find(user_id)
        if sender is None:
            return graph_error(404, "ErrorInvalidUser", f"The requested user '{user_id}' is invalid.")
        try:
            body = req.json(allow_empty=False)
        except BadJson:
            return graph_error(400, "ErrorInvalidRequest", "Empty Payload. JSON content expected.")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return graph_error(400, "ErrorInvalidRequest", "The message property is required.")
        to = _addresses(message.get("toRecipients"))
        if not to:
            return graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
        raw_body = message.get("body")
        content: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        mail = Mail(
            at=self._org.clock.now(),
            sender=sender.upn,
            to=to,
            cc=_addresses(message.get("ccRecipients")),
            subject=str(message.get("subject", "")),
            content_type=str(content.get("contentType", "Text")),
            content=str(content.get("content", "")),
            save_to_sent_items=bool(body.get("saveToSentItems", True)),
        )
        with self._lock:
            self._mails.append(mail)
        self._org.record_change(
            "entra", "mail_sent", sender=mail.sender, to=list(mail.to), subject=mail.subject
        )
        return ApiResponse.empty(202)

    def _find(self, user_id: str) -> User | None:
        return self._org.user_by_object_id(user_id) or self._org.user_by_email(user_id)


def _addresses(recipients: Any) -> tuple[str, ...]:
    if not isinstance(recipients, list):
        return ()
    found = []
    for recipient in recipients:
        address = (
            (recipient.get("emailAddress") or {}).get("address") if isinstance(recipient, dict) else None
        )
        if isinstance(address, str) and "@" in address:
            found.append(address)
    return tuple(found)
