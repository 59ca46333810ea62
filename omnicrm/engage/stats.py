"""How sure a difference between two groups is: the statistics of campaign and offer
reports (a variant against the hold-out group, or variant B against A).

Rates (open, click, conversion) are compared with Newcombe's hybrid score interval for a
difference of proportions, built from each group's Wilson interval: unlike the textbook
normal interval it stays inside [-1, 1] and behaves with the small counts and the rates
near 0 a campaign produces. Means (revenue per recipient) are compared with Welch's
interval, which does not assume the two groups vary alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Difference:
    """``value`` (treated minus control) and its interval at ``confidence``; ``low`` and
    ``high`` are NaN when a group is empty."""

    value: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out zero (the groups differ at ``confidence``)."""
        return self.low > 0 or self.high < 0


def _z(confidence: float) -> float:
    return float(_stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a proportion (NaN, NaN for no trials)."""
    if trials <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    z = _z(confidence)
    p = successes / trials
    shrink = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / shrink
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / shrink
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(
    successes: int,
    trials: int,
    control_successes: int,
    control_trials: int,
    confidence: float = CONFIDENCE,
) -> Difference:
    """The difference of two rates (``successes/trials`` minus the control's), with
    Newcombe's hybrid score interval."""
    if trials <= 0 or control_trials <= 0:
        p1 = successes / trials if trials > 0 else math.nan
        p2 = control_successes / control_trials if control_trials > 0 else math.nan
        return Difference(p1 - p2, math.nan, math.nan, confidence)
    p1, p2 = successes / trials, control_successes / control_trials
    l1, u1 = wilson(successes, trials, confidence)
    l2, u2 = wilson(control_successes, control_trials, confidence)
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(p1 - p2, low, high, confidence)


def mean_difference(
    n: int,
    mean: float,
    variance: float,
    control_n: int,
    control_mean: float,
    control_variance: float,
    confidence: float = CONFIDENCE,
) -> Difference:
    """The difference of two means (treated minus control) from each group's size, mean
    and sample variance, with Welch's interval (NaN bounds when a group has under two)."""
    value = mean - control_mean
    if n < 2 or control_n < 2:
        return Difference(value, math.nan, math.nan, confidence)
    a, b = variance / n, control_variance / control_n
    spread = math.sqrt(a + b)
    if spread == 0:
        return Difference(value, value, value, confidence)
    freedom = (a + b) ** 2 / (a * a / (n - 1) + b * b / (control_n - 1))
    half = float(_stats.t.ppf(0.5 + confidence / 2, freedom)) * spread
    return Difference(value, value - half, value + half, confidence)
