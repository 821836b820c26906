"""fer-sfda-bench: a benchmark harness for source-free domain adaptation in facial expression recognition."""

from __future__ import annotations

from importlib.metadata import version

#: The installed distribution's version (pyproject.toml is the one place it is written).
__version__ = version("fer-sfda-bench")


def _check_datasets_package() -> None:
    """Fail clearly when Hugging Face's ``datasets`` shadows this project's ``datasets`` package."""
    import datasets

    if not getattr(datasets, "FERBENCH_DATASETS", False):
        where = getattr(datasets, "__file__", "?")
        raise ImportError(
            f"`import datasets` found another package at {where}, not fer-sfda-bench's data layer. "
            "Hugging Face's `datasets` library shadows it: uninstall it in this environment "
            "(`pip uninstall datasets`) or use a separate virtual environment for fer-sfda-bench."
        )


_check_datasets_package()
