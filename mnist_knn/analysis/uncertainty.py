"""Uncertainty that respects writers: error rates and paired differences resampled by whole writers.

The 10,000 MNIST test digits come from 297 writers, and a classifier's errors cluster by writer (a
writer with an unusual hand is misread again and again). Treating the digits as independent, as a
Wilson interval or McNemar's test does, makes intervals too narrow and p-values too small. Here the
unit of resampling is the writer:

- :func:`writer_bootstrap`: an error rate with a percentile interval from the *cluster bootstrap*:
  draw as many writers as there are, with replacement, keep all digits of each drawn writer, and
  recompute the rate (Davison & Hinkley, *Bootstrap Methods and their Application*, 1997, §3.8).
- :func:`paired_difference`: the difference of two classifiers' error rates on the same digits, with a
  cluster-bootstrap interval (the same draws for both, so the pairing is kept) and the p-value of a
  writer-level *sign-flip* test: under the null hypothesis that the two classifiers are exchangeable,
  each writer's difference in error counts is as likely to be negative as positive, so flipping the
  signs of whole writers gives the null distribution of the total.
- :func:`holm`: Holm's step-down correction for a family of tests read together (Holm, *Scand. J.
  Statist.* 6, 1979), which controls the chance of any false rejection in the family.

Everything is seeded: the same inputs give the same numbers, to the last bit.
"""

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_N_BOOT", "Estimate", "PairedDifference", "holm", "paired_difference", "writer_bootstrap"]

#: Bootstrap replicates by default: enough that the ends of a 95% interval of an MNIST test error move
#: by well under 0.01 percentage points from one seed to another (see ``Estimate.end_mc_se``).
DEFAULT_N_BOOT = 20_000
_BATCHES = 10  # the replicates are drawn in this many batches; their spread estimates the Monte Carlo error


@dataclass(frozen=True)
class Estimate:
    """A rate with a writer-bootstrap interval. ``end_mc_se`` is the Monte Carlo standard error of the
    interval's ends (the larger of the two), estimated from the spread between batches of replicates."""

    value: float
    low: float
    high: float
    n_boot: int
    end_mc_se: float


@dataclass(frozen=True)
class PairedDifference:
    """``rate(a) - rate(b)`` on the same digits, with a writer-bootstrap interval, and the p-value of the
    writer-level sign-flip test of "no difference". ``n_writers_differing`` counts the writers on whose
    digits the two classifiers make different numbers of errors: only they carry information."""

    difference: float
    low: float
    high: float
    p_value: float
    n_writers_differing: int
    n_boot: int
    end_mc_se: float


def _per_writer(outcomes, writers, name):
    """Totals per writer: the sum of ``outcomes`` and the number of digits, in a fixed writer order."""
    outcomes = np.asarray(outcomes, dtype=np.float64)
    writers = np.asarray(writers)
    if outcomes.ndim != 1 or writers.shape != outcomes.shape:
        raise ValueError(
            f"{name} and writers must be 1-D arrays of one length (one entry per digit); "
            f"got shapes {outcomes.shape} and {writers.shape}."
        )
    if outcomes.size == 0:
        raise ValueError(f"{name} is empty; expected one entry per digit.")
    if not np.isfinite(outcomes).all():
        raise ValueError(f"{name} must be finite (0/1 errors or numbers); got NaN or infinity.")
    _, group = np.unique(writers, return_inverse=True)
    return np.bincount(group, weights=outcomes), np.bincount(group).astype(np.float64)


def _check(n_boot, confidence):
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < _BATCHES:
        raise ValueError(f"n_boot must be an integer >= {_BATCHES}; got n_boot={n_boot!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got confidence={confidence!r}.")


@functools.lru_cache(maxsize=4)
def _draws(n_writers, n_boot, seed):
    """Bootstrap counts: how often each writer is drawn, per replicate, in batches (rows sum to n_writers).

    The draws depend only on their three arguments, and a notebook asks for the same ones again and again
    (297 test writers, the default replicates and seed), so they are drawn once per process and shared,
    read-only: the same numbers, without drawing six million binomials per interval."""
    rng = np.random.default_rng(seed)
    p = np.full(n_writers, 1.0 / n_writers)
    batches = []
    for size in np.diff(np.linspace(0, n_boot, _BATCHES + 1).astype(int)):
        counts = rng.multinomial(n_writers, p, size=size).astype(np.float64)
        counts.flags.writeable = False
        batches.append(counts)
    return tuple(batches)


def _interval(replicates, confidence):
    """Percentile interval of the pooled replicates, and the Monte Carlo error of its ends."""
    alpha = (1 - confidence) / 2
    pooled = np.concatenate(replicates)
    low, high = np.quantile(pooled, [alpha, 1 - alpha])
    ends = np.array([np.quantile(r, [alpha, 1 - alpha]) for r in replicates])  # (batches, 2)
    # The ends from all replicates vary about sqrt(batches) times less than one batch's ends.
    mc_se = float(ends.std(axis=0, ddof=1).max() / np.sqrt(len(replicates)))
    return float(low), float(high), mc_se


