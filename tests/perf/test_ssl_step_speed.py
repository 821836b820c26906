"""Share of an SSL step spent on on-device augmentation and data handling (issue 4's benchmark).

One SwAV step (views -> backbone -> loss -> backward -> SGD step) with the views made on the device from the
uint8 split (``MultiCrop``), against the same step on views made beforehand. The share is
``1 - pre-augmented step / full step``. CI runs it at a small scale (batch 32 at the quick profile);
``FERBENCH_SSL_SCALE=profile`` runs the profile's own batch (the number in docs/PERFORMANCE.md), and
``FERBENCH_SSL_PROFILE=paper`` picks the paper profile (for a GPU):

    FERBENCH_SSL_SCALE=profile python -m pytest tests/perf/test_ssl_step_speed.py -s
"""

from __future__ import annotations

import os
import time

import torch

from benchmark.config.devices import resolve_device
from benchmark.config.profiles import PROFILES
from benchmark.services.pretrain import _forward_views
from methods.core.models import build_backbone
from methods.core.precision import prepare_for_training, training_numerics
from methods.ssl.ssl_registry import get_ssl, ssl_recipe
from methods.ssl.views import MultiCrop

PROFILE = os.environ.get("FERBENCH_SSL_PROFILE", "quick")
FULL = os.environ.get("FERBENCH_SSL_SCALE") == "profile"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def test_augmentation_share_of_an_ssl_step(benchmark):
    device = resolve_device(os.environ.get("FERBENCH_SSL_DEVICE", "auto"))
    profile = PROFILES[PROFILE]
    recipe = ssl_recipe(profile, "swav")
    batch = recipe.batch_size if FULL else 32
    torch.manual_seed(0)
    size = recipe.large_size or profile.image_size
    split = torch.randint(0, 256, (4 * batch, 1, size, size), dtype=torch.uint8, device=device)
    backbone, dim = build_backbone(profile.arch, profile.ssl_stem or profile.stem, profile.width)
    backbone = prepare_for_training(backbone.to(device).to(memory_format=torch.channels_last), profile)
    objective = get_ssl("swav")(dim, recipe, len(split)).to(device)
    optimizer = torch.optim.SGD([*backbone.parameters(), *objective.parameters()], lr=0.1, momentum=0.9)
    crops = MultiCrop(recipe, size)
    indices = torch.arange(batch, device=device)
    ready = crops(split[:batch])

    def step(views: tuple[list[torch.Tensor], list[torch.Tensor]] | None) -> None:
        large, small = views if views is not None else crops(split[torch.randperm(len(split), device=device)[:batch]])
        objective.before_step()
        with training_numerics(profile, device):  # the profile's precision, as in the pretraining service
            loss = objective.loss(_forward_views(backbone, objective, large),
                                  _forward_views(backbone, objective, small), indices, epoch=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)

    def best(views, repeats: int) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(views)
            times.append(time.perf_counter() - start)
        return min(times)

    step(None), step(ready)  # warm-up (allocator, kernels)
    benchmark.pedantic(step, args=(None,), rounds=3, warmup_rounds=0)
    full = benchmark.stats.stats.min if getattr(benchmark, "stats", None) else best(None, 3)
    pre = best(ready, 3)
    share = max(0.0, 1.0 - pre / full)
    images = batch * (recipe.large_crops + recipe.small_crops)
    print(
        f"\nSwAV step, profile {PROFILE} ({profile.precision}), batch {batch} ({recipe.large_crops}x{size} px + "
        f"{recipe.small_crops}x{recipe.small_size} px), {device}: full step {full * 1e3:.0f} ms, pre-augmented "
        f"{pre * 1e3:.0f} ms, augmentation + data share {100 * share:.1f}%, {batch / full:.0f} images/s "
        f"({images / full:.0f} views/s)"
    )
    benchmark.extra_info.update(share=share, full_step_s=full, pre_augmented_step_s=pre, batch=batch, device=str(device))
    assert 0.0 <= share < 1.0 and pre > 0
