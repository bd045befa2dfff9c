"""Lay a melody out as written notation, for the MusicXML and ABC writers.

A :class:`~melodyvae.music.melody.Melody` knows sounding times and MIDI pitches; a
score needs measures, note values a notation program can draw, ties, tuplets and
spelled pitches. This module works those out once for both text formats:

- :func:`lay_out` cuts the melody into one :class:`WrittenMeasure` per bar. A pickup
  bar is written as an incomplete measure holding only the pickup. A note that runs
  past a barline is split there and tied. Each note or rest is written as note
  values (plain or dotted), tied where one value cannot hold it.
- Stretches whose onsets fall off the binary grid (triplets, quintuplets ...)
  become tuplet groups of ``p`` notes in the time of ``q``, over a window that
  holds the stretch without cutting a note: a quarter for eighth triplets or
  sixteenth quintuplets, a half for quarter triplets.
- :class:`Speller` spells MIDI pitches in a key: the key's own notes as the key
  signature has them (Bb in F major, F# in D major), other notes as the altered
  degrees tonal music uses most (F# and Eb in F major; G# and D# in A minor).

Times here are :class:`fractions.Fraction` quarter notes (ql), as in a Melody.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from melodyvae.music.melody import Bar, Melody

_LETTERS = "CDEFGAB"
_NATURAL_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Fifths on the circle of the major keys, and how far each mode lies from major.
_MAJOR_FIFTHS = {"C": 0, "D": 2, "E": 4, "F": -1, "G": 1, "A": 3, "B": 5}
_MODE_OFFSETS = {
    "major": 0,
    "ionian": 0,
    "lydian": 1,
    "mixolydian": -1,
    "dorian": -2,
    "minor": -3,
    "aeolian": -3,
    "phrygian": -4,
    "locrian": -5,
}
_SHARPS_ORDER = "FCGDAEB"

# The altered scale degrees (degree, +1 raised / -1 lowered) chromatic notes are
# spelled as, by the key's mode.
_MAJOR_ALTERATIONS = frozenset({(1, 1), (3, -1), (4, 1), (5, 1), (7, -1)})
_MINOR_ALTERATIONS = frozenset({(2, -1), (3, 1), (4, 1), (6, 1), (7, 1)})
_MINOR_LIKE_MODES = frozenset({"minor", "aeolian", "dorian", "phrygian", "locrian"})

# Window lengths (ql) tried for a tuplet group, shortest first.
_TUPLET_WINDOWS = tuple(
    Fraction(x) for x in ("1/8", "1/4", "1/2", "1", "3/2", "2", "3", "4", "6", "8")
)
# Windows whose tuplet would need more notes than this are passed over.
_MAX_TUPLET = 15

# The longest single note value written (a dotted breve).
_LONGEST_VALUE = Fraction(12)


# ----------------------------------------------------------------------------------
# Keys and spelling


@dataclass(frozen=True)
class KeyInfo:
    """A key parsed from a name like "Bb major" or "A dorian"."""

    tonic: str  # the tonic's letter, "A"-"G"
    tonic_alter: int  # its accidental in semitones (-1 = flat)
    mode: str  # "major", "minor", "dorian" ... (lower case)
    fifths: int  # sharps (> 0) or flats (< 0) of the key signature

    @property
    def tonic_name(self) -> str:
        """The tonic as "Bb", "F#"."""
        return self.tonic + ("#" * self.tonic_alter or "b" * -self.tonic_alter)


def parse_key(name: str | None) -> KeyInfo | None:
    """A key name ("G major", "E minor", "Bb major", "B- major", "A dorian") parsed.

    The mode defaults to major. None for None, an unknown mode or a malformed name.
    """
    if not name:
        return None
    tonic, _, mode = name.strip().partition(" ")
    mode = mode.strip().lower() or "major"
    if not tonic or tonic[0].upper() not in _MAJOR_FIFTHS or mode not in _MODE_OFFSETS:
        return None
    letter = tonic[0].upper()
    alter = 0
    for accidental in tonic[1:]:
        if accidental in "#♯":
            alter += 1
        elif accidental in "b-♭":
            alter -= 1
        else:
            return None
    fifths = _MAJOR_FIFTHS[letter] + _MODE_OFFSETS[mode] + 7 * alter
    if not -7 <= fifths <= 7:
        return None
    return KeyInfo(letter, alter, mode, fifths)


def signature_alters(fifths: int) -> dict[str, int]:
    """Each letter's accidental under a key signature of ``fifths`` (flats < 0)."""
    alters = dict.fromkeys(_LETTERS, 0)
    if fifths > 0:
        for letter in _SHARPS_ORDER[:fifths]:
            alters[letter] = 1
    else:
        for letter in _SHARPS_ORDER[::-1][:-fifths]:
            alters[letter] = -1
    return alters


