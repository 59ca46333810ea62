"""The report statistics against published values and an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from omnicrm.engage.stats import mean_difference, rate_difference, wilson


def test_wilson_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, method 3, 81/263.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == 0.0 and math.isclose(wilson(10, 10)[1], 1.0)


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873, method 10, examples (a) and (b).
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
    ],
)
def test_rate_difference_matches_newcombes_hybrid_score_interval(
    a: int, m: int, b: int, n: int, expected: tuple[float, float]
) -> None:
    diff = rate_difference(a, m, b, n)
    assert math.isclose(diff.value, a / m - b / n)
    assert (round(diff.low, 4), round(diff.high, 4)) == expected
    assert diff.significant


def test_no_difference_is_not_significant_and_empty_groups_have_no_interval() -> None:
    assert not rate_difference(10, 100, 11, 100).significant
    empty = rate_difference(0, 0, 5, 50)
    assert math.isnan(empty.low) and math.isnan(empty.high) and not empty.significant


def test_mean_difference_is_welchs_interval() -> None:
    rng = np.random.default_rng(7)
    treated = rng.gamma(2.0, 1500.0, 400)
    control = rng.gamma(2.0, 1200.0, 90)
    diff = mean_difference(
        len(treated),
        float(treated.mean()),
        float(treated.var(ddof=1)),
        len(control),
        float(control.mean()),
        float(control.var(ddof=1)),
    )
    expected = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(0.95)
    assert math.isclose(diff.low, expected.low, rel_tol=1e-9)
    assert math.isclose(diff.high, expected.high, rel_tol=1e-9)
    assert math.isnan(mean_difference(1, 5.0, 0.0, 10, 4.0, 1.0).low)
