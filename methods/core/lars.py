"""LARS (You et al., 2017) as SwAV and solo-learn use it for self-supervised pretraining.

Written here because neither torch nor torchvision ships LARS. Per parameter tensor (biases and norm
weights, the 1-d tensors, excluded), the gradient plus weight decay is scaled by the trust ratio
``eta * ||w|| / (||g|| + wd * ||w|| + eps)``, clipped so that the scaled lr never exceeds the base lr
(solo-learn's ``clip_lr``); then SGD with momentum. Without it, plain SGD at SwAV's lr (0.6 x B / 256)
moved the projector and prototypes so far per step that SwAV collapsed to the ln P plateau here.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios.

    Args:
        params: parameters (or groups).
        lr: base learning rate.
        momentum: SGD momentum.
        weight_decay: L2 coefficient, added to the gradient before scaling (1-d tensors included, unscaled).
        eta: trust coefficient.
        eps: numerical guard.
    """

    def __init__(
        self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.02,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.add(p, alpha=wd) if wd else p.grad.clone()
                if p.ndim > 1:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(p.grad)
                    trust = group["eta"] * w_norm / (g_norm + wd * w_norm + group["eps"])
                    scale = torch.where((w_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust))
                    d_p.mul_(torch.clamp(scale / max(lr, 1e-12), max=1.0))
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d_p.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d_p)
                p.add_(state["momentum_buffer"], alpha=-lr)
        return None
