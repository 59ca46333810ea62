"""The LINE dispatcher: registration, the dispatch hook and the webhook receiver.

This module is what the ``omnicrm`` entry point ``line`` names. Each message is pushed
to the customer's linked LINE user id (a campaign renders it per customer, so each is
its own push); :func:`~omnicrm.plugins.line.client.Client.multicast` sends one message
to many in batches of 500 where the text is the same for all.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import omnicrm
from omnicrm import DeliveryStatus, Dispatcher, DispatchOutcome, Medium, Message
from omnicrm.errors import PluginError
from omnicrm.plugins.line.client import (
    TEXT_LIMIT,
    button_message,
    client_for,
    retry_key,
    text_message,
)
from omnicrm.plugins.line.settings import LineSettings
from omnicrm.plugins.line.webhooks import LineWebhooks

DISPATCHER_NAME = "line"
USER_ID = re.compile(r"U[0-9a-f]{32}")
"""A LINE user id as the Messaging API gives it (webhooks' ``source.userId``)."""


def sandbox(
    *, client: int = 0, keep_in: Path | None = None
) -> AbstractContextManager[Mapping[str, Any]]:
    """Start a local LINE Messaging API emulator; its context yields settings that send
    to it as demo shop ``client``; with ``keep_in``, what it delivers is kept there
    (``delivered.jsonl``)."""
    # Imported on use: the emulator's server is no part of a real send.
    module = importlib.import_module("omnicrm.plugins.line.sandbox")
    start: Callable[..., AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start(client=client, keep_in=keep_in)


DISPATCHER = Dispatcher(
    name=DISPATCHER_NAME,
    medium=Medium.LINE,
    settings=LineSettings,
    title="LINE Messaging API",
    sandbox=sandbox,
    webhooks=LineWebhooks(),
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the ``line`` dispatcher."""
    register.dispatcher(DISPATCHER)


def messages_of(message: Message, settings: LineSettings) -> list[dict[str, Any]]:
    """The message objects one message is pushed as: its text, and the settings' button."""
    objects = [text_message(message.body)]
    if settings.button_label is not None and settings.button_url is not None:
        objects.append(button_message(settings.button_label, settings.button_url))
    return objects


@omnicrm.hookimpl
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    """Push ``message`` to its LINE user; the outcome says what LINE answered."""
    if not isinstance(settings, LineSettings):
        raise PluginError(f"line got settings of type {type(settings).__name__}")
    to = message.to.strip()
    if not USER_ID.fullmatch(to):
        return DispatchOutcome(
            DeliveryStatus.REJECTED, error=f"{to!r} is not a LINE user id (U + 32 hex digits)"
        )
    if not message.body.strip():
        return DispatchOutcome(DeliveryStatus.REJECTED, error=f"message {message.id} is empty")
    if len(message.body) > TEXT_LIMIT:
        return DispatchOutcome(
            DeliveryStatus.REJECTED,
            error=f"message {message.id} has {len(message.body)} characters; LINE takes "
            f"at most {TEXT_LIMIT}",
        )
    client = client_for(settings)
    return client.push(to, messages_of(message, settings), key=retry_key(message.id))
