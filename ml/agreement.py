"""Agreement between the AI judge's scores and validated human scores.

Three figures, because each answers a different question:

- weighted kappa: do the two raters give the *same* score, beyond what chance would give,
  with a near miss counting less than a far one;
- Spearman's rho: do they *rank* answers the same way, whatever their scale bias;
- mean absolute error: how many points apart they are on average.

Plain Python (no numpy, no Django): the inputs are a few thousand scores at most, and the
kappa is computed in integers up to a single final division, so hand-computed fractions in
the tests match to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The AI judge scores 0..5 in half points.
HALF_POINTS: tuple[float, ...] = tuple(i / 2 for i in range(11))

_WEIGHT_POWERS = {"linear": 1, "quadratic": 2}


@dataclass(frozen=True)
class Agreement:
    n: int  # number of (ai, human) pairs
    kappa: float | None  # weighted kappa; None when undefined
    spearman: float | None  # rank correlation; None when undefined
    mae: float | None  # mean absolute difference in score points; None when n == 0


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> int:
    if len(a) != len(b):
        raise ValueError(f"Unequal lengths: {len(a)} and {len(b)} scores")
    return len(a)


def _finite(values: Sequence[float], name: str) -> list[float]:
    floats = [float(value) for value in values]
    for position, value in enumerate(floats):
        if not math.isfinite(value):
            raise ValueError(f"{name}[{position}] = {value!r} is not a finite number")
    return floats


def weighted_kappa(
    a: Sequence[float],
    b: Sequence[float],
    *,
    categories: Sequence[float],
    weights: str = "quadratic",
) -> float | None:
    """Cohen's weighted kappa of two raters over ordered ``categories``.

    kappa = 1 - sum(w_ij * observed_ij) / sum(w_ij * expected_ij), where observed is the
    confusion table of (a, b), expected is the outer product of its row and column totals
    over n, and w_ij = |i - j| ("linear") or (i - j)**2 ("quadratic"), i and j being the
    positions of the categories sorted by value. Any scale factor on w cancels in the ratio.

    Quadratic is the default because the scores are ordinal with equal steps: a judge that
    is off by two points is more than twice as wrong as one off by one point, and quadratic
    weighted kappa equals the intraclass correlation of the two raters (Fleiss & Cohen,
    1973), so it reads like a reliability coefficient. Linear weights charge each step the
    same. With two categories both reduce to Cohen's unweighted kappa.

    Returns 1.0 for perfect agreement, 0 for chance-level agreement, below 0 for worse than
    chance, and None when undefined: no pairs, or no disagreement is expected by chance
    (both raters always gave the same single category). Raises ValueError for unequal
    lengths, an unknown ``weights``, or a value that is not one of ``categories``.
    """
    n = _check_pairs(a, b)
    if weights not in _WEIGHT_POWERS:
        raise ValueError(f"weights must be 'linear' or 'quadratic', not {weights!r}")
    power = _WEIGHT_POWERS[weights]
    ordered = sorted(float(category) for category in categories)
    if not ordered:
        raise ValueError("categories is empty")
    if len(set(ordered)) != len(ordered):
        raise ValueError(f"categories has duplicates: {tuple(categories)}")
    position = {category: index for index, category in enumerate(ordered)}

    def positions(values: Sequence[float], name: str) -> list[int]:
        found = []
        for index, value in enumerate(values):
            try:
                found.append(position[float(value)])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"{name}[{index}] = {value!r} is not one of the categories {tuple(ordered)}"
                ) from None
        return found

    rows, cols = positions(a, "a"), positions(b, "b")
    if n == 0:
        return None
    k = len(ordered)
    row_totals, col_totals = [0] * k, [0] * k
    observed = 0  # sum of w_ij * count_ij
    for i, j in zip(rows, cols, strict=True):
        row_totals[i] += 1
        col_totals[j] += 1
        observed += abs(i - j) ** power
    expected = sum(  # n times sum of w_ij * expected_ij, i.e. over n**2 instead of n
        abs(i - j) ** power * row_totals[i] * col_totals[j] for i in range(k) for j in range(k)
    )
    if expected == 0:
        return None
    # 1 - (observed / n) / (expected / n**2), kept in integers until this one division.
    return (expected - observed * n) / expected


def _average_ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for index in order[start : end + 1]:
            ranks[index] = shared
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the ranks, ties given their average rank.

    None when fewer than two pairs or when either side is constant (its ranks have no
    variance, so no correlation is defined).
    """
    n = _check_pairs(a, b)
    if n < 2:
        return None
    ranks_a = _average_ranks(_finite(a, "a"))
    ranks_b = _average_ranks(_finite(b, "b"))
    mean = (n + 1) / 2  # the mean rank, ties or not
    deviations_a = [rank - mean for rank in ranks_a]
    deviations_b = [rank - mean for rank in ranks_b]
    spread_a = sum(d * d for d in deviations_a)
    spread_b = sum(d * d for d in deviations_b)
    if spread_a == 0 or spread_b == 0:
        return None
    covariance = sum(x * y for x, y in zip(deviations_a, deviations_b, strict=True))
    rho = covariance / math.sqrt(spread_a * spread_b)
    return max(-1.0, min(1.0, rho))  # rounding must not report |rho| > 1


def mean_absolute_error(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Mean of |a_i - b_i|, in the scores' own units; None when there are no pairs."""
    n = _check_pairs(a, b)
    if n == 0:
        return None
    return math.fsum(abs(x - y) for x, y in zip(_finite(a, "a"), _finite(b, "b"), strict=True)) / n


def agreement(
    ai: Sequence[float],
    human: Sequence[float],
    *,
    categories: Sequence[float] = HALF_POINTS,
    weights: str = "quadratic",
) -> Agreement:
    """Kappa (quadratic by default, see ``weighted_kappa``), Spearman and MAE of AI scores
    against human scores for the same answers, paired by position."""
    n = _check_pairs(ai, human)
    return Agreement(
        n=n,
        kappa=weighted_kappa(ai, human, categories=categories, weights=weights),
        spearman=spearman(ai, human),
        mae=mean_absolute_error(ai, human),
    )
