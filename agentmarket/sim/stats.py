"""Across-seed statistics: mean and two-sided 95% Student-t confidence interval.

The t quantiles for 1-30 degrees of freedom are the standard table values; above 30 the Cornish-Fisher
expansion of t around the normal quantile is accurate to better than 1e-4 (no SciPy dependency for
one number).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["mean_ci95", "t975"]

_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (two-sided 95%)."""
    if df < 1:
        raise ValueError("a t interval needs at least 2 observations")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci95(xs: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean of ``xs`` and its 95% t-interval (a single observation gives a zero-width interval)."""
    if not xs:
        return math.nan, (math.nan, math.nan)
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, (m, m)
    half = t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, (m - half, m + half)
