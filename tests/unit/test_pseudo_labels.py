"""CluP stage 1: k-means and cluster-level pseudo-labels, against hand-built cases and the authors' loop."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from benchmark.config.errors import UserError
from methods import registry
from methods.core.kmeans import kmeans
from methods.core.pseudo_labels import (
    Selection,
    cluster_labels,
    cluster_pseudo_labels,
    normalise_with_bias,
    pseudo_label_stats,
    select_by_confidence,
    select_by_purity,
    top_fraction_per_class,
)
from tests.reference_clup import (
    make_benchmark_data,
    reference_kmeans,
    reference_normalise,
    reference_select_by_confidence,
    reference_select_by_purity,
)


def _long(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def _kept(selection: Selection) -> list[int]:
    return torch.nonzero(selection.mask).flatten().tolist()


# --- cluster labels and purity -------------------------------------------------------------------------------


def test_majority_tie_goes_to_the_lowest_class() -> None:
    label, purity = cluster_labels(_long([0, 0, 0, 0]), _long([2, 1, 1, 2]), n_clusters=1, n_classes=3)
    assert label.tolist() == [1]
    assert purity.tolist() == [0.5]


def test_single_class_cluster_has_purity_one_and_empty_cluster_is_minus_one() -> None:
    assignments = _long([0, 0, 0, 2, 2, 2])
    teacher = _long([4, 4, 4, 1, 1, 3])
    label, purity = cluster_labels(assignments, teacher, n_clusters=4, n_classes=7)
    assert label.tolist() == [4, -1, 1, -1]
    assert purity.dtype == torch.float32
    assert purity.tolist() == pytest.approx([1.0, 0.0, 2 / 3, 0.0])


def test_cluster_labels_rejects_out_of_range_inputs() -> None:
    with pytest.raises(ValueError):
        cluster_labels(_long([0, 1]), _long([0, 7]), n_clusters=2, n_classes=7)
    with pytest.raises(ValueError):
        cluster_labels(_long([0, 2]), _long([0, 1]), n_clusters=2, n_classes=7)


# --- per-class selection ---------------------------------------------------------------------------------------


def test_selection_keeps_floor_fraction_and_breaks_score_ties_by_index() -> None:
    labels = _long([0, 0, 0, 0, 0])
    score = torch.tensor([0.5, 0.8, 0.9, 0.8, 0.8])
    # keep int(0.4 * 5) = 2: 0.9 (index 2), then the first of the three tied 0.8 (index 1)
    assert torch.nonzero(top_fraction_per_class(labels, score, q=0.6, n_classes=1)).flatten().tolist() == [1, 2]


def test_purity_ties_inside_a_class_cut_by_index() -> None:
    # One cluster of 10 samples, all class 3 and purity 1: Q = 0.5 keeps 5, the lowest indices.
    selection = select_by_purity(torch.zeros(10, dtype=torch.int64), torch.full((10,), 3), n_clusters=1, q=0.5)
    assert _kept(selection) == [0, 1, 2, 3, 4]
    assert selection.labels.tolist() == [3] * 10
    assert selection.score.tolist() == [1.0] * 10


def test_per_class_quota_and_ranking_by_purity() -> None:
    # Clusters: 0 -> class 0, purity 1 (3 samples); 1 -> class 0, purity 2/3; 2 -> class 1, purity 1/2.
    assignments = _long([0, 0, 0, 1, 1, 1, 2, 2])
    teacher = _long([0, 0, 0, 0, 0, 1, 1, 2])
    selection = select_by_purity(assignments, teacher, n_clusters=3, q=0.5, n_classes=3)
    assert selection.labels.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    # class 0: 6 samples, keep 3 = the purest cluster; class 1: 2 samples, keep 1 = index 6; class 2: none.
    assert _kept(selection) == [0, 1, 2, 6]


def test_a_class_without_any_cluster_keeps_nothing_without_error() -> None:
    selection = select_by_purity(_long([0, 0, 1, 1]), _long([2, 2, 5, 5]), n_clusters=2, q=0.0, n_classes=7)
    assert _kept(selection) == [0, 1, 2, 3]
    assert set(selection.labels.tolist()) == {2, 5}


def test_q_zero_keeps_all_and_q_one_keeps_none() -> None:
    generator = torch.Generator().manual_seed(0)
    assignments = torch.randint(0, 9, (40,), generator=generator)
    teacher = torch.randint(0, 7, (40,), generator=generator)
    assert bool(select_by_purity(assignments, teacher, 9, q=0.0).mask.all())
    assert not bool(select_by_purity(assignments, teacher, 9, q=1.0).mask.any())
    with pytest.raises(ValueError):
        select_by_purity(assignments, teacher, 9, q=1.5)


def test_q_is_converted_to_the_authors_keep_fraction_without_rounding_down() -> None:
    # 1 - 0.9 = 0.0999...98 in floating point; the authors passed 0.1, which keeps 10 of 100.
    selection = select_by_purity(torch.zeros(100, dtype=torch.int64), torch.zeros(100, dtype=torch.int64), 1, q=0.9)
    assert int(selection.mask.sum()) == 10


def test_confidence_selection_is_per_class() -> None:
    probabilities = torch.tensor(
        [
            [0.90, 0.10, 0.00],
            [0.60, 0.40, 0.00],
            [0.70, 0.30, 0.00],
            [0.20, 0.80, 0.00],
            [0.45, 0.55, 0.00],
            [0.50, 0.00, 0.50],  # tie in the argmax: class 0
        ]
    )
    selection = select_by_confidence(probabilities, q=0.5)
    assert selection.labels.tolist() == [0, 0, 0, 1, 1, 0]
    assert selection.score.tolist() == pytest.approx([0.9, 0.6, 0.7, 0.8, 0.55, 0.5])
    # class 0: 4 samples keep 2 (0.9, 0.7); class 1: 2 samples keep 1 (0.8); class 2: none.
    assert _kept(selection) == [0, 2, 3]


def test_stats_report_kept_fraction_and_accuracy_of_the_kept() -> None:
    selection = Selection(
        mask=torch.tensor([True, True, False, True]),
        labels=_long([1, 2, 3, 4]),
        score=torch.ones(4),
    )
    stats = pseudo_label_stats(selection, _long([1, 0, 3, 4]))
    assert stats == {"kept": 3, "kept_fraction": 0.75, "accuracy_vs_truth": pytest.approx(200 / 3)}
    empty = Selection(mask=torch.zeros(4, dtype=torch.bool), labels=selection.labels, score=selection.score)
    assert np.isnan(pseudo_label_stats(empty, _long([1, 0, 3, 4]))["accuracy_vs_truth"])


# --- k-means ---------------------------------------------------------------------------------------------------


def test_kmeans_shapes_determinism_and_no_faiss_warning(capfd: pytest.CaptureFixture[str]) -> None:
    features = torch.from_numpy(make_benchmark_data(200, 16, seed=1)[0])
    first = kmeans(features, n_clusters=20, seed=3)  # 10 points per centroid: faiss would warn by default
    second = kmeans(features, n_clusters=20, seed=3)
    assert "WARNING" not in capfd.readouterr().err
    assert first.assignments.dtype == torch.int64 and first.assignments.shape == (200,)
    assert first.centroids.dtype == torch.float32 and first.centroids.shape == (20, 16)
    assert torch.equal(first.assignments, second.assignments) and first.inertia == second.inertia
    recomputed = ((features - first.centroids[first.assignments]) ** 2).sum().item()
    assert first.inertia == pytest.approx(recomputed, rel=1e-4)


def test_more_clusters_than_samples_gives_one_cluster_per_sample() -> None:
    features = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    result = kmeans(features, n_clusters=12, seed=0)
    assert result.assignments.tolist() == [0, 1, 2, 3, 4]
    assert result.n_clusters == 5 and result.inertia == 0.0
    probabilities = torch.softmax(torch.randn(5, 7, generator=torch.Generator().manual_seed(1)), dim=1)
    selection = cluster_pseudo_labels(features, probabilities, n_clusters=12, q=0.0, seed=0)
    assert bool(selection.mask.all())
    assert torch.equal(selection.labels, probabilities.argmax(dim=1))
    assert selection.score.tolist() == [1.0] * 5


def test_kmeans_inertia_within_two_percent_of_sklearn_n_init_10() -> None:
    features, _, _ = make_benchmark_data(3000, 64, seed=0)
    embeddings = reference_normalise(features)
    _, reference_inertia = reference_kmeans(embeddings, n_clusters=50, seed=0, n_init=10)
    ours = kmeans(torch.from_numpy(embeddings), n_clusters=50, seed=0)
    assert ours.inertia <= 1.02 * reference_inertia


# faiss's seed step between restarts (faiss/Clustering.cpp: run r draws from seed + 1 + r * 15486557).
FAISS_REDO_STEP = 15486557


def _clustered(n: int = 600, dim: int = 16, seed: int = 1) -> torch.Tensor:
    return normalise_with_bias(torch.from_numpy(make_benchmark_data(n, dim, seed=seed)[0]))


def test_kmeans_defaults_are_the_single_random_run_clup_always_made() -> None:
    """20 iterations, one run, random seeding: bit-identical to the faiss call CluP made before these were settings."""
    x = _clustered()
    default = kmeans(x, 30, seed=4)
    explicit = kmeans(x, 30, seed=4, n_iter=20, n_redo=1, init="random")
    km = faiss.Kmeans(x.shape[1], 30, niter=20, nredo=1, seed=4, min_points_per_centroid=1,
                      max_points_per_centroid=x.shape[0], verbose=False, gpu=False)
    km.train(x.numpy())
    _, before = km.assign(x.numpy())
    for result in (default, explicit):
        assert np.array_equal(result.assignments.numpy(), before)
        assert np.array_equal(result.centroids.numpy(), km.centroids)
    assert default.inertia == explicit.inertia


def test_restarts_keep_the_run_with_the_lowest_inertia() -> None:
    x = _clustered()
    seed, restarts = 3, 4
    # Restart r is the single run of seed + r * FAISS_REDO_STEP; few iterations so that the runs end apart.
    singles = [kmeans(x, 30, seed=seed + r * FAISS_REDO_STEP, n_iter=4) for r in range(restarts)]
    assert len({s.inertia for s in singles}) == restarts  # the restarts really differ
    best = min(singles, key=lambda s: s.inertia)
    kept = kmeans(x, 30, seed=seed, n_iter=4, n_redo=restarts)
    assert kept.inertia == best.inertia == min(s.inertia for s in singles)
    assert torch.equal(kept.assignments, best.assignments)
    assert singles[0].inertia > best.inertia  # the single run of the same seed was not the best one here


@pytest.mark.parametrize(("n_iter", "n_redo", "init"), [(20, 1, "random"), (7, 3, "random"), (20, 1, "kmeans++"),
                                                        (5, 2, "kmeans++")])
def test_kmeans_is_deterministic_for_a_seed_and_differs_across_seeds(n_iter: int, n_redo: int, init: str) -> None:
    x = _clustered()
    first, second = (kmeans(x, 30, seed=8, n_iter=n_iter, n_redo=n_redo, init=init) for _ in range(2))
    assert torch.equal(first.assignments, second.assignments) and torch.equal(first.centroids, second.centroids)
    assert first.inertia == second.inertia
    other = kmeans(x, 30, seed=9, n_iter=n_iter, n_redo=n_redo, init=init)
    assert not torch.equal(first.centroids, other.centroids)


def test_more_iterations_never_end_higher_and_kmeans_plus_plus_is_used() -> None:
    x = _clustered()
    inertias = [kmeans(x, 30, seed=2, n_iter=n).inertia for n in (1, 5, 20, 100)]
    assert inertias == sorted(inertias, reverse=True)
    assert kmeans(x, 30, seed=2, n_iter=1, init="kmeans++").inertia != inertias[0]


@pytest.mark.parametrize("bad", [{"n_iter": 0}, {"n_redo": 0}, {"init": "k-means++"}])
def test_kmeans_rejects_bad_settings(bad: dict) -> None:
    with pytest.raises(ValueError):
        kmeans(_clustered(), 30, seed=0, **bad)


def test_bf16_features_under_autocast_are_clustered_in_fp32() -> None:
    features, probabilities, _ = make_benchmark_data(500, 16, seed=3)
    low = torch.from_numpy(features).to(torch.bfloat16)
    reference = cluster_pseudo_labels(low.float(), torch.from_numpy(probabilities), 25, 0.8, seed=1, n_redo=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = normalise_with_bias(low)
        selection = cluster_pseudo_labels(low, torch.from_numpy(probabilities), 25, 0.8, seed=1, n_redo=2)
    assert embeddings.dtype == torch.float32
    assert torch.equal(embeddings, normalise_with_bias(low.float()))
    assert torch.equal(selection.mask, reference.mask) and torch.equal(selection.labels, reference.labels)


def test_clup_kmeans_settings_default_to_the_old_run_and_reach_stage_1(monkeypatch: pytest.MonkeyPatch) -> None:
    clup = registry.get("clup")
    values = registry.resolve_hparams(clup, {}, {})
    assert (values["kmeans_iters"], values["kmeans_restarts"], values["kmeans_init"]) == (20, 1, "random")
    sets = {"kmeans_iters": "50", "kmeans_restarts": "3", "kmeans_init": "kmeans++"}
    values = registry.resolve_hparams(clup, {}, sets)
    assert (values["kmeans_iters"], values["kmeans_restarts"], values["kmeans_init"]) == (50, 3, "kmeans++")
    for bad, message in (({"kmeans_iters": "0"}, "kmeans_iters >= 1"),
                         ({"kmeans_restarts": "0"}, "kmeans_restarts >= 1"),
                         ({"kmeans_init": "greedy"}, "random, kmeans\\+\\+")):
        with pytest.raises(UserError, match=message):
            registry.resolve_hparams(clup, {}, bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_stay_on_cuda() -> None:
    features, probabilities, _ = make_benchmark_data(300, 16, seed=0)
    selection = cluster_pseudo_labels(
        torch.from_numpy(features).cuda(), torch.from_numpy(probabilities).cuda(), n_clusters=20, q=0.5, seed=0
    )
    assert selection.mask.is_cuda and selection.labels.is_cuda and selection.score.is_cuda


# --- equivalence with the authors' loop --------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 0.5, 0.7, 0.8, 0.9, 0.97])
def test_purity_selection_matches_the_reference_loop(q: float) -> None:
    rng = np.random.default_rng(7)
    n_samples, n_clusters = 2000, 50
    assignments = rng.integers(0, n_clusters - 2, size=n_samples)  # the last two clusters stay empty
    # each cluster leans towards one class, so purities spread over (0, 1] and many are tied
    lean = rng.integers(0, 7, size=n_clusters)
    teacher = np.where(rng.random(n_samples) < 0.6, lean[assignments], rng.integers(0, 7, size=n_samples))
    ours = select_by_purity(torch.from_numpy(assignments), torch.from_numpy(teacher), n_clusters, q)
    mask, labels, scores = reference_select_by_purity(assignments, teacher, n_clusters, q)
    assert np.array_equal(ours.labels.numpy(), labels)
    assert np.array_equal(ours.score.numpy(), scores)
    assert np.array_equal(ours.mask.numpy(), mask)


@pytest.mark.parametrize("q", [0.0, 0.6, 0.9])
def test_confidence_selection_matches_the_reference_loop(q: float) -> None:
    _, probabilities, _ = make_benchmark_data(2000, 32, seed=2)
    probabilities = np.round(probabilities, 2)  # coarse scores: ties across the cut
    ours = select_by_confidence(torch.from_numpy(probabilities), q)
    mask, labels, _ = reference_select_by_confidence(probabilities, q)
    assert np.array_equal(ours.labels.numpy(), labels)
    assert np.array_equal(ours.mask.numpy(), mask)


def test_stage1_on_our_clustering_matches_the_reference_loop() -> None:
    features, probabilities, _ = make_benchmark_data(1500, 32, seed=4)
    embeddings = normalise_with_bias(torch.from_numpy(features))
    assert np.allclose(embeddings.numpy(), reference_normalise(features), atol=1e-6)
    selection = cluster_pseudo_labels(torch.from_numpy(features), torch.from_numpy(probabilities), 40, 0.8, seed=5)
    assignments = kmeans(embeddings, 40, seed=5).assignments.numpy()
    mask, labels, _ = reference_select_by_purity(assignments, probabilities.argmax(axis=1), 40, 0.8)
    assert np.array_equal(selection.mask.numpy(), mask)
    assert np.array_equal(selection.labels.numpy(), labels)
