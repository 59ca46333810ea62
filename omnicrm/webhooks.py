"""The webhook contract, public for channel plugins: what a channel type's receiver is
given, what it returns, and the signature helpers most platforms need.

A receiver (:class:`WebhookReceiver`) verifies a request over its raw body and parses it
into a :class:`WebhookEvent`, then says what the event asks for as :data:`Action` values
(:class:`Upsert`, :class:`Delete`, :class:`Redact`, :class:`EraseConnection`,
:class:`Export`; for a messaging platform, :class:`ConsentChange` and :class:`LinkAddress`);
the core applies them. See docs/plugins.md, "Webhooks".
"""

from omnicrm.core.webhooks import (
    DEFAULT_MAX_BODY,
    PATH_TOKEN_HEADER,
    Action,
    ConsentChange,
    Delete,
    EraseConnection,
    Export,
    LinkAddress,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookReceiver,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "PATH_TOKEN_HEADER",
    "Action",
    "ConsentChange",
    "Delete",
    "EraseConnection",
    "Export",
    "LinkAddress",
    "Redact",
    "Upsert",
    "WebhookEvent",
    "WebhookInvalid",
    "WebhookReceiver",
    "WebhookRejected",
    "hmac_sha256",
    "signatures_match",
]