@dataclass(frozen=True)
class Spelling:
    """A written pitch: letter, accidental in semitones, octave (C4 = middle C)."""

    letter: str
    alter: int
    octave: int


class Speller:
    """Spells MIDI pitches in a key (C major when the key is None)."""

    def __init__(self, key: KeyInfo | None) -> None:
        key = key or KeyInfo("C", 0, "major", 0)
        self.key = key
        self.signature = signature_alters(key.fifths)
        by_pitch_class: dict[int, tuple[str, int]] = {
            (_NATURAL_PITCH_CLASS[letter] + alter) % 12: (letter, alter)
            for letter, alter in self.signature.items()
        }
        for pitch_class in range(12):
            if pitch_class not in by_pitch_class:
                by_pitch_class[pitch_class] = self._chromatic(pitch_class)
        self._by_pitch_class = by_pitch_class

    def _chromatic(self, pitch_class: int) -> tuple[str, int]:
        """The spelling of a note outside the key signature.

        In order: the altered degree tonal music uses most (in major: raised 1,
        4, 5 and lowered 3, 7, so C#, Eb, F#, G#, Bb in C; in minor: lowered 2 and
        raised 3, 4, 6, 7, so the leading note of G# minor is F##); no double
        sharp or flat; the fewest accidentals; sharps in sharp keys and flats in
        flat keys.
        """
        tonic_index = _LETTERS.index(self.key.tonic)
        preferred = (
            _MINOR_ALTERATIONS
            if self.key.mode in _MINOR_LIKE_MODES
            else _MAJOR_ALTERATIONS
        )
        candidates = []
        for index, letter in enumerate(_LETTERS):
            alter = (pitch_class - _NATURAL_PITCH_CLASS[letter] + 6) % 12 - 6
            if abs(alter) > 2:
                continue
            from_signature = alter - self.signature[letter]
            direction = (from_signature > 0) - (from_signature < 0)
            degree = (index - tonic_index) % 7 + 1
            against_key = direction * self.key.fifths < 0
            rank = (
                (degree, direction) not in preferred,
                abs(alter) > 1,
                abs(alter),
                abs(from_signature),
                against_key,
            )
            candidates.append((rank, letter, alter))
        _, letter, alter = min(candidates)
        return letter, alter

    def spell(self, midi: int) -> Spelling:
        letter, alter = self._by_pitch_class[midi % 12]
        octave = (midi - _NATURAL_PITCH_CLASS[letter] - alter) // 12 - 1
        return Spelling(letter, alter, octave)


# ----------------------------------------------------------------------------------
# Meters


def meter_numbers(bar: Bar) -> tuple[int, int]:
    """A bar's meter as (numerator, denominator), like (6, 8).

    A meter text that is not plain ``N/D`` (or does not match the bar's length) is
    replaced by the bar's length in quarters, eighths or finer.
    """
    numerator_text, _, denominator_text = bar.meter.partition("/")
    if numerator_text.isdigit() and denominator_text.isdigit():
        numerator, denominator = int(numerator_text), int(denominator_text)
        if (
            numerator > 0
            and denominator > 0
            and Fraction(4 * numerator, denominator) == bar.length
        ):
            return numerator, denominator
    for denominator in (4, 8, 16, 32, 64):
        beats = bar.length * denominator / 4
        if beats.denominator == 1:
            return int(beats), denominator
    raise ValueError(f"bar {bar.index} of {bar.length} ql has no time signature")


def beat_length(numerator: int, denominator: int) -> Fraction:
    """The beat (ql) that notes are grouped by: a dotted quarter in 6/8, 9/8, 12/8."""
    if denominator == 8 and numerator % 3 == 0:
        return Fraction(3, 2)
    return Fraction(4, denominator) if denominator <= 4 else Fraction(1)


# ----------------------------------------------------------------------------------
# Measures


@dataclass(frozen=True)
class WrittenNote:
    """One written note or rest.

    ``start`` and ``duration`` are the sounding time from the start of the bar (a
    pickup's notes start late in their bar). ``value`` is the written note value in
    ql before any tuplet (1 a quarter, 3/2 a dotted quarter). ``pitch`` is a MIDI
    number, None for a rest.
    """

    start: Fraction
    duration: Fraction
    value: Fraction
    pitch: int | None
    tie_back: bool = False  # continues a tie from the previous note
    tie_forward: bool = False  # is tied to the next note


