"""SHOT's pieces: the two-round nearest-centroid pseudo-labels and the information-maximisation loss."""

from __future__ import annotations

import math

import torch

from methods.core.losses import information_maximisation, marginal_entropy, mean_entropy
from methods.shot import shot_pseudo_labels


def test_pseudo_labels_follow_feature_clusters_not_noisy_predictions():
    torch.manual_seed(0)
    centres = torch.eye(3, 8) * 5
    truth = torch.arange(3).repeat_interleave(20)
    embeddings = centres[truth] + 0.1 * torch.randn(60, 8)
    probabilities = torch.full((60, 3), 0.1)
    probabilities[torch.arange(60), truth] = 0.8
    probabilities[:6] = torch.tensor([0.1, 0.1, 0.8])  # 6 confident mistakes on class-0 samples
    labels = shot_pseudo_labels(embeddings, probabilities / probabilities.sum(1, keepdim=True))
    assert torch.equal(labels, truth)


def test_class_without_mass_gets_no_sample():
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    probabilities = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = shot_pseudo_labels(embeddings, probabilities)
    assert labels.tolist() == [0, 0, 1]


def test_round_one_keeps_only_the_classes_that_are_some_samples_argmax():
    # Class 2 is never an argmax but holds soft mass, and its soft centroid is the nearest one for the last sample:
    # SHOT's round 1 (labelset = classes with cls_count > 0) gives it no centroid, so no sample gets it.
    embeddings = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    probabilities = torch.tensor([[0.6, 0.0, 0.4], [0.0, 0.6, 0.4], [0.45, 0.1, 0.45]])
    assert probabilities.argmax(dim=1).tolist() == [0, 1, 0]
    labels = shot_pseudo_labels(embeddings, probabilities)
    assert 2 not in labels.tolist()


def test_information_maximisation_values():
    uniform = torch.full((4, 7), 1 / 7)
    assert math.isclose(float(mean_entropy(uniform)), math.log(7), rel_tol=1e-4)
    assert math.isclose(float(information_maximisation(uniform)), 0.0, abs_tol=1e-4)
    one_hot_diverse = torch.eye(7)
    assert float(mean_entropy(one_hot_diverse)) < 1e-3
    assert math.isclose(float(marginal_entropy(one_hot_diverse)), math.log(7), rel_tol=1e-3)
    assert float(information_maximisation(one_hot_diverse)) < -1.9
