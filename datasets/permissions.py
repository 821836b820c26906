"""Permissions of what the project writes under ``FERBENCH_HOME``: those the user's umask gives any new file.

Caches, artifacts and checkpoints are built in a temporary folder or file and renamed into place, so that a
crash never leaves a half-written one. Python's ``tempfile`` creates those private (folders 0700, files
0600) whatever the umask, which would make a cache shared on a cluster unreadable by colleagues. The project
therefore gives them, before the rename, the mode ``mkdir`` and ``open`` would have given them: 0777 or 0666
minus the umask (umask 022: 0755 / 0644; a group sharing a cache sets umask 002). A user who wants private
caches sets umask 077.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read from /proc where possible (setting it to read it is not thread-safe)."""
    try:
        match = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)
        if match:
            return int(match.group(1), 8)
    except OSError:
        pass
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def staging_dir(final: Path) -> Path:
    """A new empty folder beside ``final`` (named ``.<final name>.tmp-*``, the prefix ``datasets.cache``'s leftover
    sweep knows) with the mode ``mkdir`` would have given it, to build into and rename onto ``final``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def staging_file(final: Path) -> Path:
    """A new empty file beside ``final`` (named ``.<final name>.*``) with the mode ``open`` would have given it,
    to write into and rename onto ``final``."""
    handle, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(handle)
    os.chmod(tmp, 0o666 & ~current_umask())
    return Path(tmp)
