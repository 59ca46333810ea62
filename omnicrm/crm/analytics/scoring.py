"""Predicted CLV for every profile with purchases: BG/NBD x Gamma-Gamma (see clv.py).

``score_clv`` reads each profile's purchase days of one shop from the store, fits both
models on all of them, and writes ``profiles.predicted_clv`` (expected spend over the
horizon, discounted) and ``profiles.p_alive`` in one set-based update. The fit, its
parameters and timings go to that shop's ``crm_state`` row under the key ``'clv'``,
which ``predicted_clv_report`` reads back.

Each shop (a client business) has its own model: its customers buy from it at their
own pace, and one shop's customers must never move another shop's predictions.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import (
    Column as SqlColumn,
)
from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from omnicrm.crm.analytics._sql import (
    MONEY_SCALE,
    TOKYO,
    LocalCalendar,
    ShopScope,
    display_name,
    local_date,
    money,
    purchase_days,
    purchases_per_profile,
)
from omnicrm.crm.analytics.clv import (
    BgNbd,
    GammaGamma,
    RfmSummary,
    TransactionColumns,
    predicted_clv,
    rfm_summary,
)
from omnicrm.crm.analytics.reports import Column, Kind, Report
from omnicrm.crm.schema import crm_state, profile_members, profiles

__all__ = ["ClvFit", "predicted_clv_report", "score_clv"]

STATE_KEY = "clv"
WEEK_DAYS = 7


@dataclass(frozen=True)
class ClvFit:
    """What ``score_clv`` did: ``status`` 'fitted', or 'insufficient' / 'failed' with why."""

    status: Literal["fitted", "insufficient", "failed"]
    message: str
    fitted_at: dt.datetime
    customers: int
    repeaters: int
    scored: int = 0
    bgnbd: BgNbd | None = None
    gamma_gamma: GammaGamma | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def state(self, **settings: Any) -> dict[str, Any]:
        """The JSON kept in crm_state['clv']."""
        out: dict[str, Any] = {
            "status": self.status,
            "message": self.message,
            "fitted_at": self.fitted_at.isoformat(),
            "customers": self.customers,
            "repeaters": self.repeaters,
            "scored": self.scored,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            **settings,
        }
        if self.bgnbd is not None:
            b = self.bgnbd
            out["bgnbd"] = {
                "r": b.r,
                "alpha": b.alpha,
                "a": b.a,
                "b": b.b,
                "log_likelihood": b.log_likelihood,
            }
        if self.gamma_gamma is not None:
            g = self.gamma_gamma
            out["gamma_gamma"] = {"p": g.p, "q": g.q, "v": g.v, "log_likelihood": g.log_likelihood}
        return out


def score_clv(
    conn: Connection,
    now: dt.datetime,
    horizon_weeks: float = 52,
    discount: float = 0.10,
    *,
    shop: str,
    tz: ZoneInfo = TOKYO,
    min_customers: int = 30,
    min_repeaters: int = 10,
) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on the purchases up to ``now`` of every profile of
    ``shop`` and write ``predicted_clv`` and ``p_alive`` for each of them with purchases.

    Time is in weeks and purchases are counted per shop-local day (as clv.py does);
    ``discount`` is an annual rate, applied per week. With fewer than ``min_customers``
    customers or ``min_repeaters`` customers who came back, or when a fit fails, nothing
    is predicted: both columns are set to NULL for every profile of the shop, and the
    returned ``ClvFit`` (also stored in the shop's crm_state['clv']) says why. Other
    shops' profiles and fits are left as they are. Runs in the caller's
    transaction.
    """
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    if not np.isfinite(horizon_weeks) or horizon_weeks <= 0:
        raise ValueError("horizon_weeks: must be a positive number")
    if not np.isfinite(discount) or discount < 0:
        raise ValueError("discount: must be a non-negative annual rate")
    settings = {
        "horizon_weeks": horizon_weeks,
        "discount": discount,
        "timezone": tz.key,
        "calibration_end": now.astimezone(tz).date().isoformat(),
    }
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    ids, days, amounts = _purchase_days(conn, now, tz, shop)
    seconds["read"] = time.perf_counter() - started
    customers = int(np.unique(ids).size) if ids.size else 0

    def give_up(status: Literal["insufficient", "failed"], why: str, repeaters: int) -> ClvFit:
        _clear_scores(conn, shop)
        fit = ClvFit(status, why, now, customers, repeaters, seconds=seconds)
        _save_state(conn, shop, fit.state(**settings), now)
        return fit

    if customers < min_customers:
        return give_up(
            "insufficient",
            f"too little data to fit a CLV model: {customers} customer(s) with purchases, "
            f"at least {min_customers} needed",
            0,
        )
    started = time.perf_counter()
    summary = rfm_summary(
        TransactionColumns(ids, days, amounts),
        np.datetime64(now.astimezone(tz).date(), "D"),
        unit_days=WEEK_DAYS,
    )
    seconds["rfm_summary"] = time.perf_counter() - started
    repeaters = int((summary.x > 0).sum())
    if repeaters < min_repeaters:
        return give_up(
            "insufficient",
            f"too little data to fit a CLV model: {repeaters} of {customers} customers came "
            f"back for a second purchase day, at least {min_repeaters} needed",
            repeaters,
        )
    try:
        started = time.perf_counter()
        bgnbd = BgNbd.fit(summary.x, summary.t_x, summary.T)
        seconds["bgnbd_fit"] = time.perf_counter() - started
        started = time.perf_counter()
        gg = GammaGamma.fit(summary.x, summary.m)
        seconds["gamma_gamma_fit"] = time.perf_counter() - started
        started = time.perf_counter()
        weekly = (1.0 + discount) ** (WEEK_DAYS / 365.25) - 1.0
        with np.errstate(all="ignore"):
            clv = _predict(bgnbd, gg, summary, horizon_weeks, weekly)
            alive = bgnbd.p_alive(summary.x, summary.t_x, summary.T)
        seconds["predict"] = time.perf_counter() - started
    except (ValueError, RuntimeError) as exc:
        return give_up("failed", f"the CLV model could not be fitted: {exc}", repeaters)
    if not (np.isfinite(clv).all() and np.isfinite(alive).all()) or _implausible_spend(gg, summary):
        return give_up(
            "failed",
            "the fitted CLV model is degenerate and predicts nothing finite "
            f"(BG/NBD r={bgnbd.r:.4g} alpha={bgnbd.alpha:.4g} a={bgnbd.a:.4g} b={bgnbd.b:.4g}; "
            f"Gamma-Gamma p={gg.p:.4g} q={gg.q:.4g} v={gg.v:.4g}): the customers' purchase "
            "histories differ too little from one another for these models",
            repeaters,
        )
    started = time.perf_counter()
    _write_scores(conn, shop, summary.customer_ids.astype(np.int64), clv, alive)
    seconds["write"] = time.perf_counter() - started
    fit = ClvFit(
        "fitted",
        f"fitted on {customers:,} customers ({repeaters:,} repeaters)",
        now,
        customers,
        repeaters,
        scored=int(summary.customer_ids.size),
        bgnbd=bgnbd,
        gamma_gamma=gg,
        seconds=seconds,
    )
    _save_state(conn, shop, fit.state(**settings), now)
    return fit


