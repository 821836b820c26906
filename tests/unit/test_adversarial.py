"""DANN's and CDAN's pieces: gradient reversal, its schedule, CDAN's multilinear map, the domain loss."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.config.profiles import PROFILES
from methods.adversarial import (
    Cdan,
    Dann,
    DomainDiscriminator,
    domain_adversarial_loss,
    grl_coefficient,
    grl_progress,
    multilinear_map,
    reverse_gradient,
)
from methods.api import Method, RunContext, Setting
from methods.core.inputs import LabelledImages, UdaData, UnlabelledImages
from methods.core.models import build_classifier
from methods.core.seeding import seed_everything
from methods.registry import available, get, resolve_hparams


@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_flips_and_scales_backward(coeff: float):
    torch.manual_seed(0)
    x = torch.randn(4, 5, requires_grad=True)
    upstream = torch.randn(4, 5)
    y = reverse_gradient(x, coeff)
    assert torch.equal(y, x)
    (grad,) = torch.autograd.grad(y, x, upstream)
    reference = x.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(-coeff * reference, reference, upstream)
    assert torch.allclose(grad, expected)
    assert torch.allclose(grad, -coeff * upstream)


def test_gradient_reversal_reaches_the_layers_before_it():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(6, 3)
    layer(x).sum().backward()
    plain = layer.weight.grad.clone()
    layer.weight.grad = None
    reverse_gradient(layer(x), 0.5).sum().backward()
    assert torch.allclose(layer.weight.grad, -0.5 * plain)


def test_grl_coefficient_schedule():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert 0.9998 < grl_coefficient(1.0) < 1.0
    values = [grl_coefficient(p / 100) for p in range(101)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert grl_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)


def test_grl_progress_counts_absolute_steps_as_the_releases_do_or_the_fraction_of_the_run():
    # thuml/CDAN's calc_coeff(i, alpha=10, max_iter=10000) and TLlib's DANN (alpha 1, max_iters 1000).
    assert grl_progress(500, 200, 10000) == 0.05 and grl_progress(2000, 200, 1000) == 2.0
    assert grl_coefficient(grl_progress(5000, 0, 10000), 10.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_progress(50, 200, 0) == 0.25  # horizon 0: the fraction of the run done (the quick profile)


def test_the_paper_profile_follows_each_release_and_quick_the_fraction_of_the_run():
    paper = {m: resolve_hparams(get(m), {}, {}, PROFILES["paper"]) for m in ("dann", "cdan")}
    assert (paper["dann"]["grl_alpha"], paper["dann"]["grl_horizon"]) == (1.0, 1000)
    assert (paper["cdan"]["grl_alpha"], paper["cdan"]["grl_horizon"]) == (10.0, 10000)
    quick = resolve_hparams(get("cdan"), {}, {}, PROFILES["quick"])
    assert (quick["grl_alpha"], quick["grl_horizon"]) == (10.0, 0)


def test_multilinear_map_is_the_flattened_outer_product():
    torch.manual_seed(0)
    features = torch.randn(5, 256)
    probabilities = torch.randn(5, 7).softmax(dim=1)
    mapped = multilinear_map(features, probabilities)
    assert mapped.shape == (5, 256 * 7)
    for b in range(5):
        assert torch.allclose(mapped[b], torch.outer(probabilities[b], features[b]).flatten())
    assert torch.allclose(mapped[:, 3 * 256 + 10], probabilities[:, 3] * features[:, 10])


def test_discriminator_widths_follow_what_it_sees():
    assert Dann({}).discriminator_input_dim(256, 7) == 256
    assert Cdan({"entropy_conditioning": False}).discriminator_input_dim(256, 7) == 256 * 7
    out = DomainDiscriminator(256 * 7)(torch.randn(4, 256 * 7))
    assert out.shape == (4, 1)


def test_cdan_entropy_weights_favour_confident_predictions():
    logits = torch.tensor([[30.0, 0, 0, 0, 0, 0, 0], [0.0] * 7])
    weights = Cdan({"entropy_conditioning": True}).sample_weights(logits)
    assert weights[0] == pytest.approx(2.0, abs=1e-3)  # entropy ~0
    assert weights[1] == pytest.approx(1 + 1 / 7, abs=1e-3)  # entropy ln 7
    assert Cdan({"entropy_conditioning": False}).sample_weights(logits) is None


def test_domain_loss_labels_source_one_target_zero_and_weights_each_domain_half():
    confident_right = torch.tensor([20.0, 20.0, -20.0, -20.0])
    assert float(domain_adversarial_loss(confident_right, 2)) < 1e-6
    assert float(domain_adversarial_loss(-confident_right, 2)) > 10
    assert float(domain_adversarial_loss(torch.zeros(4), 2)) == pytest.approx(math.log(2))
    # One source sample and three target ones, all wrong by the same margin: each domain counts half.
    logits = torch.tensor([-1.0, 1.0, 1.0, 1.0])
    loss = float(domain_adversarial_loss(logits, 1))
    assert loss == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(1.0))))
    # Weights normalised within a domain: scaling one domain's weights changes nothing.
    logits = torch.tensor([0.5, -2.0, 1.0, -0.3])
    weights = torch.tensor([1.0, 2.0, 1.5, 1.2])
    scaled = weights * torch.tensor([3.0, 3.0, 1.0, 1.0])
    unscaled_loss, scaled_loss = domain_adversarial_loss(logits, 2, weights), domain_adversarial_loss(logits, 2, scaled)
    assert float(unscaled_loss) == pytest.approx(float(scaled_loss))


def test_discriminator_learns_to_separate_separable_domains():
    torch.manual_seed(0)
    discriminator = DomainDiscriminator(8, hidden=64)
    optimizer = torch.optim.SGD(discriminator.parameters(), lr=0.1, momentum=0.9)
    source, target = torch.randn(64, 8) + 2.0, torch.randn(64, 8) - 2.0
    inputs = torch.cat([source, target])
    losses = []
    for _ in range(30):
        loss = domain_adversarial_loss(discriminator(inputs), 64)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_features_learn_to_fool_the_discriminator_through_the_reversal():
    """The discriminator lowers the domain loss; the features behind the reversal layer raise it."""
    torch.manual_seed(0)
    features = torch.cat([torch.randn(32, 4) + 1.0, torch.randn(32, 4) - 1.0]).requires_grad_(True)
    discriminator = torch.nn.Linear(4, 1)
    loss = domain_adversarial_loss(discriminator(reverse_gradient(features, 1.0)), 32)
    loss.backward()
    with torch.no_grad():
        moved = features - 0.5 * features.grad
        before = float(domain_adversarial_loss(discriminator(features), 32))
        after = float(domain_adversarial_loss(discriminator(moved), 32))
    assert after > before  # a descent step through the reversal makes the domains harder to tell apart


def test_dann_and_cdan_are_registered_as_uda():
    methods = available()
    assert methods["dann"] is Dann and methods["cdan"] is Cdan
    assert Dann.setting is Setting.UDA and Cdan.setting is Setting.UDA
    assert set(Dann.hparams_spec) == {"lr", "backbone_lr_mult", "epochs", "batch_size", "trade_off", "grl_alpha",
                                      "grl_horizon"}
    assert set(Cdan.hparams_spec) == set(Dann.hparams_spec) | {"entropy_conditioning"}
    assert Dann.hparams_spec["batch_size"].default == 32 and Dann.hparams_spec["trade_off"].default == 1.0


def _adapt(method: Method, source_model: torch.nn.Module, seed: int = 0) -> tuple[torch.nn.Module, RunContext]:
    """Run ``method.adapt`` on a few random 32 px images: 20 grey labelled source, 32 colour target ones."""
    data_generator = torch.Generator().manual_seed(123)
    source = LabelledImages(
        torch.randint(0, 256, (20, 1, 32, 32), dtype=torch.uint8, generator=data_generator),
        torch.randint(0, 7, (20,), generator=data_generator),
    )
    target = UnlabelledImages(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=data_generator))
    ctx = RunContext(torch.device("cpu"), PROFILES["quick"], seed, seed_everything(seed))
    return method.adapt(source_model, UdaData(source=source, target=target), ctx), ctx


@pytest.mark.parametrize(
    "method",
    [
        Dann,
        lambda hp: Cdan({**hp, "entropy_conditioning": True}),
        lambda hp: Cdan({**hp, "entropy_conditioning": False}),
    ],
    ids=["dann", "cdan+e", "cdan"],
)
def test_adapt_trains_a_copy_deterministically_and_reports_the_domain_game(method):
    hparams = {"lr": 1e-2, "backbone_lr_mult": 0.1, "epochs": 2, "batch_size": 8, "trade_off": 1.0,
               "grl_alpha": 10.0, "grl_horizon": 0}
    torch.manual_seed(0)
    source_model = build_classifier("resnet18", "imagenet", 8, "shot")
    before = {k: v.clone() for k, v in source_model.state_dict().items()}
    adapted, ctx = _adapt(method(hparams), source_model)
    assert adapted is not source_model
    assert all(torch.equal(v, before[k]) for k, v in source_model.state_dict().items())  # the source model is untouched
    changed = [k for k, v in adapted.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("head.classifier") for k in changed)
    stats = ctx.stats["last_epoch"]
    assert set(stats) == {"loss", "classification_loss", "domain_loss", "domain_accuracy"}
    assert all(math.isfinite(v) for v in stats.values()) and 0.0 <= stats["domain_accuracy"] <= 1.0
    again, _ = _adapt(method(hparams), source_model)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in adapted.state_dict().items())
