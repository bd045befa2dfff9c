"""Sampling, interpolating and editing measures with a trained model.

Every function works on token arrays or :class:`Melody` objects and returns new
ones; writing files is the caller's business (see :mod:`melodyvae.music.writing`).
Latent shifts are in prior standard deviations: the prior is N(0, I), so a shift of
+1.5 on the note-density axis moves a measure 1.5 prior sds towards denser bars.

Measures of several meters travel as one token array padded with -1 past each
measure's slots, with a list of their meters; the model is called once per group
of measures of one grid. A single-grid model takes its own grid only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import torch

from melodyvae.errors import MelodyVAEError, UnsupportedError
from melodyvae.music.attributes import ATTRIBUTE_NAMES
from melodyvae.music.calibration import Calibration
from melodyvae.music.control import (
    DEFAULT_TRY_TEMPERATURE,
    BarOutcome,
    KeyScale,
    Request,
    check_requests,
    control,
    key_scale,
    snap_to_scale,
)
from melodyvae.music.melody import Melody, Note
from melodyvae.music.tokens import (
    PAD,
    SUPPORTED_METERS,
    BarSkipped,
    bar_to_tokens,
    bars_to_melody,
    canonical_meter,
    grid_for_meter,
    melody_to_bar_tokens,
    pad_measures,
    tokens_to_notes,
)
from melodyvae.music.training import TrainedModel

BATCH = 512

Meters = list[str] | np.ndarray | None


def check_meter(trained: TrainedModel, meter: str) -> None:
    """Refuse a meter the model does not serve, naming the checkpoint. A meter
    of the grid of one it serves is served too (4/4 by a model of 2/2 bars)."""
    grids = {canonical_meter(m) for m in trained.meters}
    if meter not in trained.meters and (
        meter not in SUPPORTED_METERS or canonical_meter(meter) not in grids
    ):
        raise UnsupportedError(
            f"{trained.path}: this model serves {', '.join(trained.meters)}, "
            f"not {meter}"
        )


def _groups(trained: TrainedModel, n: int, meters: Meters):
    """(rows, width in slots, meter tensor or None) per grid among ``meters``.

    ``meters`` None means the model's default meter for every row.
    """
    if meters is not None:
        for meter in dict.fromkeys(np.asarray(meters).tolist()):
            check_meter(trained, meter)
    if meters is None or not trained.meter_aware:
        return [(np.arange(n), trained.grid.n_slots, None)]
    meters = np.asarray(meters)
    if len(meters) != n:
        raise ValueError(f"{len(meters)} meters for {n} measures")
    grids = np.array([canonical_meter(m) for m in meters.tolist()])
    groups = []
    for grid_name in dict.fromkeys(grids.tolist()):
        rows = np.flatnonzero(grids == grid_name)
        index = trained.meter_index(grid_name)
        meter = torch.full((len(rows),), index, dtype=torch.long)
        groups.append((rows, grid_for_meter(grid_name).n_slots, meter))
    return groups


def encode_measures(
    trained: TrainedModel, tokens: np.ndarray, meters: Meters = None
) -> np.ndarray:
    """Posterior means (N, Z) of token measures (N, T).

    ``meters`` gives each measure's meter (tokens padded with -1 past shorter
    measures); None means the model's default meter.
    """
    tokens = np.asarray(tokens)
    out = np.zeros((len(tokens), trained.model.config.latent_dim), dtype=np.float32)
    with torch.no_grad():
        for rows, width, meter in _groups(trained, len(tokens), meters):
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                batch = torch.as_tensor(tokens[part, :width], dtype=torch.long)
                chunk = None if meter is None else meter[start : start + BATCH]
                mu, _ = trained.model.encode(batch, chunk)
                out[part] = mu.numpy()
    return out


def decode_latents(
    trained: TrainedModel,
    latents: np.ndarray,
    meters: Meters = None,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    width: int | None = None,
    row_ids: np.ndarray | list[int] | None = None,
) -> np.ndarray:
    """Token measures (N, T) decoded from latent codes (N, Z).

    ``meters`` gives the meter of each measure to decode (None: the model's
    default); measures shorter than T are padded with -1. T is ``width``, by
    default the longest measure's length.
    ``temperature`` 0 takes the most likely token at every slot; above 0 samples,
    each measure with random numbers of its own drawn from ``seed`` and its
    number in ``row_ids`` (default 0 .. N-1), so that a measure decodes the same
    whichever others are decoded with it (no seed: fresh random numbers).
    """
    row_ids = np.arange(len(latents)) if row_ids is None else np.asarray(row_ids)
    if len(row_ids) != len(latents):
        raise ValueError(f"{len(row_ids)} row ids for {len(latents)} codes")
    groups = _groups(trained, len(latents), meters)
    width = width or max(group_width for _, group_width, _ in groups)
    out = np.full((len(latents), width), PAD, dtype=np.int64)
    with torch.no_grad():
        for rows, group_width, meter in groups:
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                z = torch.as_tensor(latents[part], dtype=torch.float32)
                chunk = None if meter is None else meter[start : start + BATCH]
                uniforms = None
                if temperature > 0:
                    uniforms = torch.from_numpy(
                        _row_uniforms(seed, row_ids[part], group_width)
                    )
                tokens, _ = trained.model.decode_free(
                    z, chunk, temperature=temperature, uniforms=uniforms
                )
                out[part, :group_width] = tokens.numpy()
    return out


def _row_uniforms(seed: int | None, rows: np.ndarray, width: int) -> np.ndarray:
    """Uniform numbers (len(rows), width) float32, each row's from ``seed`` and
    its id alone (fresh ones without a seed)."""
    if seed is None:
        return np.random.default_rng().random((len(rows), width), dtype=np.float32)
    return np.stack(
        [
            np.random.default_rng([seed, int(row)]).random(width, dtype=np.float32)
            for row in rows
        ]
    ).reshape(len(rows), width)


def sample_measures(
    trained: TrainedModel,
    n: int,
    *,
    meter: str | None = None,
    temperature: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """``n`` new measures (n, T) of ``meter`` (default: the model's first meter):
    codes drawn from the prior N(0, I), then decoded.

    Raises :class:`UnsupportedError` for a meter the model does not serve.
    """
    if n < 1:
        raise MelodyVAEError(f"number of samples must be at least 1, got {n}")
    meter = meter or trained.meters[0]
    check_meter(trained, meter)
    return decode_latents(
        trained,
        prior_codes(trained, n, seed),
        [meter] * n,
        temperature=temperature,
        seed=seed + 1,
    )


def prior_codes(trained: TrainedModel, n: int, seed: int = 0) -> np.ndarray:
    """``n`` codes (n, Z) drawn from the prior N(0, I) with ``seed``."""
    if n < 1:
        raise MelodyVAEError(f"number of samples must be at least 1, got {n}")
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, trained.model.config.latent_dim, generator=generator)
    return latents.numpy()


def measures_to_melody(
    trained: TrainedModel,
    tokens: np.ndarray,
    title: str = "melodyvae",
    like: Melody | None = None,
    meters: str | list[str] | None = None,
) -> Melody:
    """One melody of the given measures in sequence.

    ``meters`` is the meter of every measure (one text for all); by default the
    model's first one, or with ``like`` the meter of its first bar the model takes
    (so cut-time reels stay in 2/2). ``like`` also gives the key, tempo and
    instrument. Measures may be padded with -1 past their meter's slots.
    """
    meter = trained.meters[0]
    key = tempo_qpm = None
    if like is not None:
        meter = next((b.meter for b in like.bars if b.meter in trained.meters), meter)
        key, tempo_qpm = like.key, like.tempo_qpm
    if meters is None or isinstance(meters, str):
        meters = [meters or meter] * len(tokens)
    bars = [
        np.asarray(row)[: grid_for_meter(m).n_slots]
        for row, m in zip(tokens, meters, strict=True)
    ]
    melody = bars_to_melody(
        bars,
        list(meters),
        trained.vocab,
        title=title,
        tempo_qpm=tempo_qpm,
        key=key,
    )
    if like is not None:
        melody.program = like.program
    return melody


INTERPOLATION_METHODS = ("linear", "slerp")


def interpolate_latents(
    start: np.ndarray, end: np.ndarray, steps: int, method: str = "linear"
) -> np.ndarray:
    """``steps`` codes from ``start`` to ``end`` (both included; (..., Z) each).

    ``linear`` spaces them evenly on the straight line. ``slerp`` goes along the
    great circle between the two directions with the norm changing linearly
    from one code's to the other's: under the N(0, I) prior most codes lie near
    a sphere of radius √Z, and the middle of a straight line falls inside it,
    where codes are rarer.
    """
    if steps < 2:
        raise MelodyVAEError(f"interpolation needs at least 2 steps, got {steps}")
    if method not in INTERPOLATION_METHODS:
        raise MelodyVAEError(
            f"interpolation method {method!r} (accepted: "
            f"{', '.join(INTERPOLATION_METHODS)})"
        )
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float64)
    shape = (steps,) + (1,) * start.ndim
    t = weights.reshape(shape)
    a = np.asarray(start, dtype=np.float64)[None]
    b = np.asarray(end, dtype=np.float64)[None]
    if method == "linear":
        return ((1 - t) * a + t * b).astype(np.float32)
    norm_a = np.linalg.norm(a, axis=-1, keepdims=True)
    norm_b = np.linalg.norm(b, axis=-1, keepdims=True)
    unit_a = a / np.where(norm_a > 0, norm_a, 1.0)
    unit_b = b / np.where(norm_b > 0, norm_b, 1.0)
    cosine = np.clip((unit_a * unit_b).sum(axis=-1, keepdims=True), -1.0, 1.0)
    angle = np.arccos(cosine)
    sine = np.sin(angle)
    # Nearly parallel directions (or a zero code): the straight line is the arc.
    straight = sine < 1e-6
    safe = np.where(straight, 1.0, sine)
    along_a = np.where(straight, 1 - t, np.sin((1 - t) * angle) / safe)
    along_b = np.where(straight, t, np.sin(t * angle) / safe)
    direction = along_a * unit_a + along_b * unit_b
    length = np.linalg.norm(direction, axis=-1, keepdims=True)
    direction = direction / np.where(length > 0, length, 1.0)
    radius = (1 - t) * norm_a + t * norm_b
    return (direction * radius).astype(np.float32)


# -- whole tunes ----------------------------------------------------------------------


@dataclass
class EncodableBars:
    """The bars of a melody that the model can take, with the others' reasons.

    ``octaves`` holds, for a bar moved into the model's pitch window, how many
    octaves it was moved (up > 0): its ``tokens`` are of the moved bar.
    """

    melody: Melody
    tokens: dict[int, np.ndarray] = field(default_factory=dict)  # bar index → tokens
    reasons: dict[int, str] = field(default_factory=dict)  # bar index → why not
    octaves: dict[int, int] = field(default_factory=dict)  # bar index → octaves moved
    meters: dict[int, str] = field(default_factory=dict)  # bar index → meter

    @property
    def indices(self) -> list[int]:
        return sorted(self.tokens)

    def stacked(self, indices: list[int] | None = None) -> tuple[np.ndarray, list[str]]:
        """Tokens (N, T) of the given bars (default: all), padded with -1 when
        their meters differ in length, and their meters."""
        indices = self.indices if indices is None else indices
        tokens = pad_measures([self.tokens[i] for i in indices])
        return tokens, [self.meters[i] for i in indices]


def encodable_bars(
    trained: TrainedModel, melody: Melody, *, move_octaves: bool = False
) -> EncodableBars:
    """Tokenise every bar of ``melody`` that fits the model's meters and window.

    Pickup bars are left as they are (they are mostly rest, and the model was
    trained on complete bars). With ``move_octaves``, a bar whose pitches lie
    outside the model's pitch window is moved by whole octaves into it when its
    range fits: by the move that fits the most bars of the tune, else by the
    nearest one that fits the bar (see :func:`octave_moves`).
    """
    result = EncodableBars(melody)
    moves = octave_moves(trained, melody) if move_octaves else {}
    vocab = trained.vocab
    for bar, tokens in zip(
        melody.bars, melody_to_bar_tokens(melody, trained.vocab), strict=True
    ):
        if bar.meter not in trained.meters:
            result.reasons[bar.index] = (
                f"meter {bar.meter} (model takes {', '.join(trained.meters)})"
            )
            continue
        if bar.pickup:
            result.reasons[bar.index] = "pickup bar"
            continue
        octaves = moves.get(bar.index, 0)
        if octaves:
            moved = [
                Note(n.onset, n.duration, n.pitch + 12 * octaves)
                for n in _overlapping(melody, bar)
            ]
            try:
                tokens = bar_to_tokens(melody, bar, vocab, notes=moved)
            except BarSkipped as skipped:
                tokens = skipped
        if isinstance(tokens, BarSkipped):
            reason = str(tokens)
            if move_octaves and tokens.reason == "pitch out of range":
                low, high = _onset_range(melody, bar)
                reason = (
                    f"pitches MIDI {low}-{high} do not fit the model's pitch "
                    f"window MIDI {vocab.pitch_min}-{vocab.pitch_max}, in any octave"
                )
            result.reasons[bar.index] = reason
        else:
            result.tokens[bar.index] = tokens
            result.meters[bar.index] = bar.meter
            if octaves:
                result.octaves[bar.index] = octaves
    return result


def _overlapping(melody: Melody, bar) -> list[Note]:
    return [n for n in melody.notes if n.onset < bar.end and n.end > bar.start]


def _onset_range(melody: Melody, bar) -> tuple[int, int] | None:
    """The lowest and highest pitch of the notes that start in ``bar``."""
    pitches = [n.pitch for n in melody.notes if bar.start <= n.onset < bar.end]
    return (min(pitches), max(pitches)) if pitches else None


def octave_moves(trained: TrainedModel, melody: Melody) -> dict[int, int]:
    """Octaves (up > 0) to move each bar by to bring its onsets into the model's
    pitch window; bars already inside, and bars that fit in no octave, are left
    out.

    One move serves the whole tune where it can: the one that brings the most
    bars inside (the smallest of equals). A bar it leaves outside gets the
    nearest move that fits it, when its range is no wider than the window.
    """
    vocab = trained.vocab
    ranges = {
        bar.index: found
        for bar in melody.bars
        if bar.meter in trained.meters
        and not bar.pickup
        and (found := _onset_range(melody, bar)) is not None
    }

    def fits(octaves: int, low: int, high: int) -> bool:
        return (
            vocab.pitch_min
            <= low + 12 * octaves
            <= high + 12 * octaves
            <= (vocab.pitch_max)
        )

    if all(fits(0, *span) for span in ranges.values()):
        return {}
    candidates = range(-10, 11)
    best = max(
        candidates,
        key=lambda k: (sum(fits(k, *span) for span in ranges.values()), -abs(k)),
    )
    moves = {}
    for index, span in ranges.items():
        fitting = [k for k in candidates if fits(k, *span)]
        if fitting:
            octaves = min(fitting, key=lambda k: (abs(k - best), abs(k)))
            if octaves:
                moves[index] = octaves
    return moves


def _clip_last(notes: list[Note], at: Fraction) -> None:
    """Shorten the last note so it ends by ``at`` (drop it if nothing is left)."""
    if notes and notes[-1].end > at:
        last = notes.pop()
        if last.onset < at:
            notes.append(Note(last.onset, at - last.onset, last.pitch))


def _in_midi_range(pitch: int) -> int:
    """``pitch`` moved by whole octaves into MIDI's 0-127 where it lies outside."""
    while pitch > 127:
        pitch -= 12
    while pitch < 0:
        pitch += 12
    return pitch


def replace_bars(
    melody: Melody,
    new_tokens: dict[int, np.ndarray],
    trained: TrainedModel,
    octaves: dict[int, int] | None = None,
) -> Melody:
    """``melody`` with the bars in ``new_tokens`` replaced; every other bar identical.

    A note of a kept bar that was tied into a replaced bar is cut at the barline; a
    note tied out of a replaced bar into a kept one is struck again at the barline.
    ``octaves`` says how many octaves a bar was moved up for the model: its new
    notes are moved down as far (and, should that leave MIDI's 0-127, back inside
    by whole octaves). The result keeps the melody's key, tempo, pickup, source
    and instrument.
    """
    octaves = octaves or {}
    notes: list[Note] = []
    previous_replaced = False
    for bar in melody.bars:
        if bar.index in new_tokens:
            _clip_last(notes, bar.start)
            bar_notes, leading_hold = tokens_to_notes(
                new_tokens[bar.index],
                grid_for_meter(bar.meter),
                trained.vocab,
                bar.start,
            )
            move = -12 * octaves.get(bar.index, 0)
            if move:
                bar_notes = [
                    Note(n.onset, n.duration, _in_midi_range(n.pitch + move))
                    for n in bar_notes
                ]
            if leading_hold and notes and notes[-1].end == bar.start:
                held_until = bar_notes[0].onset if bar_notes else bar.end
                last = notes.pop()
                notes.append(Note(last.onset, held_until - last.onset, last.pitch))
            notes.extend(bar_notes)
            previous_replaced = True
            continue
        for note in melody.notes:
            if note.onset >= bar.end:
                break
            starts_here = note.onset >= bar.start
            tied_in = note.onset < bar.start < note.end
            if starts_here:
                notes.append(note)
            elif tied_in and previous_replaced:
                _clip_last(notes, bar.start)
                notes.append(Note(bar.start, note.end - bar.start, note.pitch))
        previous_replaced = False
    return replace(melody, notes=notes, bars=list(melody.bars), warnings=[])


# The reason reported for a bar that the ``bars`` of :func:`edit_melody` leave out.
UNSELECTED = "outside the selected bars"


@dataclass
class BarReport:
    """One bar of an edit: its status and attributes before and after.

    ``octaves`` is how many octaves (up > 0) the bar was moved for the model and
    back; the attributes are measured on the bar as the model saw it (pitch range
    and contour do not change with the octave). ``outcome`` (edited bars) says what
    was requested and whether it was met; see :mod:`melodyvae.music.control`.
    """

    index: int
    status: str  # "edited" or "kept"
    reason: str | None
    before: dict[str, float] | None
    after: dict[str, float] | None
    octaves: int = 0
    outcome: BarOutcome | None = None


@dataclass
class EditResult:
    """An edited melody, a report per bar, the model's pitch window and, with
    key snapping, the key kept to."""

    melody: Melody
    bars: list[BarReport]
    pitch_window: tuple[int, int]
    key: KeyScale | None = None

    @property
    def octave_moves(self) -> dict[int, int]:
        """Bar index → octaves moved (up > 0) for the model, for edited bars."""
        return {r.index: r.octaves for r in self.bars if r.octaves}

    @property
    def notes_moved_into_key(self) -> int:
        return sum(r.outcome.notes_moved for r in self.bars if r.outcome is not None)


def edit_melody(
    trained: TrainedModel,
    melody: Melody,
    shifts: dict[str, float] | None = None,
    *,
    bars: set[int] | None = None,
    requests: list[Request] | None = None,
    calibration: Calibration | None = None,
    tries: int = 1,
    temperature: float = DEFAULT_TRY_TEMPERATURE,
    seed: int = 0,
    keep_key: bool = False,
) -> EditResult:
    """Edit the bars of ``melody`` as ``shifts`` and ``requests`` ask.

    ``shifts`` maps attribute names to latent shifts in prior standard deviations;
    ``requests`` are :class:`~melodyvae.music.control.Request` objects (shifts,
    targets and changes in musical units; the last two need ``calibration``).
    ``tries`` candidates are decoded per bar and the best kept, ``keep_key`` moves
    decoded notes into the tune's key (see :func:`~melodyvae.music.control.
    control`). Only complete bars between the first and the last are edited: the
    pickup (bar 0) and the final bar stay as they are, and so do bars the model
    cannot take (other meters, off-grid rhythms, pitches that fit its window in no
    octave); each is reported with its reason. ``bars`` limits the edit to those
    bar numbers (as in the score: the pickup is 0, the first full bar 1). Every
    bar not edited is note for note the bar of the input.

    A bar outside the model's pitch window is moved by whole octaves for the
    model (see :func:`octave_moves`) and its new notes moved back. Raises
    :class:`UnsupportedError` when no bar can be edited.
    """
    requests = list(requests or [])
    for attribute, shift in (shifts or {}).items():
        if attribute not in trained.attribute_dims:
            raise MelodyVAEError(
                f"unknown attribute {attribute} "
                f"(accepted: {', '.join(ATTRIBUTE_NAMES)})"
            )
        requests.append(Request(attribute, "shift", float(shift)))
    check_requests(requests)
    name = melody.source or melody.title
    if bars is not None:
        numbers = [bar.index for bar in melody.bars]
        missing = sorted(set(bars) - set(numbers))
        if missing:
            raise MelodyVAEError(
                f"{name}: no bar {', '.join(map(str, missing[:5]))} "
                f"(its bars are numbered {numbers[0]}-{numbers[-1]})"
            )
    encodable = encodable_bars(trained, melody, move_octaves=True)
    final = melody.bars[-1].index
    if final in encodable.tokens and len(melody.bars) > 1:
        del encodable.tokens[final]
        encodable.octaves.pop(final, None)
        encodable.reasons[final] = "final bar"
    selected = [i for i in encodable.indices if bars is None or i in bars]
    if not selected:
        considered = encodable.reasons
        if bars is not None:
            considered = {i: r for i, r in considered.items() if i in bars}
        reasons = sorted(set(considered.values()))
        raise UnsupportedError(
            f"{name}: no bar this model can edit"
            + (f" ({'; '.join(reasons[:3])})" if reasons else "")
        )

    scale = None
    snap = None
    if keep_key:
        scale = key_scale(melody.key, [n.pitch for n in melody.notes])

        def snap(tokens: np.ndarray):
            return snap_to_scale(tokens, trained.vocab, scale.pitch_classes)

    tokens, meters = encodable.stacked(selected)
    latents = encode_measures(trained, tokens, meters)
    controlled = control(
        trained,
        calibration,
        latents,
        meters,
        requests,
        originals=tokens,
        tries=tries,
        temperature=temperature,
        seed=seed,
        snap=snap,
        row_ids=selected,
    )
    edited = replace_bars(
        melody,
        dict(zip(selected, controlled.tokens, strict=True)),
        trained,
        octaves=encodable.octaves,
    )

    reports = []
    position = {index: row for row, index in enumerate(selected)}
    for bar in melody.bars:
        if bar.index in position:
            outcome = controlled.outcomes[position[bar.index]]
            reports.append(
                BarReport(
                    bar.index,
                    "edited",
                    None,
                    outcome.before,
                    outcome.after,
                    encodable.octaves.get(bar.index, 0),
                    outcome,
                )
            )
        else:
            reason = encodable.reasons.get(bar.index, UNSELECTED)
            reports.append(BarReport(bar.index, "kept", reason, None, None))
    window = (trained.vocab.pitch_min, trained.vocab.pitch_max)
    return EditResult(edited, reports, window, scale)
