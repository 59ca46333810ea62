"""Predicted customer lifetime value: BG/NBD purchases times Gamma-Gamma spend.

Models (Fader, Hardie & Lee 2005, "Counting your customers the easy way"; Fader &
Hardie, "The Gamma-Gamma model of monetary value") fitted by maximum likelihood.
Time is measured in "periods" of ``unit_days`` days (weeks by default), and
each customer's clock starts at their first purchase.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

__all__ = [
    "BgNbd",
    "GammaGamma",
    "RfmSummary",
    "TransactionColumns",
    "predicted_clv",
    "rfm_summary",
]


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class TransactionColumns:
    """Transactions as three parallel columns (the fast path for large inputs).

    ``dates`` may hold ``datetime64`` values of any unit or ``date``/``datetime``
    objects; times of day are dropped (purchases are counted per day).
    """

    customer_ids: ArrayLike
    dates: ArrayLike
    amounts: ArrayLike


@dataclass(frozen=True)
class RfmSummary:
    """Per-customer calibration summary, one entry per customer (sorted by id).

    ``x``: repeat purchases (distinct purchase days after the first);
    ``t_x``: periods from first to last purchase; ``T``: periods from first
    purchase to the calibration end; ``m``: mean spend per repeat purchase day
    (0 when ``x == 0``).
    """

    customer_ids: npt.NDArray[Any]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _as_day(value: _dt.date | np.datetime64 | str) -> np.datetime64:
    # numpy refuses to truncate a datetime with a time of day to "D" directly.
    if isinstance(value, np.datetime64):
        day: np.datetime64 = value.astype("datetime64[D]")
        return day
    if isinstance(value, _dt.datetime):
        value = value.date()
    return np.datetime64(value, "D")


def _columns(
    transactions: TransactionColumns | Iterable[tuple[Hashable, Any, float]],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.datetime64], FloatArray]:
    if isinstance(transactions, TransactionColumns):
        ids = np.asarray(transactions.customer_ids)
        dates = np.asarray(transactions.dates)
        amounts = np.asarray(transactions.amounts, dtype=np.float64)
    else:
        rows = list(transactions)
        if not rows:
            raise ValueError("transactions: empty input")
        ids_l, dates_l, amounts_l = zip(*rows, strict=True)
        ids = np.asarray(ids_l)
        dates = np.asarray(dates_l)
        amounts = np.asarray(amounts_l, dtype=np.float64)
    if ids.ndim != 1 or dates.shape != ids.shape or amounts.shape != ids.shape:
        raise ValueError("transactions: customer_ids, dates and amounts must be 1-D, same length")
    if ids.size == 0:
        raise ValueError("transactions: empty input")
    try:
        days = dates.astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dates: cannot be read as dates ({exc})") from exc
    if np.isnat(days).any():
        raise ValueError("dates: missing (NaT) values")
    if not np.isfinite(amounts).all():
        raise ValueError("amount: non-finite values")
    if (amounts < 0).any():
        raise ValueError("amount: negative values (record refunds against the original order)")
    return ids, days, amounts


def rfm_summary(
    transactions: TransactionColumns | Iterable[tuple[Hashable, Any, float]],
    calibration_end: _dt.date | np.datetime64 | str,
    unit_days: float = 7,
) -> RfmSummary:
    """Summarise transactions into (x, t_x, T, m) per customer, vectorised.

    ``transactions`` is either ``TransactionColumns`` or an iterable of
    ``(customer_id, date_or_datetime, amount)``. Transactions after
    ``calibration_end`` (inclusive end day) are ignored, so customers whose
    first purchase is later do not appear. Several transactions on one day are
    one purchase whose amount is their sum.
    """
    if unit_days <= 0:
        raise ValueError("unit_days: must be positive")
    ids, days, amounts = _columns(transactions)
    end = _as_day(calibration_end)
    keep = days <= end
    if not keep.all():
        ids, days, amounts = ids[keep], days[keep], amounts[keep]
    if ids.size == 0:
        raise ValueError("transactions: none on or before calibration_end")

    # Integer customer codes make everything below plain integer sorting.
    uniq_ids, code = np.unique(ids, return_inverse=True)
    code = code.astype(np.int64)
    day = days.astype(np.int64)
    order = np.lexsort((day, code))
    code, day, amt = code[order], day[order], amounts[order]

    # Collapse to one row per (customer, day): a purchase occasion.
    new_day = np.empty(code.size, dtype=bool)
    new_day[0] = True
    new_day[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new_day)
    d_code, d_day = code[starts], day[starts]
    d_amt = np.add.reduceat(amt, starts)

    # Rows are sorted by day within customer, so the first/last row of each
    # customer's block are the first/last purchase days.
    n_cust = uniq_ids.size
    counts = np.bincount(d_code, minlength=n_cust)
    first_idx = np.concatenate(([0], np.cumsum(counts)[:-1]))
    last_idx = first_idx + counts - 1
    first_day, last_day = d_day[first_idx], d_day[last_idx]
    total = np.bincount(d_code, weights=d_amt, minlength=n_cust)

    x = (counts - 1).astype(np.float64)
    t_x = (last_day - first_day).astype(np.float64) / unit_days
    big_t = (end.astype(np.int64) - first_day).astype(np.float64) / unit_days
    repeat_spend = total - d_amt[first_idx]
    m = np.divide(repeat_spend, x, out=np.zeros(n_cust), where=x > 0)
    return RfmSummary(customer_ids=uniq_ids, x=x, t_x=t_x, T=big_t, m=m)


# --------------------------------------------------------------------------- validation


def _arrays(
    x: ArrayLike, t_x: ArrayLike, big_t: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    xa = np.asarray(x, dtype=np.float64)
    ta = np.asarray(t_x, dtype=np.float64)
    ba = np.asarray(big_t, dtype=np.float64)
    xa, ta, ba = np.broadcast_arrays(xa, ta, ba)
    if xa.size == 0:
        raise ValueError("x: empty input")
    for name, arr in (("x", xa), ("t_x", ta), ("T", ba)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: non-finite values")
        if (arr < 0).any():
            raise ValueError(f"{name}: negative values")
    if (xa != np.floor(xa)).any():
        raise ValueError("x: must be whole numbers of purchases")
    # Tiny tolerance: t_x and T are both divided by unit_days.
    if (ta > ba * (1 + 1e-12) + 1e-12).any():
        raise ValueError("t_x: greater than T (last purchase after the calibration end)")
    return xa, ta, ba


def _check_positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be a positive number, got {value!r}")
    return float(value)


def _fit_log_params(
    neg_ll_and_grad: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
) -> FloatArray:
    # Optimising log-parameters keeps them positive without bounds; the
    # analytic gradient makes L-BFGS-B converge tightly (3-decimal agreement).
    res = minimize(
        neg_ll_and_grad,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    if not np.isfinite(res.fun):
        raise RuntimeError(f"likelihood maximisation failed: {res.message}")
    return np.exp(np.asarray(res.x, dtype=np.float64))


# --------------------------------------------------------------------------- BG/NBD


@dataclass
class BgNbd:
    """BG/NBD: Poisson purchasing (Gamma(r, alpha) rates), Beta(a, b) dropout."""

    r: float = float("nan")
    alpha: float = float("nan")
    a: float = float("nan")
    b: float = float("nan")
    log_likelihood: float = float("nan")

    @staticmethod
    def _ll_terms(
        params: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Per-customer log-likelihood and its gradient w.r.t. log-parameters."""
        r, alpha, a, b = params
        log_at = np.log(alpha + big_t)
        log_atx = np.log(alpha + t_x)
        rx = r + x
        # ln L = ln[Gamma(r+x)alpha^r/Gamma(r)] + ln B(a,b+x)/B(a,b) - (r+x)ln(alpha+T)
        #        + ln(1 + 1(x>0)·exp(D)), with
        # D = ln(a/(b+x-1)) + (r+x)(ln(alpha+T) - ln(alpha+t_x)); the ratio
        # B(a+1,b+x-1)/B(a,b+x) = a/(b+x-1) avoids a second betaln.
        pos = x > 0
        d = np.where(pos, np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)), 0.0) + rx * (
            log_at - log_atx
        )
        ll = (
            gammaln(rx)
            - gammaln(r)
            + r * np.log(alpha)
            + betaln(a, b + x)
            - betaln(a, b)
            - rx * log_at
            + np.where(pos, np.logaddexp(0.0, d), 0.0)
        )
        # s = weight of the "dropped out after t_x" branch in the mixture.
        s = np.where(pos, 0.5 * (1.0 + np.tanh(0.5 * d)), 0.0)
        dr = digamma(rx) - digamma(r) + np.log(alpha) - log_at + s * (log_at - log_atx)
        dalpha = (
            r / alpha
            - rx / (alpha + big_t)
            + s * rx * (1.0 / (alpha + big_t) - 1.0 / (alpha + t_x))
        )
        dab = digamma(a + b) - digamma(a + b + x)
        da = dab + s / a
        db = dab + digamma(b + x) - digamma(b) - s / np.where(pos, b + x - 1, 1.0)
        # Chain rule to log-parameters: d/dlogθ = θ·d/dθ.
        grad = np.stack([r * dr, alpha * dalpha, a * da, b * db])
        return ll, grad

    @classmethod
    def fit(
        cls, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
    ) -> BgNbd:
        """Maximum-likelihood fit; ``weights`` counts identical customers."""
        xa, ta, ba = _arrays(x, t_x, T)
        xa, ta, ba = xa.ravel(), ta.ravel(), ba.ravel()
        w = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != xa.shape or (w < 0).any():
            raise ValueError("weights: must be non-negative, one per customer")
        n = float(w.sum())
        if weights is None and xa.size > 10_000:
            # Day-granular data repeat (x, t_x, T) a lot; fitting the distinct
            # triples with counts as weights is the same likelihood, far cheaper.
            uniq, inverse = np.unique(np.stack([xa, ta, ba], axis=1), axis=0, return_inverse=True)
            if uniq.shape[0] < xa.size // 2:
                w = np.bincount(inverse.ravel(), minlength=uniq.shape[0]).astype(np.float64)
                xa, ta, ba = uniq[:, 0].copy(), uniq[:, 1].copy(), uniq[:, 2].copy()

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            with np.errstate(over="ignore", invalid="ignore"):
                ll, grad = cls._ll_terms(np.exp(theta), xa, ta, ba)
            value = -float(w @ ll) / n
            if not np.isfinite(value):
                return float("inf"), np.zeros(4)
            return value, -(grad @ w) / n

        # Scaling by n keeps the objective O(1) so tolerances mean the same at any size.
        params = _fit_log_params(objective, np.zeros(4))
        ll, _ = cls._ll_terms(params, xa, ta, ba)
        r, alpha, a, b = (float(p) for p in params)
        return cls(r=r, alpha=alpha, a=a, b=b, log_likelihood=float(w @ ll))

    def _params(self) -> tuple[float, float, float, float]:
        return (
            _check_positive("r", self.r),
            _check_positive("alpha", self.alpha),
            _check_positive("a", self.a),
            _check_positive("b", self.b),
        )

    def _dropout_odds(self, xa: FloatArray, ta: FloatArray, ba: FloatArray) -> FloatArray:
        # 1(x>0)·a/(b+x-1)·((alpha+T)/(alpha+t_x))^(r+x): odds of "dead" vs "alive".
        r, alpha, a, b = self._params()
        pos = xa > 0
        log_odds = (
            np.log(a)
            - np.log(np.where(pos, b + xa - 1, 1.0))
            + (r + xa) * (np.log(alpha + ba) - np.log(alpha + ta))
        )
        return np.where(pos, np.exp(log_odds), 0.0)

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(still active at T | x, t_x, T); exactly 1 when x == 0.

        (In BG/NBD dropout happens only right after a repeat purchase, so a
        customer with no repeat purchase cannot have dropped out.)
        """
        xa, ta, ba = _arrays(x, t_x, T)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + self._dropout_odds(xa, ta, ba))

    def expected_purchases(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10).

        Undefined at exactly a == 1 (removable singularity, not handled).
        """
        r, alpha, a, b = self._params()
        xa, ta, ba = _arrays(x, t_x, T)
        tt = np.asarray(t, dtype=np.float64)
        if (tt < 0).any() or not np.isfinite(tt).all():
            raise ValueError("t: must be finite and non-negative")
        ab = a + b + xa - 1
        z = tt / (alpha + ba + tt)
        head = ab / (a - 1)
        tail = 1.0 - np.exp((r + xa) * (np.log(alpha + ba) - np.log(alpha + ba + tt))) * hyp2f1(
            r + xa, b + xa, ab, z
        )
        with np.errstate(over="ignore"):
            out = head * tail / (1.0 + self._dropout_odds(xa, ta, ba))
        return np.asarray(out, dtype=np.float64)

    def expected_purchases_new(self, t: ArrayLike) -> FloatArray:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 7)."""
        r, alpha, a, b = self._params()
        tt = np.asarray(t, dtype=np.float64)
        z = tt / (alpha + tt)
        out = (
            (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + tt)) ** r * hyp2f1(r, b, a + b - 1, z))
        )
        return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- Gamma-Gamma


@dataclass
class GammaGamma:
    """Gamma-Gamma spend model: per-purchase spend Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float = float("nan")
    q: float = float("nan")
    v: float = float("nan")
    log_likelihood: float = float("nan")

    @staticmethod
    def _validate(x: ArrayLike, m: ArrayLike) -> tuple[FloatArray, FloatArray]:
        xa = np.asarray(x, dtype=np.float64).ravel()
        ma = np.asarray(m, dtype=np.float64).ravel()
        if xa.shape != ma.shape:
            raise ValueError("m: must have one value per customer (same length as x)")
        if xa.size == 0:
            raise ValueError("x: empty input")
        if not (np.isfinite(xa).all() and np.isfinite(ma).all()):
            raise ValueError("x/m: non-finite values")
        if (xa < 0).any():
            raise ValueError("x: negative values")
        if (ma < 0).any():
            raise ValueError("m: negative values")
        return xa, ma

    @classmethod
    def fit(cls, x: ArrayLike, m: ArrayLike) -> GammaGamma:
        """Fit on customers with x > 0 and m > 0 (others carry no spend evidence).

        m is the mean spend per repeat purchase; a zero mean has zero density
        under a Gamma, so such customers are left out rather than breaking the fit.
        """
        xa, ma = cls._validate(x, m)
        use = (xa > 0) & (ma > 0)
        if not use.any():
            raise ValueError("x: no customer with repeat purchases and positive spend")
        xa, ma = xa[use], ma[use]
        log_m, log_x = np.log(ma), np.log(xa)
        n = float(xa.size)

        def terms(params: FloatArray) -> tuple[FloatArray, FloatArray]:
            p, q, v = params
            px = p * xa
            log_vmx = np.log(v + ma * xa)
            # Density of the mean of x Gamma(p, nu) spends, nu integrated out.
            ll = (
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(v)
                + (px - 1) * log_m
                + px * log_x
                - (px + q) * log_vmx
            )
            dp = xa * (digamma(px + q) - digamma(px) + log_m + log_x - log_vmx)
            dq = digamma(px + q) - digamma(q) + np.log(v) - log_vmx
            dv = q / v - (px + q) / (v + ma * xa)
            return ll, np.stack([p * dp, q * dq, v * dv])

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            with np.errstate(over="ignore", invalid="ignore"):
                ll, grad = terms(np.exp(theta))
            value = -float(ll.sum()) / n
            if not np.isfinite(value):
                return float("inf"), np.zeros(3)
            return value, -grad.sum(axis=1) / n

        params = _fit_log_params(objective, np.zeros(3))
        ll, _ = terms(params)
        p, q, v = (float(t) for t in params)
        return cls(p=p, q=q, v=v, log_likelihood=float(ll.sum()))

    def expected_average_value(self, x: ArrayLike, m: ArrayLike) -> FloatArray:
        """E[spend per purchase | x, m]: weighted between population mean and m.

        = (q-1)/(px+q-1) · pv/(q-1) + px/(px+q-1) · m = p(v + x·m)/(px+q-1);
        with x == 0 this is the population mean pv/(q-1) (needs q > 1).
        """
        p = _check_positive("p", self.p)
        q = _check_positive("q", self.q)
        v = _check_positive("v", self.v)
        xa, ma = self._validate(x, m)
        if q <= 1:
            raise ValueError("q: must exceed 1 for a finite expected spend")
        return np.asarray(p * (v + xa * ma) / (p * xa + q - 1), dtype=np.float64)


