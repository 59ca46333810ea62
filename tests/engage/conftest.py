"""A shop with customers built into profiles, and the file dispatcher loaded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.consent import Method, Refusal, suppress
from omnicrm.core.host import Host
from omnicrm.core.records import Consent, ConsentState, Customer, Medium, Order, OrderLine
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.permission import change_consent
from omnicrm.engage.settings import MessagingSettings
from tests.support import filedrop_plugin

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TOKYO = ZoneInfo("Asia/Tokyo")
SHOP = DEFAULT_SHOP


def person(
    i: int, *, consent: ConsentState | None = ConsentState.OPTED_IN, **fields: object
) -> Customer:
    consents = (
        [] if consent is None else [Consent(medium=Medium.EMAIL, state=consent, updated_at=T0)]
    )
    values: dict[str, object] = {
        "id": f"C{i}",
        "family_name": "山田",
        "given_name": f"花子{i}",
        "email": f"p{i}@example.jp",
        "consents": consents,
        "updated_at": T0,
    }
    values.update(fields)
    return Customer(**values)  # type: ignore[arg-type]


def build(store: Store, people: list[Customer], connection: str = "web") -> None:
    """Write ``people`` (each with one order) and build their profiles."""
    store.write_batch(connection, Stream.CUSTOMERS, people)
    store.write_batch(
        connection,
        Stream.ORDERS,
        [
            Order(
                id=f"O-{c.id}",
                customer_id=c.id,
                status="paid",  # type: ignore[arg-type]
                placed_at=NOW - dt.timedelta(days=30),
                updated_at=NOW - dt.timedelta(days=30),
                subtotal=Decimal(3000),
                total=Decimal(3000),
                lines=[OrderLine(product_name="緑茶 100g", quantity=1, unit_price=Decimal(3000))],
            )
            for c in people
        ],
    )
    refresh(store, CrmSettings(), now=NOW)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    return tmp_path / "arrived.jsonl"


@pytest.fixture
def host() -> Iterator[Host]:
    loaded = Host.load(extra={"filedrop": filedrop_plugin}, use_entry_points=False)
    assert not loaded.failures, loaded.failures
    yield loaded


def messaging(drop: Path, **extra: object) -> MessagingSettings:
    return MessagingSettings.model_validate(
        {
            "dispatchers": {
                "email": {
                    "dispatcher": "filedrop",
                    "settings": {"path": str(drop), "reject_domain": "rejected.example"},
                }
            },
            **extra,
        }
    )


def unsubscribe(store: Store, connection: str, record_id: str, source: str = "operator") -> int:
    """The operator unsubscribes, from email, the person ``record_id`` belongs to; their
    profile id."""
    return say(store, connection, record_id, ConsentState.OPTED_OUT, source=source)


def say(
    store: Store,
    connection: str,
    record_id: str,
    state: ConsentState,
    *,
    source: str = "operator",
    method: Method = Method.OPERATOR,
    at: dt.datetime = NOW,
    evidence: str | None = None,
) -> int:
    """The person ``record_id`` belongs to says ``state`` about email; their profile id."""
    with store.engine.begin() as conn:
        pid = profile_of(conn, connection, record_id, shop=SHOP)
        assert pid is not None
        change_consent(
            conn,
            shop=SHOP,
            profile_id=pid,
            medium=Medium.EMAIL,
            state=state,
            at=at,
            source=source,
            method=method,
            evidence=evidence,
        )
    return pid


def bounce(
    store: Store,
    address: str,
    *,
    shop: str = SHOP,
    at: dt.datetime = NOW,
    detail: str = "550 5.1.1 user unknown",
) -> None:
    """``address`` on ``shop``'s email suppression list as hard-bounced."""
    with store.engine.begin() as conn:
        suppress(
            conn,
            shop=shop,
            medium=Medium.EMAIL,
            address=address,
            reason=Refusal.BOUNCED,
            at=at,
            detail=detail,
        )
