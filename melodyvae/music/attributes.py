"""The four measure attributes, as pure functions vectorised over token arrays.

All functions take ``tokens`` of shape (N, T) (N measures of T = 6 · beats slots, as
built by :mod:`melodyvae.music.tokens`) and return an array of N floats in natural
units: notes, semitones, or a 0–1 share for rhythmic complexity. A measure with no
onsets has density 0, range 0, contour 0 and complexity 0.
"""

from __future__ import annotations

import numpy as np

from melodyvae.music.tokens import SLOTS_PER_BEAT, Grid

ATTRIBUTE_NAMES = ("rhythmic_complexity", "pitch_range", "note_density", "contour")

# Metrical weights: the less expected an onset at a slot, the higher its weight.
# Beat onsets: the downbeat weighs 0.20, the middle beat of a four-beat bar (beat 3)
# 0.25, every other beat 0.67. Off-beat slots of a simple beat (at 1/4, 1/3, 1/2,
# 2/3, 3/4) weigh 1, 2, 0.5, 2, 1: eighths least, sixteenths more, triplets most.
# Off-beat slots of a compound beat (sixteenth, eighth, sixteenth, eighth,
# sixteenth) weigh 1, 0.5, 1, 0.5, 1. For 4/4 this gives exactly the published
# weights (total 27.79); dividing by the bar's total keeps every meter within 0–1.
DOWNBEAT_WEIGHT = 0.20
HALF_BAR_WEIGHT = 0.25
OTHER_BEAT_WEIGHT = 0.67
SIMPLE_OFFBEAT_WEIGHTS = (1.0, 2.0, 0.5, 2.0, 1.0)
COMPOUND_OFFBEAT_WEIGHTS = (1.0, 0.5, 1.0, 0.5, 1.0)


def metrical_weights(grid: Grid) -> np.ndarray:
    """Weight of every slot of ``grid`` (float array of ``grid.n_slots``)."""
    offbeat = COMPOUND_OFFBEAT_WEIGHTS if grid.compound else SIMPLE_OFFBEAT_WEIGHTS
    weights = []
    for beat in range(grid.n_beats):
        if beat == 0:
            weights.append(DOWNBEAT_WEIGHT)
        elif grid.n_beats == 4 and beat == 2:
            weights.append(HALF_BAR_WEIGHT)
        else:
            weights.append(OTHER_BEAT_WEIGHT)
        weights.extend(offbeat)
    assert len(weights) == grid.n_beats * SLOTS_PER_BEAT
    return np.asarray(weights, dtype=np.float64)


def _onsets(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens) >= 2


def rhythmic_complexity(tokens: np.ndarray, grid: Grid) -> np.ndarray:
    """Sum of the metrical weights at onset slots over the bar's total weight."""
    weights = metrical_weights(grid)
    return (_onsets(tokens) * weights).sum(axis=1) / weights.sum()


def note_density(tokens: np.ndarray) -> np.ndarray:
    """Number of note onsets (rests and holds do not count)."""
    return _onsets(tokens).sum(axis=1).astype(np.float64)


def pitch_range(tokens: np.ndarray) -> np.ndarray:
    """Highest minus lowest onset pitch in semitones (0 with fewer than two notes)."""
    tokens = np.asarray(tokens)
    onsets = _onsets(tokens)
    highest = np.where(onsets, tokens, np.iinfo(tokens.dtype).min).max(axis=1)
    lowest = np.where(onsets, tokens, np.iinfo(tokens.dtype).max).min(axis=1)
    return np.where(onsets.sum(axis=1) >= 2, highest - lowest, 0).astype(np.float64)


def contour(tokens: np.ndarray) -> np.ndarray:
    """Last onset pitch minus first onset pitch in semitones (0 with < 2 notes)."""
    tokens = np.asarray(tokens)
    onsets = _onsets(tokens)
    n_slots = tokens.shape[1]
    first_slot = onsets.argmax(axis=1)
    last_slot = n_slots - 1 - onsets[:, ::-1].argmax(axis=1)
    rows = np.arange(tokens.shape[0])
    span = tokens[rows, last_slot] - tokens[rows, first_slot]
    return np.where(onsets.sum(axis=1) >= 2, span, 0).astype(np.float64)


def compute_attributes(tokens: np.ndarray, grid: Grid) -> np.ndarray:
    """All four attributes, (N, 4) float64 in the order of :data:`ATTRIBUTE_NAMES`.

    ``tokens`` must all share ``grid``'s meter. An empty (0, T) array gives (0, 4).
    """
    tokens = np.atleast_2d(np.asarray(tokens, dtype=np.int64))
    if tokens.shape[0] == 0:
        return np.zeros((0, len(ATTRIBUTE_NAMES)))
    return np.stack(
        [
            rhythmic_complexity(tokens, grid),
            pitch_range(tokens),
            note_density(tokens),
            contour(tokens),
        ],
        axis=1,
    )
