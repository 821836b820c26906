"""Unsupervised validators: label-free model-selection scores on the target train split.

The functions live in ``methods.core.validators`` (the engine), so that methods can report them per epoch
without importing the harness; this module keeps the old import path working.
"""

from __future__ import annotations

from methods.core.validators import VALIDATORS, compute_validators, entropy_score, im_score, snd_score

__all__ = ["VALIDATORS", "compute_validators", "entropy_score", "im_score", "snd_score"]
