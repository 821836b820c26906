"""Dataset registry and the one entry point the harness uses to get prepared data.

Two kinds of dataset share one cache format (``datasets.cache``):
- raw releases (RAF-DB, FER2013, ExpW, AFE): parsed from the user's disk by ``data prepare``;
- synthetic domains (synth-lab, synth-wild): generated on first use, deterministic by seed.

Locations: ``FERBENCH_HOME`` (default ``~/.cache/fer-sfda-bench``) holds ``cache/<name>/``;
``FERBENCH_DATA`` (default ``$FERBENCH_HOME/raw``) holds one raw root per dataset, ``<FERBENCH_DATA>/<name>``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from datasets.cache import Split, is_complete, load_split, read_manifest, verify_cache
from datasets.errors import DatasetError
from datasets.manifest import MANIFEST, prepare_command
from datasets.progress import disable_bars, log
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


def writable_home() -> Path:
    """``home()``, created when missing; a DatasetError ``FERBENCH_HOME=... is not a writable folder (why)`` when it
    is a file or cannot be made or written (the one check of every command that writes there)."""
    folder = home()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = "it is a file" if folder.is_file() else (error.strerror or type(error).__name__).lower()
        raise DatasetError(f"FERBENCH_HOME={folder} is not a writable folder ({reason})") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatasetError(f"FERBENCH_HOME={folder} is not a writable folder (permission denied)")
    return folder


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
    writable_home()
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


def check_current(name: str, out: Path) -> dict[str, Any]:
    """The manifest of raw release ``name``'s cache at ``out`` when the current parser would write the same.

    Raises:
        DatasetError: the cache was made by another parser version or at another image size or channel count
            (e.g. AFE and ExpW at 112 px before parser version 2), naming the command that rebuilds it with the
            options it was prepared with. It is not rebuilt automatically: that may take an hour on a real
            release, and the user chose the options.
    """
    manifest = read_manifest(out)
    parser = raw_datasets()[name]
    made = (manifest.get("parser_version", 1), manifest["image_size"], manifest["channels"])
    if (manifest["dataset"], *made) != (name, parser.version, parser.image_size, parser.channels):
        raise DatasetError(
            f"the cache of {manifest['dataset']!r} was prepared by parser version {made[0]} at {made[1]} px x "
            f"{made[2]} channel(s); this version caches {name!r} by parser version {parser.version} at "
            f"{parser.image_size} px x {parser.channels}: rebuild it with `{prepare_command(manifest, name)}`",
            out / MANIFEST,
        )
    return manifest


def check_synthetic_current(name: str, out: Path) -> dict[str, Any]:
    """The manifest of synthetic domain ``name``'s cache at ``out`` when the current generator made it, with every
    split it writes (train, test and val).

    Raises:
        DatasetError: made by another generator signature (e.g. ``synth-1``, before the val split), naming the
            command that regenerates it (``ensure`` regenerates it by itself; ``data verify`` only reports).
    """
    from datasets.synth import generator_signature, get_spec, split_names

    manifest = read_manifest(out)
    wanted, splits = generator_signature(name), split_names(get_spec(name))
    if manifest.get("generator") != wanted or set(manifest["splits"]) != set(splits):
        raise DatasetError(
            f"the cache of {name!r} was made by generator {manifest.get('generator')!r} with splits "
            f"{', '.join(manifest['splits'])}; this version generates {wanted!r} with splits {', '.join(splits)}: "
            f"regenerate it with `{prepare_command(manifest, name)}`",
            out / MANIFEST,
        )
    return manifest


def verify(name: str) -> dict[str, Any]:
    """``data verify``: every array of ``name``'s cache re-hashed (every split it has: train, test, and val for a
    synthetic domain), and the cache checked current (parser or generator)."""
    _check_name(name)
    out = cache_dir(name)
    if name in synthetic_names():
        check_synthetic_current(name, out)
    else:
        check_current(name, out)
    return verify_cache(out, dataset=name)


def ensure(name: str) -> Path:
    """The cache folder of ``name``, building it first when missing.

    Synthetic domains are (re)generated when absent or made by another generator version. A raw
    release's cache must have been made by the current parser (``check_current``; otherwise the error
    names the command to rebuild it); a missing one is prepared from ``raw_root(name)`` when that folder
    exists; otherwise the error says how to prepare it.
    """
    _check_name(name)
    out = cache_dir(name)
    if name in synthetic_names():
        return out if is_complete(out) and _synthetic_is_current(name, out) else prepare(name)
    if (out / MANIFEST).exists():
        check_current(name, out)
        return out
    if raw_root(name).exists():
        return prepare(name)
    raise DatasetError(
        f"dataset {name!r} is not prepared and no raw release was found at {raw_root(name)}; run "
        f"`python -m benchmark data prepare {name} --raw DIR` or set FERBENCH_DATA to the folder holding "
        f"`{name}/`"
    )


def ensure_all(names: Sequence[str]) -> list[Path]:
    """``ensure`` of each name; the synthetic domains among them that must be generated are generated side by
    side, one forked process each (at most one per core), so a cold run makes its source and target domains in
    the time of the larger one. Each process writes its own cache (``CacheWriter``'s lock and atomic rename), so
    the bytes are those of ``ensure`` alone."""
    names = list(dict.fromkeys(names))
    for name in names:
        _check_name(name)
    stale = [name for name in names if name in synthetic_names()
             and not (is_complete(cache_dir(name)) and _synthetic_is_current(name, cache_dir(name)))]
    workers = min(len(stale), os.cpu_count() or 1)
    # fork, not spawn: the children see domains registered at run time; they run NumPy only, no torch.
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        writable_home()
        log(f"generating {' and '.join(stale)} side by side ({workers} processes)")
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=disable_bars) as pool:
            list(pool.map(prepare, stale))
    return [ensure(name) for name in names]


def load(name: str, split: str, mmap: bool = True) -> Split:
    """A prepared split of ``name`` (built on first use where possible)."""
    return load_split(ensure(name), split, mmap=mmap)
