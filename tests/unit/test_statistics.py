"""The paired bootstrap of the leaderboards against cases with known answers: identical methods, constant shifts,
exact resampling distributions, scipy's one-level bootstrap, direct loops of the two-level and the stratified
bootstrap, and determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from benchmark.reporting.statistics import (
    Interval,
    bootstrap_means,
    correctness,
    image_differences,
    paired_difference,
    percentile_interval,
    seed_differences,
    stratified_average,
    stratified_bootstrap,
    stream,
)


def _correct(seeds: int, images: int, p: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(images) < p for _ in range(seeds)]


def test_identical_methods_differ_by_exactly_zero_with_a_zero_width_interval():
    runs = _correct(3, 500, 0.6, 0)
    result = paired_difference(image_differences(runs, runs), np.random.default_rng(1))
    assert result.interval == Interval(0.0, 0.0, 0.0)
    assert not result.interval.excludes_zero
    assert result.interval.text() == "+0.00 [+0.00, +0.00]"


def test_a_constant_shift_of_d_points_gives_d():
    # Over seeds only: every seed d points better -> every resample is d.
    reference = [61.5, 55.0, 70.25, 64.0]
    d = 2.5
    result = paired_difference(seed_differences([a + d for a in reference], reference), np.random.default_rng(0),
                               images=False)
    assert result.interval.estimate == pytest.approx(d, abs=1e-12)
    assert result.interval.low == pytest.approx(d, abs=1e-12) and result.interval.high == pytest.approx(d, abs=1e-12)
    assert result.interval.excludes_zero and result.interval.text() == "+2.50 [+2.50, +2.50]*†"
    # Per image: the method is right on 10 more images of 200 at every seed: the mean difference is 5 points.
    base = _correct(3, 200, 0.5, 3)
    better = []
    for run in base:
        run = run.copy()
        run[np.flatnonzero(~run)[:10]] = True
        better.append(run)
    result = paired_difference(image_differences(better, base), np.random.default_rng(0))
    assert result.interval.estimate == pytest.approx(5.0)
    assert result.interval.low <= 5.0 <= result.interval.high and result.interval.low >= 0.0


def test_one_seed_resamples_images_as_the_exact_binomial_says():
    # One seed, 100 images, the method right where the reference is wrong on 20 of them (difference +100 there,
    # 0 elsewhere): a resample's mean is 100 * Binomial(100, 0.2) / 100, whose quantiles are known exactly.
    differences = np.zeros((1, 100))
    differences[0, :20] = 100.0
    result = paired_difference(differences, np.random.default_rng(7), resamples=20000)
    low, high = stats.binom.ppf([0.025, 0.975], 100, 0.2)
    assert result.interval.estimate == pytest.approx(20.0)
    assert result.interval.low == pytest.approx(low, abs=1.0) and result.interval.high == pytest.approx(high, abs=1.0)
    assert result.replicates.mean() == pytest.approx(20.0, abs=0.2)
    assert result.replicates.std() == pytest.approx(np.sqrt(100 * 0.2 * 0.8), abs=0.2)


def test_seeds_only_matches_scipys_percentile_bootstrap():
    rng = np.random.default_rng(11)
    differences = rng.normal(1.0, 3.0, size=12)
    ours = paired_difference(differences[:, None], np.random.default_rng(0), images=False, resamples=20000).interval
    theirs = stats.bootstrap((differences,), np.mean, n_resamples=20000, method="percentile",
                             rng=np.random.default_rng(1)).confidence_interval
    assert ours.estimate == pytest.approx(differences.mean())
    width = theirs.high - theirs.low
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)


def test_seeds_only_with_three_seeds_matches_the_exact_resampling_distribution():
    # 3 seeds: 27 equally likely ordered resamples; each possible mean turns up as often as it should.
    differences = np.array([1.0, 4.0, -2.0])
    exact = np.array([differences[list(idx)].mean() for idx in itertools.product(range(3), repeat=3)])
    replicates = bootstrap_means(differences[:, None], np.random.default_rng(5), 40000)
    values, counts = np.unique(np.round(exact, 9), return_counts=True)
    found = np.round(replicates, 9)
    assert set(np.unique(found)) == set(values)
    for value, count in zip(values, counts):
        assert np.mean(found == value) == pytest.approx(count / 27, abs=0.01)
    for q in (2.5, 50.0, 97.5):  # the same quantiles as the exact distribution (inverted CDF)
        assert np.percentile(replicates, q, method="inverted_cdf") == pytest.approx(
            np.percentile(exact, q, method="inverted_cdf"))


def test_the_two_level_bootstrap_equals_a_direct_loop_with_the_same_draws():
    differences = image_differences(_correct(4, 60, 0.7, 1), _correct(4, 60, 0.6, 2))
    resamples = 200  # one chunk: all seed draws, then all image draws
    ours = bootstrap_means(differences, np.random.default_rng(3), resamples)
    rng = np.random.default_rng(3)
    seed_draws = rng.integers(0, 4, size=(resamples, 4))
    image_draws = rng.integers(0, 60, size=(resamples, 60))
    direct = np.array([differences[np.ix_(s, i)].mean() for s, i in zip(seed_draws, image_draws)])
    np.testing.assert_allclose(ours, direct, rtol=0, atol=1e-9)


def test_the_same_image_draw_serves_every_seed_and_both_methods():
    # Two seeds whose per-image differences are opposite: any common image draw cancels them exactly when both
    # seeds are drawn once each; an independent draw per seed would not.
    row = np.where(np.arange(50) % 2 == 0, 100.0, 0.0)
    differences = np.stack([row, -row])
    replicates = bootstrap_means(differences, np.random.default_rng(0), 4000)
    # resamples drawing seeds {0, 1} (half of them) give exactly 0; the others +-(image mean)
    assert np.mean(replicates == 0.0) == pytest.approx(0.5, abs=0.03)


def test_a_fixed_seed_gives_the_same_interval_and_another_seed_another():
    differences = image_differences(_correct(3, 300, 0.65, 4), _correct(3, 300, 0.6, 5))
    first = paired_difference(differences, stream(0, "synth", "SHOT", "Source only"))
    again = paired_difference(differences, stream(0, "synth", "SHOT", "Source only"))
    other = paired_difference(differences, stream(1, "synth", "SHOT", "Source only"))
    assert first.interval == again.interval
    np.testing.assert_array_equal(first.replicates, again.replicates)
    assert other.interval != first.interval and other.interval.estimate == first.interval.estimate


def test_the_stratified_bootstrap_equals_a_direct_implementation_of_rliables():
    rng = np.random.default_rng(8)
    scores = [rng.normal(60, 5, size=5), rng.normal(40, 2, size=3), rng.normal(70, 8, size=4)]
    resamples = 200
    ours = stratified_bootstrap(scores, seed=9, resamples=resamples)
    # rliable's StratifiedBootstrap: per task, its runs drawn with replacement, independently of the other tasks;
    # the aggregate of a resample is the mean over tasks of the task means.
    children = np.random.SeedSequence(9).spawn(len(scores))
    per_task = []
    for task, child in zip(scores, children):
        draws = np.random.default_rng(child).integers(0, len(task), size=(resamples, len(task)))
        per_task.append(task[draws].mean(axis=1))
    direct = np.mean(per_task, axis=0)
    expected = percentile_interval(float(np.mean([s.mean() for s in scores])), direct, images=False)
    assert ours.estimate == pytest.approx(expected.estimate)
    assert ours.low == pytest.approx(expected.low) and ours.high == pytest.approx(expected.high)
    assert not ours.images


def test_the_stratified_average_of_paired_differences_averages_setup_resamples():
    a = paired_difference(np.full((3, 1), 2.0), np.random.default_rng(0), images=False)
    b = paired_difference(image_differences(_correct(3, 80, 0.5, 6), _correct(3, 80, 0.5, 7)),
                          np.random.default_rng(1))
    average = stratified_average([a, b])
    assert average.estimate == pytest.approx((a.interval.estimate + b.interval.estimate) / 2)
    replicates = (a.replicates + b.replicates) / 2
    assert (average.low, average.high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])))
    assert not average.images  # one setup over seeds only makes the average seeds-only
    assert stratified_average([b]).images


def test_correctness_and_differences_check_their_shapes():
    assert correctness(np.array([0, 1, 2]), np.array([0, 2, 2])).tolist() == [True, False, True]
    with pytest.raises(ValueError):
        correctness(np.array([0, 1]), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        image_differences([np.ones(3, bool)], [np.ones(4, bool)])
    with pytest.raises(ValueError):
        bootstrap_means(np.empty((0, 3)), np.random.default_rng(0), 10)


def test_interval_text_marks_significance_and_seeds_only():
    assert Interval(1.234, 0.5, 2.0).text() == "+1.23 [+0.50, +2.00]*"
    assert Interval(-0.001, -1.0, 1.0).text() == "+0.00 [-1.00, +1.00]"
    assert Interval(-3.0, -4.0, -2.0, images=False).text() == "-3.00 [-4.00, -2.00]*†"
    assert not Interval(0.0, 0.0, 1.0).excludes_zero  # an end at 0 does not exclude it
