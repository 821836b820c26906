"""Errors meant for the user: the CLI prints their message (no traceback) and exits non-zero.

``UserError`` is defined in the data layer (``datasets.errors``, the root of every user-facing error, ``DatasetError``
included) and re-exported here."""

import signal

from datasets.errors import UserError

__all__ = ["CheckpointError", "UserError", "interrupt_on_sigterm", "raise_interrupt"]


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded safely or does not match the model it is loaded into."""


def raise_interrupt(signum: int, frame: object) -> None:
    """A signal handler turning SIGTERM (a scheduler's pre-emption, a sweep stopping its workers) into
    KeyboardInterrupt, so a running trial is marked failed and temporary files are removed on the way out.

    Once only: from then on SIGTERM is ignored in this process, so a second one cannot interrupt the clean-up or
    the closing message (no window in which it would print a traceback)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """Install ``raise_interrupt`` for SIGTERM in this process (the CLI and each sweep worker process)."""
    signal.signal(signal.SIGTERM, raise_interrupt)
