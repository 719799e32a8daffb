"""The statistical formulas of the project, in one place (pure functions, no store).

* :func:`wilson` / :func:`wilson_p`: Wilson score interval of a binomial proportion; ``None``
  when there are no trials (an interval of nothing is not (0, 1), it is undefined).
* :func:`cohen_kappa`: Cohen's kappa of a square confusion matrix with the large-sample
  standard error of Fleiss, Cohen & Everitt (1969) and a normal interval clipped to [-1, 1];
  :func:`confusion` builds that matrix from (rater A, rater B) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # standard normal 0.975 quantile


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``x`` successes in ``n`` trials; ``None`` when ``n`` is 0."""
    if n <= 0:
        return None
    return wilson_p(x / n, n, z)


def wilson_p(p: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``p`` estimated from ``n`` (possibly an
    effective, non-integer) trials; ``None`` when ``n`` is 0."""
    if n <= 0:
        return None
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Kappa:
    kappa: float | None
    se: float | None
    ci: tuple[float, float] | None


def confusion(pairs: Iterable[tuple[str, str]], categories: Sequence[str]) -> np.ndarray:
    """Square count matrix of (rater A, rater B) pairs over ``categories`` (rows: A)."""
    idx = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=int)
    for a, b in pairs:
        table[idx[a], idx[b]] += 1
    return table


def cohen_kappa(table: np.ndarray, z: float = Z95) -> Kappa:
    """Cohen's kappa of a square confusion matrix (rows: rater A, columns: rater B).

    SE: the large-sample (non-null) variance of Fleiss, Cohen & Everitt (1969):
    var = (A + B - C) / (n (1 - pe)^2) with A = sum_i p_ii [1 - (p_i. + p_.i)(1 - k)]^2,
    B = (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2, C = [k - pe (1 - k)]^2.
    Kappa is undefined (all ``None``) with no pairs or when pe = 1 (both raters used one
    single, same category).
    """
    t = np.asarray(table, dtype=float)
    n = t.sum()
    if n <= 0:
        return Kappa(None, None, None)
    p = t / n
    rows = p.sum(axis=1)
    cols = p.sum(axis=0)
    po = float(np.trace(p))
    pe = float(rows @ cols)
    if pe >= 1 - 1e-12:
        return Kappa(None, None, None)
    k = (po - pe) / (1 - pe)
    a = float(sum(p[i, i] * (1 - (rows[i] + cols[i]) * (1 - k)) ** 2 for i in range(len(p))))
    b = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                b += p[i, j] * (cols[i] + rows[j]) ** 2
    b *= (1 - k) ** 2
    c = (k - pe * (1 - k)) ** 2
    var = max(a + b - c, 0.0) / (n * (1 - pe) ** 2)
    se = math.sqrt(var)
    return Kappa(k, se, (max(-1.0, k - z * se), min(1.0, k + z * se)))
