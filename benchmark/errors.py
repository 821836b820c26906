"""Errors meant for the user: the CLI prints their message (no traceback) and exits non-zero."""


class UserError(Exception):
    """A mistake in how the harness was called (unknown name, bad option, missing file...)."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded safely or does not match the model it is loaded into."""