@dataclass(frozen=True)
class Group:
    """Notes written together: plain ones, or one tuplet of ``actual`` notes in the
    time of ``normal`` notes of value ``unit`` (ql)."""

    notes: tuple[WrittenNote, ...]
    actual: int = 1
    normal: int = 1
    unit: Fraction | None = None

    @property
    def is_tuplet(self) -> bool:
        return self.actual != self.normal


@dataclass(frozen=True)
class WrittenMeasure:
    """One bar as written. ``offset`` is where its contents start in the bar (only
    an incomplete pickup measure has one) and ``length`` how long they last."""

    bar: Bar
    offset: Fraction
    length: Fraction
    groups: tuple[Group, ...]

    @property
    def is_pickup(self) -> bool:
        return self.offset > 0

    @property
    def notes(self) -> list[WrittenNote]:
        return [n for group in self.groups for n in group.notes]


@dataclass(frozen=True)
class _Span:
    """A stretch of sound or silence inside one bar (times from the bar start)."""

    start: Fraction
    end: Fraction
    pitch: int | None
    tie_back: bool
    tie_forward: bool


@dataclass(frozen=True)
class _Window:
    start: Fraction
    end: Fraction
    actual: int
    normal: int

    @property
    def unit(self) -> Fraction:
        return (self.end - self.start) / self.normal


def covering_bars(melody: Melody) -> list[Bar]:
    """The melody's bars, with bars of the last meter added until every note has
    ended (4/4 bars for a melody without bars)."""
    bars = list(melody.bars) or [Bar(1, Fraction(0), Fraction(4), "4/4")]
    end = max((n.end for n in melody.notes), default=Fraction(0))
    while bars[-1].end < end:
        last = bars[-1]
        bars.append(Bar(last.index + 1, last.end, last.length, last.meter))
    return bars


def lay_out(melody: Melody) -> list[WrittenMeasure]:
    """One written measure per bar of ``melody`` (see the module docstring)."""
    bars = covering_bars(melody)
    notes = melody.notes
    measures = []
    first_note = 0
    for position, bar in enumerate(bars):
        start = bar.start
        if position == 0 and bar.pickup and 0 < melody.pickup_length < bar.length:
            start = bar.end - melody.pickup_length
            # A note earlier in the pickup bar than the pickup itself is kept.
            if notes and notes[0].onset < start:
                start = max(bar.start, notes[0].onset)
        while first_note < len(notes) and notes[first_note].end <= start:
            first_note += 1
        spans = _bar_spans(notes, first_note, start, bar.end, bar.start)
        groups = _groups(spans, start - bar.start, bar.length)
        measures.append(
            WrittenMeasure(bar, start - bar.start, bar.end - start, tuple(groups))
        )
    return measures


def _bar_spans(
    notes: list, first: int, start: Fraction, end: Fraction, origin: Fraction
) -> list[_Span]:
    """Notes and rests filling [start, end), cut at its edges, from ``origin``."""
    spans = []
    now = start
    index = first
    while index < len(notes) and notes[index].onset < end:
        current = notes[index]
        onset = max(current.onset, start)
        if onset > now:
            spans.append(_Span(now - origin, onset - origin, None, False, False))
        stop = min(current.end, end)
        spans.append(
            _Span(
                onset - origin,
                stop - origin,
                current.pitch,
                current.onset < start,
                current.end > end,
            )
        )
        now = stop
        index += 1
    if now < end:
        spans.append(_Span(now - origin, end - origin, None, False, False))
    return spans


def _is_binary(value: Fraction) -> bool:
    denominator = value.denominator
    return denominator & (denominator - 1) == 0


def _odd_part(number: int) -> int:
    while number % 2 == 0:
        number //= 2
    return number


def _window(start: Fraction, end: Fraction, bounds: list[Fraction]) -> _Window:
    """The tuplet that writes every boundary in (start, end) on its grid."""
    length = end - start
    grid = 1
    for bound in bounds:
        if start < bound < end:
            grid = math.lcm(grid, ((bound - start) / length).denominator)
    actual = _odd_part(grid)
    # The normal count makes each normal note a plain (undotted) value: the odd
    # part of the window's length times a power of two, the largest below actual.
    normal = _odd_part(length.numerator)
    while normal * 2 < actual:
        normal *= 2
    return _Window(start, end, actual, normal)


def _fraction_gcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(
        math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
        a.denominator * b.denominator,
    )


