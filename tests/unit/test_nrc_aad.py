"""NRC and AaD: neighbour retrieval on hand-built banks, the cached neighbour lists against a full search, and
both losses against straightforward loop implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.aad import AaD, aad_loss, batch_dispersion, dispersion_weight
from methods.core.neighbours import (
    NON_RECIPROCAL_AFFINITY,
    NeighbourBank,
    expanded_neighbours,
    nearest_neighbours,
    reciprocal_affinity,
)
from methods.nrc import EXPANDED_WEIGHT, NRC, nrc_loss

#: Six unit vectors in 2-D at these angles (degrees); no two pairs are equally far apart.
ANGLES = (0.0, 10.0, 30.0, 100.0, 115.0, 210.0)
#: Each point's other points, nearest first (by angle: e.g. point 3 at 100 deg: 4 at 15, 2 at 70, 1 at 90...).
ORDER = {0: [1, 2, 3, 4, 5], 1: [0, 2, 3, 4, 5], 2: [1, 0, 3, 4, 5], 3: [4, 2, 1, 0, 5], 4: [3, 2, 5, 1, 0],
         5: [4, 3, 0, 1, 2]}


def _circle_bank() -> torch.Tensor:
    radians = torch.tensor(ANGLES, dtype=torch.float64).deg2rad()
    return torch.stack([radians.cos(), radians.sin()], dim=1).float()


def _banks(features: torch.Tensor, scores: torch.Tensor) -> list[NeighbourBank]:
    """The same bank searched in full and with cached neighbour lists."""
    return [NeighbourBank(features, scores), NeighbourBank(features, scores, list_length=4)]


def test_nearest_neighbours_exclude_self_on_a_hand_built_bank():
    bank = _circle_bank()
    rows = torch.arange(6)
    assert nearest_neighbours(bank, bank, 2, exclude=rows).tolist() == [ORDER[i][:2] for i in range(6)]
    assert nearest_neighbours(bank, bank, 5, exclude=rows).tolist() == [ORDER[i] for i in range(6)]
    for store in _banks(bank, torch.full((6, 3), 1 / 3)):
        found = store.nearest(rows, 5)
        assert found.tolist() == [ORDER[i] for i in range(6)]
        assert not (found == rows[:, None]).any()


def test_expanded_neighbours_and_reciprocal_affinity_on_a_hand_built_bank():
    bank = _circle_bank()
    batch = torch.tensor([0, 3, 5, 4])
    neighbours = nearest_neighbours(bank[batch], bank, 2, exclude=batch)
    assert neighbours.tolist() == [[1, 2], [4, 2], [4, 3], [3, 2]]
    expected_expanded = [[[0, 2], [1, 0]], [[3, 2], [1, 0]], [[3, 2], [4, 2]], [[4, 2], [1, 0]]]
    assert expanded_neighbours(bank, neighbours, 2).tolist() == expected_expanded
    for store in _banks(bank, torch.full((6, 3), 1 / 3)):
        assert store.expanded(neighbours, 2).tolist() == expected_expanded
    affinity = reciprocal_affinity(batch, expanded_neighbours(bank, neighbours, 2))
    # 0 is among the 2 nearest of both 1 and 2; 3 of 4 but not of 2; 5 of neither 4 nor 3; 4 of 3 but not of 2.
    far = NON_RECIPROCAL_AFFINITY
    assert torch.equal(affinity, torch.tensor([[1.0, 1.0], [1.0, far], [far, far], [1.0, far]]))


def test_nrc_expanded_weights_and_affinities_enter_the_loss_as_specified():
    # One class per bank row: a neighbour's score picks that row, so the loss tells which weight each row got.
    bank = _circle_bank()
    scores = torch.eye(6)
    batch = torch.tensor([3])
    probabilities = torch.eye(6)[[2]]  # all mass on row 2's class: only terms whose score is row 2 count
    nrc = NRC({"k": 2, "kk": 2})
    loss = nrc.neighbour_loss(probabilities, batch, NeighbourBank(bank, scores), 0, 1)
    # Sample 3: neighbours 4 (reciprocal, weight 1) and 2 (weight 0.1); expanded: 4 -> [3, 2], 2 -> [1, 0],
    # each 0.1. Row 2 appears once as a neighbour (0.1) and once as an expanded one (0.1); diversity of a one-hot
    # mean prediction: log(1 + 1e-5).
    expected = -(NON_RECIPROCAL_AFFINITY + EXPANDED_WEIGHT) + math.log(1 + 1e-5)
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    loss_on_4 = nrc.neighbour_loss(torch.eye(6)[[4]], batch, NeighbourBank(bank, scores), 0, 1)
    assert float(loss_on_4) == pytest.approx(-1.0 + math.log(1 + 1e-5), abs=1e-6)  # reciprocal: weight 1


def _random_bank(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=generator)
    labels = torch.randint(classes, (n,), generator=generator)
    features = F.normalize(centres[labels] + 0.7 * torch.randn(n, dim, generator=generator), dim=1)
    scores = torch.randn(n, classes, generator=generator).mul(2).softmax(dim=1)
    return features, scores


def _same_neighbours(found: torch.Tensor, truth: torch.Tensor, features: torch.Tensor, rows: torch.Tensor) -> None:
    """Same neighbours, up to the order of rows whose similarities differ by float rounding only."""
    similarity = features[rows] @ features.T
    assert torch.allclose(similarity.gather(1, found), similarity.gather(1, truth), atol=1e-5)
    assert (found == truth).float().mean() > 0.99
    assert not (found == rows[:, None]).any()


def test_cached_lists_stay_exact_while_rows_are_overwritten():
    features, scores = _random_bank(400, 16, 7, seed=0)
    cached = NeighbourBank(features, scores, list_length=9)
    generator = torch.Generator().manual_seed(1)
    everything = torch.arange(400)
    for step in range(60):
        rows = torch.randperm(400, generator=generator)[:32]
        if step % 3 == 2:  # jumps: rows move anywhere (lists that held them fall short and are searched again)
            new = torch.randn(32, 16, generator=generator)
        else:  # drift, as in training
            new = cached.features[rows] + 0.3 * torch.randn(32, 16, generator=generator)
        cached.update(rows, new, torch.randn(32, 7, generator=generator).softmax(dim=1))
        assert torch.equal(cached.features[rows], F.normalize(new, dim=1))
        truth = nearest_neighbours(cached.features, cached.features, 9, exclude=everything)
        for k in (1, 5, 9):
            _same_neighbours(cached.nearest(everything, k), truth[:, :k], cached.features, everything)


def _loop_neighbours(features: torch.Tensor, row: int, k: int) -> list[int]:
    """The k nearest rows of ``row`` by an explicit loop over the bank (self left out)."""
    similarity = {j: float(features[row] @ features[j]) for j in range(len(features)) if j != row}
    return sorted(similarity, key=similarity.get, reverse=True)[:k]


def _loop_nrc_loss(probabilities: torch.Tensor, batch: torch.Tensor, bank: NeighbourBank, k: int, kk: int):
    total = 0.0
    for i, row in enumerate(batch.tolist()):
        p = probabilities[i]
        for neighbour in _loop_neighbours(bank.features, row, k):
            their_neighbours = _loop_neighbours(bank.features, neighbour, kk)
            affinity = 1.0 if row in their_neighbours else 0.1
            total = total - affinity * (p @ bank.scores[neighbour])
            for expanded in their_neighbours:
                total = total - 0.1 * (p @ bank.scores[expanded])
    mean = probabilities.mean(dim=0)
    return total / len(batch) + sum(mean[c] * torch.log(mean[c] + 1e-5) for c in range(len(mean)))


def _loop_aad_loss(probabilities, batch, bank, k: int, alpha_t: float):
    attraction, dispersion = 0.0, 0.0
    for i, row in enumerate(batch.tolist()):
        for neighbour in _loop_neighbours(bank.features, row, k):
            attraction = attraction - probabilities[i] @ bank.scores[neighbour]
        for j in range(len(batch)):
            if j != i:
                dispersion = dispersion + probabilities[i] @ probabilities[j]
    return attraction / len(batch) + alpha_t * dispersion / len(batch)


@pytest.mark.parametrize("list_length", [None, 7])
def test_nrc_loss_equals_a_loop_implementation(list_length: int | None):
    features, scores = _random_bank(60, 8, 5, seed=2)
    bank = NeighbourBank(features, scores, list_length)
    batch = torch.tensor([3, 17, 42, 8, 59, 0])
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    probabilities = logits.softmax(dim=1)
    bank.update(batch, torch.randn(6, 8, generator=torch.Generator().manual_seed(4)), probabilities)
    ours = NRC({"k": 4, "kk": 3}).neighbour_loss(probabilities, batch, bank, 10, 100)
    reference = _loop_nrc_loss(probabilities, batch, bank, 4, 3)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    ours_grad, = torch.autograd.grad(ours, logits, retain_graph=True)
    reference_grad, = torch.autograd.grad(reference, logits)
    assert torch.allclose(ours_grad, reference_grad, atol=1e-6)


def test_nrc_loss_function_with_given_neighbours():
    generator = torch.Generator().manual_seed(5)
    probabilities = torch.randn(4, 3, generator=generator).softmax(dim=1)
    near = torch.rand(4, 2, 3, generator=generator)
    expanded = torch.rand(4, 2, 2, 3, generator=generator)
    affinity = torch.tensor([[1.0, 0.1], [0.1, 0.1], [1.0, 1.0], [0.1, 1.0]])
    loop = 0.0
    for i in range(4):
        for a in range(2):
            loop = loop - affinity[i, a] * (probabilities[i] @ near[i, a])
            loop = loop - sum(0.1 * (probabilities[i] @ expanded[i, a, b]) for b in range(2))
    loop = loop / 4
    mean = probabilities.mean(dim=0)
    loop = loop + (mean * torch.log(mean + 1e-5)).sum()
    assert float(nrc_loss(probabilities, near, affinity, expanded)) == pytest.approx(float(loop), rel=1e-6)


def test_aad_loss_equals_a_loop_implementation():
    features, scores = _random_bank(50, 8, 4, seed=6)
    bank = NeighbourBank(features, scores)
    batch = torch.tensor([1, 9, 33, 49, 20])
    probabilities = torch.randn(5, 4, generator=torch.Generator().manual_seed(7)).softmax(dim=1)
    bank.update(batch, torch.randn(5, 8, generator=torch.Generator().manual_seed(8)), probabilities)
    aad = AaD({"k": 3, "alpha": 2.0, "beta": 0.5})
    ours = aad.neighbour_loss(probabilities, batch, bank, 30, 100)
    reference = _loop_aad_loss(probabilities, batch, bank, 3, 2.0 * 4.0**-0.5)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    near = bank.scores[bank.nearest(batch, 3)]
    assert float(aad_loss(probabilities, near, 0.7)) == pytest.approx(
        float(_loop_aad_loss(probabilities, batch, bank, 3, 0.7)), rel=1e-5)


def test_batch_dispersion_value_and_gradient_through_both_predictions():
    probabilities = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], requires_grad=True)
    dispersion = batch_dispersion(probabilities)
    # Pairs: p1.p2 = 0, p1.p3 = 0.5, p2.p3 = 0.5; each ordered pair counted, mean over 3 samples: 2 / 3.
    assert dispersion.item() == pytest.approx(2 / 3)
    dispersion.backward()
    # d/dp_i of (1/B) sum_{i != j} p_i . p_j = (2/B) sum_{j != i} p_j: the factor 2 is p_i as p_i and as p_j.
    others = probabilities.detach().sum(dim=0) - probabilities.detach()
    assert torch.allclose(probabilities.grad, 2 / 3 * others)
    random = torch.randn(7, 5).softmax(dim=1)
    masked = (random @ random.T) * (1 - torch.eye(7))  # the authors' formulation
    assert float(batch_dispersion(random)) == pytest.approx(float(masked.sum(dim=1).mean()), rel=1e-6)


def test_dispersion_weight_schedule():
    assert dispersion_weight(0, 500, alpha=1.0, beta=5.0) == 1.0
    assert dispersion_weight(0, 500, alpha=3.0, beta=5.0) == 3.0
    values = [dispersion_weight(t, 500, alpha=1.0, beta=5.0) for t in range(0, 501, 50)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    assert dispersion_weight(500, 500, alpha=2.0, beta=5.0) == pytest.approx(2.0 * 11.0**-5)
    assert dispersion_weight(250, 500, alpha=1.0, beta=0.75) == pytest.approx(6.0**-0.75)
    assert dispersion_weight(10, 500, alpha=1.0, beta=0.0) == 1.0


def test_declared_defaults_are_the_authors():
    for cls in (NRC, AaD):
        spec = cls.hparams_spec
        assert (spec["lr"].default, spec["epochs"].default, spec["batch_size"].default, spec["k"].default) == (
            1e-3, 15, 64, 5)
        assert spec["backbone_lr_mult"].default == 0.1
        assert all(spec[name].distribution is not None for name in spec if name != "batch_size")
    assert NRC.hparams_spec["kk"].default == 5
    assert (AaD.hparams_spec["alpha"].default, AaD.hparams_spec["beta"].default) == (1.0, 5.0)
