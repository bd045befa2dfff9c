"""Pictures of a trained model, written as PNG with matplotlib (no display needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from melodyvae.core.metrics import spearman  # noqa: E402
from melodyvae.music.tokens import Grid, Vocabulary, tokens_to_notes  # noqa: E402

ATTRIBUTE_LABELS = {
    "rhythmic_complexity": "rhythmic complexity (0–1)",
    "pitch_range": "pitch range (semitones)",
    "note_density": "note density (notes)",
    "contour": "contour (semitones)",
}
NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")


def _save(figure, path: Path) -> None:
    """Write atomically, so an interrupted run leaves no half picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    figure.savefig(partial, dpi=110, format="png")
    plt.close(figure)
    partial.replace(path)


def latent_scatter(
    latent: np.ndarray, values: np.ndarray, name: str, dim: int, path: Path
) -> None:
    """One attribute's values against its regularised latent dim."""
    figure, axes = plt.subplots(figsize=(5.0, 4.0), layout="constrained")
    axes.scatter(latent, values, s=6, alpha=0.35, linewidths=0, color="tab:blue")
    axes.set_xlabel(f"latent dim {dim}")
    axes.set_ylabel(ATTRIBUTE_LABELS.get(name, name))
    axes.set_title(f"{name}: Spearman ρ = {spearman(latent, values):.3f}")
    axes.grid(alpha=0.3)
    _save(figure, path)


def _pitch_label(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _draw_roll(axes, tokens: np.ndarray, grid: Grid, vocab: Vocabulary, span) -> None:
    notes, _ = tokens_to_notes(tokens, grid, vocab, Fraction(0))
    for note in notes:
        axes.broken_barh(
            [(float(note.onset), float(note.duration) * 0.96)],
            (note.pitch - 0.4, 0.8),
            color="tab:blue",
        )
    for beat in range(grid.n_beats + 1):
        axes.axvline(float(beat * grid.beat_length), color="0.85", lw=0.6, zorder=0)
    axes.set_xlim(0, float(grid.bar_length))
    axes.set_ylim(span[0] - 1, span[1] + 1)
    axes.set_xticks([])
    axes.tick_params(axis="y", labelsize=6)


def traversal_grid(
    decoded: np.ndarray,
    attributes: np.ndarray,
    values: np.ndarray,
    names: list[str],
    dims: list[int],
    grid: Grid,
    vocab: Vocabulary,
    path: Path,
    title: str,
) -> None:
    """A grid of piano rolls: one row per traversed dim, one column per value.

    ``decoded`` is (rows, columns, T) tokens, ``attributes`` (rows, columns, L)
    with ``names`` in the same order as the rows; under each roll is the value of
    that row's attribute.
    """
    rows, columns = decoded.shape[:2]
    pitches = [vocab.token_to_pitch(t) for t in decoded.reshape(-1).tolist() if t >= 2]
    span = (min(pitches), max(pitches)) if pitches else (60, 72)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.55 * columns + 1.2, 1.55 * rows + 0.8),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    ticks = list(
        range(span[0] - span[0] % 12 + 12 * (span[0] % 12 > 0), span[1] + 1, 12)
    )
    for r in range(rows):
        for c in range(columns):
            cell = axes[r, c]
            _draw_roll(cell, decoded[r, c], grid, vocab, span)
            value = attributes[r, c, r]
            shown = (
                f"{value:.2f}" if names[r] == "rhythmic_complexity" else f"{value:g}"
            )
            cell.set_xlabel(f"{names[r].split('_')[-1]} = {shown}", fontsize=7)
            if r == 0:
                cell.set_title(f"z = {values[c]:+.1f}", fontsize=8)
            if c == 0:
                cell.set_ylabel(f"{names[r]}\n(dim {dims[r]})", fontsize=8)
                cell.set_yticks(ticks, [_pitch_label(p) for p in ticks])
    figure.suptitle(title, fontsize=9)
    _save(figure, path)
