"""Predicted CLV: BG/NBD + Gamma-Gamma, checked against CDNOW and simulations."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pytest
from scipy.optimize import approx_fprime  # type: ignore[import-untyped]
from scipy.special import gammaln  # type: ignore[import-untyped]

from omnicrm.crm.analytics.clv import (
    BgNbd,
    GammaGamma,
    TransactionColumns,
    _BgNbdLikelihood,
    predicted_clv,
    rfm_summary,
)
from tests.support.reference import REFERENCE

CDNOW = REFERENCE / "cdnow" / "CDNOW_sample.txt"
CAL_END = dt.date(1997, 9, 30)

needs_cdnow = pytest.mark.skipif(
    not CDNOW.is_file(),
    reason=f"CDNOW reference data not found at {CDNOW} (../shared/reference is absent)",
)


def _cdnow_rows() -> list[tuple[int, dt.date, float]]:
    rows = []
    for line in CDNOW.read_text().splitlines():
        _master, sample_id, ymd, _cds, dollars = line.split()
        day = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
        rows.append((int(sample_id), day, float(dollars)))
    return rows


@pytest.fixture(scope="module")
def cdnow() -> list[tuple[int, dt.date, float]]:
    return _cdnow_rows()


# --------------------------------------------------------------------------- CDNOW


@needs_cdnow
def test_cdnow_summary_matches_independent_count(cdnow: list[tuple[int, dt.date, float]]) -> None:
    assert len(cdnow) == 6919
    s = rfm_summary(cdnow, CAL_END)
    assert len(s) == 2357

    # Independent plain-Python recount: distinct days per customer in the calibration.
    per_day: dict[int, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for cid, day, amount in cdnow:
        if day <= CAL_END:
            per_day[cid][day] += amount
    assert sorted(per_day) == s.customer_ids.tolist()
    for i, cid in enumerate(s.customer_ids.tolist()):
        days = sorted(per_day[cid])
        assert s.x[i] == len(days) - 1
        assert s.t_x[i] == pytest.approx((days[-1] - days[0]).days / 7)
        assert s.T[i] == pytest.approx((CAL_END - days[0]).days / 7)
        repeat = [per_day[cid][d] for d in days[1:]]
        assert s.m[i] == pytest.approx(sum(repeat) / len(repeat) if repeat else 0.0)

    # Known totals (FHL 2005 sample): 2,457 repeat purchases, 946 repeaters,
    # the whole cohort first bought in Jan-Mar 1997 (T between 26.6 and 39 weeks).
    assert s.x.sum() == 2457
    assert int((s.x > 0).sum()) == 946
    assert s.T.min() >= (CAL_END - dt.date(1997, 3, 31)).days / 7
    assert s.T.max() == pytest.approx((CAL_END - dt.date(1997, 1, 1)).days / 7)
    # Transaction rows collapse to fewer purchase days (same-day purchases merge).
    cal_rows = sum(1 for _, day, _ in cdnow if day <= CAL_END)
    assert s.x.sum() + len(s) < cal_rows


@needs_cdnow
def test_cdnow_bgnbd_reproduces_published_parameters(
    cdnow: list[tuple[int, dt.date, float]],
) -> None:
    s = rfm_summary(cdnow, CAL_END)
    model = BgNbd.fit(s.x, s.t_x, s.T)
    assert round(model.r, 3) == 0.243
    assert round(model.alpha, 3) == 4.414
    assert round(model.a, 3) == 0.793
    assert round(model.b, 3) == 2.426
    assert round(model.log_likelihood, 1) == -9582.4
    # FHL 2005 worked example: x=2, t_x=30.43, T=38.86 -> 1.226 purchases in 39 weeks.
    assert model.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=1e-3)


@needs_cdnow
def test_cdnow_gamma_gamma_matches_hardie_note(cdnow: list[tuple[int, dt.date, float]]) -> None:
    s = rfm_summary(cdnow, CAL_END)
    gg = GammaGamma.fit(s.x, s.m)
    # Fader & Hardie's Gamma-Gamma note: p=6.25, q=3.74, v=15.44 (946 repeaters).
    assert gg.p == pytest.approx(6.25, abs=0.01)
    assert gg.q == pytest.approx(3.74, abs=0.01)
    assert gg.v == pytest.approx(15.44, abs=0.02)
    value = gg.expected_average_value(s.x, s.m)
    # Population mean spend pv/(q-1) for a customer without repeat purchases.
    assert value[s.x == 0] == pytest.approx(gg.p * gg.v / (gg.q - 1))
    # Shrinkage: the estimate lies between the customer's mean and the population mean.
    pop = gg.p * gg.v / (gg.q - 1)
    rep = s.x > 0
    lo, hi = np.minimum(s.m[rep], pop), np.maximum(s.m[rep], pop)
    assert ((value[rep] >= lo - 1e-9) & (value[rep] <= hi + 1e-9)).all()


# --------------------------------------------------------------------------- model sanity

CDNOW_FIT = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_p_alive_is_one_without_repeat_purchases() -> None:
    assert CDNOW_FIT.p_alive(0, 0, [1.0, 10.0, 39.0]) == pytest.approx([1.0, 1.0, 1.0])


def test_p_alive_and_expectation_increase_with_recency() -> None:
    t_x = np.linspace(0.0, 39.0, 40)
    alive = CDNOW_FIT.p_alive(3, t_x, 39.0)
    expected = CDNOW_FIT.expected_purchases(10, 3, t_x, 39.0)
    assert (np.diff(alive) > 0).all()
    assert (np.diff(expected) > 0).all()
    assert alive.min() > 0 and alive.max() <= 1
    # Bought on the last day: still not certain, since BG/NBD dropout happens right
    # after a purchase, so P(alive) = 1 / (1 + a / (b + x - 1)).
    assert alive[-1] == pytest.approx(1 / (1 + CDNOW_FIT.a / (CDNOW_FIT.b + 2)))


def test_expected_purchases_grows_with_horizon_and_is_zero_at_zero() -> None:
    horizons = np.array([0.0, 1.0, 5.0, 20.0, 52.0])
    e = CDNOW_FIT.expected_purchases(horizons, 2, 30.0, 39.0)
    assert e[0] == pytest.approx(0.0)
    assert (np.diff(e) > 0).all()
    # A brand-new customer (x=0, t_x=0, T=0) behaves like the unconditional E[X(t)].
    assert CDNOW_FIT.expected_purchases(39, 0, 0, 0) == pytest.approx(
        CDNOW_FIT.expected_purchases_new(39)
    )


def _bgnbd_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, n).astype(float)
    big_t = rng.uniform(10, 40, n)
    t_x = np.where(x > 0, big_t * rng.uniform(0, 1, n), 0.0)
    return x, t_x, big_t


def _bgnbd_ll_per_row(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """FHL 2005 eq. 6, term by term, one customer a row (as the paper writes it)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    return np.asarray(a1 + a2 + np.logaddexp(a3, np.where(x > 0, a4, -np.inf)))


