"""Two shops holding the same people: every report and the CLV fit see one shop only.

Shop ``tea`` (Tokyo, JPY) and shop ``sake`` (New York, USD) each have a connection
whose source customers are the same people: the same record ids, names and emails.
A shop's figures must be what they would be if the other shop did not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import select, update

from omnicrm.core.store import Store
from omnicrm.crm.analytics import reports
from omnicrm.crm.analytics.clv import BgNbd, GammaGamma, rfm_summary
from omnicrm.crm.analytics.reports import Report
from omnicrm.crm.analytics.scoring import clv_state, predicted_clv_report, score_clv
from omnicrm.crm.schema import profiles
from tests.crm.analytics.shop import JST, add_profile, jst, order, write_orders
from tests.crm.analytics.test_scoring import NOW as CLV_NOW
from tests.crm.analytics.test_scoring import simulate

NOW = jst(2024, 9, 15)
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
SHOPS = {"tea-web": "tea", "sake-web": "sake", "tiny-web": "tiny"}
PEOPLE = {
    "hanako": {"email": "hanako@example.jp", "family_name": "山田", "given_name": "花子"},
    "taro": {"email": "taro@example.jp", "family_name": "佐藤", "given_name": "太郎"},
}
EVERY_REPORT = (
    reports.ltv_customers,
    reports.ltv_cohorts,
    reports.repeat_rate,
    reports.f2_conversion,
    reports.cohort_retention,
    reports.average_order_value,
    reports.purchase_interval,
)


@pytest.fixture
def shops(store_url: str) -> Iterator[Store]:
    """An empty store whose connections belong to three shops."""
    opened = Store.open(store_url, shops=SHOPS)
    yield opened
    opened.close()


def add_people(store: Store, shop: str, connection: str) -> dict[str, int]:
    """Hanako and Taro as customers of ``shop``: their profile ids."""
    with store.engine.begin() as conn:
        return {
            name: add_profile(conn, name, connection=connection, shop=shop, **person)
            for name, person in PEOPLE.items()
        }


def fill_tea(store: Store) -> dict[str, int]:
    ids = add_people(store, "tea", "tea-web")
    write_orders(
        store,
        [
            order("t1", "hanako", jst(2024, 1, 10), 1000),
            order("t2", "hanako", jst(2024, 3, 5), 2000, channel="pos"),
            order("t3", "taro", jst(2024, 2, 1), 500),
        ],
        "tea-web",
    )
    return ids


def fill_sake(store: Store) -> dict[str, int]:
    """The same people buying from sake, in dollars, plus Jiro who buys from sake only.

    Order ids repeat tea's: ids are a connection's, and two shops may well share them."""
    ids = add_people(store, "sake", "sake-web")
    with store.engine.begin() as conn:
        ids["jiro"] = add_profile(conn, "jiro", connection="sake-web", shop="sake")
    utc = dt.UTC
    write_orders(
        store,
        [
            order("t1", "hanako", jst(2024, 1, 20), "70.25", currency="USD"),
            order("t2", "taro", jst(2024, 1, 25), "30.5", currency="USD"),
            order("t3", "taro", jst(2024, 4, 1), 40, currency="USD"),
            # 03:00 UTC on 1 March: 29 February in New York, 1 March in Tokyo.
            order("t4", "jiro", dt.datetime(2024, 3, 1, 3, tzinfo=utc), 90, currency="USD"),
        ],
        "sake-web",
    )
    return ids


def tea_report(store: Store, make: object) -> Report:
    with store.engine.connect() as conn:
        assert callable(make)
        report = make(conn, shop="tea", now=NOW, tz=TOKYO, currency="JPY")
    assert isinstance(report, Report)
    return report


def test_a_shops_reports_ignore_another_shop_with_the_same_people(shops: Store) -> None:
    tea = fill_tea(shops)
    alone = [tea_report(shops, make) for make in EVERY_REPORT]
    assert not any(r.empty for r in alone)
    sake = fill_sake(shops)
    # The same people (same record ids, names and emails) buying from sake change
    # nothing in any of tea's reports.
    assert [tea_report(shops, make) for make in EVERY_REPORT] == alone

    ltv = alone[0]
    assert ltv.shop == "tea" and ltv.currency == "JPY"
    assert [(r[0], r[1], r[3]) for r in ltv.rows] == [
        (tea["hanako"], "山田 花子", Decimal("3000")),
        (tea["taro"], "佐藤 太郎", Decimal("500")),
    ]
    assert "2 customers with purchases; total spend 3,500 JPY" in ltv.notes[0]
    assert "amounts in JPY, the shop's currency" in ltv.notes
    assert not set(sake.values()) & {r[0] for r in ltv.rows}

    with shops.engine.connect() as conn:
        sake_ltv = reports.ltv_customers(conn, shop="sake", now=NOW, tz=NEW_YORK, currency="USD")
        sake_aov = reports.average_order_value(
            conn, shop="sake", now=NOW, tz=NEW_YORK, currency="USD"
        )
        sake_repeat = reports.repeat_rate(conn, shop="sake", now=NOW, tz=NEW_YORK, currency="USD")
    assert {r[0]: r[3] for r in sake_ltv.rows} == {
        sake["jiro"]: Decimal("90"),
        sake["taro"]: Decimal("70.5"),
        sake["hanako"]: Decimal("70.25"),
    }
    assert sake_ltv.currency == "USD" and "total spend 230.75 USD" in sake_ltv.notes[0]
    # Sake's orders are all in its own currency: no note about others.
    assert not any("other currencies" in n for n in sake_aov.notes)
    assert sake_aov.rows[0] == ("overall", "all", 4, Decimal("230.75"), Decimal("57.69"))
    # Jiro's first purchase is on 29 February in New York: a February customer.
    assert [r[:2] for r in sake_repeat.rows] == [
        ("all", 3),
        ("2024-01", 2),
        ("2024-02", 1),
    ]


def test_a_shop_without_purchases_reports_nothing_while_another_has_some(shops: Store) -> None:
    fill_tea(shops)
    add_people(shops, "sake", "sake-web")
    with shops.engine.connect() as conn:
        for make in EVERY_REPORT:
            report = make(conn, shop="sake", now=NOW, tz=NEW_YORK, currency="USD")
            assert report.empty and report.shop == "sake", report.title


def test_orders_in_another_currency_than_the_shops_are_noted(shops: Store) -> None:
    fill_tea(shops)
    write_orders(shops, [order("t9", "taro", jst(2024, 5, 1), 10, currency="USD")], "tea-web")
    aov = tea_report(shops, reports.average_order_value)
    assert any("other currencies than the shop's JPY (USD)" in n for n in aov.notes)


def scores(store: Store, shop: str) -> dict[int, tuple[float | None, float | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(profiles.c.id, profiles.c.predicted_clv, profiles.c.p_alive).where(
                profiles.c.shop == shop
            )
        )
        return {r.id: (r.predicted_clv, r.p_alive) for r in rows}


def test_clv_is_fitted_and_kept_per_shop(shops: Store) -> None:
    # The same source customers c0..c59 in both shops, buying differently.
    tea = simulate(shops, 60, seed=5, shop="tea", connection="tea-web")
    sake = simulate(shops, 80, seed=13, shop="sake", connection="sake-web")
    with shops.engine.begin() as conn:
        fit = score_clv(conn, CLV_NOW, shop="tea", tz=TOKYO, min_customers=10, min_repeaters=5)
    assert fit.status == "fitted", fit.message
    assert fit.customers == fit.scored == len(tea) == 60

    # Tea's model is the one fitted on tea's purchases alone.
    rows = [(pid, day, float(amount)) for pid, items in tea.items() for day, amount in items]
    summary = rfm_summary(rows, CLV_NOW.astimezone(JST).date())
    alone = BgNbd.fit(summary.x, summary.t_x, summary.T)
    gg = GammaGamma.fit(summary.x, summary.m)
    assert fit.bgnbd is not None and fit.gamma_gamma is not None
    assert (fit.bgnbd.r, fit.bgnbd.alpha, fit.bgnbd.a, fit.bgnbd.b) == pytest.approx(
        (alone.r, alone.alpha, alone.a, alone.b), rel=1e-9
    )
    assert (fit.gamma_gamma.p, fit.gamma_gamma.q) == pytest.approx((gg.p, gg.q), rel=1e-9)
    tea_scores = scores(shops, "tea")
    assert set(tea_scores) == set(tea) and all(v is not None for v, _ in tea_scores.values())
    assert set(scores(shops, "sake").values()) == {(None, None)}
    with shops.engine.connect() as conn:
        assert clv_state(conn, shop="sake") is None
        assert (clv_state(conn, shop="tea") or {})["customers"] == 60

    with shops.engine.begin() as conn:
        sake_fit = score_clv(
            conn, CLV_NOW, shop="sake", tz=NEW_YORK, min_customers=10, min_repeaters=5
        )
    assert sake_fit.status == "fitted" and sake_fit.customers == len(sake) == 80
    assert sake_fit.bgnbd is not None and sake_fit.bgnbd.r != pytest.approx(fit.bgnbd.r)
    # Fitting sake moved none of tea's scores, and each shop keeps its own fit.
    assert scores(shops, "tea") == tea_scores
    with shops.engine.connect() as conn:
        tea_state, sake_state = clv_state(conn, shop="tea"), clv_state(conn, shop="sake")
    assert tea_state is not None and sake_state is not None
    assert (tea_state["customers"], tea_state["timezone"]) == (60, "Asia/Tokyo")
    assert (sake_state["customers"], sake_state["timezone"]) == (80, "America/New_York")

    # Too little data in a third shop clears that shop's scores only.
    with shops.engine.begin() as conn:
        tiny = add_profile(conn, "c0", connection="tiny-web", shop="tiny")
        conn.execute(update(profiles).where(profiles.c.id == tiny).values(predicted_clv=1.0))
    write_orders(shops, [order("o1", "c0", jst(2024, 3, 1), 100)], "tiny-web")
    with shops.engine.begin() as conn:
        tiny_fit = score_clv(conn, CLV_NOW, shop="tiny")
    assert tiny_fit.status == "insufficient" and "1 customer(s)" in tiny_fit.message
    assert scores(shops, "tiny") == {tiny: (None, None)}
    assert scores(shops, "tea") == tea_scores
    assert all(v is not None for v, _ in scores(shops, "sake").values())

    with shops.engine.connect() as conn:
        report = predicted_clv_report(conn, shop="tea", limit=100, currency="JPY")
        tiny_report = predicted_clv_report(conn, shop="tiny")
    assert report.shop == "tea" and report.currency == "JPY"
    assert {row[0] for row in report.rows} == set(tea)
    assert sum(row[1] for row in report.parts[0].rows) == 60  # type: ignore[misc]
    want = sorted((v for v, _ in tea_scores.values() if v is not None), reverse=True)
    got = [float(str(row[-1])) for row in report.rows]
    assert np.allclose(got, want, atol=0.005)
    # Orders and spend to date are tea's, though the same record ids bought from sake.
    for row in report.rows:
        assert isinstance(row[0], int)
        mine = tea[row[0]]
        assert row[2:4] == (len(mine), sum(a for _, a in mine))
    assert tiny_report.empty and "1 customer(s)" in tiny_report.notes[0]


def test_reports_carry_their_shop_in_json(shops: Store) -> None:
    fill_tea(shops)
    data = tea_report(shops, reports.ltv_customers).to_json()
    assert (data["shop"], data["currency"]) == ("tea", "JPY")
    repeat = tea_report(shops, reports.repeat_rate)
    assert repeat.shop == "tea"
    # Only a report with amounts says which currency they are in.
    assert not any("currency" in n for n in repeat.notes)
