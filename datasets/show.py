"""Per-class image grids of a labelled split (``data show``): one row per class, a PNG via matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.labels import CLASS_NAMES, NUM_CLASSES


def pick_per_class(labels: np.ndarray, per_class: int, seed: int = 0) -> list[np.ndarray]:
    """Indices of up to ``per_class`` samples of each class, chosen deterministically (seeded, sorted)."""
    rng = np.random.default_rng(seed)
    picks = []
    for cls in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == cls)
        if len(idx) > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        picks.append(idx)
    return picks


def draw_class_grid(images: np.ndarray, labels: np.ndarray, out: Path, *, per_class: int = 8, title: str = "") -> None:
    """Save a grid of ``per_class`` samples per class to ``out`` (PNG).

    Args:
        images: uint8 (N, H, W, C) with C = 1 (shown with a grey colour map) or 3.
        labels: (N,) canonical class indices.
        out: PNG path (parent folders are created).
        per_class: columns; classes with fewer samples leave blank cells.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    cell = 1.05
    fig, axes = plt.subplots(NUM_CLASSES, per_class, figsize=(per_class * cell + 1.4, NUM_CLASSES * cell + 0.5),
                             squeeze=False)
    for cls, idx in enumerate(pick_per_class(labels, per_class)):
        _draw_row(axes[cls], [np.asarray(images[i]) for i in idx])
        count = int(np.sum(labels == cls))
        axes[cls, 0].set_ylabel(f"{CLASS_NAMES[cls]}\n(n={count})", rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(pad=0.3, w_pad=0.1, h_pad=0.1, rect=(0, 0, 1, 0.97 if title else 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _draw_row(axes: np.ndarray, images: list[np.ndarray]) -> None:
    """Show ``images`` in the first cells of a row of bare axes (no ticks or frame); the rest stay blank."""
    for col, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if col < len(images):
            image = images[col]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                ax.imshow(image, interpolation="nearest")
