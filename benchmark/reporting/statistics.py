"""Paired statistics for leaderboards: the difference of a method to a reference with a bootstrap interval.

Every method of a seed adapts the same source model and is scored on the same target test images, so two rows of
a table are compared in pairs: seed by seed and image by image. The data of one comparison on one setup is a
matrix of per-image differences, ``100 * (correct_method - correct_reference)`` (seeds x images, in {-100, 0,
100}); its mean is the mean over seeds of the accuracy difference, in percentage points.

The interval is the percentile interval of a two-level bootstrap. Seeds and test images are *crossed* (every
seed is scored on the same images), so each resample draws the seeds with replacement and, independently, one
multiset of image indices that is applied to every drawn seed and to both methods of the pair (the
"pigeonhole" bootstrap of Owen 2007, slightly conservative). Where the images are not known (records written
before ``test_correct``) the matrix has one column, each seed's accuracy difference, and only seeds are
resampled. Across setups, the average's interval resamples each setup independently and averages the
setups' resampled means: the stratified bootstrap of rliable (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"), whose strata are the tasks.

Why numpy and not a library: ``scipy.stats.bootstrap`` resamples one level (the observations of one or several
paired samples of equal length), and rliable's ``StratifiedBootstrap`` resamples runs within tasks, not test
images within runs (and rliable 1.2.0's dependency ``arch`` does not import with pandas 3). Neither can draw the
crossed seed x image resample, so it is written here with numpy, vectorised over resamples (multiplicity counts
instead of index arrays: ``w @ D @ c``), and tested against direct loops, scipy and exact distributions.
Everything is deterministic given the seed (``numpy.random.Generator`` from a ``SeedSequence``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples per interval.
RESAMPLES = 2000
#: Base seed of every leaderboard interval (each comparison derives its own stream from it, ``stream``).
SEED = 0
#: Confidence level of the intervals.
LEVEL = 0.95
#: Resamples drawn at once (bounds memory at CHUNK x images counts); the draws depend on it, so it is fixed.
CHUNK = 256


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval, in percentage points.

    Attributes:
        estimate: the observed statistic (mean paired difference).
        low, high: the interval's ends.
        images: whether test images were resampled (False: seeds only).
    """

    estimate: float
    low: float
    high: float
    images: bool = True

    @property
    def excludes_zero(self) -> bool:
        """Whether 0 lies outside the closed interval (the difference is called significant)."""
        return self.low > 0 or self.high < 0

    def text(self, mark: str = "*", seeds_only: str = "†") -> str:
        """``+1.20 [+0.40, +2.00]`` followed by ``mark`` where the interval excludes 0 and ``seeds_only`` where
        only seeds were resampled."""
        suffix = (mark if self.excludes_zero else "") + ("" if self.images else seeds_only)
        return f"{_signed(self.estimate)} [{_signed(self.low)}, {_signed(self.high)}]{suffix}"


def _signed(value: float) -> str:
    """``+1.20`` / ``-0.35``; a value that rounds to zero prints ``+0.00``."""
    rounded = round(value, 2)
    return f"{rounded if rounded != 0 else 0.0:+.2f}"


def stream(seed: int, *names: str) -> np.random.Generator:
    """A generator for one comparison: ``seed`` and a stable hash (CRC-32) of each name, so that a comparison's
    draws do not depend on which other rows or setups a table holds."""
    return np.random.default_rng(np.random.SeedSequence([seed, *(zlib.crc32(n.encode()) for n in names)]))


def correctness(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each prediction equals its label (same split order)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    return predictions == labels


def image_differences(method: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> np.ndarray:
    """(seeds, images) ``100 * (correct_method - correct_reference)`` from each seed's (N,) correctness vectors."""
    a = np.asarray(np.stack(method), dtype=np.float64)
    r = np.asarray(np.stack(reference), dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"method {a.shape} and reference {r.shape} are not paired")
    return 100.0 * (a - r)


def seed_differences(method: Sequence[float], reference: Sequence[float]) -> np.ndarray:
    """(seeds, 1) per-seed accuracy differences (points): the fallback when test images are not known."""
    a, r = np.asarray(method, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"{a.shape[0]} method seeds for {r.shape[0]} reference seeds")
    return (a - r)[:, None]


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(size, n) multiplicities of ``n`` draws with replacement from ``range(n)``, one row per resample."""
    draws = rng.integers(0, n, size=(size, n), dtype=np.int64)
    offsets = (np.arange(size, dtype=np.int64) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def bootstrap_means(differences: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES,
                    chunk: int = CHUNK) -> np.ndarray:
    """(resamples,) means of ``differences`` (seeds x images) under the crossed two-level bootstrap.

    Each resample draws the seeds with replacement, then (when there is more than one column) the images with
    replacement, once, for all drawn seeds; per chunk all seed draws come first, then all image draws.
    """
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim != 2 or 0 in differences.shape:
        raise ValueError(f"differences must be a non-empty (seeds, images) matrix, got shape {differences.shape}")
    seeds, images = differences.shape
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        w = _counts(rng, seeds, size)
        c = _counts(rng, images, size) if images > 1 else np.ones((size, 1))
        per_seed = c @ differences.T  # (size, seeds): each seed's sum over the drawn images
        out[start:start + size] = (w * per_seed).sum(axis=1) / (seeds * images)
    return out


def percentile_interval(estimate: float, replicates: np.ndarray, level: float = LEVEL,
                        images: bool = True) -> Interval:
    """The percentile interval of bootstrap ``replicates`` around ``estimate`` (numpy's linear percentiles)."""
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), images)


@dataclass(frozen=True)
class Paired:
    """One comparison on one setup: the interval and the resampled means it came from (for averages)."""

    interval: Interval
    replicates: np.ndarray


def paired_difference(differences: np.ndarray, rng: np.random.Generator, *, images: bool = True,
                      resamples: int = RESAMPLES, level: float = LEVEL) -> Paired:
    """Mean paired difference (points) of a (seeds, images) difference matrix with its bootstrap interval.

    ``images``: whether the columns are test images (else one column of per-seed differences).
    """
    differences = np.asarray(differences, dtype=np.float64)
    replicates = bootstrap_means(differences, rng, resamples)
    return Paired(percentile_interval(float(differences.mean()), replicates, level, images), replicates)


def stratified_average(per_setup: Sequence[Paired], level: float = LEVEL) -> Interval:
    """The mean over setups of paired differences, with the stratified bootstrap interval: each setup's resampled
    means were drawn independently (its own stream), and resample b of the average is the mean of the setups'
    resample b. Seeds only (``images`` False) when any setup resampled seeds only."""
    if not per_setup:
        raise ValueError("no setups to average")
    estimate = float(np.mean([p.interval.estimate for p in per_setup]))
    replicates = np.mean(np.stack([p.replicates for p in per_setup]), axis=0)
    return percentile_interval(estimate, replicates, level, all(p.interval.images for p in per_setup))


def stratified_bootstrap(scores: Sequence[Sequence[float]], seed: int, resamples: int = RESAMPLES,
                         level: float = LEVEL) -> Interval:
    """rliable's stratified bootstrap of the mean over tasks of per-task mean scores: ``scores[k]`` are task k's
    runs, resampled with replacement within the task, independently of the other tasks (child streams of
    ``SeedSequence(seed)``)."""
    children = np.random.SeedSequence(seed).spawn(len(scores))
    per_task = [paired_difference(np.asarray(s, dtype=np.float64)[:, None], np.random.default_rng(child),
                                  images=False, resamples=resamples, level=level)
                for s, child in zip(scores, children)]
    return stratified_average(per_task, level)
