from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from ml.agreement import (
    HALF_POINTS,
    Agreement,
    agreement,
    mean_absolute_error,
    spearman,
    weighted_kappa,
)

# Three categories 1, 2, 3; rows are rater a, columns rater b, n = 10:
#
#            b=1  b=2  b=3 | row
#     a=1     2    1    0  |  3
#     a=2     1    3    1  |  5
#     a=3     0    0    2  |  2
#     col     3    4    3  | 10
#
# Every disagreement is one step apart (cells (1,2), (2,1), (2,3)), so the observed weighted
# disagreement is 3/10 under both weightings (1**1 == 1**2).
# Expected counts row * col / n:
#     a=1   0.9  1.2  0.9
#     a=2   1.5  2.0  1.5
#     a=3   0.6  0.8  0.6
# One step apart: 1.2 + 1.5 + 1.5 + 0.8 = 5.0; two steps apart: 0.9 + 0.6 = 1.5.
# Linear:    expected disagreement (5.0*1 + 1.5*2) / 10 = 8/10;  kappa = 1 - 3/8  = 5/8
# Quadratic: expected disagreement (5.0*1 + 1.5*4) / 10 = 11/10; kappa = 1 - 3/11 = 8/11
_TABLE = {(1, 1): 2, (1, 2): 1, (2, 1): 1, (2, 2): 3, (2, 3): 1, (3, 3): 2}
TABLE_A = [i for (i, _), count in _TABLE.items() for _ in range(count)]
TABLE_B = [j for (_, j), count in _TABLE.items() for _ in range(count)]


def test_linear_kappa_of_hand_computed_table() -> None:
    kappa = weighted_kappa(TABLE_A, TABLE_B, categories=(1, 2, 3), weights="linear")
    assert kappa == pytest.approx(float(Fraction(5, 8)), rel=1e-12)


def test_quadratic_kappa_of_hand_computed_table() -> None:
    kappa = weighted_kappa(TABLE_A, TABLE_B, categories=(1, 2, 3), weights="quadratic")
    assert kappa == pytest.approx(float(Fraction(8, 11)), rel=1e-12)
    assert weighted_kappa(TABLE_A, TABLE_B, categories=(3, 1, 2)) == kappa  # order-free


def test_quadratic_weighs_far_misses_more_than_linear() -> None:
    # Categories 0, 0.5, 1 (positions 0, 1, 2); n = 4, pairs (0,0) (0,0.5) (1,1) (1,0):
    # rows a: 0 -> 2, 1 -> 2; columns b: 0 -> 2, 0.5 -> 1, 1 -> 1.
    # Observed: one step (0,0.5) and two steps (1,0).
    #   linear    1 + 2 = 3  -> 3/4;      quadratic 1 + 4 = 5 -> 5/4
    # Expected (row * col / n, each row total 2 so each cell is col / 2):
    #   a=0: 1, 0.5, 0.5   a=1: 1, 0.5, 0.5
    #   linear:    a=0: 0.5*1 + 0.5*2 = 1.5;  a=1: 1*2 + 0.5*1 = 2.5  -> 4   -> 4/4
    #   quadratic: a=0: 0.5*1 + 0.5*4 = 2.5;  a=1: 1*4 + 0.5*1 = 4.5  -> 7   -> 7/4
    # kappa linear = 1 - 3/4 = 1/4;  quadratic = 1 - 5/7 = 2/7
    a, b = [0, 0, 1, 1], [0, 0.5, 1, 0]
    categories = (0, 0.5, 1)
    linear = weighted_kappa(a, b, categories=categories, weights="linear")
    quadratic = weighted_kappa(a, b, categories=categories, weights="quadratic")
    assert linear == pytest.approx(1 / 4, rel=1e-12)
    assert quadratic == pytest.approx(2 / 7, rel=1e-12)


def test_published_example_two_categories() -> None:
    # Wikipedia, "Cohen's kappa", simple example: 50 grant proposals read by A and B,
    # both yes 20, A yes / B no 5, A no / B yes 10, both no 15; published kappa = 0.4.
    # With two categories every disagreement is one step, so both weightings reduce to
    # the unweighted kappa.
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    for weights in ("linear", "quadratic"):
        assert weighted_kappa(a, b, categories=(0, 1), weights=weights) == pytest.approx(0.4)


def test_quadratic_kappa_matches_moment_formula() -> None:
    # Independent of the confusion table: with equally spaced categories quadratic kappa is
    # 2*cov(a, b) / (var(a) + var(b) + (mean(a) - mean(b))**2), population moments
    # (Fleiss & Cohen 1973).
    rng = random.Random(7)
    ai = [rng.choice(HALF_POINTS) for _ in range(400)]
    human = [min(5.0, max(0.0, score + rng.choice((-1, -0.5, 0, 0, 0.5)))) for score in ai]
    n = len(ai)
    mean_ai, mean_human = sum(ai) / n, sum(human) / n
    var_ai = sum((x - mean_ai) ** 2 for x in ai) / n
    var_human = sum((y - mean_human) ** 2 for y in human) / n
    cov = sum((x - mean_ai) * (y - mean_human) for x, y in zip(ai, human, strict=True)) / n
    moments = 2 * cov / (var_ai + var_human + (mean_ai - mean_human) ** 2)
    assert weighted_kappa(ai, human, categories=HALF_POINTS) == pytest.approx(moments)