def writer_bootstrap(errors, writers, *, n_boot=DEFAULT_N_BOOT, confidence=0.95, seed=0):
    """The mean of ``errors`` (an error rate) with a cluster-bootstrap interval over writers.

    Parameters
    ----------
    errors : array-like of shape (n_digits,)
        1 (or True) where the classifier is wrong, 0 where it is right; any numbers are allowed.
    writers : array-like of shape (n_digits,)
        The writer of each digit (QMNIST's ``writer_id``).
    n_boot : int, default=DEFAULT_N_BOOT
        Bootstrap replicates.
    confidence : float, default=0.95
    seed : int, default=0

    Returns
    -------
    Estimate
        ``value`` is the plain mean; ``low`` and ``high`` the percentile interval of the mean over
        replicates, each a draw of as many writers as there are, with replacement, with all their digits.

    Examples
    --------
    >>> errors = [1, 1, 0, 0, 0, 0, 0, 0]  # both errors by writer "a"
    >>> est = writer_bootstrap(errors, ["a", "a", "b", "b", "c", "c", "d", "d"], n_boot=2000)
    >>> est.value, est.low, est.high
    (0.25, 0.0, 0.75)
    """
    _check(n_boot, confidence)
    e, n = _per_writer(errors, writers, "errors")
    replicates = [(c @ e) / (c @ n) for c in _draws(len(n), n_boot, seed)]
    low, high, mc_se = _interval(replicates, confidence)
    return Estimate(float(e.sum() / n.sum()), low, high, int(n_boot), mc_se)


def paired_difference(errors_a, errors_b, writers, *, n_boot=DEFAULT_N_BOOT, n_flips=None, confidence=0.95,
                      seed=0):
    """Error rate of A minus that of B on the same digits, with a writer-bootstrap interval and p-value.

    Parameters
    ----------
    errors_a, errors_b : array-like of shape (n_digits,)
        0/1 errors of the two classifiers on the same digits, in the same order.
    writers : array-like of shape (n_digits,)
    n_boot : int, default=DEFAULT_N_BOOT
        Bootstrap replicates for the interval.
    n_flips : int or None, default=None
        Random sign flips for the p-value; ``None`` uses ``n_boot``. With 16 or fewer writers whose
        error counts differ, every one of the ``2**m`` flips is enumerated instead (an exact p-value).
    confidence : float, default=0.95
    seed : int, default=0

    Returns
    -------
    PairedDifference
        ``p_value`` is two-sided: the share of sign flips whose total difference is at least as far
        from 0 as the observed one (counting the observed assignment itself, so never 0).

    Examples
    --------
    >>> a = [1, 1, 1, 0, 1, 0, 0, 0]
    >>> b = [0, 0, 0, 0, 0, 0, 0, 0]
    >>> r = paired_difference(a, b, ["w", "w", "x", "x", "y", "y", "z", "z"], n_boot=1000)
    >>> r.difference, r.n_writers_differing, r.p_value  # 3 writers, all one way: 2 of 8 flips as extreme
    (0.5, 3, 0.25)
    """
    _check(n_boot, confidence)
    a, n = _per_writer(errors_a, writers, "errors_a")
    b, _ = _per_writer(errors_b, writers, "errors_b")
    if np.shape(errors_a) != np.shape(errors_b):
        raise ValueError(f"errors_a and errors_b must have one shape; got {np.shape(errors_a)} and {np.shape(errors_b)}.")
    d = a - b  # per-writer difference in error counts
    replicates = [(c @ d) / (c @ n) for c in _draws(len(n), n_boot, seed)]
    low, high, mc_se = _interval(replicates, confidence)
    return PairedDifference(
        difference=float(d.sum() / n.sum()), low=low, high=high,
        p_value=_sign_flip_p(d[d != 0], n_boot if n_flips is None else n_flips, seed),
        n_writers_differing=int((d != 0).sum()), n_boot=int(n_boot), end_mc_se=mc_se,
    )


def _sign_flip_p(d, n_flips, seed):
    """Two-sided p-value of the sign-flip test on per-writer differences ``d`` (zeros removed)."""
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, np.abs(d).sum())  # totals are sums of integers here; guard float noise anyway
    if d.size <= 16:
        signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
        totals = np.abs(signs @ d)
        return float((totals >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for size in np.diff(np.linspace(0, n_flips, _BATCHES + 1).astype(int)):
        signs = rng.integers(0, 2, size=(size, d.size)) * 2 - 1
        extreme += int((np.abs(signs @ d) >= observed - tol).sum())
    return (1 + extreme) / (1 + n_flips)


def holm(p_values):
    """Holm's step-down adjusted p-values for a family of tests read together.

    Reject hypothesis i at level alpha when its adjusted p-value is at most alpha: the chance of at least
    one false rejection in the family is then at most alpha, whatever the dependence between the tests.

    Parameters
    ----------
    p_values : array-like of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
        In the input's order: ``max over j <= rank(i) of min(1, (m - j) * p_(j))`` with the p-values sorted
        increasingly, ``p_(0)`` the smallest.

    Examples
    --------
    Holm's worked example shape: four tests, the smallest p-value multiplied by 4, the next by 3, ...

    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((0 <= p) & (p <= 1)):
        raise ValueError(f"p_values must be a 1-D array of probabilities in [0, 1]; got {p!r}.")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out
