"""The App Proxy signature as Shopify computes it, and the sites' customer tokens."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

import pytest

from omnicrm.engage.onsite.tokens import (
    Refused,
    app_proxy_signature,
    customer_token,
    verify_app_proxy,
    verify_customer_token,
)

STAMP = 1317327555
# Shopify's documented forwarded query (secret 'hush', the shop 'shop-name'), with its
# repeated 'extra'.
QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
    f"&path_prefix=%2Fapps%2Fawesome_reviews&timestamp={STAMP}"
)


def signed(query: str, secret: str = "hush") -> list[tuple[str, str]]:
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return [*params, ("signature", app_proxy_signature(params, secret))]


def test_the_signature_is_shopifys_own_example() -> None:
    # shopify.dev, "Authenticate app proxies": the forwarded request's signature.
    documented = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
    assert app_proxy_signature(urllib.parse.parse_qsl(QUERY), "hush") == documented


def test_the_signature_is_over_the_sorted_pairs_without_separators() -> None:
    # Written out by hand from Shopify's rule, independent of the code under test.
    message = (
        "extra=1,2logged_in_customer_id=1path_prefix=/apps/awesome_reviews"
        f"shop=shop-name.myshopify.comtimestamp={STAMP}"
    )
    expected = hmac.new(b"hush", message.encode(), hashlib.sha256).hexdigest()
    assert app_proxy_signature(urllib.parse.parse_qsl(QUERY), "hush") == expected


def test_a_signed_query_names_its_shop_and_customer() -> None:
    found = verify_app_proxy(signed(QUERY), "hush", now=STAMP + 5)
    assert (found.shop_domain, found.customer_id) == ("shop-name.myshopify.com", "1")
    anonymous = QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id=")
    assert verify_app_proxy(signed(anonymous), "hush", now=STAMP).customer_id is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: [(k, "2" if k == "logged_in_customer_id" else v) for k, v in p],
        lambda p: [*p, ("extra", "3")],
        lambda p: [(k, v) for k, v in p if k != "signature"],
        lambda p: [(k, v.replace("a", "b") if k == "signature" else v) for k, v in p],
    ],
    ids=["other-customer", "added-param", "no-signature", "forged-signature"],
)
def test_a_changed_or_unsigned_query_is_refused(tamper: object) -> None:
    assert callable(tamper)
    with pytest.raises(Refused):
        verify_app_proxy(tamper(signed(QUERY)), "hush", now=STAMP)


def test_a_query_signed_with_another_secret_or_long_ago_is_refused() -> None:
    with pytest.raises(Refused, match="does not match"):
        verify_app_proxy(signed(QUERY, "other"), "hush", now=STAMP)
    with pytest.raises(Refused, match="timestamp"):
        verify_app_proxy(signed(QUERY), "hush", now=STAMP + 2 * 3600)


def test_a_customer_token_vouches_until_it_expires() -> None:
    token = customer_token("1042", 2_000_000_000, "s3cret")
    # The PHP of docs/onsite.md: hash_hmac('sha256', "$id.$expires", $secret).
    mac = hmac.new(b"s3cret", b"1042.2000000000", hashlib.sha256).hexdigest()
    assert token == f"1042.2000000000.{mac}"
    assert verify_customer_token(token, "s3cret", now=1_999_999_999) == "1042"
    with pytest.raises(Refused, match="expired"):
        verify_customer_token(token, "s3cret", now=2_000_000_001)


@pytest.mark.parametrize(
    "token",
    [
        "1043.2000000000.{mac}",
        "1042.2000000001.{mac}",
        "1042.2000000000.{other}",
        "1042.{mac}",
        "",
    ],
)
def test_a_forged_or_malformed_token_is_refused(token: str) -> None:
    mac = customer_token("1042", 2_000_000_000, "s3cret").rsplit(".", 1)[1]
    other = customer_token("1042", 2_000_000_000, "guess").rsplit(".", 1)[1]
    with pytest.raises(Refused):
        verify_customer_token(token.format(mac=mac, other=other), "s3cret", now=0)