def test_perfect_and_inverse_agreement() -> None:
    scores = [0, 0.5, 2, 3.5, 5, 5]
    assert weighted_kappa(scores, scores, categories=HALF_POINTS) == 1.0
    assert weighted_kappa(scores, scores, categories=HALF_POINTS, weights="linear") == 1.0
    # a = [1, 2], b = [2, 1]: observed 2 one-step misses over n = 2 -> 1; expected
    # (row 1, col 1 in each category) 2 one-step cells of 1*1/2 -> 1/2; kappa = 1 - 1/(1/2).
    assert weighted_kappa([1, 2], [2, 1], categories=(1, 2)) == -1.0


def test_kappa_undefined_or_chance() -> None:
    assert weighted_kappa([], [], categories=HALF_POINTS) is None
    # Both raters always say 4: no disagreement is even expected, so kappa is 0/0.
    assert weighted_kappa([4, 4, 4], [4, 4, 4], categories=HALF_POINTS) is None
    # Constant but different: observed == expected disagreement, so exactly chance.
    assert weighted_kappa([4, 4, 4], [3, 3, 3], categories=HALF_POINTS) == 0.0


def test_kappa_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"b\[1\] = 4\.2"):
        weighted_kappa([4, 4], [4, 4.2], categories=HALF_POINTS)
    with pytest.raises(ValueError, match="nan"):
        weighted_kappa([math.nan], [1], categories=HALF_POINTS)
    with pytest.raises(ValueError, match="Unequal lengths"):
        weighted_kappa([1, 2], [1], categories=HALF_POINTS)
    with pytest.raises(ValueError, match="weights"):
        weighted_kappa([1], [1], categories=HALF_POINTS, weights="cubic")


def test_spearman_without_ties() -> None:
    # Wikipedia, "Spearman's rank correlation coefficient": IQ against hours of TV per week
    # for ten people; published rho = -29/165 (sum of squared rank differences 194).
    iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110]
    tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17]
    assert spearman(iq, tv) == pytest.approx(-29 / 165, rel=1e-12)


def test_spearman_with_ties_uses_average_ranks() -> None:
    # a = [1, 2, 2, 3] -> ranks 1, 2.5, 2.5, 4;  b = [1, 3, 2, 4] -> ranks 1, 3, 2, 4.
    # Mean rank 2.5; deviations a: -1.5, 0, 0, 1.5;  b: -1.5, 0.5, -0.5, 1.5.
    # cov sum = 2.25 + 0 + 0 + 2.25 = 4.5; a sum of squares 4.5; b 2.25+0.25+0.25+2.25 = 5.
    # rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9). (The no-ties shortcut 1 - 6*sum(d^2)/(n(n^2-1))
    # would say 1 - 6*0.5/60 = 0.95.)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9), rel=1e-12)
    # Ties on both sides: a = [1, 1, 2, 2] -> 1.5, 1.5, 3.5, 3.5;  b = [1, 2, 2, 2] -> 1, 3, 3, 3.
    # Deviations a: -1, -1, 1, 1;  b: -1.5, 0.5, 0.5, 0.5.
    # cov sum = 1.5 - 0.5 + 0.5 + 0.5 = 2; sums of squares 4 and 2.25 + 3*0.25 = 3.
    # rho = 2 / sqrt(12) = 1 / sqrt(3).
    assert spearman([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx(1 / math.sqrt(3), rel=1e-12)


def test_spearman_perfect_inverse_and_undefined() -> None:
    assert spearman([0.5, 2, 3, 4.5], [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert spearman([0.5, 2, 3, 4.5], [5, 4, 1, 0]) == pytest.approx(-1.0)
    assert spearman([], []) is None
    assert spearman([3], [4]) is None
    assert spearman([3, 3, 3], [1, 2, 3]) is None
    assert spearman([1, 2, 3], [2, 2, 2]) is None
    with pytest.raises(ValueError, match="Unequal lengths"):
        spearman([1, 2, 3], [1, 2])


def test_mean_absolute_error() -> None:
    # |1 - 2| + |2.5 - 2.5| + |4 - 1| = 1 + 0 + 3 = 4 over 3 pairs.
    assert mean_absolute_error([1, 2.5, 4], [2, 2.5, 1]) == pytest.approx(4 / 3)
    assert mean_absolute_error([], []) is None
    with pytest.raises(ValueError, match="Unequal lengths"):
        mean_absolute_error([1], [])


def test_agreement_bundles_the_three_figures() -> None:
    ai = [5, 4.5, 3, 0.5]
    assert agreement(ai, ai) == Agreement(n=4, kappa=1.0, spearman=1.0, mae=0.0)
    assert agreement([], []) == Agreement(n=0, kappa=None, spearman=None, mae=None)
    result = agreement(TABLE_A, TABLE_B, categories=(1, 2, 3), weights="linear")
    assert result.n == 10
    assert result.kappa == pytest.approx(5 / 8)
    assert result.mae == pytest.approx(3 / 10)
    with pytest.raises(ValueError, match=r"4\.2"):
        agreement([4.2], [4])


def test_matches_scikit_learn_and_scipy() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(11)
    ai = [rng.choice(HALF_POINTS) for _ in range(300)]
    human = [rng.choice((score, score, 1.0, 4.0)) for score in ai]  # correlated, with ties
    # scikit-learn refuses float labels ("continuous"); half points map to 0..10.
    ai_steps, human_steps = [int(2 * x) for x in ai], [int(2 * y) for y in human]
    for weights in ("linear", "quadratic"):
        expected = metrics.cohen_kappa_score(
            ai_steps, human_steps, labels=list(range(11)), weights=weights
        )
        kappa = weighted_kappa(ai, human, categories=HALF_POINTS, weights=weights)
        assert kappa == pytest.approx(expected, rel=1e-9)
    assert spearman(ai, human) == pytest.approx(stats.spearmanr(ai, human).statistic, rel=1e-9)
