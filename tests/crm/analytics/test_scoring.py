"""Predicted CLV written to profiles: the store's purchases through clv.py's models."""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal

import numpy as np
import pytest
from sqlalchemy import select, update

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.records import Order, OrderStatus
from omnicrm.core.store import Store
from omnicrm.crm.analytics.clv import BgNbd, GammaGamma, predicted_clv, rfm_summary
from omnicrm.crm.analytics.scoring import (
    _implausible_spend,
    clv_state,
    predicted_clv_report,
    score_clv,
)
from omnicrm.crm.schema import profiles
from tests.crm.analytics.shop import CONNECTION, JST, add_profile, jst, order, write_orders

NOW = jst(2024, 12, 31, 20)
START = jst(2024, 1, 1, 9)


def simulate(
    store: Store,
    n: int,
    seed: int = 7,
    *,
    shop: str = DEFAULT_SHOP,
    connection: str = CONNECTION,
) -> dict[int, list[tuple[dt.date, Decimal]]]:
    """``n`` customers buying as BG/NBD says (varied rates, dropping out), each a profile
    of ``shop`` (source customers c0, c1 ... of ``connection``, a connection of it).

    Returns what the model must be fitted on: each profile's purchases as (Tokyo day,
    amount), counted by hand here: cancelled orders left out.
    """
    rng = np.random.default_rng(seed)
    records: list[Order] = []
    bought: dict[int, list[tuple[dt.date, Decimal]]] = {}
    with store.engine.begin() as conn:
        ids = [add_profile(conn, f"c{i}", connection=connection, shop=shop) for i in range(n)]
    for i, profile_id in enumerate(ids):
        rate = rng.gamma(0.6, 1 / 12)  # purchases a day
        drop = rng.beta(1.0, 3.0)
        spend = rng.gamma(4.0, 800.0)
        at = START + dt.timedelta(hours=float(rng.uniform(0, 24 * 250)))
        k = 0
        while at <= NOW:
            amount = Decimal(int(rng.gamma(6.0, spend / 6.0)) + 1)
            records.append(order(f"o{i}-{k}", f"c{i}", at, amount))
            bought.setdefault(profile_id, []).append((at.astimezone(JST).date(), amount))
            if rng.random() < 0.1:  # a cancelled order now and then: not a purchase
                records.append(order(f"x{i}-{k}", f"c{i}", at, 999, status=OrderStatus.CANCELLED))
            k += 1
            if rng.random() < drop:
                break
            at += dt.timedelta(days=min(float(rng.exponential(1 / rate)), 1000.0))
    write_orders(store, records, connection)
    return bought


