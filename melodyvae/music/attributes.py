"""The four measure attributes, as pure functions vectorised over token arrays.

All functions take ``tokens`` of shape (N, T) (N measures of T = 6 · beats slots, as
built by :mod:`melodyvae.music.tokens`) and return an array of N floats in natural
units: notes, semitones, or a 0–1 share for rhythmic complexity. A measure with no
onsets has density 0, range 0, contour 0 and complexity 0.

Measures of several meters go in one array padded with :data:`~melodyvae.music.
tokens.PAD` (-1) past each measure's slots, with the meter of every row: padding is
never an onset, and rhythmic complexity takes each row's weights from its own meter
(zero weight on padding). Rows are grouped by meter only to build the weight matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from melodyvae.music.tokens import SLOTS_PER_BEAT, Grid, grid_for_meter

ATTRIBUTE_NAMES = ("rhythmic_complexity", "pitch_range", "note_density", "contour")
# The values an attribute can take at all; contour (last minus first pitch) may
# have either sign and has no entry.
DEFINED_RANGES = {
    "rhythmic_complexity": (0.0, 1.0),
    "pitch_range": (0.0, float("inf")),
    "note_density": (0.0, float("inf")),
}

# Metrical weights by level; see metrical_weights for the rule.
DOWNBEAT_WEIGHT = 0.20
HALF_BAR_WEIGHT = 0.25
OTHER_BEAT_WEIGHT = 0.67
MAIN_SUBDIVISION_WEIGHT = 0.5
FINER_SUBDIVISION_WEIGHT = 1.0
TRIPLET_WEIGHT = 2.0
# The five off-beat slots of a beat, from the levels above.
SIMPLE_OFFBEAT_WEIGHTS = (
    FINER_SUBDIVISION_WEIGHT,  # 1/4
    TRIPLET_WEIGHT,  # 1/3
    MAIN_SUBDIVISION_WEIGHT,  # 1/2
    TRIPLET_WEIGHT,  # 2/3
    FINER_SUBDIVISION_WEIGHT,  # 3/4
)
COMPOUND_OFFBEAT_WEIGHTS = (
    FINER_SUBDIVISION_WEIGHT,  # 1/6
    MAIN_SUBDIVISION_WEIGHT,  # 1/3
    FINER_SUBDIVISION_WEIGHT,  # 1/2
    MAIN_SUBDIVISION_WEIGHT,  # 2/3
    FINER_SUBDIVISION_WEIGHT,  # 5/6
)


def metrical_weights(grid: Grid) -> np.ndarray:
    """Weight of every slot of ``grid`` (float array of ``grid.n_slots``).

    The less expected an onset at a slot, the higher its weight. One rule serves
    every meter: a slot weighs what the highest metrical level starting there
    weighs.

    bar (the downbeat)                                                     0.20
    half bar: beat 3 of a 4-beat bar (only 4-beat bars group their beats
    in pairs; 2- and 3-beat bars have no level between beat and bar, so
    all their other beats are plain beats)                                 0.25
    beat                                                                   0.67
    main subdivision: the eighth at 1/2 of a simple beat, the eighths at
    1/3 and 2/3 of a compound (dotted-quarter) beat                        0.5
    finer subdivision: sixteenths, at 1/4 and 3/4 of a simple beat, at
    1/6, 1/2 and 5/6 of a compound beat                                    1
    triplet eighths at 1/3 and 2/3 of a simple beat, which cut across the
    binary levels                                                          2

    For 4/4 this gives exactly the published weights (per beat 0.20 / 0.67 / 0.25
    / 0.67, then 1, 2, 0.5, 2, 1; total 27.79). The published values are kept as
    they are although they are not monotone in the level (an eighth off-beat
    weighs less than beats 2 and 4). Totals: 2/4 13.87, 3/4 21.04, 4/4 and 2/2
    27.79, 6/8 8.87, 9/8 13.54, 12/8 17.79; rhythmic complexity divides by the
    bar's total, so every meter spans 0–1.
    """
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


GridOrMeters = Grid | Sequence[str] | np.ndarray


def weight_matrix(meters: Sequence[str] | np.ndarray, width: int) -> np.ndarray:
    """(N, width) metrical weights of measures of the given meters, 0 past each
    measure's slots. Raises :class:`UnsupportedError` for a meter without a grid."""
    meters = np.asarray(meters)
    weights = np.zeros((len(meters), width))
    for meter in np.unique(meters):
        row_weights = metrical_weights(grid_for_meter(str(meter)))
        if len(row_weights) > width:
            raise ValueError(f"{meter} measures need {len(row_weights)} slots")
        weights[meters == meter, : len(row_weights)] = row_weights
    return weights


def _onsets(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens) >= 2


def rhythmic_complexity(tokens: np.ndarray, grid: GridOrMeters) -> np.ndarray:
    """Sum of the metrical weights at onset slots over the bar's total weight.

    ``grid`` is the grid of every row, or the meter of each row (padded tokens).
    """
    tokens = np.asarray(tokens)
    if isinstance(grid, Grid):
        weights = metrical_weights(grid)
        return (_onsets(tokens) * weights).sum(axis=1) / weights.sum()
    weights = weight_matrix(grid, tokens.shape[1])
    return (_onsets(tokens) * weights).sum(axis=1) / weights.sum(axis=1)


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


def compute_attributes(tokens: np.ndarray, grid: GridOrMeters) -> np.ndarray:
    """All four attributes, (N, 4) float64 in the order of :data:`ATTRIBUTE_NAMES`.

    ``grid`` is either the :class:`Grid` every row shares or a sequence of N meters,
    one per row, for measures of several meters padded with -1. An empty (0, T)
    array gives (0, 4).
    """
    tokens = np.atleast_2d(np.asarray(tokens, dtype=np.int64))
    if tokens.shape[0] == 0:
        return np.zeros((0, len(ATTRIBUTE_NAMES)))
    if not isinstance(grid, Grid) and len(grid) != tokens.shape[0]:
        raise ValueError(f"{len(grid)} meters for {tokens.shape[0]} measures")
    return np.stack(
        [
            rhythmic_complexity(tokens, grid),
            pitch_range(tokens),
            note_density(tokens),
            contour(tokens),
        ],
        axis=1,
    )
