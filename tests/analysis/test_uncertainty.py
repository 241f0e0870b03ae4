"""Tests for mnist_knn.analysis.uncertainty: the writer bootstrap, the paired sign-flip test, Holm."""

import itertools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mnist_knn.analysis.uncertainty import holm, paired_difference, writer_bootstrap


# ------------------------------------------------------------------ writer_bootstrap


def test_bootstrap_of_a_hand_computed_case():
    # Four writers of two digits; writer "a" made both errors. A replicate draws 4 writers with
    # replacement, so the rate is (times "a" is drawn) / 4 with that count ~ Binomial(4, 1/4):
    # P(0) = 0.316, P(<=1) = 0.738, P(<=2) = 0.949, P(<=3) = 0.996. The 2.5% quantile is 0 and the
    # 97.5% quantile is 3/4.
    errors = [1, 1, 0, 0, 0, 0, 0, 0]
    writers = ["a", "a", "b", "b", "c", "c", "d", "d"]
    est = writer_bootstrap(errors, writers, n_boot=40_000)
    assert (est.value, est.low, est.high) == (0.25, 0.0, 0.75)
    # and the 90% interval: P(<=2) = 0.9492 falls just short of 0.95, so its upper end is still 3/4
    binom = [math.comb(4, j) * 0.25**j * 0.75 ** (4 - j) for j in range(5)]
    assert np.cumsum(binom)[2] < 0.95 < np.cumsum(binom)[3]
    assert writer_bootstrap(errors, writers, n_boot=40_000, confidence=0.9).high == 0.75


def test_clustered_errors_widen_the_interval_against_independent_ones():
    rng = np.random.default_rng(0)
    writers = np.repeat(np.arange(300), 33)
    # the same 1% error rate, once spread evenly, once concentrated in a tenth of the writers
    spread = rng.random(writers.size) < 0.01
    clustered = (writers < 30) & (rng.random(writers.size) < 0.1)
    w_spread = writer_bootstrap(spread, writers, n_boot=4000)
    w_clustered = writer_bootstrap(clustered, writers, n_boot=4000)
    assert (w_clustered.high - w_clustered.low) > 1.7 * (w_spread.high - w_spread.low)


def test_one_digit_per_writer_matches_the_binomial_interval():
    # With every digit its own writer the cluster bootstrap is the ordinary bootstrap of a proportion:
    # its interval is close to the normal approximation's.
    rng = np.random.default_rng(1)
    errors = rng.random(2000) < 0.05
    est = writer_bootstrap(errors, np.arange(2000), n_boot=5000)
    p = errors.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / errors.size)
    assert_allclose([est.low, est.high], [p - half, p + half], atol=0.002)


def test_interval_ends_are_stable_to_a_hundredth_of_a_point_on_a_test_set_sized_problem():
    rng = np.random.default_rng(2)
    writers = rng.integers(0, 297, 10_000)
    errors = rng.random(10_000) < 0.01
    est = writer_bootstrap(errors, writers)
    assert est.end_mc_se < 0.0001 / 2  # two standard errors within 0.01 percentage points
    other_seed = writer_bootstrap(errors, writers, seed=1)
    assert abs(other_seed.low - est.low) < 0.0001 and abs(other_seed.high - est.high) < 0.0001


def test_bootstrap_is_deterministic_for_a_seed():
    errors, writers = [0, 1, 0, 1, 1, 0], [1, 1, 2, 2, 3, 3]
    assert writer_bootstrap(errors, writers, n_boot=500) == writer_bootstrap(errors, writers, n_boot=500)


@pytest.mark.parametrize(
    "errors, writers, kwargs, message",
    [
        ([0, 1], [1], {}, "one length"),
        ([], [], {}, "is empty"),
        ([0, np.nan], [1, 2], {}, "finite"),
        ([0, 1], [1, 2], {"n_boot": 3}, "n_boot must be an integer"),
        ([0, 1], [1, 2], {"confidence": 1.0}, "confidence must be in"),
    ],
)
def test_bad_input_is_refused(errors, writers, kwargs, message):
    with pytest.raises(ValueError, match=message):
        writer_bootstrap(errors, writers, **kwargs)