def test_bgnbd_likelihood_matches_the_paper_row_by_row() -> None:
    x, t_x, big_t = _bgnbd_rows(300, 2)
    w = np.random.default_rng(3).integers(1, 4, 300).astype(float)
    params = np.array([0.3, 5.0, 0.8, 2.5])
    ll, _ = _BgNbdLikelihood(x, t_x, big_t, w)(params)
    assert ll == pytest.approx(float(w @ _bgnbd_ll_per_row(params, x, t_x, big_t)), rel=1e-12)


def test_bgnbd_gradient_matches_finite_differences() -> None:
    x, t_x, big_t = _bgnbd_rows(200, 1)
    likelihood = _BgNbdLikelihood(x, t_x, big_t, np.ones_like(x))
    theta = np.log([0.3, 5.0, 0.8, 2.5])

    def ll(th: np.ndarray) -> float:
        return likelihood(np.exp(th))[0]

    _, grad = likelihood(np.exp(theta))
    assert grad == pytest.approx(approx_fprime(theta, ll, 1e-7), rel=1e-4)


def test_bgnbd_compressed_fit_equals_row_by_row_fit() -> None:
    # Times in whole weeks, so many customers share a row.
    rng = np.random.default_rng(7)
    x, t_x, big_t = _simulate_bgnbd(rng, 20_000, r=0.5, alpha=6.0, a=0.7, b=2.5)
    big_t = np.floor(big_t)
    t_x = np.minimum(np.floor(t_x), big_t)
    assert np.unique(np.stack([x, t_x, big_t]), axis=1).shape[1] < len(x) // 3
    compressed = BgNbd.fit(x, t_x, big_t)
    row_by_row = BgNbd.fit(x, t_x, big_t, compress=False)
    fitted = (compressed.r, compressed.alpha, compressed.a, compressed.b)
    assert fitted == pytest.approx(
        (row_by_row.r, row_by_row.alpha, row_by_row.a, row_by_row.b), rel=1e-6
    )
    assert compressed.log_likelihood == pytest.approx(row_by_row.log_likelihood, rel=1e-12)
    # The maximum: the paper's row-by-row likelihood is lower a little way off it.
    best = _bgnbd_ll_per_row(np.array(fitted), x, t_x, big_t).sum()
    assert compressed.log_likelihood == pytest.approx(best, rel=1e-12)
    for nudge in (0.99, 1.01):
        assert _bgnbd_ll_per_row(np.array(fitted) * nudge, x, t_x, big_t).sum() < best