def _tuplet_windows(spans: list[_Span], low: Fraction, high: Fraction) -> list[_Window]:
    """Tuplet windows covering every boundary that is off the binary grid.

    For each such boundary the window tried first spans one tuplet's worth of the
    note lengths around it (a quarter for eighth triplets or sixteenth
    quintuplets, a half for quarter triplets), then twice that and so on, then
    the lengths in ``_TUPLET_WINDOWS``, shortest first. The first window that
    needs no note split at its edges (rests may be) is taken; else the first that
    does; else the stretch between the binary boundaries around it.
    """
    bounds = sorted({s.start for s in spans} | {s.end for s in spans})
    pitched = [s for s in spans if s.pitch is not None]

    def cuts_a_note(at: Fraction) -> bool:
        return any(s.start < at < s.end for s in pitched)

    windows: list[_Window] = []
    covered: Fraction | None = None
    for position, bound in enumerate(bounds):
        if _is_binary(bound) or (covered is not None and bound < covered):
            continue
        if bound == high:
            continue
        # The spacing of the boundaries around this one sets the tuplet's size.
        spacing = bounds[position + 1] - bound
        if position > 0:
            spacing = _fraction_gcd(spacing, bound - bounds[position - 1])
        natural = spacing * _odd_part(spacing.denominator)
        lengths = [natural * 2**i for i in range(4)] + list(_TUPLET_WINDOWS)
        last_binary = max(
            (b for b in bounds if b < bound and _is_binary(b)), default=low
        )
        chosen = with_cut = None
        for length in dict.fromkeys(lengths):
            if chosen is not None:
                break
            for start in dict.fromkeys((bound // length * length, last_binary)):
                end = start + length
                if not start < bound < end or end > high:
                    continue
                if covered is not None and start < covered:
                    continue
                window = _window(start, end, bounds)
                if window.actual == 1 or window.actual > _MAX_TUPLET:
                    continue
                if not (cuts_a_note(start) or cuts_a_note(end)):
                    chosen = window
                    break
                if with_cut is None:
                    with_cut = window
        if chosen is None:
            chosen = with_cut
        if chosen is None:
            # Any stretch between two binary boundaries is some tuplet.
            start = last_binary if covered is None else max(last_binary, covered)
            end = min((b for b in bounds if b > bound and _is_binary(b)), default=high)
            chosen = _window(start, end, bounds)
        windows.append(chosen)
        covered = chosen.end
    return windows


def _groups(spans: list[_Span], low: Fraction, high: Fraction) -> list[Group]:
    """Spans as groups of written notes, with tuplets where the grid needs them."""
    windows = _tuplet_windows(spans, low, high)
    edges = sorted({w.start for w in windows} | {w.end for w in windows})
    pieces: list[_Span] = []
    for span in spans:
        cuts = [span.start, *(e for e in edges if span.start < e < span.end), span.end]
        for index, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
            pieces.append(
                _Span(
                    a,
                    b,
                    span.pitch,
                    span.tie_back if index == 0 else span.pitch is not None,
                    span.tie_forward
                    if index == len(cuts) - 2
                    else span.pitch is not None,
                )
            )

    groups: list[Group] = []
    current: list[WrittenNote] = []
    current_window: _Window | None = None

    def flush() -> None:
        if not current:
            return
        if current_window is None:
            groups.append(Group(tuple(current)))
        else:
            groups.append(
                Group(
                    tuple(current),
                    current_window.actual,
                    current_window.normal,
                    current_window.unit,
                )
            )
        current.clear()

    for piece in pieces:
        window = next(
            (w for w in windows if w.start <= piece.start and piece.end <= w.end), None
        )
        if window is not current_window:
            flush()
            current_window = window
        actual, normal = (window.actual, window.normal) if window else (1, 1)
        scale = Fraction(normal, actual)
        values = note_values((piece.end - piece.start) / scale)
        at = piece.start
        for index, value in enumerate(values):
            rest = piece.pitch is None
            current.append(
                WrittenNote(
                    start=at,
                    duration=value * scale,
                    value=value,
                    pitch=piece.pitch,
                    tie_back=not rest and (piece.tie_back if index == 0 else True),
                    tie_forward=not rest
                    and (piece.tie_forward if index == len(values) - 1 else True),
                )
            )
            at += value * scale
    flush()
    return groups


def note_values(length: Fraction) -> list[Fraction]:
    """Plain or dotted note values (ql) that add up to ``length``, longest first.

    ``length`` must be a whole number of some binary note value (a 1/2**k ql).
    """
    if length <= 0 or not _is_binary(length):
        raise ValueError(f"{length} ql is not a sum of plain note values")
    values = []
    remaining = length
    while remaining > 0:
        # The largest power of two not above the remaining length (at most 8).
        exponent = remaining.numerator.bit_length() - remaining.denominator.bit_length()
        plain = Fraction(2) ** min(3, exponent)
        if plain > remaining:
            plain /= 2
        dotted = plain * Fraction(3, 2)
        value = dotted if dotted <= remaining and dotted <= _LONGEST_VALUE else plain
        values.append(value)
        remaining -= value
    return values