# ------------------------------------------------------------------ paired_difference


def test_paired_difference_of_a_hand_computed_case():
    a = [1, 1, 1, 0, 1, 0, 0, 0]
    b = [0, 0, 0, 0, 0, 0, 0, 0]
    r = paired_difference(a, b, ["w", "w", "x", "x", "y", "y", "z", "z"], n_boot=2000)
    # per-writer differences 2, 1, 1, 0: sign flips of (2, 1, 1) give totals 4, 2, 2, 0, 0, -2, -2, -4
    assert (r.difference, r.n_writers_differing, r.p_value) == (0.5, 3, 0.25)


def test_identical_classifiers_differ_by_nothing():
    rng = np.random.default_rng(3)
    e = rng.random(300) < 0.1
    r = paired_difference(e, e, rng.integers(0, 20, 300), n_boot=1000)
    assert (r.difference, r.low, r.high, r.p_value, r.n_writers_differing) == (0.0, 0.0, 0.0, 1.0, 0)


def test_exact_p_value_equals_brute_force_enumeration():
    rng = np.random.default_rng(4)
    writers = np.repeat(np.arange(12), 10)
    a = rng.random(120) < 0.3
    b = rng.random(120) < 0.2
    r = paired_difference(a, b, writers, n_boot=1000)
    d = np.bincount(writers, weights=a.astype(float) - b)
    d = d[d != 0]
    totals = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product([1, -1], repeat=d.size)]
    assert r.p_value == pytest.approx(np.mean(np.array(totals) >= abs(d.sum()) - 1e-9))


def test_monte_carlo_p_value_is_close_to_the_exact_one():
    rng = np.random.default_rng(5)
    writers = np.repeat(np.arange(18), 40)  # 18 writers: over 16, so the flips are random
    a = rng.random(720) < 0.35
    b = rng.random(720) < 0.1
    r = paired_difference(a, b, writers, n_boot=1000, n_flips=40_000)
    d = np.bincount(writers, weights=a.astype(float) - b)
    d = d[d != 0]
    signs = 1 - 2 * ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1)
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-9)
    assert d.size > 16
    assert r.p_value == pytest.approx(exact, abs=0.01)


def test_difference_interval_respects_writers():
    # A beats B on every digit of a few writers only: the writer-level interval is wide and its test weak,
    # where a digit-level view (30 discordant digits all one way) would call it overwhelming.
    writers = np.repeat(np.arange(100), 10)
    a = np.zeros(1000, dtype=bool)
    b = np.zeros(1000, dtype=bool)
    b[:30] = True  # three writers, ten digits each
    r = paired_difference(a, b, writers, n_boot=4000)
    assert r.difference == pytest.approx(-0.03)
    assert r.n_writers_differing == 3
    assert r.p_value == 0.25  # 2 of the 8 sign patterns of three writers are as extreme
    assert r.low < -0.05 and r.high == 0.0


# ------------------------------------------------------------------ holm


def test_holm_on_the_textbook_example():
    # Wikipedia's "Holm–Bonferroni method" example: four hypotheses, alpha = 0.05; H4 (p = 0.005) and
    # H1 (p = 0.01) are rejected, H2 and H3 are not.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert (adjusted <= 0.05).tolist() == [True, False, False, True]


def test_holm_is_monotone_capped_and_bonferroni_for_the_smallest():
    rng = np.random.default_rng(6)
    p = rng.random(20) ** 3
    adj = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert adj.max() <= 1 and np.all(adj >= p)
    assert adj[order[0]] == pytest.approx(min(1, 20 * p[order[0]]))
    assert holm([0.2]).tolist() == [0.2]


def test_holm_refuses_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        holm([0.1, 1.5])
