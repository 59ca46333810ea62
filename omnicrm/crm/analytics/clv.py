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


def _distinct_rows(
    columns: tuple[FloatArray, ...], weights: FloatArray
) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """The distinct rows of parallel columns, each with the summed weight of its copies.

    Rows are sorted by one stable sort per column, last column first: several times
    faster than ``np.lexsort`` on floats, and than ``np.unique(axis=0)``, which compares
    rows as structured values.
    """
    order = np.arange(weights.size)
    for column in reversed(columns):
        order = order[np.argsort(column[order], kind="stable")]
    ordered = tuple(column[order] for column in columns)
    starts = np.zeros(order.size, dtype=bool)
    starts[0] = True
    for column in ordered:
        starts[1:] |= column[1:] != column[:-1]
    first = np.flatnonzero(starts)
    return tuple(column[first] for column in ordered), np.add.reduceat(weights[order], first)


def _dot(u: FloatArray, v: FloatArray) -> float:
    """Sum of products of two long vectors, without BLAS: its threaded dot product
    stalled on a busy machine (tens of times slower than multiplying and summing)."""
    return float(np.multiply(u, v).sum())


class _BgNbdLikelihood:
    """The BG/NBD log-likelihood of weighted rows and its gradient, sharing their work.

    Per customer (FHL 2005, eq. 6; Hardie's note 004):
    ln L = ln[Gamma(r+x)/Gamma(r)] + r ln(alpha) + ln[B(a, b+x)/B(a, b)]
           - (r+x) ln(alpha+T) + 1(x>0) ln(1 + exp(D)),
    D = ln(a/(b+x-1)) + (r+x)(ln(alpha+T) - ln(alpha+t_x)).
    The terms in x alone are summed once per distinct x (a few dozen values) with the
    weight of its rows; only the terms in T and t_x take a pass over the rows, and the
    gradient reuses those passes (``s``, the weight of the "dropped out after t_x"
    branch, is the logistic of D).
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray, w: FloatArray) -> None:
        self.n = float(w.sum())
        self.xs, index = np.unique(x, return_inverse=True)
        index = index.ravel()
        self.wx = np.bincount(index, weights=w, minlength=self.xs.size)
        self.big_t, self.w, self.wx_rows = big_t, w, w * x
        rep = x > 0  # the dropout branch exists only after a repeat purchase
        self.rep = np.flatnonzero(rep)
        self.rep_x, self.rep_t_x = x[rep], t_x[rep]
        self.rep_w, self.rep_index = w[rep], index[rep]

    def __call__(self, params: FloatArray) -> tuple[float, FloatArray]:
        """Total log-likelihood and its gradient with respect to log-parameters."""
        r, alpha, a, b = (float(p) for p in params)
        xs, wx = self.xs, self.wx
        # Every row: -(r+x) ln(alpha+T).
        log_at = np.log(alpha + self.big_t)
        inv_at = 1.0 / (alpha + self.big_t)
        # Rows with repeat purchases: the mixture term.
        inv_atx = 1.0 / (alpha + self.rep_t_x)
        gap = log_at[self.rep] + np.log(inv_atx)
        rx = r + self.rep_x
        rep = xs > 0
        log_ratio = np.zeros_like(xs)  # ln(a/(b+x-1)), needed for x > 0 only
        log_ratio[rep] = np.log(a) - np.log(b + xs[rep] - 1.0)
        d = log_ratio[self.rep_index] + rx * gap
        # ln(1 + e^D) and the logistic of D from one exponential, without overflow.
        e = np.exp(-np.abs(d))
        softplus = np.maximum(d, 0.0) + np.log1p(e)
        inv = 1.0 / (1.0 + e)
        s = self.rep_w * np.where(d >= 0, inv, e * inv)

        w, wx_rows = self.w, self.wx_rows
        ll = (
            wx @ (gammaln(r + xs) + betaln(a, b + xs))
            - self.n * (gammaln(r) + betaln(a, b) - r * np.log(alpha))
            - _dot(r * w + wx_rows, log_at)
            + _dot(self.rep_w, softplus)
        )
        dab = wx @ (digamma(a + b) - digamma(a + b + xs))
        dr = (
            wx @ digamma(r + xs)
            - self.n * (digamma(r) - np.log(alpha))
            - _dot(w, log_at)
            + _dot(s, gap)
        )
        dalpha = (
            self.n * r / alpha
            - _dot(r * w + wx_rows, inv_at)
            + _dot(s * rx, inv_at[self.rep] - inv_atx)
        )
        da = dab + s.sum() / a
        s_per_x = np.bincount(self.rep_index, weights=s, minlength=xs.size)
        db = dab + wx @ (digamma(b + xs) - digamma(b)) - s_per_x[rep] @ (1.0 / (b + xs[rep] - 1.0))
        # Chain rule to log-parameters: d/dlog(theta) = theta * d/dtheta.
        return float(ll), params * np.array([dr, dalpha, da, db])


# --------------------------------------------------------------------------- BG/NBD


@dataclass
class BgNbd:
    """BG/NBD: Poisson purchasing (Gamma(r, alpha) rates), Beta(a, b) dropout."""

    r: float = float("nan")
    alpha: float = float("nan")
    a: float = float("nan")
    b: float = float("nan")
    log_likelihood: float = float("nan")

    @classmethod
    def fit(
        cls,
        x: ArrayLike,
        t_x: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        compress: bool = True,
    ) -> BgNbd:
        """Maximum-likelihood fit; ``weights`` counts identical customers.

        With ``compress`` (the default) identical (x, t_x, T) rows are fitted once, their
        weights summed: the same likelihood, and far less work on day-granular data,
        where a million customers hold about a hundred thousand distinct rows.
        """
        xa, ta, ba = _arrays(x, t_x, T)
        xa, ta, ba = xa.ravel(), ta.ravel(), ba.ravel()
        w = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != xa.shape or not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights: must be finite, non-negative, one per customer")
        if not w.sum() > 0:
            raise ValueError("weights: all zero")
        if compress:
            (xa, ta, ba), w = _distinct_rows((xa, ta, ba), w)
        likelihood = _BgNbdLikelihood(xa, ta, ba, w)
        n = likelihood.n

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ll, grad = likelihood(np.exp(theta))
            if not np.isfinite(ll) or not np.isfinite(grad).all():
                return float("inf"), np.zeros(4)
            return -ll / n, -grad / n

        # Scaling by n keeps the objective O(1) so tolerances mean the same at any size.
        params = _fit_log_params(objective, np.zeros(4))
        ll, _ = likelihood(params)
        r, alpha, a, b = (float(p) for p in params)
        return cls(r=r, alpha=alpha, a=a, b=b, log_likelihood=ll)

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
        n = float(xa.size)
        # The terms in x alone are summed once per distinct x, weighted by its count;
        # the rest are sums over customers, fixed ones computed here once.
        xs, count = np.unique(xa, return_counts=True)
        count = count.astype(np.float64)
        mx = ma * xa
        log_m = np.log(ma)
        sum_log_m, sum_x_log_m = float(log_m.sum()), _dot(xa, log_m)
        xs_log_xs = xs * np.log(xs)

        def terms(params: FloatArray) -> tuple[float, FloatArray]:
            # Density of the mean of x Gamma(p, nu) spends, nu integrated out:
            # ln f = ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m + px ln x
            #        - (px+q) ln(v + m x).
            p, q, v = (float(t) for t in params)
            pxs = p * xs
            log_vmx = np.log(v + mx)
            inv_vmx = 1.0 / (v + mx)
            sum_log_vmx, sum_x_log_vmx = float(log_vmx.sum()), _dot(xa, log_vmx)
            ll = (
                count @ (gammaln(pxs + q) - gammaln(pxs) + p * xs_log_xs)
                + n * (q * np.log(v) - gammaln(q))
                + p * sum_x_log_m
                - sum_log_m
                - p * sum_x_log_vmx
                - q * sum_log_vmx
            )
            dp = (
                count @ (xs * (digamma(pxs + q) - digamma(pxs)) + xs_log_xs)
                + sum_x_log_m
                - sum_x_log_vmx
            )
            dq = count @ digamma(pxs + q) - n * (digamma(q) - np.log(v)) - sum_log_vmx
            dv = n * q / v - p * _dot(xa, inv_vmx) - q * float(inv_vmx.sum())
            return float(ll), params * np.array([dp, dq, dv])

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            with np.errstate(over="ignore", invalid="ignore"):
                ll, grad = terms(np.exp(theta))
            if not np.isfinite(ll) or not np.isfinite(grad).all():
                return float("inf"), np.zeros(3)
            return -ll / n, -grad / n

        params = _fit_log_params(objective, np.zeros(3))
        ll, _ = terms(params)
        p, q, v = (float(t) for t in params)
        return cls(p=p, q=q, v=v, log_likelihood=ll)

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
