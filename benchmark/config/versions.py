"""Versions recorded with every result: package, torch, and the git commit when run from a checkout."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from benchmark import __version__


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5, check=True
    ).stdout.strip()


@lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """``{"package", "torch", "git"}``; ``git`` is the short commit, with ``+dirty`` when tracked files differ
    from it, and None outside a git checkout."""
    try:
        git = _git("rev-parse", "--short", "HEAD") or None
        if git and _git("status", "--porcelain", "--untracked-files=no"):
            git += "+dirty"
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"package": __version__, "torch": torch.__version__, "git": git}
