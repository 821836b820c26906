"""Files the harness reads from outside its caches: the ImageNet weights a profile may start from.

The cache and artifact root (``FERBENCH_HOME``) and the raw-data root (``FERBENCH_DATA``) belong to the data
layer (``datasets.registry.home``), which everything above reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile

#: Where torchvision keeps downloaded ImageNet weights; used only if the file is already there.
_TORCHVISION_RESNET18 = Path.home() / ".cache" / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def imagenet_weights(profile: Profile) -> Path | None:
    """The local ImageNet weights file a profile starts from, or None when it starts from random init.

    Taken from ``FERBENCH_IMAGENET_WEIGHTS``, else torchvision's cache. Nothing is downloaded.
    """
    if not profile.imagenet_init:
        return None
    path = Path(os.environ.get("FERBENCH_IMAGENET_WEIGHTS", _TORCHVISION_RESNET18)).expanduser()
    if not path.is_file() or profile.arch != "resnet18":
        raise UserError(
            f"profile {profile.name!r} starts the source backbone from ImageNet weights, but no local weights "
            f"file was found at {path}. Set FERBENCH_IMAGENET_WEIGHTS to torchvision's {profile.arch} state "
            "dict (e.g. resnet18-f37072fd.pth); nothing is downloaded at run time."
        )
    return path