def test_bgnbd_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(4)
    x, t_x, big_t = _simulate_bgnbd(rng, 3000, r=0.5, alpha=6.0, a=0.7, b=2.5)
    counts = rng.integers(1, 5, 3000)
    weighted = BgNbd.fit(x, t_x, big_t, weights=counts, compress=False)
    repeated = BgNbd.fit(np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(big_t, counts))
    assert (weighted.r, weighted.alpha, weighted.a, weighted.b) == pytest.approx(
        (repeated.r, repeated.alpha, repeated.a, repeated.b), rel=1e-6
    )
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-12)


def test_gamma_gamma_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(6)
    x = rng.integers(1, 8, 300).astype(float)
    m = rng.gamma(6.0, 3.0, 300)
    theta = np.log([6.0, 3.7, 15.0])
    # The fitted model's log-likelihood is the objective at the fitted parameters.
    fitted = GammaGamma.fit(x, m)

    def ll(th: np.ndarray) -> float:
        p, q, v = np.exp(th)
        return float(
            (
                gammaln(p * x + q)
                - gammaln(p * x)
                - gammaln(q)
                + q * np.log(v)
                + (p * x - 1) * np.log(m)
                + p * x * np.log(x)
                - (p * x + q) * np.log(v + m * x)
            ).sum()
        )

    assert fitted.log_likelihood == pytest.approx(
        ll(np.log([fitted.p, fitted.q, fitted.v])), rel=1e-12
    )
    # At the maximum the paper's likelihood is flat: its gradient vanishes.
    at_max = np.log([fitted.p, fitted.q, fitted.v])
    assert approx_fprime(at_max, ll, 1e-6) == pytest.approx(np.zeros(3), abs=1e-2)
    assert ll(theta) < fitted.log_likelihood


def test_predicted_clv_discounting() -> None:
    gg = GammaGamma(p=6.25, q=3.74, v=15.44)
    x, t_x, big_t, m = np.array([0.0, 2, 5]), np.array([0.0, 30, 35]), 39.0, np.array([0, 22, 40])
    plain = predicted_clv(CDNOW_FIT, gg, x, t_x, big_t, m, 52)
    assert plain == pytest.approx(
        CDNOW_FIT.expected_purchases(52, x, t_x, big_t) * gg.expected_average_value(x, m)
    )
    # A zero-rate discounted sum telescopes to the plain value; a positive rate lowers it.
    disc = predicted_clv(CDNOW_FIT, gg, x, t_x, big_t, m, 52, discount_rate_per_period=0.01)
    assert (disc < plain).all()
    assert (disc > plain / 1.01**52).all()


def test_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="t_x"):
        CDNOW_FIT.p_alive(1, 40.0, 39.0)
    with pytest.raises(ValueError, match=r"^x"):
        BgNbd.fit([-1, 2], [0, 1], [5, 5])
    with pytest.raises(ValueError, match=r"^T"):
        CDNOW_FIT.expected_purchases(1, 0, 0, -1)
    with pytest.raises(ValueError, match=r"^x: empty"):
        BgNbd.fit([], [], [])
    with pytest.raises(ValueError, match=r"^m"):
        GammaGamma.fit([1, 2], [-3.0, 4.0])
    with pytest.raises(ValueError, match="transactions: empty"):
        rfm_summary([], CAL_END)
    with pytest.raises(ValueError, match="amount"):
        rfm_summary([("c", dt.date(1997, 1, 1), -5.0)], CAL_END)
    with pytest.raises(ValueError, match="horizon_periods"):
        predicted_clv(CDNOW_FIT, GammaGamma(p=6, q=4, v=15), 1, 1, 2, 10.0, -1)