# --------------------------------------------------------------------------- CLV


def predicted_clv(
    bgnbd: BgNbd,
    gg: GammaGamma,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    horizon_periods: float,
    discount_rate_per_period: float = 0.0,
) -> FloatArray:
    """Expected spend over the next ``horizon_periods`` periods, per customer.

    CLV = Σ_{k=1..K} [E(Y(t_k)) - E(Y(t_{k-1}))] · E(M | x, m) / (1 + d)^{t_k},
    with t_k = min(k, horizon), K = ceil(horizon), t_0 = 0, d the discount rate
    per period: each period's expected purchases are discounted to today at the
    end of that period. With d = 0 the sum telescopes to E(Y(horizon))·E(M).
    """
    if not np.isfinite(horizon_periods) or horizon_periods < 0:
        raise ValueError("horizon_periods: must be finite and non-negative")
    if not np.isfinite(discount_rate_per_period) or discount_rate_per_period < 0:
        raise ValueError("discount_rate_per_period: must be finite and non-negative")
    xa, ta, ba = _arrays(x, t_x, T)
    value = gg.expected_average_value(xa, np.broadcast_to(np.asarray(m, np.float64), xa.shape))
    value = value.reshape(xa.shape)
    if discount_rate_per_period == 0.0:
        return bgnbd.expected_purchases(horizon_periods, xa, ta, ba) * value
    steps = int(np.ceil(horizon_periods))
    total = np.zeros(xa.shape)
    prev = np.zeros(xa.shape)
    for k in range(1, steps + 1):
        tk = min(float(k), float(horizon_periods))
        cum = bgnbd.expected_purchases(tk, xa, ta, ba)
        total += (cum - prev) / (1.0 + discount_rate_per_period) ** tk
        prev = cum
    return total * value
