"""The X-Omnicrm-Signature header: made, checked, and refused when anything changed."""

from __future__ import annotations

import hashlib
import hmac

from omnicrm.plugins.webhook.signing import TOLERANCE, sign, signature, verify

SECRET = "a-shop-secret-of-32-characters!!"
BODY = '{"id":"m1","body":"山田 花子 様"}'.encode()
NOW = 1_764_700_000


def test_the_header_is_the_documented_hmac_of_the_timestamp_and_the_body() -> None:
    header = sign(SECRET, BODY, now=NOW)
    expected = hmac.new(SECRET.encode(), b"1764700000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1764700000,v1={expected}"
    assert signature(SECRET, NOW, BODY) == expected
    assert verify(SECRET, header, BODY, now=NOW + 10) is None


def test_a_changed_body_a_wrong_secret_or_an_old_signature_is_refused() -> None:
    header = sign(SECRET, BODY, now=NOW)
    tampered = BODY.replace("花子".encode(), "太郎".encode())
    assert verify(SECRET, header, tampered, now=NOW) == "the signature does not match the body"
    assert verify("another-secret-entirely", header, BODY, now=NOW) == (
        "the signature does not match the body"
    )
    assert verify(SECRET, header, BODY, now=NOW + TOLERANCE + 1) == (
        f"the signature's time is more than {TOLERANCE} s from now"
    )
    # Moving the timestamp forward breaks the HMAC, which covers it.
    moved = header.replace("t=1764700000", f"t={NOW + 1000}")
    assert verify(SECRET, moved, BODY, now=NOW + 1000) == "the signature does not match the body"


def test_a_malformed_header_is_refused_and_a_rotated_secret_accepted() -> None:
    assert verify(SECRET, None, BODY, now=NOW) == "no X-Omnicrm-Signature header"
    for bad in ("v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc", "t=1764700000"):
        assert (
            verify(SECRET, bad, BODY, now=NOW) == "X-Omnicrm-Signature is not t=<seconds>,v1=<hex>"
        )
    old, new = signature("the-old-secret-1234", NOW, BODY), signature(SECRET, NOW, BODY)
    both = f"t={NOW},v1={old},v1={new}"
    assert verify(SECRET, both, BODY, now=NOW) is None
