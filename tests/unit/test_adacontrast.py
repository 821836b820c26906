"""AdaContrast's pieces (``methods.core.contrastive``) against hand-computed values, and the method on a tiny model.

The refinement is checked on a bank whose soft vote is computable by hand; each loss against its formula (the
InfoNCE with and without filtered negatives, where gradients go); the EMA update and the FIFO buffers step by
step; the cosine schedule at its ends. ``adapt`` runs on a width-8 network and 48 random images.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES
from methods import registry
from methods.adacontrast import AdaContrast, initial_bank, initial_queue
from methods.api import RunContext
from methods.core.contrastive import (
    RingBuffer,
    class_aware_info_nce,
    diversity_loss,
    ema_update,
    soft_knn_refine,
)
from methods.core.inputs import SourceFreeData, UnlabelledImages
from methods.core.models import build_classifier
from methods.core.schedules import cosine_lr_step

# A bank of 4 rows in 2-D with 3 classes; the vote of k = 2 is worked out by hand in the tests.
BANK_FEATURES = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
BANK_PROBABILITIES = torch.tensor([[0.6, 0.4, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])


def test_soft_knn_vote_by_hand():
    # Query (10, 1): cosines 0.995, 0.856, 0.0995, -0.995 -> rows 0 and 1 -> mean (0.4, 0.6, 0) -> class 1, although
    # the nearest row alone says class 0. Query (0, 2): rows 2 (cos 1) and 1 (cos 0.6) -> (0.1, 0.4, 0.5) -> class 2.
    labels, votes = soft_knn_refine(torch.tensor([[10.0, 1.0], [0.0, 2.0]]), BANK_FEATURES, BANK_PROBABILITIES, 2)
    assert labels.tolist() == [1, 2] and labels.dtype == torch.int64
    torch.testing.assert_close(votes, torch.tensor([[0.4, 0.6, 0.0], [0.1, 0.4, 0.5]]))


def test_soft_knn_vote_is_cosine_and_its_extremes():
    query = torch.tensor([[1.0, 0.1]])
    # Cosine: scaling a query or a bank row changes nothing.
    rescaled_bank = BANK_FEATURES * torch.tensor([[3.0], [0.1], [5.0], [2.0]])
    scaled = soft_knn_refine(query * 7, rescaled_bank, BANK_PROBABILITIES, 2)
    torch.testing.assert_close(scaled[1], soft_knn_refine(query, BANK_FEATURES, BANK_PROBABILITIES, 2)[1])
    # k = 1: the nearest row's probabilities; k = M: the mean of the whole bank.
    torch.testing.assert_close(soft_knn_refine(query, BANK_FEATURES, BANK_PROBABILITIES, 1)[1], BANK_PROBABILITIES[:1])
    torch.testing.assert_close(soft_knn_refine(query, BANK_FEATURES, BANK_PROBABILITIES, 4)[1],
                               BANK_PROBABILITIES.mean(dim=0, keepdim=True))


def test_refinement_takes_no_gradient():
    features = torch.randn(5, 2, requires_grad=True)
    labels, votes = soft_knn_refine(features, BANK_FEATURES, BANK_PROBABILITIES, 3)
    assert not labels.requires_grad and not votes.requires_grad


def test_info_nce_known_values_and_negative_filtering():
    t = 0.5
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    queue, queue_labels = torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1])
    # Pseudo-label 1: the queue entry of label 1 is not a negative: logits (1/T, 0) -> log(1 + e^-2).
    filtered = class_aware_info_nce(q, k, queue, queue_labels, torch.tensor([1]), t)
    assert filtered.item() == pytest.approx(math.log(1 + math.exp(-2)))
    # Pseudo-label 2: both entries are negatives: logits (1/T, 0, 1/T) -> log(2 + e^-2).
    unfiltered = class_aware_info_nce(q, k, queue, queue_labels, torch.tensor([2]), t)
    assert unfiltered.item() == pytest.approx(math.log(2 + math.exp(-2)))
    # A filtered entry may be anything: the loss does not see it.
    moved = class_aware_info_nce(q, k, torch.tensor([[0.0, 1.0], [-0.6, 0.8]]), queue_labels, torch.tensor([1]), t)
    assert moved.item() == pytest.approx(filtered.item())


def test_info_nce_equals_its_per_sample_definition():
    generator = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(6, 8, generator=generator), dim=1)
    k = F.normalize(torch.randn(6, 8, generator=generator), dim=1)
    queue = F.normalize(torch.randn(20, 8, generator=generator), dim=1)
    queue_labels = torch.randint(0, 3, (20,), generator=generator)
    pseudo = torch.randint(0, 3, (6,), generator=generator)
    expected = []
    for i in range(6):
        negatives = [queue[j] @ q[i] / 0.07 for j in range(20) if queue_labels[j] != pseudo[i]]
        positive = q[i] @ k[i] / 0.07
        expected.append(-(positive - torch.logsumexp(torch.stack([positive, *negatives]), dim=0)))
    loss = class_aware_info_nce(q, k, queue, queue_labels, pseudo, 0.07)
    torch.testing.assert_close(loss, torch.stack(expected).mean())


def test_info_nce_gradients_reach_the_queries_only():
    q = F.normalize(torch.randn(4, 5), dim=1).requires_grad_()
    k = F.normalize(torch.randn(4, 5), dim=1).requires_grad_()
    queue = F.normalize(torch.randn(9, 5), dim=1).requires_grad_()
    class_aware_info_nce(q, k, queue, torch.arange(9) % 3, torch.tensor([0, 1, 2, 0]), 0.07).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


def test_info_nce_with_every_negative_filtered_is_zero():
    q = F.normalize(torch.randn(3, 4), dim=1)
    loss = class_aware_info_nce(q, q, F.normalize(torch.randn(5, 4), dim=1), torch.zeros(5, dtype=torch.long),
                                torch.zeros(3, dtype=torch.long), 0.07)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # only the positive is left: -log(1)


def test_diversity_is_the_negative_entropy_of_the_mean_prediction():
    assert diversity_loss(torch.full((4, 7), 1 / 7)).item() == pytest.approx(-math.log(7), rel=1e-6)
    assert diversity_loss(F.one_hot(torch.zeros(4, dtype=torch.long), 7).float()).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    mean = p.mean(dim=0)
    assert diversity_loss(p).item() == pytest.approx(float((mean * torch.log(mean + 1e-8)).sum()))
    # Only the mean matters: a batch of confident but different predictions is as diverse as a uniform one.
    assert diversity_loss(torch.eye(3)).item() == pytest.approx(-math.log(3), rel=1e-6)


def test_ema_update_moves_parameters_and_leaves_buffers_and_the_source_alone():
    source = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    target = copy.deepcopy(source)
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(1.0)
        for p in target.parameters():
            p.fill_(0.0)
        source[1].running_mean.fill_(5.0)
    ema_update(target, source, 0.9)
    assert all(torch.allclose(p, torch.full_like(p, 0.1)) for p in target.parameters())
    ema_update(target, source, 0.9)
    assert all(torch.allclose(p, torch.full_like(p, 0.19)) for p in target.parameters())
    assert torch.equal(target[1].running_mean, torch.zeros(2))  # buffers are not averaged (the authors' code)
    assert all(torch.equal(p, torch.ones_like(p)) for p in source.parameters())
    with pytest.raises(ValueError, match="parameters differ"):
        ema_update(torch.nn.Linear(3, 3), source, 0.9)


def test_ring_buffer_is_first_in_first_out():
    buffer = RingBuffer(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    buffer.push(torch.ones(3, 2), torch.tensor([1, 2, 3]))
    assert buffer.tensors[1].tolist() == [1, 2, 3, 0] and buffer.pointer == 3
    buffer.push(torch.full((2, 2), 2.0), torch.tensor([4, 5]))  # wraps round
    assert buffer.tensors[1].tolist() == [5, 2, 3, 4] and buffer.pointer == 1
    assert buffer.tensors[0][:, 0].tolist() == [2.0, 1.0, 1.0, 2.0]
    buffer.push(torch.zeros(6, 2), torch.tensor([10, 11, 12, 13, 14, 15]))  # more rows than slots: the last 4 stay
    assert sorted(buffer.tensors[1].tolist()) == [12, 13, 14, 15] and buffer.pointer == 3
    assert buffer.tensors[1][(buffer.pointer - 1) % 4].item() == 15  # the newest row sits just before the pointer
    with pytest.raises(ValueError):
        buffer.push(torch.zeros(2, 2))


def test_cosine_schedule_keeps_the_group_ratio():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 1.0}])
    for group in optimizer.param_groups:
        group["lr0"] = group["lr"]
    for step, decay in ((0, 1.0), (5, 0.5), (10, 0.0)):
        cosine_lr_step(optimizer, step, 10)
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 * decay, 1.0 * decay], abs=1e-12)


def test_published_defaults():
    values = registry.resolve_hparams(registry.get("adacontrast"), {}, {})
    assert values == {"lr": 2e-3, "backbone_lr_mult": 0.1, "epochs": 15, "batch_size": 128, "weight_decay": 1e-4,
                      "k": 10, "temperature": 0.07, "ema": 0.999, "queue_size": 16384, "alpha": 1.0, "beta": 1.0,
                      "gamma": 1.0}
    with pytest.raises(UserError, match=r"ema=1.5 is out of range; valid: 0 <= ema <= 1"):
        registry.resolve_hparams(registry.get("adacontrast"), {}, {"ema": "1.5"})


def _tiny_run(hparams: dict, n: int = 48, seed: int = 0):
    torch.manual_seed(seed)
    source = build_classifier("resnet18", "imagenet", 8, "shot")
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ctx = RunContext(torch.device("cpu"), PROFILES["tiny"], seed, torch.Generator().manual_seed(seed))
    hp = {**registry.resolve_hparams(AdaContrast, {}, {}), **hparams}
    before = copy.deepcopy(source.state_dict())
    adapted = AdaContrast(hp).adapt(source, SourceFreeData(UnlabelledImages(images)), ctx)
    return source, before, adapted


def test_adapt_trains_a_copy_deterministically():
    hp = {"epochs": 1, "batch_size": 16, "queue_size": 20, "k": 3}
    source, before, adapted = _tiny_run(hp)
    assert all(torch.equal(before[key], value) for key, value in source.state_dict().items())  # source untouched
    assert adapted is not source
    changed = [key for key, value in adapted.state_dict().items() if not torch.equal(before[key], value)]
    assert any(key.startswith("backbone.") for key in changed) and any(key.startswith("head.") for key in changed)
    again = _tiny_run(hp)[2]
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in adapted.state_dict().items())


def test_initial_bank_and_queue():
    torch.manual_seed(0)
    model = build_classifier("resnet18", "imagenet", 8, "shot")
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    bank = initial_bank(model, images, 4, torch.Generator().manual_seed(0))
    features, probabilities = bank.tensors
    assert features.shape == (10, 256) and probabilities.shape == (10, 7) and len(bank) == 10
    torch.testing.assert_close(features.norm(dim=1), torch.ones(10))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(10))
    queue = initial_queue(6, 256, 7, torch.Generator().manual_seed(0), torch.device("cpu"))
    torch.testing.assert_close(queue.tensors[0].norm(dim=1), torch.ones(6))
    assert queue.tensors[1].dtype == torch.int64 and 0 <= int(queue.tensors[1].min()) <= int(queue.tensors[1].max()) < 7


def test_more_neighbours_than_images_is_a_user_error():
    with pytest.raises(UserError, match="k=50 neighbours but the target train split has only 48 images"):
        _tiny_run({"k": 50, "epochs": 1, "batch_size": 16, "queue_size": 20})
