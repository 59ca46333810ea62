"""The ``X-Omnicrm-Signature`` header: what omnicrm sends, and how a receiver checks it.

``X-Omnicrm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, the HMAC keyed with the
shop's secret over ``"<t>.<raw body>"``: the timestamp is signed with the body, so a
request recorded and replayed later is refused by its age (:data:`TOLERANCE`), and a
body changed on the way no longer matches. A receiver checks the raw bytes it received,
before parsing them. Each try of a message is signed anew (a new ``t``); the
``Idempotency-Key`` header, the message's id, stays the same.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from omnicrm.webhooks import signatures_match

HEADER = "X-Omnicrm-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE = 300
"""Seconds a signature's timestamp may differ from the receiver's clock."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> str:
    """The header's value for ``body`` sent at ``now`` (default: the time now)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> str | None:
    """Why ``header`` does not sign ``body`` under ``secret`` (None: it does). Checks the
    form, the age against :data:`TOLERANCE`, then the HMAC in constant time; several
    ``v1`` values are accepted (one per secret, while a secret is rotated)."""
    if not header:
        return f"no {HEADER} header"
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    stamps, signatures = fields.get("t", []), fields.get("v1", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return f"{HEADER} is not t=<seconds>,v1=<hex>"
    timestamp = int(stamps[0])
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > TOLERANCE:
        return f"the signature's time is more than {TOLERANCE} s from now"
    expected = signature(secret, timestamp, body)
    if not any(signatures_match(expected, given) for given in signatures):
        return "the signature does not match the body"
    return None
