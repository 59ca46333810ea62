"""The storefront's two ways to prove a request, pure functions over bytes and strings.

A Shopify App Proxy forwards the shopper's request with ``shop``,
``logged_in_customer_id``, ``path_prefix``, ``timestamp`` and ``signature`` added to the
query: ``signature`` is the hex HMAC-SHA256, keyed with the app's client secret, of the
other parameters written ``key=value`` (a repeated key's values joined by ','), sorted,
and concatenated with no separator (:func:`app_proxy_signature`).

Other sites (EC-CUBE) name their shop by its public key, and vouch for a signed-in
customer with a token their own server makes: ``CUSTOMER_ID.EXPIRES.SIGNATURE``, where
EXPIRES is a Unix time and SIGNATURE the hex HMAC-SHA256 of ``CUSTOMER_ID.EXPIRES``
keyed with the shop's token secret (:func:`customer_token`; docs/onsite.md shows it in
PHP). Without a valid token the visitor is anonymous.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

MAX_CUSTOMER_ID = 255
# How far a proxied request's timestamp may be from now: a signed URL copied out of a
# page stops working after this long.
PROXY_WINDOW = 3600


class Refused(Exception):
    """The request does not prove what it claims; the message says why (no secret)."""


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def app_proxy_signature(params: Iterable[tuple[str, str]], secret: str) -> str:
    """The App Proxy ``signature`` of the query ``params`` (pairs as parsed, in order;
    any ``signature`` among them is left out)."""
    joined: dict[str, list[str]] = {}
    for key, value in params:
        if key != "signature":
            joined.setdefault(key, []).append(value)
    message = "".join(sorted(f"{key}={','.join(values)}" for key, values in joined.items()))
    return _mac(secret, message)


@dataclass(frozen=True)
class ProxyRequest:
    """What a verified App Proxy query says: the store and who is signed in there."""

    shop_domain: str
    customer_id: str | None


def verify_app_proxy(params: list[tuple[str, str]], secret: str, *, now: float) -> ProxyRequest:
    """The verified query, or :class:`Refused`."""
    given = [value for key, value in params if key == "signature"]
    if len(given) != 1:
        raise Refused("no signature")
    expected = app_proxy_signature(params, secret)
    if not hmac.compare_digest(expected, given[0].lower()):
        raise Refused("the signature does not match")
    values = dict(params)
    stamp = values.get("timestamp", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > PROXY_WINDOW:
        raise Refused("the timestamp is missing or too far from now")
    domain = values.get("shop", "")
    if not domain:
        raise Refused("no shop")
    customer = values.get("logged_in_customer_id") or None
    return ProxyRequest(domain, customer)


def customer_token(customer_id: str, expires: int, secret: str) -> str:
    """A token vouching that ``customer_id`` is signed in, until ``expires`` (Unix time)."""
    if not customer_id or len(customer_id) > MAX_CUSTOMER_ID:
        raise ValueError("a customer id of 1 to 255 characters")
    return f"{customer_id}.{expires}.{_mac(secret, f'{customer_id}.{expires}')}"


def verify_customer_token(token: str, secret: str, *, now: float) -> str:
    """The customer id ``token`` vouches for, or :class:`Refused`."""
    customer_id, _, rest = token.rpartition(".")
    customer_id, _, expires = customer_id.rpartition(".")
    if not customer_id or not expires.isdigit() or len(customer_id) > MAX_CUSTOMER_ID:
        raise Refused("the customer token is malformed")
    if not hmac.compare_digest(_mac(secret, f"{customer_id}.{expires}"), rest.lower()):
        raise Refused("the customer token's signature does not match")
    if int(expires) < now:
        raise Refused("the customer token has expired")
    return customer_id
