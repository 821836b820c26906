"""Where a command writes what it made (``leaderboard --out``, ``figures --out``: folders; ``data show --out``: a
file): made when missing, refused in one line when it cannot be one or cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.config.errors import UserError


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be written into (after making it, with its parents, when missing), or None."""
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot be created ({(error.strerror or str(error)).lower()})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable (permission denied)"
    return None


def output_folder(out: Path) -> Path:
    """``out`` as a writable folder (created with its parents); a UserError ``--out OUT: why`` otherwise."""
    if problem := _folder_problem(out):
        raise UserError(f"--out {out}: {problem}")
    return out


def output_file(out: Path) -> Path:
    """``out`` as a file that can be written (not a folder; its folder created); a UserError otherwise."""
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder, not a file")
    if problem := _folder_problem(out.parent):
        raise UserError(f"--out {out}: its folder {out.parent} {problem}")
    return out
