"""Measures as fixed-length token sequences on a 6-slots-per-beat grid.

Each beat of a measure has six slots. In simple meters (x/4, and 2/2 counted in
quarter beats) the slots sit at beat fractions 0, 1/4, 1/3, 1/2, 2/3 and 3/4, so both
sixteenths and eighth-note triplets fit. In compound meters (6/8, 9/8, 12/8) the beat
is a dotted quarter and the slots are 0, 1/6, 1/3, 1/2, 2/3, 5/6 of it (eighths and
sixteenths). A measure of *b* beats is ``6 * b`` tokens.

Each slot holds one token of the :class:`Vocabulary`: ``rest`` (a rest starts),
``hold`` (whatever sounds goes on) or a pitch onset. A measure that begins with
``hold`` continues the note of the previous measure (a tie across the barline).

A bar is tokenised only when every onset (of a note or of a rest after a note) lies
on a slot, or within ``tolerance`` ql of one; otherwise it is left out with a reason
(:class:`BarSkipped`). Snapping never changes a bar's length: the slots are inside
the bar and every note ends where the next token starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from melodyvae.errors import UnsupportedError
from melodyvae.music.melody import Bar, Melody, Note

SLOTS_PER_BEAT = 6
SIMPLE_SLOT_FRACTIONS = (
    Fraction(0),
    Fraction(1, 4),
    Fraction(1, 3),
    Fraction(1, 2),
    Fraction(2, 3),
    Fraction(3, 4),
)
COMPOUND_SLOT_FRACTIONS = tuple(Fraction(i, 6) for i in range(6))

# Meters with a grid, as (number of beats, beat length in ql, compound?). 2/2 is
# counted in quarter beats so that cut-time reels share the 4/4 grid and model.
SUPPORTED_METERS: dict[str, tuple[int, Fraction, bool]] = {
    "2/4": (2, Fraction(1), False),
    "3/4": (3, Fraction(1), False),
    "4/4": (4, Fraction(1), False),
    "2/2": (4, Fraction(1), False),
    "6/8": (2, Fraction(3, 2), True),
    "9/8": (3, Fraction(3, 2), True),
    "12/8": (4, Fraction(3, 2), True),
}


MAX_BEATS = max(n_beats for n_beats, _, _ in SUPPORTED_METERS.values())
# Token arrays that hold measures of several meters are padded with PAD past each
# measure's own slots (a width of 6 * MAX_BEATS holds any supported measure).
PAD = -1
MAX_SLOTS = SLOTS_PER_BEAT * MAX_BEATS


def canonical_meter(meter: str) -> str:
    """The first meter of :data:`SUPPORTED_METERS` with the same grid ("2/2" gives
    "4/4"); a model treats meters of one grid alike. Raises
    :class:`UnsupportedError` for meters without a grid."""
    grid = grid_for_meter(meter)
    shape = (grid.n_beats, grid.beat_length, grid.compound)
    return next(m for m, spec in SUPPORTED_METERS.items() if spec == shape)


def pad_measures(measures: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Token measures of any lengths as one (N, width) int64 array padded with PAD.

    ``width`` defaults to the longest measure; measures of one length give exactly
    ``np.stack`` of them.
    """
    width = width if width is not None else max((len(m) for m in measures), default=0)
    out = np.full((len(measures), width), PAD, dtype=np.int64)
    for row, measure in enumerate(measures):
        out[row, : len(measure)] = measure
    return out


