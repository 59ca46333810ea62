"""The email dispatcher: registration and the dispatch hook.

This module is what the ``omnicrm`` entry point ``email`` names. Templates are in
:mod:`~omnicrm.plugins.email.templates`, the message's bytes in
:mod:`~omnicrm.plugins.email.compose`, SMTP in :mod:`~omnicrm.plugins.email.smtp`, the
local SMTP catcher in :mod:`~omnicrm.plugins.email.sandbox`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import dkim
from pydantic import BaseModel

import omnicrm
from omnicrm import DeliveryStatus, Dispatcher, DispatchOutcome, Medium, Message
from omnicrm.errors import PluginError
from omnicrm.plugins.email.compose import compose
from omnicrm.plugins.email.settings import EmailSettings, parse_address
from omnicrm.plugins.email.smtp import POOL
from omnicrm.plugins.email.templates import EmailRenderer

DISPATCHER_NAME = "email"


def sandbox(
    *, client: int = 0, keep_in: Path | None = None
) -> AbstractContextManager[Mapping[str, Any]]:
    """Start a local SMTP catcher; its context yields settings that send to it as demo
    shop ``client``; with ``keep_in``, what arrives is kept in that Maildir."""
    # Imported on use: aiosmtpd starts an event loop thread a real send never needs.
    module = importlib.import_module("omnicrm.plugins.email.sandbox")
    start: Callable[..., AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start(client=client, keep_in=keep_in)


DISPATCHER = Dispatcher(
    name=DISPATCHER_NAME,
    medium=Medium.EMAIL,
    settings=EmailSettings,
    title="Email (SMTP)",
    renderer=EmailRenderer(),
    sandbox=sandbox,
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the ``email`` dispatcher."""
    register.dispatcher(DISPATCHER)


@omnicrm.hookimpl
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    """Send ``message`` over SMTP; the outcome says what the server answered."""
    if not isinstance(settings, EmailSettings):
        raise PluginError(f"email got settings of type {type(settings).__name__}")
    try:
        to = parse_address(message.to)
    except ValueError as exc:
        return DispatchOutcome(DeliveryStatus.REJECTED, error=str(exc))
    try:
        message_id, raw = compose(message, settings)
    except ValueError as exc:  # a header that cannot be written: this message never can
        return DispatchOutcome(DeliveryStatus.REJECTED, error=f"message {message.id}: {exc}")
    except (OSError, dkim.DKIMException) as exc:  # the key went missing or is no RSA key
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return DispatchOutcome(DeliveryStatus.FAILED, error=f"DKIM signing failed: {reason}")
    return POOL.send(settings, raw, sender=settings.sender_address, to=to, message_id=message_id)
