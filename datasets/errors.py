"""User-facing errors, rooted here (the lowest layer) so the CLI catches one class: ``UserError`` (re-exported by
``benchmark.config.errors``) and the data layer's ``DatasetError``, which names the file (and the line)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix (unknown name, bad option, missing or damaged file...): the CLI prints its
    message on one line, without a traceback, and exits non-zero."""


class DatasetError(UserError):
    """A problem with a dataset on disk, reported as one line ``path:line: message``.

    Args:
        message: what is wrong and, where useful, what was expected.
        path: the offending file or folder.
        line: 1-based line number in ``path``, when the problem is in a text annotation.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        message = " ".join(message.splitlines())  # one line, whatever an underlying library's message held
        self.message = message
        self.path = None if path is None else Path(path)
        self.line = line
        where = "" if path is None else (f"{path}:{line}: " if line is not None else f"{path}: ")
        super().__init__(f"{where}{message}")