class BarSkipped(Exception):
    """A bar that cannot be tokenised; ``reason`` is a short phrase for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Grid:
    """The slot grid of one meter."""

    meter: str
    n_beats: int
    beat_length: Fraction
    compound: bool

    @property
    def n_slots(self) -> int:
        return self.n_beats * SLOTS_PER_BEAT

    @property
    def bar_length(self) -> Fraction:
        return self.n_beats * self.beat_length

    def slot_offsets(self) -> list[Fraction]:
        """Offset of every slot from the start of the bar, in ql."""
        fractions = COMPOUND_SLOT_FRACTIONS if self.compound else SIMPLE_SLOT_FRACTIONS
        return [
            beat * self.beat_length + fraction * self.beat_length
            for beat in range(self.n_beats)
            for fraction in fractions
        ]


def grid_for_meter(meter: str) -> Grid:
    """The grid of ``meter`` (e.g. ``"6/8"``).

    Raises :class:`UnsupportedError` for meters outside :data:`SUPPORTED_METERS`.
    """
    if meter not in SUPPORTED_METERS:
        accepted = ", ".join(SUPPORTED_METERS)
        raise UnsupportedError(f"meter {meter} has no grid (accepted: {accepted})")
    n_beats, beat_length, compound = SUPPORTED_METERS[meter]
    return Grid(meter, n_beats, beat_length, compound)


@dataclass(frozen=True)
class Vocabulary:
    """Token ids: ``rest`` = 0, ``hold`` = 1, then one id per MIDI pitch.

    Pitches from ``pitch_min`` to ``pitch_max`` (inclusive) have ids 2, 3, ….
    The decoder also uses a start symbol with id ``size`` (never an output).
    """

    pitch_min: int = 48
    pitch_max: int = 96

    rest: int = 0
    hold: int = 1

    @property
    def size(self) -> int:
        return 2 + self.pitch_max - self.pitch_min + 1

    @property
    def start(self) -> int:
        return self.size

    def pitch_to_token(self, pitch: int) -> int:
        if not self.pitch_min <= pitch <= self.pitch_max:
            raise ValueError(
                f"pitch {pitch} outside the vocabulary "
                f"{self.pitch_min}-{self.pitch_max}"
            )
        return 2 + pitch - self.pitch_min

    def token_to_pitch(self, token: int) -> int | None:
        """MIDI pitch of an onset token, None for rest and hold."""
        return None if token < 2 else token - 2 + self.pitch_min

    def is_onset(self, tokens: np.ndarray) -> np.ndarray:
        return tokens >= 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(**data)


def _snap(offset: Fraction, slots: list[Fraction], tolerance: Fraction) -> int | None:
    """Index of the slot within ``tolerance`` of ``offset`` (nearest), else None."""
    best = min(range(len(slots)), key=lambda i: abs(slots[i] - offset))
    return best if abs(slots[best] - offset) <= tolerance else None


def bar_to_tokens(
    melody: Melody,
    bar: Bar,
    vocab: Vocabulary,
    *,
    tolerance: Fraction = Fraction(0),
    notes: list[Note] | None = None,
) -> np.ndarray:
    """Tokens of one bar of ``melody`` (int64 array of ``6 * n_beats``).

    ``notes`` may pass the notes that overlap the bar when the caller has them at
    hand (saves a scan). A note sounding at the barline gives ``hold`` in slot 0; a
    silent barline gives ``rest``. Raises :class:`BarSkipped` when the meter has no
    grid, an onset is off the grid, two onsets share a slot or a pitch lies outside
    the vocabulary.
    """
    try:
        grid = grid_for_meter(bar.meter)
    except UnsupportedError:
        raise BarSkipped(f"meter {bar.meter}") from None
    slots = grid.slot_offsets()
    if notes is None:
        notes = [n for n in melody.notes if n.onset < bar.end and n.end > bar.start]

    tokens = np.full(grid.n_slots, vocab.hold, dtype=np.int64)
    onset_slots: set[int] = set()
    sounding_at_start = False

    def place(offset: Fraction, token: int, what: str) -> None:
        slot = _snap(offset, slots, tolerance)
        if slot is None:
            raise BarSkipped("off-grid onset", f"{what} at {float(offset):g} ql")
        if slot in onset_slots:
            raise BarSkipped("two onsets in one slot", f"{what} at {float(offset):g}")
        onset_slots.add(slot)
        tokens[slot] = token

    # Walk the bar in time order: each note places its onset, each gap a rest.
    cursor = Fraction(0)
    for note in notes:
        start = note.onset - bar.start
        end = min(note.end - bar.start, grid.bar_length)
        if start < 0:
            sounding_at_start = True
        else:
            # A gap no longer than the tolerance is timing noise, not a rest.
            if start - cursor > tolerance:
                place(cursor, vocab.rest, "rest")
            try:
                token = vocab.pitch_to_token(note.pitch)
            except ValueError:
                raise BarSkipped("pitch out of range", f"MIDI {note.pitch}") from None
            place(start, token, f"MIDI {note.pitch}")
        cursor = max(cursor, end)
    if grid.bar_length - cursor > tolerance:
        place(cursor, vocab.rest, "rest")
    if 0 not in onset_slots:
        tokens[0] = vocab.hold if sounding_at_start else vocab.rest
    return tokens


def tokens_to_notes(
    tokens: np.ndarray, grid: Grid, vocab: Vocabulary, bar_start: Fraction
) -> tuple[list[Note], bool]:
    """Notes of one token bar, placed from ``bar_start`` (ql).

    Returns the notes and whether the bar begins with ``hold`` (so the caller can
    extend the previous bar's last note). A leading hold makes no note here.
    Padding past the grid's slots (:data:`PAD`) is ignored.
    """
    tokens = np.asarray(tokens)[: grid.n_slots]
    slots = grid.slot_offsets() + [grid.bar_length]
    notes: list[Note] = []
    current: tuple[int, Fraction] | None = None
    for i, token in enumerate(tokens.tolist()):
        if token == vocab.hold:
            continue
        if current is not None:
            pitch, onset = current
            notes.append(Note(bar_start + onset, slots[i] - onset, pitch))
            current = None
        pitch = vocab.token_to_pitch(token)
        if pitch is not None:
            current = (pitch, slots[i])
    if current is not None:
        pitch, onset = current
        notes.append(Note(bar_start + onset, grid.bar_length - onset, pitch))
    return notes, int(tokens[0]) == vocab.hold


def bars_to_melody(
    bar_tokens: list[np.ndarray],
    meters: list[str],
    vocab: Vocabulary,
    *,
    title: str = "melodyvae",
    tempo_qpm: float | None = None,
    key: str | None = None,
) -> Melody:
    """A melody of consecutive token bars; a leading ``hold`` ties over the barline.

    A hold at the very start of the melody, or after a rest, is silence.
    """
    notes: list[Note] = []
    bars: list[Bar] = []
    start = Fraction(0)
    for index, (tokens, meter) in enumerate(zip(bar_tokens, meters, strict=True)):
        grid = grid_for_meter(meter)
        tokens = np.asarray(tokens)[: grid.n_slots]
        bar_notes, leading_hold = tokens_to_notes(tokens, grid, vocab, start)
        if leading_hold and notes and notes[-1].end == start:
            # Tie: extend the previous note up to this bar's first new token.
            first_change = next(
                (i for i, t in enumerate(tokens.tolist()) if t != vocab.hold),
                grid.n_slots,
            )
            offsets = grid.slot_offsets() + [grid.bar_length]
            last = notes.pop()
            notes.append(
                Note(last.onset, last.duration + offsets[first_change], last.pitch)
            )
        notes.extend(bar_notes)
        bars.append(Bar(index, start, grid.bar_length, meter))
        start += grid.bar_length
    return Melody(title=title, notes=notes, bars=bars, key=key, tempo_qpm=tempo_qpm)


def melody_to_bar_tokens(
    melody: Melody, vocab: Vocabulary, *, tolerance: Fraction = Fraction(0)
) -> list[np.ndarray | BarSkipped]:
    """Tokens of every bar of ``melody``, or the :class:`BarSkipped` explaining why not.

    Runs in one pass over the notes (bars and notes are both sorted).
    """
    results: list[np.ndarray | BarSkipped] = []
    first = 0
    for bar in melody.bars:
        while first < len(melody.notes) and melody.notes[first].end <= bar.start:
            first += 1
        overlapping = []
        for note in melody.notes[first:]:
            if note.onset >= bar.end:
                break
            overlapping.append(note)
        try:
            results.append(
                bar_to_tokens(
                    melody, bar, vocab, tolerance=tolerance, notes=overlapping
                )
            )
        except BarSkipped as skipped:
            results.append(skipped)
    return results


def transpose_tokens(
    tokens: np.ndarray, shifts: np.ndarray, vocab: Vocabulary
) -> np.ndarray:
    """Shift the pitch onsets of each measure by ``shifts`` semitones.

    ``tokens`` is (N, T), ``shifts`` (N,). The caller keeps every shifted pitch
    inside the vocabulary (see :func:`transposition_bounds`).
    """
    onset = tokens >= 2
    return np.where(onset, tokens + shifts[:, None], tokens)


def transposition_bounds(
    tokens: np.ndarray, vocab: Vocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """Per measure, the lowest and highest shift (semitones) keeping it in the window.

    A measure without onsets can move anywhere; its bounds are 0 and 0.
    """
    onset = tokens >= 2
    big = np.iinfo(np.int64).max
    lowest = np.where(onset, tokens, big).min(axis=1)
    highest = np.where(onset, tokens, -1).max(axis=1)
    has_onset = onset.any(axis=1)
    down = np.where(has_onset, 2 - lowest, 0)
    up = np.where(has_onset, vocab.size - 1 - highest, 0)
    return down, up
