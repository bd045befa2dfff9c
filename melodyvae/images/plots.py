"""Pictures of image traversals: a PNG grid and an animated GIF (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def traversal_png(
    images: np.ndarray,
    values: np.ndarray,
    names: list[str],
    path: Path,
    title: str = "",
) -> Path:
    """``images`` (L, E, S, H, W): for each of L attributes, E examples decoded at
    S steps of its dim (``values`` (L, S)). One block of E rows per attribute,
    one column per step, the dim's value over each column."""
    plt = _matplotlib()
    n_attr, n_examples, n_steps = images.shape[:3]
    n_rows = n_attr * n_examples
    fig, axes = plt.subplots(
        n_rows,
        n_steps,
        figsize=(0.9 * n_steps + 1.4, 0.9 * n_rows + 0.6),
        squeeze=False,
        gridspec_kw={"wspace": 0.05, "hspace": 0.15},
    )
    for a in range(n_attr):
        for e in range(n_examples):
            row = a * n_examples + e
            for s in range(n_steps):
                axis = axes[row, s]
                axis.imshow(images[a, e, s], cmap="gray", vmin=0, vmax=1)
                axis.set_xticks([])
                axis.set_yticks([])
                if e == 0:
                    axis.set_title(f"{values[a, s]:+.2f}", fontsize=6, pad=2)
            if e == 0:
                axes[row, 0].set_ylabel(names[a], fontsize=8, rotation=0, ha="right")
    if title:
        top = axes[0, 0].get_position().y1
        fig.suptitle(title, fontsize=9, y=top + 0.3 / fig.get_figheight(), va="bottom")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def traversal_gif(
    images: np.ndarray, names: list[str], path: Path, fps: int = 6
) -> Path:
    """An animation of ``images`` (L, E, S, H, W): frame s shows every example
    (rows) with each attribute's dim (columns) at step s, going up then back."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    plt = _matplotlib()
    n_attr, n_examples, n_steps = images.shape[:3]
    fig, axes = plt.subplots(
        n_examples,
        n_attr,
        figsize=(1.0 * n_attr, 1.0 * n_examples + 0.3),
        squeeze=False,
        gridspec_kw={"wspace": 0.05, "hspace": 0.05},
    )
    shown = []
    for e in range(n_examples):
        for a in range(n_attr):
            axis = axes[e, a]
            shown.append(axis.imshow(images[a, e, 0], cmap="gray", vmin=0, vmax=1))
            axis.set_xticks([])
            axis.set_yticks([])
            if e == 0:
                axis.set_title(names[a], fontsize=7)
    frames = list(range(n_steps)) + list(range(n_steps - 2, 0, -1))

    def draw(step: int):
        for index, artist in enumerate(shown):
            e, a = divmod(index, n_attr)
            artist.set_data(images[a, e, step])
        return shown

    animation = FuncAnimation(fig, draw, frames=frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(path), writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path