def _predict(
    bgnbd: BgNbd, gg: GammaGamma, summary: RfmSummary, horizon: float, rate: float
) -> np.ndarray[Any, Any]:
    """predicted_clv for every customer, computing the costly part once per distinct
    (x, t_x, T).

    CLV is (discounted expected purchases, a function of x, t_x, T) x (expected spend
    per purchase, a function of x, m). Day-granular histories repeat (x, t_x, T) a lot,
    while the discounted sum evaluates a hypergeometric function once per week of the
    horizon; so the first factor is taken from predicted_clv on the distinct triples
    (with m = 0, divided by the spend it assumed) and multiplied back out.
    """
    triples = np.stack([summary.x, summary.t_x, summary.T], axis=1)
    unique, inverse = np.unique(triples, axis=0, return_inverse=True)
    ux, ut, uT = unique[:, 0], unique[:, 1], unique[:, 2]
    zero = np.zeros(ux.shape)
    per_unit = predicted_clv(bgnbd, gg, ux, ut, uT, zero, horizon, rate) / (
        gg.expected_average_value(ux, zero)
    )
    return np.asarray(
        per_unit[inverse.ravel()] * gg.expected_average_value(summary.x, summary.m),
        dtype=np.float64,
    )


def _purchase_days(
    conn: Connection, now: dt.datetime, tz: ZoneInfo, shop: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(profile id, local day, amount) per profile of ``shop`` and purchase day, as numpy
    arrays."""
    calendar = LocalCalendar.for_connection(conn, tz, shop=shop)
    per_day = purchase_days(calendar, now, ShopScope.of(conn, shop))
    rows = conn.execute(
        select(per_day.c.profile_id, calendar.day_number(per_day.c.day), per_day.c.units)
    ).all()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype("datetime64[D]"), empty.astype(np.float64)
    # Columns from plain tuples: numpy probing SQLAlchemy Row objects is very slow.
    ids, days, units = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
    amounts = units.astype(np.float64) / MONEY_SCALE
    if (amounts < 0).any():
        # A negative day total is a refund booked as an order; the spend model cannot
        # take it, and it is not spend: count it as a purchase of nothing.
        amounts = np.maximum(amounts, 0.0)
    return ids, days.astype("datetime64[D]"), amounts


def _clear_scores(conn: Connection, shop: str, *where: ColumnElement[bool]) -> None:
    """NULL the scores of every profile of ``shop`` that has any (and matches ``where``)."""
    conn.execute(
        update(profiles)
        .where(profiles.c.shop == shop)
        .where(or_(profiles.c.predicted_clv.is_not(None), profiles.c.p_alive.is_not(None)))
        .where(*where)
        .values(predicted_clv=None, p_alive=None)
    )


def _write_scores(
    conn: Connection,
    shop: str,
    ids: np.ndarray[Any, Any],
    clv: np.ndarray[Any, Any],
    alive: np.ndarray[Any, Any],
) -> None:
    """Set the scores of ``ids`` and NULL those of everyone else in ``shop``, set-based.

    The new scores go into a temporary table (on PostgreSQL in one statement from three
    arrays), then two UPDATEs join against it.
    """
    scores = Table(
        "_clv_scores",
        MetaData(),
        SqlColumn("profile_id", Integer, primary_key=True, autoincrement=False),
        SqlColumn("predicted_clv", Float, nullable=False),
        SqlColumn("p_alive", Float, nullable=False),
        prefixes=["TEMPORARY"],
    )
    scores.drop(conn, checkfirst=True)
    scores.create(conn)
    try:
        if conn.dialect.name == "postgresql":
            unnest = (
                func.unnest(
                    bindparam("ids", ids.tolist(), type_=ARRAY(Integer)),
                    bindparam("clv", clv.tolist(), type_=ARRAY(Float)),
                    bindparam("alive", alive.tolist(), type_=ARRAY(Float)),
                )
                .table_valued("profile_id", "predicted_clv", "p_alive")
                .render_derived()
            )
            conn.execute(
                insert(scores).from_select(
                    ["profile_id", "predicted_clv", "p_alive"],
                    select(unnest.c.profile_id, unnest.c.predicted_clv, unnest.c.p_alive),
                )
            )
        else:
            conn.execute(
                insert(scores),
                [
                    {"profile_id": i, "predicted_clv": c, "p_alive": a}
                    for i, c, a in zip(ids.tolist(), clv.tolist(), alive.tolist(), strict=True)
                ],
            )
        _clear_scores(conn, shop, ~exists().where(scores.c.profile_id == profiles.c.id))
        conn.execute(
            update(profiles)
            .where(profiles.c.id == scores.c.profile_id, profiles.c.shop == shop)
            .values(predicted_clv=scores.c.predicted_clv, p_alive=scores.c.p_alive)
        )
    finally:
        scores.drop(conn)


def _save_state(conn: Connection, shop: str, value: dict[str, Any], now: dt.datetime) -> None:
    mine = and_(crm_state.c.shop == shop, crm_state.c.key == STATE_KEY)
    conn.execute(delete(crm_state).where(mine))
    conn.execute(insert(crm_state).values(shop=shop, key=STATE_KEY, value=value, updated_at=now))


def clv_state(conn: Connection, *, shop: str) -> dict[str, Any] | None:
    """The last fit of ``shop`` as stored in its crm_state['clv'], or None before the
    first."""
    value = conn.execute(
        select(crm_state.c.value).where(crm_state.c.shop == shop, crm_state.c.key == STATE_KEY)
    ).scalar_one_or_none()
    return dict(value) if value is not None else None


# --------------------------------------------------------------------------- report


def predicted_clv_report(
    conn: Connection, *, shop: str, limit: int = 20, currency: str = "JPY"
) -> Report:
    """The last CLV fit of ``shop``: its parameters, the top customers and the
    distribution, amounts in the shop's ``currency``."""
    if limit < 1:
        raise ValueError("limit: must be at least 1")
    columns = (
        Column("profile", Kind.ID),
        Column("name"),
        Column("orders", Kind.INT),
        Column("spend to date", Kind.MONEY),
        Column("last purchase", Kind.DATE),
        Column("P(alive)", Kind.RATIO),
        Column("predicted CLV", Kind.MONEY),
    )
    state = clv_state(conn, shop=shop)
    if state is None:
        return Report(
            "Predicted CLV",
            columns,
            notes=("no CLV model fitted yet: run `omnicrm report clv --fit` or a CRM refresh",),
            shop=shop,
        )
    title = f"Predicted CLV over {state['horizon_weeks']:g} weeks: top {limit} customers"
    if state["status"] != "fitted":
        return Report(
            title,
            columns,
            notes=(f"{state['message']} (as of {state['fitted_at']})",),
            shop=shop,
        )
    zone = ZoneInfo(state.get("timezone") or "Asia/Tokyo")
    top = conn.execute(
        select(
            profiles.c.id,
            profiles.c.family_name,
            profiles.c.given_name,
            profiles.c.p_alive,
            profiles.c.predicted_clv,
        )
        .where(profiles.c.shop == shop, profiles.c.predicted_clv.is_not(None))
        .order_by(profiles.c.predicted_clv.desc(), profiles.c.id)
        .limit(limit)
    ).all()
    history = _history(conn, shop, [r.id for r in top], state)
    rows = []
    for r in top:
        n_orders, spend, last = history.get(r.id, (0, None, None))
        rows.append(
            (
                r.id,
                display_name(r.family_name, r.given_name),
                n_orders,
                spend,
                local_date(last, zone),
                r.p_alive,
                _amount(r.predicted_clv),
            )
        )
    b, g = state["bgnbd"], state["gamma_gamma"]
    notes = (
        f"fitted {state['fitted_at']} on {state['customers']:,} customers "
        f"({state['repeaters']:,} with repeat purchases), calibration end "
        f"{state['calibration_end']}, discount {state['discount']:.1%} a year",
        f"BG/NBD r={b['r']:.4f} alpha={b['alpha']:.4f} a={b['a']:.4f} b={b['b']:.4f}; "
        f"Gamma-Gamma p={g['p']:.4f} q={g['q']:.4f} v={g['v']:.4f}",
        "predicted CLV = expected spend over the horizon (BG/NBD purchases x Gamma-Gamma "
        "spend per purchase), discounted; orders and spend to date up to the calibration end",
        f"amounts in {currency}, the shop's currency",
    )
    return Report(
        title,
        columns,
        tuple(rows),
        notes,
        parts=(_distribution(conn, shop, currency),),
        shop=shop,
        currency=currency,
    )


def _history(
    conn: Connection, shop: str, ids: list[int], state: dict[str, Any]
) -> dict[int, tuple[int, Decimal | None, dt.datetime | None]]:
    """Orders, exact spend and last purchase of ``ids`` (profiles of ``shop``), up to
    the fit's calibration."""
    if not ids:
        return {}
    fitted_at = dt.datetime.fromisoformat(state["fitted_at"])
    found = conn.execute(
        purchases_per_profile(fitted_at, conn.dialect.name, ShopScope.of(conn, shop)).where(
            profile_members.c.profile_id.in_(ids)
        )
    ).all()
    return {r.profile_id: (r.orders, money(r.units), r.last) for r in found}


def _implausible_spend(gg: GammaGamma, summary: RfmSummary) -> bool:
    """Whether the Gamma-Gamma fit puts the population's mean spend per purchase,
    p·v/(q-1), far beyond any spend seen: with q barely above 1 it diverges, and every
    one-time buyer would be predicted an absurd (if finite) CLV."""
    seen = float(summary.m.max()) if summary.m.size else 0.0
    mean = gg.p * gg.v / (gg.q - 1.0)
    return not np.isfinite(mean) or mean > 100.0 * max(seen, 1.0)


# Enough digits for any finite float stored as an amount, to the cent.
_AMOUNTS = Context(prec=400)


def _amount(value: float | None) -> Decimal | None:
    return (
        None if value is None else Decimal(repr(value)).quantize(Decimal("0.01"), context=_AMOUNTS)
    )


def _distribution(conn: Connection, shop: str, currency: str) -> Report:
    """Deciles of predicted CLV in ``shop``: customers, range, mean and share of the
    total."""
    ranked = (
        select(
            profiles.c.predicted_clv.label("clv"),
            func.ntile(10).over(order_by=profiles.c.predicted_clv.desc()).label("decile"),
        )
        .where(profiles.c.shop == shop, profiles.c.predicted_clv.is_not(None))
        .subquery("ranked")
    )
    found = conn.execute(
        select(
            ranked.c.decile,
            func.count().label("customers"),
            func.min(ranked.c.clv).label("low"),
            func.max(ranked.c.clv).label("high"),
            func.sum(ranked.c.clv).label("total"),
        )
        .group_by(ranked.c.decile)
        .order_by(ranked.c.decile)
    ).all()
    grand = sum(r.total for r in found) or 0.0
    rows = tuple(
        (
            f"top {r.decile * 10}%" if r.decile == 1 else f"{(r.decile - 1) * 10}-{r.decile * 10}%",
            r.customers,
            _amount(r.low),
            _amount(r.high),
            _amount(r.total / r.customers),
            r.total / grand if grand else None,
        )
        for r in found
    )
    return Report(
        "Predicted CLV by decile (customers ranked by predicted CLV)",
        (
            Column("decile"),
            Column("customers", Kind.INT),
            Column("from", Kind.MONEY),
            Column("to", Kind.MONEY),
            Column("mean", Kind.MONEY),
            Column("share of total", Kind.RATIO),
        ),
        rows,
        shop=shop,
        currency=currency,
    )
