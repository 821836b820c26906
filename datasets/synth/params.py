"""Per-sample parameter tables and the seeded random streams they are drawn from.

A ``ParamTable`` maps a parameter name to an array whose first axis is the sample axis: (N,) for
scalars, (N, 3) for RGB colours in [0, 1]. Tables are drawn once per split (cheap), then sliced per
rendering chunk.
"""

from __future__ import annotations

import numpy as np

ParamTable = dict[str, np.ndarray]

#: Index of each split in the seed derivation; no two splits share a random stream. ``val`` (index 2) came
#: last, with its own index, so adding it left the train and test streams (hence their bytes) unchanged.
SPLIT_INDEX: dict[str, int] = {"train": 0, "test": 1, "val": 2}

#: Independent random streams of one split (the last element of the seed's spawn key).
STREAMS: dict[str, int] = {
    "labels": 0,
    "label_noise": 1,
    "identity": 2,
    "expression": 3,
    "acquisition": 4,
    "pixels": 5,
}


def stream(seed: int, split: str, name: str, chunk: int = 0) -> np.random.Generator:
    """The random generator of stream ``name`` of ``split`` (and rendering ``chunk``) under the root ``seed``.

    Derived as ``SeedSequence(seed, spawn_key=(split index, stream index, chunk))``, so streams are
    independent of each other and of the order in which they are used.
    """
    if split not in SPLIT_INDEX:
        raise ValueError(f"split must be one of {sorted(SPLIT_INDEX)}, got {split!r}")
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(SPLIT_INDEX[split], STREAMS[name], chunk))
    return np.random.Generator(np.random.PCG64(sequence))


def take(table: ParamTable, start: int, stop: int) -> ParamTable:
    """Rows ``start:stop`` of every parameter of ``table``."""
    return {key: value[start:stop] for key, value in table.items()}


def pick(table: ParamTable, rows: np.ndarray) -> ParamTable:
    """Rows ``rows`` (an index array) of every parameter of ``table``."""
    return {key: value[rows] for key, value in table.items()}


def col(values: np.ndarray) -> np.ndarray:
    """(n,) per-sample scalars -> (n, 1, 1) float32, ready to broadcast against (h, w) pixel grids."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def rgb(values: np.ndarray) -> np.ndarray:
    """(n, 3) per-sample colours -> (n, 1, 1, 3) float32, ready to broadcast against (n, h, w, 3) images."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 3)
