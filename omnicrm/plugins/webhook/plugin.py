"""The webhook dispatchers: registration and the dispatch hook.

This module is what the ``omnicrm`` entry point ``webhook`` names. A dispatcher sends
one medium (consent is per medium, and a campaign's medium picks its dispatcher), so
the plugin registers one per medium, all the same but for it: ``webhook-email``,
``webhook-sms``, ``webhook-line`` and ``webhook-postal``. A shop whose own tool sends
its SMS configures ``[shops.ID.messaging.dispatchers.sms] dispatcher = "webhook-sms"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from pydantic import BaseModel

import omnicrm
from omnicrm import Dispatcher, DispatchOutcome, Medium, Message
from omnicrm.errors import PluginError
from omnicrm.plugins.webhook.client import client_for
from omnicrm.plugins.webhook.settings import WebhookSettings

PREFIX = "webhook"


def sandbox() -> AbstractContextManager[Mapping[str, Any]]:
    """Start a loopback receiver that checks signatures; its context yields settings
    that post to it."""
    # Imported on use: the receiver's server is no part of a real send.
    module = importlib.import_module("omnicrm.plugins.webhook.sandbox")
    start: Callable[[], AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start()


DISPATCHERS = tuple(
    Dispatcher(
        name=f"{PREFIX}-{medium.value}",
        medium=medium,
        settings=WebhookSettings,
        title=f"Webhook ({medium.value}, the shop's own tool)",
        sandbox=sandbox,
    )
    for medium in Medium
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register a ``webhook-MEDIUM`` dispatcher for each medium."""
    for dispatcher in DISPATCHERS:
        register.dispatcher(dispatcher)


@omnicrm.hookimpl
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    """Post ``message`` to the shop's endpoint; the outcome says what it answered."""
    if not isinstance(settings, WebhookSettings):
        raise PluginError(f"webhook got settings of type {type(settings).__name__}")
    return client_for(settings).post(message)