def test_rfm_summary_rows_columns_and_datetimes() -> None:
    rows = [
        ("b", dt.datetime(2024, 1, 1, 9, 0), 10.0),
        ("b", dt.datetime(2024, 1, 1, 18, 0), 5.0),  # same day: one purchase of 15
        ("b", dt.datetime(2024, 1, 8, 12, 0), 20.0),
        ("b", dt.datetime(2024, 1, 22, 12, 0), 40.0),
        ("a", dt.datetime(2024, 1, 15, 12, 0), 7.0),
        ("a", dt.datetime(2024, 3, 1, 12, 0), 99.0),  # after the calibration end
        ("z", dt.datetime(2024, 2, 1, 12, 0), 1.0),  # first purchase after the end
    ]
    s = rfm_summary(rows, dt.datetime(2024, 1, 29, 23, 0))
    assert s.customer_ids.tolist() == ["a", "b"]
    assert s.x.tolist() == [0, 2]
    assert s.t_x.tolist() == [0, 3]
    assert s.T.tolist() == [2, 4]
    assert s.m.tolist() == [0, 30]
    cols = TransactionColumns(
        customer_ids=np.array([r[0] for r in rows]),
        dates=np.array([r[1] for r in rows], dtype="datetime64[s]"),
        amounts=np.array([r[2] for r in rows]),
    )
    s2 = rfm_summary(cols, "2024-01-29", unit_days=1)
    assert s2.t_x.tolist() == [0, 21]
    assert s2.m.tolist() == [0, 30]


# --------------------------------------------------------------------------- synthetic


def _simulate_bgnbd(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, T) from the BG/NBD generative story, fully vectorised."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    big_t = rng.uniform(26.0, 52.0, n)
    # Repeat purchases while alive ~ Poisson(λT); the customer drops out right
    # after the J-th repeat purchase, J ~ Geometric(p) on {1, 2, ...}.
    n_alive = rng.poisson(lam * big_t)
    drop_after = rng.geometric(p)
    x = np.minimum(n_alive, drop_after)
    # Given n Poisson arrivals in [0, T], the x-th is T·Beta(x, n-x+1).
    t_x = np.zeros(n)
    pos = x > 0
    t_x[pos] = big_t[pos] * rng.beta(x[pos], n_alive[pos] - x[pos] + 1)
    return x.astype(float), t_x, big_t


def test_synthetic_bgnbd_parameters_are_recovered() -> None:
    rng = np.random.default_rng(20240601)
    true = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    x, t_x, big_t = _simulate_bgnbd(rng, 40_000, **true)
    model = BgNbd.fit(x, t_x, big_t)
    assert model.r == pytest.approx(true["r"], rel=0.08)
    assert model.alpha == pytest.approx(true["alpha"], rel=0.10)
    assert model.a == pytest.approx(true["a"], rel=0.20)
    assert model.b == pytest.approx(true["b"], rel=0.20)
    # The fitted model predicts the simulated mean purchase count.
    assert model.expected_purchases(big_t, 0, 0, 0).mean() == pytest.approx(x.mean(), rel=0.03)


@needs_cdnow
def test_bgnbd_fit_on_repeated_rows_equals_weighted_fit(
    cdnow: list[tuple[int, dt.date, float]],
) -> None:
    # Five copies exceed the size at which fit() collapses duplicate triples.
    s = rfm_summary(cdnow, CAL_END)
    big = BgNbd.fit(np.tile(s.x, 5), np.tile(s.t_x, 5), np.tile(s.T, 5))
    small = BgNbd.fit(s.x, s.t_x, s.T, weights=np.full(len(s), 5.0))
    assert big.r == pytest.approx(0.243, abs=5e-4)
    assert big.log_likelihood == pytest.approx(5 * -9582.43, abs=0.5)
    assert (big.r, big.alpha, big.a, big.b) == pytest.approx(
        (small.r, small.alpha, small.a, small.b), rel=1e-6
    )
