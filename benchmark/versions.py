"""Versions recorded with every result: package, torch, and the git commit when run from a checkout."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from benchmark import __version__


@lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """``{"package", "torch", "git"}``; ``git`` is None outside a git checkout."""
    try:
        git = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"package": __version__, "torch": torch.__version__, "git": git}
