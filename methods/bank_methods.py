"""What NRC and AaD share: the memory-bank training loop and the neighbour-attraction term.

Both copy the source model and train all of it (F at ``backbone_lr_mult`` x lr, B and C at lr; unlike SHOT,
C is not frozen) with SHOT's SGD and lr schedule, on SHOT's training augmentation. The bank
(``methods.core.neighbours.NeighbourBank``) is filled by one eval-mode pass; at every step the batch's rows are
overwritten with its detached, normalised embeddings and softmax before the neighbours are retrieved. A
subclass supplies only ``neighbour_loss``. The last iterate is the result.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any

import torch
from torch import nn

from benchmark.config.profiles import Profile
from methods.api import CostTerm, HParam, Method, Range, RunContext, SearchInt, Setting, sgd_hparams
from methods.core.data import normalise, supervised_augmentation
from methods.core.inputs import SourceFreeData
from methods.core.neighbours import NeighbourBank
from methods.core.schedules import shot_lr_step
from methods.core.training import optimise, run_epochs, shot_optimizer

#: SGD weight decay of NRC and AaD: the authors' code (docs/METHODS.md).
WEIGHT_DECAY = 1e-3


def neighbour_attraction(
    probabilities: torch.Tensor, neighbour_scores: torch.Tensor, weights: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """``mean_i sum_m w_im * (-p_i . s_im)``: pulls each prediction towards its neighbours' bank scores.

    The authors' code writes this as ``F.kl_div(p, s)`` on probabilities (not log-probabilities), i.e.
    ``s log s - s p``; the ``s log s`` part is constant in the model, so it is left out here.

    Args:
        probabilities: (B, C) softmax of the batch (gradients flow through it).
        neighbour_scores: (B, M, C) bank softmax of each sample's M neighbours (constants).
        weights: (B, M) weight of each neighbour, or one weight for all.

    Returns:
        Scalar tensor.
    """
    dots = torch.einsum("bc,bmc->bm", probabilities, neighbour_scores)
    return -(weights * dots).sum(dim=1).mean()


class NeighbourConsistencyMethod(Method):
    """A source-free method trained on its predictions' agreement with memory-bank neighbours.

    Subclasses set ``name`` and extend ``hparams_spec``; they implement ``neighbour_loss`` and may ask the bank
    to cache neighbour lists (``bank_list_length``) when they look up the neighbours of many rows per step.
    """

    setting = Setting.SFDA
    #: NRC and AaD train on SHOT's source models (their VisDA code is SHOT's): docs/METHODS.md.
    source_recipe = "shot"
    version = 2  # 2: weight decay 1e-3 (was 5e-4)
    hparams_spec = {
        **sgd_hparams(1e-3, (1e-4, 1e-2), (5, 40), 64, lr_help="lr of B and C (F: x backbone_lr_mult)", backbone="backbone (F)"),
        "k": HParam(5, SearchInt(2, 10), "nearest neighbours of each sample in the bank", Range.at_least(1)),
    }

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """Steps through the source network (the ``source`` stage), then the bank's features once."""
        return [CostTerm("source", n_target, hparams["epochs"], hparams["batch_size"]), CostTerm("infer", n_target)]

    def bank_list_length(self) -> int | None:
        """How many nearest rows the bank caches per row (``NeighbourBank``'s ``list_length``); None: no cache."""
        return None

    @abstractmethod
    def neighbour_loss(
        self, probabilities: torch.Tensor, indices: torch.Tensor, bank: NeighbourBank, step: int, total_steps: int
    ) -> torch.Tensor:
        """The loss of one step.

        Args:
            probabilities: (B, C) softmax of the augmented batch (with gradients).
            indices: (B,) int64 bank rows of the batch (already overwritten with this batch's outputs).
            bank: the memory bank.
            step: index of this step, from 0.
            total_steps: steps of the whole run.

        Returns:
            Scalar tensor to minimise.
        """

    def adapt(self, source_model: nn.Module, data: SourceFreeData, ctx: RunContext) -> nn.Module:
        hp = self.hparams
        model = copy.deepcopy(source_model)
        optimizer = shot_optimizer(
            model.backbone.parameters(), model.head.parameters(), hp["lr"], hp["backbone_lr_mult"],
            weight_decay=WEIGHT_DECAY,
        )
        images = data.target.images
        augment = supervised_augmentation()
        bank = NeighbourBank.fill(model, images, ctx.profile.eval_batch_size, self.bank_list_length())
        model.train()

        def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
            shot_lr_step(optimizer, index, total)
            embeddings = model.embed(augment(normalise(images[indices])))
            probabilities = model.head.classifier(embeddings).float().softmax(dim=1)
            bank.update(indices, embeddings, probabilities)
            loss = self.neighbour_loss(probabilities, indices, bank, index, total)
            optimise(optimizer, loss)
            return loss

        run_epochs(len(images), hp["batch_size"], hp["epochs"], ctx.generator, step, self.name, device=images.device,
                   on_epoch_end=ctx.epoch_reporter(model, images))
        return model