def scores(store: Store) -> dict[int, tuple[float | None, float | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(profiles.c.id, profiles.c.predicted_clv, profiles.c.p_alive))
        return {r.id: (r.predicted_clv, r.p_alive) for r in rows}


def test_scores_every_profile_with_purchases(store: Store) -> None:
    bought = simulate(store, 300)
    with store.engine.begin() as conn:
        idle = add_profile(conn, "no-orders")
        fit = score_clv(conn, NOW, shop=DEFAULT_SHOP, horizon_weeks=26, discount=0.08)
    assert fit.status == "fitted", fit.message
    assert fit.customers == fit.scored == len(bought) == 300

    # The same fit, on the purchases as counted above.
    rows = [(pid, day, float(amount)) for pid, items in bought.items() for day, amount in items]
    summary = rfm_summary(rows, NOW.astimezone(JST).date())
    bgnbd = BgNbd.fit(summary.x, summary.t_x, summary.T)
    gg = GammaGamma.fit(summary.x, summary.m)
    assert fit.bgnbd is not None and fit.gamma_gamma is not None
    assert (fit.bgnbd.r, fit.bgnbd.alpha, fit.bgnbd.a, fit.bgnbd.b) == pytest.approx(
        (bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b), rel=1e-9
    )
    assert (fit.gamma_gamma.p, fit.gamma_gamma.q) == pytest.approx((gg.p, gg.q), rel=1e-9)
    weekly = 1.08 ** (7 / 365.25) - 1
    want_clv = predicted_clv(bgnbd, gg, summary.x, summary.t_x, summary.T, summary.m, 26, weekly)
    want_alive = bgnbd.p_alive(summary.x, summary.t_x, summary.T)

    got = scores(store)
    for i, pid in enumerate(summary.customer_ids.tolist()):
        assert got[pid] == pytest.approx((want_clv[i], want_alive[i]), rel=1e-9)
        if summary.x[i] == 0:  # one purchase day: cannot have dropped out in BG/NBD
            assert got[pid][1] == 1.0
    assert got[idle] == (None, None)

    state = clv_state_of(store)
    assert state["status"] == "fitted"
    assert state["bgnbd"]["r"] == pytest.approx(bgnbd.r, rel=1e-9)
    assert state["gamma_gamma"]["v"] == pytest.approx(gg.v, rel=1e-9)
    assert state["horizon_weeks"] == 26 and state["discount"] == 0.08
    assert state["calibration_end"] == "2024-12-31" and state["customers"] == 300
    assert set(state["seconds"]) >= {"rfm_summary", "bgnbd_fit", "gamma_gamma_fit"}


def clv_state_of(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        state = clv_state(conn, shop=DEFAULT_SHOP)
    assert state is not None
    return state


def test_too_little_data_is_said_and_leaves_nulls(store: Store) -> None:
    with store.engine.begin() as conn:
        for name in ("a", "b", "c"):
            add_profile(conn, name)
        # A stale score from an earlier fit must not survive.
        conn.execute(update(profiles).values(predicted_clv=123.0, p_alive=0.5))
    write_orders(
        store,
        [
            order("1", "a", jst(2024, 3, 1), 1000),
            order("2", "a", jst(2024, 5, 1), 1000),
            order("3", "b", jst(2024, 4, 1), 500),
            order("4", "c", jst(2024, 6, 1), 700),
        ],
    )
    with store.engine.begin() as conn:
        fit = score_clv(conn, NOW, shop=DEFAULT_SHOP)
    assert fit.status == "insufficient"
    assert "3 customer(s) with purchases, at least 30 needed" in fit.message
    assert set(scores(store).values()) == {(None, None)}
    state = clv_state_of(store)
    assert state["status"] == "insufficient" and "bgnbd" not in state
    with store.engine.connect() as conn:
        report = predicted_clv_report(conn, shop=DEFAULT_SHOP)
    assert report.empty and "3 customer(s)" in report.notes[0]


def test_no_repeat_buyers_is_too_little_data(store: Store) -> None:
    with store.engine.begin() as conn:
        for i in range(40):
            add_profile(conn, f"c{i}")
    write_orders(
        store, [order(f"o{i}", f"c{i}", jst(2024, 3, 1 + i % 20), 1000) for i in range(40)]
    )
    with store.engine.begin() as conn:
        fit = score_clv(conn, NOW, shop=DEFAULT_SHOP)
    assert fit.status == "insufficient"
    assert "0 of 40 customers came back for a second purchase day" in fit.message


def test_report_before_and_after_a_fit(store: Store) -> None:
    with store.engine.connect() as conn:
        before = predicted_clv_report(conn, shop=DEFAULT_SHOP)
    assert before.empty and "no CLV model fitted yet" in before.notes[0]
    bought = simulate(store, 120, seed=11)
    with store.engine.begin() as conn:
        fit = score_clv(conn, NOW, shop=DEFAULT_SHOP)
    assert fit.status == "fitted", fit.message
    with store.engine.connect() as conn:
        report = predicted_clv_report(conn, shop=DEFAULT_SHOP, limit=5)
    assert len(report.rows) == 5
    values = [row[-1] for row in report.rows]
    assert values == sorted(values, reverse=True)
    stored = sorted((v for v, _ in scores(store).values() if v is not None), reverse=True)
    assert values[0] == Decimal(repr(stored[0])).quantize(Decimal("0.01"))
    assert any("BG/NBD r=" in note for note in report.notes)
    (deciles,) = report.parts
    assert sum(row[1] for row in deciles.rows) == 120
    assert sum(row[-1] for row in deciles.rows) == pytest.approx(1.0)
    # Orders and spend to date are the customer's purchases, exactly.
    for row in report.rows:
        assert isinstance(row[0], int)
        mine = bought[row[0]]
        assert row[2:5] == (len(mine), sum(a for _, a in mine), max(d for d, _ in mine))


def test_arguments_are_checked(store: Store) -> None:
    with store.engine.begin() as conn:
        with pytest.raises(ValueError, match="now"):
            score_clv(conn, dt.datetime(2024, 1, 1), shop=DEFAULT_SHOP)
        with pytest.raises(ValueError, match="horizon_weeks"):
            score_clv(conn, NOW, shop=DEFAULT_SHOP, horizon_weeks=0)
        with pytest.raises(ValueError, match="discount"):
            score_clv(conn, NOW, shop=DEFAULT_SHOP, discount=-0.1)


def test_a_fit_whose_mean_spend_diverges_is_implausible() -> None:
    """q barely above 1 puts the mean spend p·v/(q-1) beyond any seen: such a fit would
    predict every one-time buyer an absurd CLV, so it is given up, not stored."""
    summary = rfm_summary(
        [(1, dt.date(2024, 1, 1), 5000.0), (1, dt.date(2024, 2, 1), 7000.0)], dt.date(2024, 12, 31)
    )
    sane = GammaGamma(p=6.0, q=4.0, v=2000.0)
    diverging = GammaGamma(p=6.0, q=1.0 + 1e-9, v=2000.0)
    assert not _implausible_spend(sane, summary)
    assert _implausible_spend(diverging, summary)


def test_the_report_shows_any_stored_amount(store: Store) -> None:
    """A very large stored prediction is shown to the cent, never a crash."""
    simulate(store, 120, seed=11)
    with store.engine.begin() as conn:
        assert score_clv(conn, NOW, shop=DEFAULT_SHOP).status == "fitted"
        conn.execute(update(profiles).where(profiles.c.id == 1).values(predicted_clv=3.5e40))
    with store.engine.connect() as conn:
        report = predicted_clv_report(conn, shop=DEFAULT_SHOP, limit=1)
    assert report.rows[0][-1] == Decimal("3.5e40").quantize(
        Decimal("0.01"), context=Context(prec=60)
    )
