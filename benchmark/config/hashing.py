"""The one short content hash of the harness: 16 hex digits of the SHA-256 of a value's JSON.

Artifact folder names (``benchmark.services.artifacts``) and job identities (``benchmark.store.identity``) are
both this hash; it lives here, below both layers, so that they share one definition.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(payload: Any) -> str:
    """The first 16 hex digits of the SHA-256 of ``payload``'s JSON (sorted keys; values JSON cannot encode
    are written as ``str(value)``). Changing this function moves every artifact and re-keys every job."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
