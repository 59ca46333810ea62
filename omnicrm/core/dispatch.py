"""Message dispatch: what a dispatcher plugin registers, receives and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from omnicrm.core._public import public
from omnicrm.core.records import Medium


@dataclass(frozen=True)
class Dispatcher:
    """A way to deliver rendered messages through one medium (an SMTP server, LINE)."""

    name: str
    medium: Medium
    settings: type[BaseModel]
    title: str = ""


@dataclass(frozen=True)
class Message:
    """A rendered message for one customer, whose consent for ``medium`` was checked."""

    id: str
    medium: Medium
    customer_id: str
    to: str
    body: str
    subject: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class DeliveryStatus(StrEnum):
    SENT = "sent"
    REJECTED = "rejected"  # the medium refused this recipient; do not retry
    FAILED = "failed"  # a passing failure; may be retried


@dataclass(frozen=True)
class DispatchOutcome:
    """What happened to one message."""

    status: DeliveryStatus
    provider_id: str | None = None
    error: str | None = None


public(Dispatcher, Message, DeliveryStatus, DispatchOutcome)
