"""Dataset registry and the one entry point the harness uses to get prepared data.

Two kinds of dataset share one cache format (``datasets.cache``):
- raw releases (RAF-DB, FER2013, ExpW, AFE): parsed from the user's disk by ``data prepare``;
- synthetic domains (synth-lab, synth-wild): generated on first use, deterministic by seed.

Locations: ``FERBENCH_HOME`` (default ``~/.cache/fer-sfda-bench``) holds ``cache/<name>/``;
``FERBENCH_DATA`` (default ``$FERBENCH_HOME/raw``) holds one raw root per dataset, ``<FERBENCH_DATA>/<name>``.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets.cache import Split, is_complete, load_split, read_manifest
from datasets.errors import DatasetError
from datasets.raw import RawDataset


def raw_datasets() -> dict[str, type[RawDataset]]:
    """The raw-release parsers by name (a new format is one module, added here)."""
    # Imported here, not at the top, so that `import datasets.registry` stays light.
    from datasets.afe import Afe
    from datasets.expw import ExpW
    from datasets.fer2013 import Fer2013
    from datasets.rafdb import RafDB

    return {cls.name: cls for cls in (Afe, ExpW, Fer2013, RafDB)}


def synthetic_names() -> list[str]:
    """Names of the built-in synthetic domains."""
    from datasets.synth import DOMAINS

    return list(DOMAINS)


def dataset_names() -> list[str]:
    """Every dataset name the CLI accepts: raw releases, then synthetic domains."""
    return [*raw_datasets(), *synthetic_names()]


def home() -> Path:
    """``FERBENCH_HOME``: caches, artifacts and the default results database."""
    return Path(os.environ.get("FERBENCH_HOME", Path.home() / ".cache" / "fer-sfda-bench")).expanduser()


def raw_root(name: str) -> Path:
    """Default raw root of a dataset: ``$FERBENCH_DATA/<name>``."""
    base = os.environ.get("FERBENCH_DATA", str(home() / "raw"))
    return Path(base).expanduser() / name


def cache_dir(name: str) -> Path:
    """Where the prepared cache of ``name`` lives."""
    return home() / "cache" / name


def _check_name(name: str) -> None:
    if name not in dataset_names():
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")


def prepare(name: str, raw: str | Path | None = None, *, skip_bad: bool = False, split_seed: int = 0) -> Path:
    """Build (or rebuild) the cache of ``name``; returns the cache folder.

    Raw releases are read from ``raw`` (default ``raw_root(name)``); synthetic domains are generated.
    """
    _check_name(name)
    out = cache_dir(name)
    if name in synthetic_names():
        from datasets.synth import write_cache

        write_cache(name, out)
        return out
    from datasets.prepare import prepare_raw

    parser = raw_datasets()[name](split_seed=split_seed)
    prepare_raw(parser, Path(raw) if raw is not None else raw_root(name), out, skip_bad=skip_bad)
    return out


def _synthetic_is_current(name: str, out: Path) -> bool:
    from datasets.synth import generator_signature

    return read_manifest(out).get("generator") == generator_signature(name)


def ensure(name: str) -> Path:
    """The cache folder of ``name``, building it first when missing.

    Synthetic domains are (re)generated when absent or made by another generator version. A raw
    release is prepared from ``raw_root(name)`` when that folder exists; otherwise the error says how
    to prepare it.
    """
    _check_name(name)
    out = cache_dir(name)
    if is_complete(out):
        if name not in synthetic_names() or _synthetic_is_current(name, out):
            return out
        return prepare(name)
    if name in synthetic_names() or raw_root(name).exists():
        return prepare(name)
    raise DatasetError(
        f"dataset {name!r} is not prepared and no raw release was found at {raw_root(name)}; run "
        f"`python -m benchmark data prepare {name} --raw DIR` or set FERBENCH_DATA to the folder holding "
        f"`{name}/`"
    )


def load(name: str, split: str, mmap: bool = True) -> Split:
    """A prepared split of ``name`` (built on first use where possible)."""
    return load_split(ensure(name), split, mmap=mmap)
