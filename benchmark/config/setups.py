"""Setups: a (source dataset -> target dataset) pair, its default profile and per-setup hyperparameters.

The paper's K (k-means clusters) and Q (per-class purity percentile) are per setup
(docs/PAPER.md); methods read them from ``Setup.hparams`` as overrides of their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.config.errors import UserError


@dataclass(frozen=True)
class Setup:
    """One adaptation setting.

    Attributes:
        name: CLI key, e.g. ``raf_fer2013``.
        source: source dataset name; target: target dataset name.
        profile: default profile name.
        hparams: per-setup overrides of method hyperparameters, ``{method: {name: value}}``; the key
            ``"*"`` applies to every method that declares the name.
        paper: whether the setup is one of the paper's four.
    """

    name: str
    source: str
    target: str
    profile: str
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper: bool = False


def _paper(name: str, source: str, target: str, clusters: int, q: float) -> Setup:
    return Setup(name, source, target, "paper", {"*": {"clusters": clusters, "q": q}}, paper=True)


SETUPS: dict[str, Setup] = {
    s.name: s
    for s in (
        _paper("afe_expw", "afe", "expw", 1000, 0.9),
        _paper("afe_fer2013", "afe", "fer2013", 250, 0.9),
        _paper("raf_expw", "rafdb", "expw", 250, 0.7),
        _paper("raf_fer2013", "rafdb", "fer2013", 1000, 0.8),
        # ResNet-10 for speed (docs/LAB_NOTES.md, "ResNet-10 for the synthetic default").
        Setup("synth", "synth-lab", "synth-wild", "quick10", {"*": {"clusters": 100, "q": 0.8}}),
        # The paper's regime: the source features transfer no better than the target's self-supervised ones
        # (docs/LAB_NOTES.md, "The paper's regime on synthetic data"), on ResNet-18: on ResNet-10 the source
        # features transfer better than SwAV's (docs/LAB_NOTES.md, "ResNet-10 for the synthetic default").
        Setup("synth_negative", "synth-lab-negative", "synth-wild", "quick", {"*": {"clusters": 100, "q": 0.8}}),
    )
}

#: The paper's four real setups, in its column order.
PAPER_SETUPS: tuple[str, ...] = tuple(name for name, setup in SETUPS.items() if setup.paper)


def get_setup(name: str) -> Setup:
    """The setup called ``name``; a UserError listing the known ones otherwise."""
    if name not in SETUPS:
        raise UserError(f"unknown setup {name!r}; known: {', '.join(SETUPS)}")
    return SETUPS[name]
