"""Read melodies from ABC, MIDI, MusicXML and Humdrum kern files.

Every reader produces :class:`~melodyvae.music.melody.Melody` objects with the same
rules, whatever the format:

- grace notes take no time and are dropped; chord symbols make no notes; a chord
  gives its top note; unpitched (percussion) notes are never melody;
- tied notes become one :class:`Note`; the melody is monophonic (a note is cut short
  by the next onset, and of two onsets at one time the higher pitch is kept);
- bars come from the notated meter (or the MIDI time-signature map), never from
  seconds. A pickup is padded at its start so that bar 0 has its full length; a
  short last bar is padded at its end. Bars cover the melody from time 0;
- repeats, first and second endings, D.C. and D.S. are read in played order by
  default (music21's repeat Expander), or as written with ``expand_repeats=False``;
- pitches are sounding pitches (a transposing instrument's part is transposed);
  a note beyond MIDI's 0-127 is moved by octaves into it, with a warning.

ABC goes through music21, after repairs of what its ABC import gets wrong (inline
``[K:]``/``[M:]``/``[L:]`` fields, body ``M:`` lines, notes lost after ``H`` or a
quoted annotation, ``x`` rests, multi-voice tunes; see :func:`read_abc_text`).
MusicXML and kern go through music21; MIDI goes through mido, not music21, whose
MIDI import mishandles channels. MIDI note times within
:data:`MIDI_SNAP_TOLERANCE_QL` of the token grid are snapped to it (humanised
playing), with a warning; SMPTE-timed files are placed on beats by their tempo map.

Whatever a file holds, reading it either gives melodies or raises a ReadError, and
never takes unbounded time or memory: only regular files of at most
:data:`MAX_FILE_BYTES` are read (a named pipe or device is refused before it is
opened), a melody has at most :data:`MAX_BARS` bars, and a meter at most
:data:`MAX_METER_BEATS` beats (larger ones are refused before music21 builds them).
Tempos of zero, negative or beyond what MIDI stores are ignored, with a warning.

Example::

    from melodyvae.music.reading import read_melodies
    for melody in read_melodies("tunes.abc"):
        print(melody.title, len(melody.bars))
"""

from __future__ import annotations

import bisect
import dataclasses
import html
import io
import logging
import math
import os
import re
import stat
import struct
import warnings
import zipfile
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mido
from mido.midifiles.meta import KeySignatureError
from music21 import (
    abcFormat,
    bar,
    chord,
    converter,
    harmony,
    key,
    meter,
    note,
    repeat,
    spanner,
    stream,
    tempo,
)
from music21 import pitch as music21_pitch
from music21.abcFormat import translate

from melodyvae.errors import MelodyVAEWarning, ReadError
from melodyvae.music.melody import Bar, Melody, Note

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".abc", ".mid", ".midi", ".musicxml", ".xml", ".mxl", ".krn")

# The longest melody the readers accept, in bars: over an hour of 4/4 at 120 qpm.
# Real melodies are far shorter (a reel has 16 to 32 bars, a long symphonic
# movement about a thousand), but one absurd duration, such as the ABC note
# "C999999" or a MIDI delta time of 2**27 ticks, would otherwise become a hundred
# thousand empty bars that cost memory and time in every later step. music21's
# ABC, MusicXML and kern imports also slow down with the square of the number of
# measures (about 5 to 15 s for 2,000 on one core), so a file with more measures
# than this is refused before music21 parses it. Longer input is a ReadError.
MAX_BARS = 2_000

# The most beats a written meter may have (the sum of its numerators, "2+2+3/8" has
# 7). music21 builds a beat hierarchy whose cost grows steeply with the numerator:
# 1000/4 takes tens of seconds, 999999/1 does not finish. Real meters have at most
# a few dozen beats. An ABC, MusicXML or kern file with a larger meter is refused
# before music21 sees it; a MIDI time signature beyond it is ignored.
MAX_METER_BEATS = 64

# The largest file the readers load, and the most a compressed MusicXML (.mxl)
# file may unpack to. The largest real scores are a few MB; music21 needs many
# times a file's size in memory, so a much larger input would exhaust memory
# before it gave a melody.
MAX_FILE_BYTES = 64 * 2**20

# MIDI channel 10 (9 counting from 0) is reserved for drums by General MIDI.
_DRUM_CHANNEL = 9

# Onsets read from MIDI are kept exact when their denominator is at most this
# (triplets, quintuplets, 64ths ...) and otherwise rounded to this grid in ql, so
# that humanised timing does not produce fractions like 241/480.
_MIDI_GRID_PER_QL = 96

# Humanised or loosely played MIDI: a note time within this distance (in ql) of a
# quarter or third of a beat, counted from its bar's start, is moved onto it, and
# the melody's warnings say how many times moved and by how much. A 24th of a
# quarter note is half the gap between the closest points of that grid (1/4 and
# 1/3), so no time can snap to the wrong one; at 120 qpm it is about 21 ms. Times
# further off are kept (exactly, or on the 1/96 grid above) and the tokeniser
# leaves their bar out as off the grid: light swing (a 60:40 split) is such a
# case, while swing written as triplets (2:1) lies on the grid.
MIDI_SNAP_TOLERANCE_QL = Fraction(1, 24)

_DEFAULT_METER = "4/4"

# The shortest beat a MIDI time signature may name (a 64th note). The format can
# claim beats down to 1/2**255 of a whole note, which would make bars of next to
# no length; such a time signature is ignored.
_MAX_MIDI_DENOMINATOR = 64

# The text event melodyvae's MIDI writer puts at tick 0, e.g. "melodyvae:pickup=1/2":
# MIDI cannot say whether bar 0 is a pickup, and a guess from the first onset is
# wrong for a pickup of rests or a full first bar that begins with a rest.
_PICKUP_TEXT = re.compile(r"melodyvae:pickup=(\d+(?:/\d+)?)")

_SECTION_BARLINES = frozenset(
    {"double", "final", "heavy-light", "light-heavy", "heavy", "heavy-heavy"}
)


# ----------------------------------------------------------------------------------
# Public API


def read_melodies(
    path: str | Path, *, part: int = 0, voice: int = 0, expand_repeats: bool = True
) -> list[Melody]:
    """Read every melody in a music file.

    The reader is chosen by the file's suffix (case-insensitive), one of
    :data:`SUPPORTED_SUFFIXES`. An ABC file gives one melody per readable tune (tunes
    music21 cannot parse are skipped with a logged warning); the other formats give
    one melody (a MusicXML opus: one per score).

    Args:
        path: the file to read.
        part: which pitched part (MusicXML, kern) or which non-drum track/channel
            (MIDI) is the melody, counting from 0. Percussion parts and drum channels
            are never counted. ABC has no parts: a value other than 0 is an error
            (choose an ABC voice with ``voice``).
        voice: which voice of that part (MusicXML, kern) or which ``V:`` voice of each
            ABC tune, counting from 0. Voices are never mixed. MIDI has no voices: a
            value other than 0 is an error.
        expand_repeats: read repeats, first and second endings, da capo and dal
            segno in the order they are played (``|: A :|`` gives A A, and
            ``|: A |1 B :|2 C |`` gives A B A C), as music21's
            :class:`~music21.repeat.Expander` plays them; bars are numbered in
            that order. False keeps the written order, each written bar once.
            MIDI has no repeats.

    Returns:
        The melodies, in file order; never empty.

    Raises:
        ReadError: the message starts with the file name and says what is wrong: a
            missing or unreadable file, a path that is not a regular file (a
            folder, named pipe or device), a file over :data:`MAX_FILE_BYTES`, an
            unknown suffix (the accepted ones are listed), an empty file, a
            truncated or corrupt MIDI file, a MIDI file of drum notes only or
            with SMPTE timing and no tempo, a file music21 cannot parse, a meter of
            over :data:`MAX_METER_BEATS` beats, a melody of over :data:`MAX_BARS`
            bars ("too long"), no notes, or a ``part``/``voice`` the file does not
            have.
        ValueError: ``part`` or ``voice`` is negative.
    """
    path = Path(path)
    name = path.name or str(path)
    _check_index("part", part)
    _check_index("voice", voice)

    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        accepted = ", ".join(SUPPORTED_SUFFIXES)
        found = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ReadError(
            f"{name}: unsupported file type ({found}); accepted: {accepted}"
        )

    data = _read_bytes(path, name)
    if not data.strip():
        raise ReadError(f"{name}: empty file")

    if suffix == ".abc":
        if part != 0:
            raise ReadError(
                f"{name}: ABC files have no parts (part={part}); "
                "choose an ABC voice with voice= instead"
            )
        text, decode_note = _decode_text(data)
        melodies = read_abc_text(
            text, str(path), voice=voice, expand_repeats=expand_repeats
        )
        if decode_note:
            for melody in melodies:
                melody.warnings.append(decode_note)
        return melodies
    if suffix in (".mid", ".midi"):
        if voice != 0:
            raise ReadError(f"{name}: MIDI files have no voices (voice={voice})")
        return [_read_midi(data, path, name, part)]
    return _read_music21_file(data, path, name, part, voice, expand_repeats)


def read_abc_text(
    text: str, source: str = "<abc>", *, voice: int = 0, expand_repeats: bool = True
) -> list[Melody]:
    """Read every tune of an ABC text.

    The text is split into tunes on lines that begin with ``X:``; a tune ends at
    its first blank line after the ``K:`` line (free text between tunes is ignored).
    Field lines before the first ``X:`` (the file header, e.g. ``L:``, ``M:``) apply
    to every tune that does not set the same field. A text with no ``X:`` line but
    a ``K:`` line is read as a single tune.

    Before music21 parses a tune, this reader repairs what music21's ABC import gets
    wrong: inline ``[K:]``, ``[M:]``, ``[L:]`` and ``[Q:]`` fields become field lines
    (music21 ignores them, which misspells pitches after a key change); a meter
    change starts a new segment parsed with that meter (music21 drops body ``M:``
    lines); quoted chord symbols and annotations, and the ``H`` fermata, are removed
    (music21 drops the note after some of them); ``x`` spacer rests become ``z``
    rests (music21 drops them, shifting later notes); grace notes just after a
    tuplet marker move before it (music21 counts them in the tuplet); tunes with
    a single barline still get measures; additive meters like ``M:2+2+3/8`` are
    written as their sum, ``7/8`` (music21 reads 223/8); and only the lines of the
    chosen ``V:`` voice are kept (music21 concatenates voices). A tune with a
    measure that runs far past its bar (a missing barline in a long passage, or
    a note like ``z9999``) is read without its barlines, cut into bars from the
    start: music21's own split of such a measure takes hours.

    Args:
        text: the ABC text.
        source: where the text came from (a path, or a label); the file name part
            starts error messages and the stem names untitled tunes.
        voice: which ``V:`` voice of each tune, counting from 0 in order of first
            appearance. A tune without that voice is skipped (logged).
        expand_repeats: read repeats and endings in played order (see
            :func:`read_melodies`). A tune with a meter change is parsed in
            stretches of one meter, and each stretch's repeats are expanded on
            their own: a repeat that spans a meter change is not played again.

    Returns:
        One melody per readable tune, in text order. The title comes from the
        first ``T:`` field, else ``"<stem> (X:<number>)"``.

    Raises:
        ReadError: the text is empty or blank, or no tune in it could be read (the
            message gives the first reasons; a tune with a meter of over
            :data:`MAX_METER_BEATS` beats or over :data:`MAX_BARS` bars cannot).
        ValueError: ``voice`` is negative.
    """
    _check_index("voice", voice)
    name = Path(source).name or source
    if not text.strip():
        raise ReadError(f"{name}: empty file")

    # music21 decides how accidentals carry through a bar from an "%abc-2.1" line at
    # the top of the file (not of each tune); mirror that.
    probe = abcFormat.ABCHandler()
    probe.parseHeaderForVersionInformation(text[:100])
    abc_version = probe.abcVersion

    file_header, tunes = _split_abc_tunes(text)
    if not tunes:
        raise ReadError(f"{name}: no ABC tune found (no X: or K: line)")

    melodies: list[Melody] = []
    problems: list[str] = []
    for position, tune_lines in enumerate(tunes, start=1):
        try:
            melody = _read_abc_tune(
                tune_lines,
                file_header,
                abc_version,
                source,
                name,
                voice,
                position,
                expand_repeats,
            )
        except ReadError as exc:
            problems.append(str(exc))
            continue
        melodies.append(melody)

    if melodies:
        # Only when some tune was read: otherwise the error below says it once.
        for problem in problems:
            logger.warning("skipping ABC tune: %s", problem)
    else:
        if len(problems) == 1:
            raise ReadError(problems[0])
        shown = "; ".join(problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ReadError(
            f"{name}: none of its {len(tunes)} tunes could be read: {shown}{more}"
        )
    return melodies


# ----------------------------------------------------------------------------------
# File access


def _check_index(label: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{label} must be 0 or more, got {value}")


def _exception_text(exc: BaseException) -> str:
    """A library exception as one line; many have no message at all."""
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _check_regular_file(mode: int, size: int, name: str) -> None:
    """Refuse folders, pipes, devices and sockets, and files over the size limit.

    Opening a named pipe waits for a writer and reading a device may never end, so
    this runs on the path's status before the file is opened (and again on the
    open file, in case the path was replaced in between).
    """
    if stat.S_ISDIR(mode):
        raise ReadError(f"{name}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise ReadError(
            f"{name}: is {_file_kind(mode)}, not a regular file; "
            "only regular files can be read"
        )
    if size > MAX_FILE_BYTES:
        raise ReadError(
            f"{name}: file too large ({size} bytes; the limit is "
            f"{MAX_FILE_BYTES} bytes)"
        )


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        info = path.stat()
        _check_regular_file(info.st_mode, info.st_size, name)
        # Non-blocking, so that a path swapped for a pipe after the check above
        # cannot block the open; it changes nothing for a regular file.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            _check_regular_file(info.st_mode, info.st_size, name)
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ReadError(f"{name}: file not found ({path})") from None
    except IsADirectoryError:
        raise ReadError(f"{name}: is a folder, not a file") from None
    except OSError as exc:
        raise ReadError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
    except ValueError as exc:
        # A path os functions refuse outright, like one with a NUL character.
        raise ReadError(f"{name}: invalid path ({exc})") from None
    if len(data) > MAX_FILE_BYTES:  # the file grew after its size was checked
        raise ReadError(f"{name}: file too large (the limit is {MAX_FILE_BYTES} bytes)")
    return data


def _decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode text as UTF-8, else Latin-1 (which never fails); say which was used."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("latin-1"), "not UTF-8: decoded as Latin-1"


# ----------------------------------------------------------------------------------
# The format-independent middle: measures as written -> bars and notes


@dataclass(slots=True)
class _RawNote:
    """A note as a parser gives it, before ties are merged and overlaps cut."""

    onset: Fraction
    duration: Fraction
    pitch: int
    tie_back: bool = False  # continues a tie from the previous note
    tie_forward: bool = False  # is tied to the next note

    @property
    def end(self) -> Fraction:
        return self.onset + self.duration


@dataclass(frozen=True, slots=True)
class _Meter:
    text: str  # like "6/8"
    bar_length: Fraction  # in ql


@dataclass(slots=True)
class _SourceMeasure:
    """One measure as the source writes it; onsets are relative to its start."""

    notes: list[_RawNote]
    length: Fraction  # how much time its contents fill, in ql
    meter: _Meter
    starts_section: bool = False  # after a repeat sign or double bar
    ends_section: bool = False  # before a repeat sign, double or final bar


def _meter_from_time_signature(ts: meter.TimeSignature, name: str) -> _Meter:
    """The meter of a music21 time signature; ReadError if its bars have no length.

    A meter like "1/999999" has bars too short to tell from zero in ql.
    """
    bar_length = _to_fraction(ts.barDuration.quarterLength)
    if bar_length <= 0:
        raise ReadError(f"{name}: meter {ts.ratioString} has bars of no length")
    return _Meter(ts.ratioString, bar_length)


def _to_fraction(value: float | Fraction) -> Fraction:
    # music21 keeps a time as a float only when it is exact in binary (else it uses
    # a Fraction), so this is exact; limit_denominator guards against stray floats.
    if isinstance(value, Fraction):
        return value
    return Fraction(value).limit_denominator(1 << 20)


def _ql_text(value: Fraction | int) -> str:
    """A number for a message: "12", "499999.5", or "~1e23" for a huge one."""
    value = Fraction(value)
    if abs(value) >= 10**12:
        return f"~1e{len(str(abs(int(value)))) - 1}"
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10g}"


def _too_long(name: str, what: str) -> ReadError:
    return ReadError(
        f"{name}: too long: {what}, more than the {MAX_BARS} bars a melody may have"
    )


def _layout_measures(
    measures: list[_SourceMeasure], repairs: list[str], name: str
) -> tuple[list[Bar], list[_RawNote], Fraction]:
    """Place written measures into bars of their meter.

    A full measure is one bar. A short first measure is a pickup: its notes go to
    the end of bar 0. Consecutive short measures that add up to exactly one bar
    (a section's last bar and the next section's pickup) share one bar. Any other
    short measure gets a bar of its own, padded with rest at its end (as is a
    short last measure), or at its start when it opens a section (a pickup after a
    double bar or repeat sign). A measure longer than its bar spills over into the
    following bars.

    Returns the bars, the notes at absolute times and the pickup length (0 without
    one). Repairs a musician would want to know about are appended to ``repairs``.
    Raises ReadError (naming ``name``) when the bars would number over
    :data:`MAX_BARS`.
    """
    bars: list[Bar] = []
    placed: list[_RawNote] = []
    pickup_length = Fraction(0)
    start = Fraction(0)

    def place(measure: _SourceMeasure, at: Fraction) -> None:
        for raw in measure.notes:
            raw.onset += at
            placed.append(raw)

    def add_bar(meter_: _Meter, *, pickup: bool = False) -> None:
        if len(bars) >= MAX_BARS:
            raise _too_long(name, f"over {MAX_BARS} measures")
        bars.append(Bar(len(bars), start, meter_.bar_length, meter_.text, pickup))

    i = 0
    n_measures = len(measures)
    while i < n_measures:
        measure = measures[i]
        bar_length = measure.meter.bar_length

        # A full measure (or an empty one: no contents to place) is one bar; an
        # overlong one runs on into as many bars as it needs.
        if measure.length >= bar_length or measure.length == 0:
            n_bars = max(1, math.ceil(measure.length / bar_length))
            if len(bars) + n_bars > MAX_BARS:
                raise _too_long(
                    name,
                    f"measure {i + 1} lasts {_ql_text(measure.length)} quarter notes "
                    f"({_ql_text(n_bars)} bars of {measure.meter.text})"
                    if n_bars > 1
                    else f"over {MAX_BARS} measures",
                )
            if n_bars > 1:
                repairs.append(
                    f"bar {len(bars)}: measure of {measure.length} ql is longer than "
                    f"its {measure.meter.text} bar; it runs over {n_bars} bars"
                )
            place(measure, start)
            for _ in range(n_bars):
                add_bar(measure.meter)
                start += bar_length
            i += 1
            continue

        # A short first measure is the pickup: right-align it in bar 0. (A tune of
        # one short measure has no pickup: that measure is its last bar.)
        if i == 0 and n_measures > 1:
            pickup_length = measure.length
            place(measure, start + bar_length - measure.length)
            add_bar(measure.meter, pickup=True)
            start += bar_length
            i += 1
            continue

        run_end = _short_run_end(measures, i)
        if run_end is not None:
            at = start
            for member in measures[i:run_end]:
                place(member, at)
                at += member.length
            add_bar(measure.meter)
            start += bar_length
            i = run_end
            continue

        is_last = i == n_measures - 1
        if measure.starts_section and not measure.ends_section and not is_last:
            place(measure, start + bar_length - measure.length)
        else:
            place(measure, start)
            if not (measure.ends_section or measure.starts_section or is_last):
                repairs.append(
                    f"bar {len(bars)}: notes fill {measure.length} of "
                    f"{bar_length} ql; padded with rest"
                )
        add_bar(measure.meter)
        start += bar_length
        i += 1
    return bars, placed, pickup_length


def _short_run_end(measures: list[_SourceMeasure], first: int) -> int | None:
    """End index of a run of short measures from ``first`` that fills one bar."""
    bar_length = measures[first].meter.bar_length
    total = Fraction(0)
    index = first
    while index < len(measures):
        member = measures[index]
        if (
            member.meter.bar_length != bar_length
            or member.length >= bar_length
            or member.length == 0
            or total + member.length > bar_length
        ):
            break
        total += member.length
        index += 1
        if total == bar_length:
            return index if index - first >= 2 else None
    return None


def _monophonic_notes(raw_notes: list[_RawNote]) -> list[Note]:
    """Merge ties, keep the top note of simultaneous onsets, cut overlaps.

    Zero-length results are dropped; the result is sorted and never overlaps.
    """
    # A zero-length note (a stray note-on/off pair) sounds nothing; dropped first,
    # so that it cannot hide a real note starting at the same time.
    raw_notes = [raw for raw in raw_notes if raw.duration > 0]
    raw_notes.sort(key=lambda raw: (raw.onset, -raw.pitch))
    merged: list[_RawNote] = []
    for raw in raw_notes:
        if merged:
            previous = merged[-1]
            if raw.onset == previous.onset:
                continue
            tied = previous.tie_forward or raw.tie_back
            if tied and raw.pitch == previous.pitch and raw.onset == previous.end:
                previous.duration += raw.duration
                previous.tie_forward = raw.tie_forward
                continue
        merged.append(raw)

    notes: list[Note] = []
    for index, raw in enumerate(merged):
        end = raw.end
        if index + 1 < len(merged):
            end = min(end, merged[index + 1].onset)
        if end > raw.onset:
            notes.append(Note(raw.onset, end - raw.onset, raw.pitch))
    return notes


def _extend_bars(bars: list[Bar], end: Fraction, name: str) -> list[Bar]:
    """Append bars of the last meter until they reach ``end`` (in ql).

    Raises ReadError (naming ``name``) when that makes over :data:`MAX_BARS` bars.
    """
    last = bars[-1]
    n_bars = len(bars) + max(0, math.ceil((end - last.end) / last.length))
    if n_bars > MAX_BARS:
        raise _too_long(
            name,
            f"the last note ends at {_ql_text(end)} quarter notes "
            f"(bar {_ql_text(n_bars)} in {last.meter})",
        )
    while bars[-1].end < end:
        last = bars[-1]
        bars.append(Bar(len(bars), last.end, last.length, last.meter))
    return bars


def _build_melody(
    *,
    name: str,
    title: str,
    raw_notes: list[_RawNote],
    bars: list[Bar],
    key_name: str | None,
    tempo_qpm: float | None,
    source: str,
    pickup_length: Fraction,
    notes_warnings: list[str],
    program: int | None = None,
) -> Melody:
    _fold_into_midi(raw_notes, notes_warnings)
    notes = _monophonic_notes(raw_notes)
    if not notes:
        raise ReadError(f"{name}: no notes")
    bars = _extend_bars(bars, notes[-1].end, name)
    return Melody(
        title=title,
        notes=notes,
        bars=bars,
        key=key_name,
        tempo_qpm=tempo_qpm,
        source=source,
        pickup_length=pickup_length,
        warnings=notes_warnings,
        program=program,
    )


def _assume_four_four(name: str, melody_warnings: list[str]) -> _Meter:
    message = f"no time signature: assumed {_DEFAULT_METER}"
    melody_warnings.append(message)
    warnings.warn(f"{name}: {message}", MelodyVAEWarning, stacklevel=4)
    return _Meter(_DEFAULT_METER, Fraction(4))


# ----------------------------------------------------------------------------------
# music21 streams -> measures


class _UnbeamedPart(stream.Part):
    """A Part that skips beaming, which music21's ABC import does for display only.

    Beaming costs about three quarters of music21's ABC parse time and changes
    nothing this reader uses. ``abcToStreamPart`` accepts the Part to fill.
    """

    def makeBeams(self, *args: object, **kwargs: object) -> None:
        return None


def _notes_in(container: stream.Stream, base: Fraction) -> list[_RawNote]:
    """Melody notes directly in a music21 stream; onsets are ``base`` + offset.

    One pass over ``Stream.elements`` with type tests: music21's filtered
    iterators cost more than the parse itself on a corpus.
    """
    found: list[_RawNote] = []
    for element in container.elements:
        # ChordSymbol is a Chord subclass, so test it first: it makes no notes.
        if isinstance(element, harmony.Harmony):
            continue
        if isinstance(element, note.Note):
            top = element
            tie = element.tie
        elif isinstance(element, chord.Chord):
            chord_notes = list(element.notes)
            if not chord_notes:
                continue
            top = max(chord_notes, key=lambda member: member.pitch.ps)
            tie = top.tie if top.tie is not None else element.tie
        else:
            # rests, unpitched percussion, clefs, barlines ...
            continue
        if element.duration.isGrace:
            continue
        duration = _to_fraction(element.quarterLength)
        if duration <= 0:
            continue
        tie_type = tie.type if tie is not None else None
        found.append(
            _RawNote(
                onset=base + _to_fraction(container.elementOffset(element)),
                duration=duration,
                pitch=_midi_number(top.pitch),
                tie_back=tie_type in ("stop", "continue"),
                tie_forward=tie_type in ("start", "continue"),
            )
        )
    return found


def _midi_number(m21_pitch: music21_pitch.Pitch) -> int:
    """A pitch's MIDI number, which may lie outside 0-127 (see _fold_into_midi)."""
    # music21's own .midi folds a pitch beyond 0-127 into it by octaves, silently.
    if 0 <= m21_pitch.ps <= 127:
        return int(m21_pitch.midi)
    return round(m21_pitch.ps)


def _fold_into_midi(raw_notes: list[_RawNote], repairs: list[str]) -> None:
    """Move notes beyond MIDI's 0-127 by whole octaves into it, and say so.

    Such notes come from notation written (or transposed to sounding pitch) above
    G9 or below C-1; no MIDI file or model can hold them.
    """
    outside = [raw for raw in raw_notes if not 0 <= raw.pitch <= 127]
    if not outside:
        return
    lowest = min(raw.pitch for raw in outside)
    highest = max(raw.pitch for raw in outside)
    for raw in outside:
        while raw.pitch > 127:
            raw.pitch -= 12
        while raw.pitch < 0:
            raw.pitch += 12
    shown = f"MIDI {lowest}" if lowest == highest else f"MIDI {lowest} to {highest}"
    repairs.append(
        f"{len(outside)} note(s) outside MIDI's 0-127 ({shown}) moved by octaves "
        "into it"
    )


def _ordered_voices(measure: stream.Measure) -> list[stream.Voice]:
    voices = [el for el in measure.elements if isinstance(el, stream.Voice)]
    # MusicXML voice ids are "1", "2"...; keep their numeric order when they have one.
    if all(isinstance(v.id, str) and v.id.isdigit() for v in voices):
        voices.sort(key=lambda v: int(v.id))
    return voices


def _measure_notes(measure: stream.Measure, voice: int) -> list[_RawNote]:
    voices = _ordered_voices(measure)
    if voices:
        if voice >= len(voices):
            return []
        chosen = voices[voice]
        return _notes_in(chosen, _to_fraction(measure.elementOffset(chosen)))
    # A measure without Voice objects holds a single voice: the first.
    if voice > 0:
        return []
    return _notes_in(measure, Fraction(0))


def _count_voices(measures: list[stream.Measure]) -> int:
    return max((len(_ordered_voices(m)) for m in measures), default=0) or 1


def _is_section_barline(barline: bar.Barline | None) -> bool:
    return barline is not None and (
        isinstance(barline, bar.Repeat) or barline.type in _SECTION_BARLINES
    )


def _part_measures(
    part: stream.Stream,
    *,
    voice: int,
    initial: _Meter | None,
    follow_meter_changes: bool,
    name: str,
) -> tuple[list[_SourceMeasure], _Meter | None]:
    """The measures of a music21 part, with the meter in force at each.

    ``initial`` is the meter in force before the part; with ``follow_meter_changes``
    false, only the first time signature is used (for ABC, where further time
    signatures in music21's output are its own repairs of overlong bars). A part
    without Measure objects is cut into measures of its meter. Returns the measures
    and the meter in force at the end (None when there is none at all). ``name``
    starts the message of the ReadError for a part too long to read.
    """
    written = list(part.getElementsByClass(stream.Measure))
    if not written:
        first_ts = part.getElementsByClass(meter.TimeSignature).first()
        current = _meter_from_time_signature(first_ts, name) if first_ts else initial
        if current is None:
            return [], None
        notes = _notes_in(part, Fraction(0))
        content_end = _to_fraction(part.highestTime)
        return _cut_into_measures(notes, content_end, current, name), current

    current = initial
    measures: list[_SourceMeasure] = []
    for index, m21_measure in enumerate(written):
        if follow_meter_changes or current is None:
            ts = m21_measure.timeSignature
            if ts is not None:
                current = _meter_from_time_signature(ts, name)
        if current is None:
            return [], None
        previous_right = written[index - 1].rightBarline if index > 0 else None
        following_left = (
            written[index + 1].leftBarline if index + 1 < len(written) else None
        )
        measures.append(
            _SourceMeasure(
                notes=_measure_notes(m21_measure, voice),
                length=_to_fraction(m21_measure.duration.quarterLength),
                meter=current,
                starts_section=_is_section_barline(m21_measure.leftBarline)
                or _is_section_barline(previous_right),
                ends_section=_is_section_barline(m21_measure.rightBarline)
                or _is_section_barline(following_left),
            )
        )
    return measures, current


def _cut_into_measures(
    notes: list[_RawNote], content_end: Fraction, current: _Meter, name: str
) -> list[_SourceMeasure]:
    """Cut barless music into full measures from time 0; the last may be short."""
    bar_length = current.bar_length
    n_measures = max(1, math.ceil(content_end / bar_length))
    if n_measures > MAX_BARS:
        raise _too_long(
            name,
            f"the music lasts {_ql_text(content_end)} quarter notes "
            f"({_ql_text(n_measures)} bars of {current.text})",
        )
    buckets: list[list[_RawNote]] = [[] for _ in range(n_measures)]
    for raw in notes:
        index = min(int(raw.onset // bar_length), n_measures - 1)
        raw.onset -= index * bar_length
        buckets[index].append(raw)
    measures = []
    for index, bucket in enumerate(buckets):
        length = min(bar_length, content_end - index * bar_length)
        measures.append(_SourceMeasure(bucket, length, current))
    return measures


def _key_name(signature: key.KeySignature | None) -> str | None:
    """A key as "G major", "E minor", "A dorian"; flats written "Bb"."""
    if signature is None:
        return None
    as_key = signature if isinstance(signature, key.Key) else signature.asKey("major")
    return f"{as_key.tonic.name.replace('-', 'b')} {as_key.mode}"


def _first_key(part: stream.Stream) -> str | None:
    """The key in force at the first note: of several signatures at the start
    (an ABC header ``K:`` then a body ``K:`` before any note), the last."""
    signatures = list(part.recurse().getElementsByClass(key.KeySignature))
    if not signatures:
        return None
    start = signatures[0].getOffsetInHierarchy(part)
    opening = [s for s in signatures if s.getOffsetInHierarchy(part) == start]
    return _key_name(opening[-1])


def _storable_tempo(qpm: float) -> bool:
    """Whether a tempo is positive and fits a MIDI set_tempo (1 to 2**24-1 us)."""
    return math.isfinite(qpm) and qpm > 0 and 1 <= mido.bpm2tempo(qpm) < 2**24


def _first_tempo(container: stream.Stream, repairs: list[str]) -> float | None:
    """The first usable tempo in quarter notes per minute, or None.

    A mark whose tempo is zero, negative, or beyond what a MIDI file can store
    (about 3.6 to 60 million qpm) is ignored, and noted in ``repairs``.
    """
    for mark in container.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            qpm = mark.getQuarterBPM()
        except ArithmeticError:
            # A zero tempo or referent ("Q:1/4=0", "Q:0/4=100") divides by zero.
            qpm = math.nan
        if qpm is None:
            continue
        if _storable_tempo(float(qpm)):
            return float(qpm)
        number = mark.number
        shown = f"{number:g}" if isinstance(number, (int, float)) else mark.text
        repairs.append(f"tempo {shown} ignored: not a usable tempo")
    return None


# ----------------------------------------------------------------------------------
# Repeats


def _has_repeats(part: stream.Stream, measures: list[stream.Measure]) -> bool:
    """Whether a part has repeat barlines, endings, or D.C./D.S. marks."""
    if any(
        isinstance(m.leftBarline, bar.Repeat) or isinstance(m.rightBarline, bar.Repeat)
        for m in measures
    ):
        return True
    if part.spannerBundle.getByClass(spanner.RepeatBracket):
        return True
    return any(True for _ in part.recurse().getElementsByClass(repeat.RepeatMark))


def _mark_implied_repeat_starts(part: stream.Stream, measures: list[stream.Measure]):
    """Add the start repeat that ``A :| B :|`` implies after the first ``:|``.

    Without a ``|:``, a second end repeat goes back to the previous end repeat
    (ABC 2.1, 4.8; the same in common practice); music21 alone goes back to the
    start and plays B once. No repeat starts in a measure under an ending bracket.
    """
    in_bracket = {
        id(measure)
        for bracket in part.spannerBundle.getByClass(spanner.RepeatBracket)
        for measure in bracket.getSpannedElements()
    }
    last_end: int | None = None
    for index, measure in enumerate(measures):
        left, right = measure.leftBarline, measure.rightBarline
        if isinstance(left, bar.Repeat) and left.direction == "start":
            last_end = None
        if isinstance(right, bar.Repeat) and right.direction == "end":
            if last_end is not None and last_end + 1 < len(measures):
                following = measures[last_end + 1]
                if id(following) not in in_bracket:
                    following.leftBarline = bar.Repeat(direction="start")
            last_end = index
        if isinstance(right, bar.Repeat) and right.direction == "start":
            last_end = None


def _played_order(part: stream.Stream, repairs: list[str]) -> stream.Stream:
    """The part with its repeats written out in played order (music21's Expander).

    A part without repeats is returned as it is. Repeats music21 cannot expand
    (an ending without its repeat, a D.S. without a segno ...) are read as
    written, noted in ``repairs``.
    """
    measures = list(part.getElementsByClass(stream.Measure))
    if not measures or not _has_repeats(part, measures):
        return part
    _mark_implied_repeat_starts(part, measures)
    try:
        return part.expandRepeats()
    except Exception as exc:
        # music21 raises ExpanderException, and IndexError or AttributeError on
        # some malformed repeat structures; all leave the written order usable.
        repairs.append(
            f"repeats not expanded ({_exception_text(exc)}): read as written"
        )
        return part


# ----------------------------------------------------------------------------------
# Meters music21 cannot build in reasonable time

# A number in a written meter, with the slash before it when it is a denominator.
_METER_NUMBER = re.compile(r"(/?)\s*(\d+)")


def _meter_beats(text: str) -> int:
    """The beats of a written meter: its numbers that follow no slash, summed.

    "6/8" has 6, "2+2+3/8" has 7, "3/8+2/4" has 5; "C" and "none" have 0. A
    number too long to convert counts as more than any limit.
    """
    return sum(
        int(digits) if len(digits) <= 9 else 10**9
        for slash, digits in _METER_NUMBER.findall(text)
        if not slash
    )


def _check_meter(label: str, shown: str, beats: int) -> None:
    if beats > MAX_METER_BEATS:
        raise ReadError(
            f"{label}: meter {shown} has {beats} beats, more than the "
            f"{MAX_METER_BEATS} a bar may have"
        )


# <beats> in MusicXML; its text may use character references such as "&#57;".
_MUSICXML_BEATS = re.compile(rb"<beats(?:\s[^>]*)?>([^<]{0,200})</beats\s*>")
# A kern meter token such as "*M6/8" (not "*MM" for tempo, nor "*met").
_KERN_METER = re.compile(rb"(?:^|\t)\*M(?!M)([^\t\r\n]{0,200})", re.MULTILINE)


# A MusicXML measure, and a part (not <part-list>, <part-name> ...).
_MUSICXML_MEASURE = re.compile(rb"<measure[\s/>]")
_MUSICXML_PART = re.compile(rb"<part[\s/>]")
# A kern barline record: a line that starts with "=".
_KERN_BARLINE = re.compile(rb"^=", re.MULTILINE)


def _check_musicxml(data: bytes, name: str) -> None:
    """Refuse what music21 would take far too long over: huge meters, many measures.

    A partwise file holds each part's measures in turn, so its measures per part
    are its measure elements over its parts (a timewise file holds each measure
    once).
    """
    for match in _MUSICXML_BEATS.finditer(data):
        text = html.unescape(match.group(1).decode("latin-1")).strip()
        _check_meter(name, f"with <beats>{text}</beats>", _meter_beats(text))
    n_measures = len(_MUSICXML_MEASURE.findall(data))
    if b"<score-timewise" not in data:
        n_measures //= max(1, len(_MUSICXML_PART.findall(data)))
    if n_measures > MAX_BARS:
        raise _too_long(name, f"its parts have {n_measures} measures")


def _check_kern(data: bytes, name: str) -> None:
    """Refuse what music21 would take far too long over: huge meters, many measures."""
    n_barlines = len(_KERN_BARLINE.findall(data))
    if n_barlines > MAX_BARS:
        raise _too_long(name, f"it has {n_barlines} barlines")
    for match in _KERN_METER.finditer(data):
        text = match.group(1).decode("latin-1").strip()
        beats = _meter_beats(text)
        # music21 reads a denominator of 0, 00 or 000 as a breve, longa or maxima,
        # doubling the numerator once for each zero.
        breve = re.match(r"\d+/(0+)(?!\d)", text)
        if breve:
            beats <<= min(len(breve.group(1)), 8)
        _check_meter(name, f"*M{text}", beats)


def _unpacked_mxl(data: bytes, name: str) -> bytes:
    """The files inside a compressed MusicXML file, joined, to check before parsing.

    Raises ReadError when the file is not a zip archive, cannot be unpacked, or
    unpacks to more than :data:`MAX_FILE_BYTES`.
    """
    unpacked = bytearray()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                with archive.open(info) as member:
                    # Read no more than the limit allows, whatever the archive's
                    # directory claims the member's size to be.
                    unpacked += member.read(MAX_FILE_BYTES + 1 - len(unpacked))
                if len(unpacked) > MAX_FILE_BYTES:
                    raise ReadError(
                        f"{name}: unpacks to more than {MAX_FILE_BYTES} bytes"
                    )
                unpacked += b"\n"
    except ReadError:
        raise
    except Exception as exc:
        # zipfile raises BadZipFile, zlib.error, EOFError, NotImplementedError (an
        # unknown compression), RuntimeError (encryption) ... on a damaged archive.
        raise ReadError(
            f"{name}: not a readable compressed MusicXML file ({_exception_text(exc)})"
        ) from exc
    return bytes(unpacked)


# ----------------------------------------------------------------------------------
# ABC


_FIELD_LINE = re.compile(r"^[A-Za-z]:")
_VOICE_LINE = re.compile(r"^V:\s*(\S*)")
_INLINE_VOICE = re.compile(r"\[V:\s*([^\]\s]*)[^\]]*\]")
# What the music-line repair acts on; lines without any of it are left alone.
_NEEDS_REPAIR = re.compile(r'[Hx"]|\[[A-Za-z]:|\(\d[\d:]*\s*\{')
# A tuplet marker followed by grace notes, like "(3{a}gfg".
_TUPLET_THEN_GRACE = re.compile(r"(\(\d[\d:]*)\s*(\{[^}]*\})")
# Inline fields kept (as field lines) when a music line is repaired; the others
# (remarks, instructions, parts, lyrics) do not change the notes.
_KEPT_INLINE_FIELDS = frozenset("KLMQ")


def _split_abc_tunes(text: str) -> tuple[list[str], list[list[str]]]:
    """The file header's field lines, and each tune's lines (X: to its end)."""
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("X:")]
    if not starts:
        # Without X: lines, a K: line (which every tune header ends with) shows
        # the text is one tune rather than prose.
        has_key_line = any(line.startswith("K:") for line in lines)
        return [], [lines] if has_key_line else []

    file_header = [
        line
        for line in lines[: starts[0]]
        if _FIELD_LINE.match(line) and line[0] not in "XT"
    ]
    tunes = []
    for begin, end in zip(starts, starts[1:] + [len(lines)], strict=True):
        tunes.append(_cut_at_blank_line(lines[begin:end]))
    return file_header, tunes


def _cut_at_blank_line(lines: list[str]) -> list[str]:
    """A tune ends at its first blank line after the K: line (ABC 2.1, 2.2)."""
    key_index = next(
        (index for index, line in enumerate(lines) if line.startswith("K:")), 0
    )
    for index in range(key_index + 1, len(lines)):
        if not lines[index].strip():
            return lines[:index]
    return lines


def _split_header(lines: list[str]) -> tuple[list[str], list[str]]:
    """Split a tune into header (through the K: line) and body."""
    for index, line in enumerate(lines):
        if line.startswith("K:"):
            return lines[: index + 1], lines[index + 1 :]
    # No K: line: the header is the leading run of field and comment lines.
    index = 0
    while index < len(lines) and (
        _FIELD_LINE.match(lines[index]) or lines[index].startswith("%")
    ):
        index += 1
    return lines[:index], lines[index:]


def _field_value(lines: list[str], letter: str) -> str | None:
    prefix = f"{letter}:"
    for line in lines:
        if line.startswith(prefix):
            return line[2:].split("%", 1)[0].strip()
    return None


def _with_file_header(header: list[str], file_header: list[str]) -> list[str]:
    """Add the file header's fields that the tune does not set itself."""
    own = {line[0] for line in header if _FIELD_LINE.match(line)}
    inherited = [line for line in file_header if line[0] not in own]
    if not inherited:
        return header
    keys = [line for line in inherited if line.startswith("K:")]
    others = [line for line in inherited if not line.startswith("K:")]
    # X: stays first; an inherited K: must end the header, where K: belongs.
    return header[:1] + others + header[1:] + keys


def _select_voice(
    header: list[str], body: list[str], voice: int
) -> tuple[list[str], list[str], int]:
    """Keep only the lines of one V: voice; returns header, body, number of voices.

    Voices are numbered in order of first appearance (header declarations first).
    Music before the first V: belongs to the first voice. V: lines and inline
    ``[V:]`` markers are removed, so music21 sees a single-voice tune.
    """
    order: list[str] = []
    for line in header:
        match = _VOICE_LINE.match(line)
        if match and match.group(1) not in order:
            order.append(match.group(1))
    kept_header = [line for line in header if not _VOICE_LINE.match(line)]

    by_voice: dict[str | None, list[str]] = {}
    current: str | None = None
    for line in body:
        match = _VOICE_LINE.match(line)
        if match:
            current = match.group(1)
            if current not in order:
                order.append(current)
            continue
        if "[V:" not in line:
            by_voice.setdefault(current, []).append(line)
            continue
        # Inline [V:id] markers switch voice within and after this line.
        pieces = _INLINE_VOICE.split(line)
        if pieces[0].strip():
            by_voice.setdefault(current, []).append(pieces[0])
        for voice_id, text in zip(pieces[1::2], pieces[2::2], strict=True):
            current = voice_id
            if current not in order:
                order.append(current)
            if text.strip():
                by_voice.setdefault(current, []).append(text)

    n_voices = max(1, len(order))
    if voice >= n_voices:
        return kept_header, [], n_voices
    if not order:
        return kept_header, by_voice.get(None, []), 1
    chosen = order[voice]
    lines = by_voice.get(chosen, [])
    if voice == 0:
        lines = by_voice.get(None, []) + lines
    return kept_header, lines, n_voices


def _repair_music_line(line: str) -> list[str]:
    """Rewrite one ABC music line into lines music21 reads correctly.

    Inline ``[K:]``/``[M:]``/``[L:]``/``[Q:]`` fields become field lines of their
    own (other inline fields are dropped); quoted chord symbols and annotations
    are removed (they make no notes, and music21 drops the note after some of
    them, e.g. ``">"g2``); the ``H`` fermata is removed (music21 drops the note it
    decorates); ``x`` spacer rests become ``z`` (music21 drops them, which shifts
    every later note); grace notes right after a tuplet marker move before it
    (music21 counts them as tuplet notes: ``(3{a}gfg`` loses 1/6 ql).
    ``!decorations!`` and comments are left alone.
    """
    if not _NEEDS_REPAIR.search(line):
        return [line]
    lines: list[str] = []
    current: list[str] = []
    index = 0
    length = len(line)
    in_decoration = False
    while index < length:
        char = line[index]
        if in_decoration:
            current.append(char)
            in_decoration = char != "!"
            index += 1
            continue
        if char == '"':
            close = line.find('"', index + 1)
            if close == -1:
                # An unclosed string is malformed; leave the rest to music21.
                current.append(line[index:])
                break
            index = close + 1
            continue
        if char == "%":
            current.append(line[index:])
            break
        if (
            char == "["
            and index + 2 < length
            and line[index + 1].isalpha()
            and line[index + 2] == ":"
        ):
            close = line.find("]", index)
            close = length if close == -1 else close
            lines.append("".join(current))
            current = []
            if line[index + 1] in _KEPT_INLINE_FIELDS:
                lines.append(line[index + 1 : close].strip())
            index = close + 1
            continue
        if char == "(":
            tuplet = _TUPLET_THEN_GRACE.match(line, index)
            if tuplet:
                current.append(tuplet.group(2) + tuplet.group(1))
                index = tuplet.end()
                continue
        if char == "!":
            in_decoration = True
        elif char == "H":
            index += 1
            continue
        elif char == "x":
            char = "z"
        current.append(char)
        index += 1
    lines.append("".join(current))
    return [piece for piece in lines if piece.strip()]


def _abc_meter(value: str) -> tuple[str, int]:
    """An ABC meter value as music21 should see it, and the beats it gives it.

    music21 reads the digits of a numerator as one number: "2+2+3/8" would be a
    meter of 223 beats, and "1+1+1+1+1+1+1+1+1+1/8" one that never finishes
    building. An additive numerator is therefore written as its sum ("7/8").
    Values without exactly one slash ("C", "none", "3/8+2/4") get 0 beats: music21
    either reads them without numbers or refuses them.
    """
    numerator, slash, denominator = value.partition("/")
    if not slash or "/" in denominator:
        return value, 0
    terms = re.findall(r"\d+", numerator)
    if "+" in numerator and terms:
        numerator = str(sum(int(term) if len(term) <= 9 else 10**9 for term in terms))
        value = f"{numerator}/{denominator.strip()}"
    digits = "".join(re.findall(r"\d", numerator)).lstrip("0")
    if not digits:
        return value, 0
    return value, int(digits) if len(digits) <= 9 else 10**9


# Where music21 starts reading a meter field inside a music line.
_STRAY_METER = re.compile(r"M:([^%]*)")


def _checked_abc_meter_line(line: str, label: str) -> str:
    """Check the meters a line gives music21; write additive ones as their sum.

    Raises ReadError for a meter of more than :data:`MAX_METER_BEATS` beats, which
    music21 would take minutes to hours to build. music21 reads "M:" as a field
    anywhere in a music line, not only at its start, so those count too.
    """
    if line.startswith("M:"):
        value = line[2:].split("%", 1)[0].strip()
        repaired, beats = _abc_meter(value)
        _check_meter(label, f"M:{value}", beats)
        return line if repaired == value else f"M:{repaired}"
    if not _FIELD_LINE.match(line) and not line.startswith("%"):
        for found in _STRAY_METER.finditer(line.split("%", 1)[0]):
            value = found.group(1).strip()
            _check_meter(label, f"M:{value}", _abc_meter(value)[1])
    return line


def _default_unit_length(meter_text: str | None) -> str:
    """The L: an ABC tune without one uses: 1/16 below a 3/4 meter, else 1/8."""
    if meter_text is None or meter_text in ("C", "C|") or "/" not in meter_text:
        return "L:1/8"
    numerator, _, denominator = meter_text.partition("/")
    try:
        beats = sum(int(part) for part in re.split(r"[+ ]+", numerator.strip("() ")))
        value = Fraction(beats, int(denominator.strip()))
    except (ValueError, ZeroDivisionError):
        return "L:1/8"
    return "L:1/16" if value < Fraction(3, 4) else "L:1/8"


def _normalise_meter_text(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _abc_segments(header: list[str], body: list[str]) -> list[str]:
    """The tune as texts music21 can parse: a new segment at every meter change.

    music21 drops ``M:`` lines in a tune body, so each stretch in one meter is
    parsed on its own with that meter, the unit length and the key in force.
    """
    meter_text = _field_value(header, "M")
    unit_line = next(
        (line for line in header if line.startswith("L:")),
        _default_unit_length(meter_text),
    )
    key_line = next((line for line in header if line.startswith("K:")), "K:C")

    segments: list[str] = []
    seg_header = header
    seg_body: list[str] = []
    current_meter = _normalise_meter_text(meter_text) if meter_text else None
    for line in body:
        if _FIELD_LINE.match(line):
            letter = line[0]
            if letter == "M":
                value = line[2:].split("%", 1)[0].strip()
                if _normalise_meter_text(value) == current_meter:
                    continue
                current_meter = _normalise_meter_text(value)
                if any(not _FIELD_LINE.match(x) for x in seg_body):
                    segments.append("\n".join(seg_header + seg_body) + "\n")
                    seg_body = []
                    seg_header = ["X:1", f"M:{value}", unit_line, key_line]
                else:
                    seg_header = [x for x in seg_header if not x.startswith("M:")]
                    seg_header.insert(1, f"M:{value}")
                continue
            if letter == "K":
                key_line = line
            elif letter == "L":
                unit_line = line
        seg_body.append(line)
    segments.append("\n".join(seg_header + seg_body) + "\n")
    return segments


class _AnyBarlineHandler(abcFormat.ABCHandler):
    """An ABC handler that makes measures whenever the tune has a barline.

    music21 makes Measure objects only for tunes with two or more plain barlines;
    with fewer, the notes land directly in the Part and the barline positions are
    lost, so a pickup or a short first stretch before a meter change (``d2e2|
    f2g2a2|]``) could not be found. music21 copies handlers with their class.

    With ``barless`` set, it makes no measures at all (see :func:`_parse_abc_part`).
    """

    barless = False

    def definesMeasures(self) -> bool:
        if self.barless:
            return False
        return any(isinstance(token, abcFormat.ABCBar) for token in self.tokens)


# music21 splits a measure longer than its bar at the barline and gives the rest a
# time signature of its own, whose numerator counts the overflow in its finest note
# value ("291/8" for 145.5 ql of eighths). Building that time signature takes time
# that grows steeply with the numerator: about a second at 200, hours at tens of
# thousands. The cost of a tune is taken as the sum of the squares of those
# numerators (see :func:`_overflow_cost`); one that would cost more than this (a
# single numerator of 256, or many smaller ones) is read without its barlines
# instead. The folk tunes in music21's corpus stay below it; only a few Josquin
# chansons, whose one barline ends them, go over.
_MAX_REBAR_COST = 256**2


def _overflow_cost(overflow: Fraction) -> int:
    """What building music21's time signature for an overflow of this length costs.

    Its numerator counts the overflow in quarters or finer when the overflow's
    denominator is a power of two ("145.5 ql" is 291/8, "28 ql" 28/4), and is the
    overflow's own numerator otherwise ("103/12" after tuplets). The cost is that
    numerator squared, eight times over for a beat that is not a power of two,
    which music21 takes several times longer to subdivide.
    """
    if overflow.denominator & (overflow.denominator - 1):
        return 8 * overflow.numerator**2
    whole_notes = overflow / 4
    numerator = whole_notes.numerator * (4 // min(whole_notes.denominator, 4))
    return numerator**2


def _rebar_cost(tokens: list[abcFormat.ABCToken]) -> tuple[int, int, Fraction]:
    """What music21's split of overlong measures costs (see :data:`_MAX_REBAR_COST`).

    Returns the cost, the measure (counting from 1) whose overflow costs most and
    how many ql it runs past its bar; ``(0, 0, 0)`` when no measure is longer than
    its bar. Durations are those music21 gives the tokens, with tuplets applied;
    grace notes take no time.
    """
    bar_length: Fraction | None = None
    cost, largest, worst = 0, 0, (0, Fraction(0))
    measure, filled = 1, Fraction(0)

    def close_measure() -> None:
        nonlocal cost, largest, worst
        if bar_length is not None and filled > bar_length:
            overflow = filled - bar_length
            overflow_cost = _overflow_cost(overflow)
            cost += overflow_cost
            if overflow_cost > largest:
                largest, worst = overflow_cost, (measure, overflow)

    for token in tokens:
        if isinstance(token, abcFormat.ABCMetadata) and token.isMeter():
            signature = token.getTimeSignatureObject()
            if signature is not None:
                bar_length = _to_fraction(signature.barDuration.quarterLength)
        elif isinstance(token, abcFormat.ABCBar):
            close_measure()
            measure, filled = measure + 1, Fraction(0)
        elif isinstance(token, (abcFormat.ABCNote, abcFormat.ABCChord)):
            if token.inGrace or not token.quarterLength:
                continue
            length = _to_fraction(token.quarterLength)
            if token.activeTuplet is not None:
                length *= Fraction(token.activeTuplet.tupletMultiplier())
            filled += length
    close_measure()
    return cost, *worst


def _parse_abc_part(
    text: str, abc_version: tuple[int, ...], label: str
) -> tuple[stream.Part, str | None]:
    """Parse one single-voice, single-meter ABC text; returns the part and a repair.

    The repair (else None) says the tune was read without its barlines because
    its measures overflow their bars too far for music21 to split them (see
    :data:`_MAX_REBAR_COST`); its notes are then cut into bars from the start,
    and the repair names the measure that overflows most. Raises ReadError
    (naming ``label``) for a text of over :data:`MAX_BARS` measures, before
    music21 spends minutes building them.
    """
    handler = _AnyBarlineHandler(abcVersion=abc_version)
    handler.process(text)
    collections = handler.splitByVoice()
    # With V: lines removed there is one collection; if music21 still splits, it
    # puts the header in the first, as abcToStreamScore does.
    part_handler = (
        collections[0] if len(collections) == 1 else collections[0] + collections[1]
    )
    n_barlines = sum(isinstance(t, abcFormat.ABCBar) for t in part_handler.tokens)
    if n_barlines > MAX_BARS:
        raise _too_long(label, f"it has {n_barlines} barlines")
    repair = None
    cost, measure, overflow = _rebar_cost(part_handler.tokens)
    if n_barlines and cost > _MAX_REBAR_COST:
        part_handler.barless = True
        repair = (
            f"measure {measure} runs {_ql_text(overflow)} ql past its bar: "
            "read without barlines"
        )
    part = translate.abcToStreamPart(part_handler, inputM21=_UnbeamedPart())
    return part, repair


def _abc_without_key(header: list[str]) -> bool:
    """Whether the last key field of ``header`` names no key: ``K:none``, or
    ``K:HP`` (bagpipe music written without a signature; ``K:Hp`` has one, two
    sharps). music21 reads both as C major; the melody's key is then unknown,
    and what needs one estimates it."""
    values = [line[2:].split("%", 1)[0].strip() for line in header if line[:2] == "K:"]
    words = values[-1].split() if values else []
    return bool(words) and (words[0].lower() == "none" or words[0] == "HP")


def _opening_fields(header: list[str], body: list[str]) -> list[str]:
    """The header and the body's field lines before its first line of music: the
    fields in force at the first note (a body ``K:G`` there overrides ``K:none``)."""
    leading = []
    for line in body:
        if _FIELD_LINE.match(line):
            leading.append(line)
        elif line.strip() and not line.startswith("%"):
            break
    return header + leading


def _read_abc_tune(
    tune_lines: list[str],
    file_header: list[str],
    abc_version: tuple[int, ...],
    source: str,
    name: str,
    voice: int,
    position: int,
    expand_repeats: bool,
) -> Melody:
    header, body = _split_header(tune_lines)
    header = _with_file_header(header, file_header)
    number = _field_value(header, "X") or str(position)
    label = f"{name} X:{number}"
    title = _field_value(header, "T") or f"{Path(source).stem} (X:{number})"

    header, body, n_voices = _select_voice(header, body, voice)
    if voice >= n_voices:
        raise ReadError(f"{label}: has {n_voices} voice(s); voice={voice} requested")

    repaired_body: list[str] = []
    for line in body:
        if _FIELD_LINE.match(line) or line.startswith("%"):
            repaired_body.append(line)
        else:
            repaired_body.extend(_repair_music_line(line))
    header = [_checked_abc_meter_line(line, label) for line in header]
    repaired_body = [_checked_abc_meter_line(line, label) for line in repaired_body]

    melody_warnings: list[str] = []
    measures: list[_SourceMeasure] = []
    key_name: str | None = None
    tempo_qpm: float | None = None
    current: _Meter | None = None
    for index, segment in enumerate(_abc_segments(header, repaired_body)):
        try:
            part, barless_note = _parse_abc_part(segment, abc_version, label)
        except ReadError:
            raise
        except Exception as exc:
            # music21's ABC import raises many exception types on odd input
            # (its own, IndexError, KeyError, ZeroDivisionError, ...); any of them
            # means this tune cannot be read, and the caller skips it.
            raise ReadError(
                f"{label}: music21 cannot parse this tune ({_exception_text(exc)})"
            ) from exc
        if barless_note:
            melody_warnings.append(barless_note)
        if expand_repeats:
            part = _played_order(part, melody_warnings)
        if index == 0:
            opening = _opening_fields(header, repaired_body)
            key_name = None if _abc_without_key(opening) else _first_key(part)
            tempo_qpm = _first_tempo(part, melody_warnings)
        first_ts = part.recurse().getElementsByClass(meter.TimeSignature).first()
        if first_ts is not None:
            current = _meter_from_time_signature(first_ts, label)
        elif current is None:
            current = _assume_four_four(label, melody_warnings)
        segment_measures, _ = _part_measures(
            part, voice=0, initial=current, follow_meter_changes=False, name=label
        )
        measures.extend(segment_measures)

    if not any(m.notes for m in measures):
        raise ReadError(f"{label}: no notes")
    bars, raw_notes, pickup_length = _layout_measures(measures, melody_warnings, label)
    for repair in melody_warnings:
        logger.debug("%s: %s", label, repair)
    return _build_melody(
        name=label,
        title=title,
        raw_notes=raw_notes,
        bars=bars,
        key_name=key_name,
        tempo_qpm=tempo_qpm,
        source=source,
        pickup_length=pickup_length,
        notes_warnings=melody_warnings,
    )


# ----------------------------------------------------------------------------------
# MusicXML and kern


def _read_music21_file(
    data: bytes, path: Path, name: str, part: int, voice: int, expand_repeats: bool
) -> list[Melody]:
    label = "kern" if path.suffix.lower() == ".krn" else "MusicXML"
    m21_format = "humdrum" if label == "kern" else "musicxml"
    if label == "kern":
        _check_kern(data, name)
    elif path.suffix.lower() == ".mxl":
        _check_musicxml(_unpacked_mxl(data, name), name)
    else:
        _check_musicxml(data, name)
    try:
        # forceSource: never read or write music21's pickled caches.
        parsed = converter.parseFile(path, format=m21_format, forceSource=True)
    except Exception as exc:
        # music21's importers raise a wide range of exception types on malformed
        # files (XML ParseError, MusicXMLImportException, HumdrumException,
        # IndexError, AttributeError ...); all mean the file cannot be read.
        detail = _exception_text(exc)
        raise ReadError(
            f"{name}: music21 cannot parse this {label} file ({detail})"
        ) from exc

    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    melodies = []
    for index, score in enumerate(scores):
        title = _score_title(score, path)
        if len(scores) > 1:
            title = f"{title} ({index + 1})"
        melodies.append(
            _score_to_melody(score, path, name, title, part, voice, expand_repeats)
        )
    if not melodies:
        raise ReadError(f"{name}: no notes")
    return melodies


def _score_title(score: stream.Stream, path: Path) -> str:
    metadata = score.metadata
    title = metadata.title if metadata is not None else None
    # music21 falls back on the file name when a file has no title.
    if not title or title == path.name:
        return path.stem
    return str(title)


def _has_pitched_notes(part: stream.Stream) -> bool:
    return any(
        isinstance(element, (note.Note, chord.Chord))
        and not isinstance(element, harmony.Harmony)
        for element in part.recurse().notes
    )


def _score_to_melody(
    score: stream.Stream,
    path: Path,
    name: str,
    title: str,
    part: int,
    voice: int,
    expand_repeats: bool,
) -> Melody:
    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    pitched = [candidate for candidate in parts if _has_pitched_notes(candidate)]
    if not pitched:
        raise ReadError(f"{name}: no notes (no part with pitched notes)")
    if part >= len(pitched):
        raise ReadError(
            f"{name}: has {len(pitched)} pitched part(s); part={part} requested"
        )
    chosen = pitched[part]
    n_voices = _count_voices(list(chosen.getElementsByClass(stream.Measure)))
    if voice >= n_voices:
        raise ReadError(
            f"{name}: part {part} has {n_voices} voice(s); voice={voice} requested"
        )

    melody_warnings: list[str] = []
    if chosen.atSoundingPitch is False:
        # A transposing instrument's part (a B-flat clarinet, a horn in F) is
        # written in its own key; the melody is what sounds.
        chosen = _at_sounding_pitch(chosen, name)
    if expand_repeats:
        chosen = _played_order(chosen, melody_warnings)
    measures, _ = _part_measures(
        chosen, voice=voice, initial=None, follow_meter_changes=True, name=name
    )
    if not measures:
        fallback = _assume_four_four(name, melody_warnings)
        measures, _ = _part_measures(
            chosen, voice=voice, initial=fallback, follow_meter_changes=True, name=name
        )
    if not any(m.notes for m in measures):
        raise ReadError(f"{name}: no notes in part {part}, voice {voice}")
    bars, raw_notes, pickup_length = _layout_measures(measures, melody_warnings, name)
    return _build_melody(
        name=name,
        title=title,
        raw_notes=raw_notes,
        bars=bars,
        key_name=_first_key(chosen),
        tempo_qpm=_first_tempo(score, melody_warnings),
        source=str(path),
        pickup_length=pickup_length,
        notes_warnings=melody_warnings,
        program=_instrument_program(chosen),
    )


def _instrument_program(part: stream.Stream) -> int | None:
    """The MIDI program a part's instrument names explicitly (MusicXML
    ``<midi-program>``), or None."""
    instrument = part.getInstrument(returnDefault=False)
    return None if instrument is None else instrument.midiProgram


def _at_sounding_pitch(part: stream.Part, name: str) -> stream.Part:
    try:
        return part.toSoundingPitch(inPlace=False)
    except Exception as exc:
        # music21 raises interval and pitch errors on an unusable transposition.
        raise ReadError(
            f"{name}: cannot transpose part {part.id} to sounding pitch "
            f"({_exception_text(exc)})"
        ) from exc


# ----------------------------------------------------------------------------------
# MIDI


def _midi_error(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "truncated MIDI file: it ends in the middle of its header or a track"
    detail = str(exc).strip()
    if detail.startswith("MThd not found"):
        return "not a MIDI file (no MThd header)"
    return f"corrupt MIDI file ({_exception_text(exc)})"


def _ticks_to_ql(ticks: int, ticks_per_beat: int) -> Fraction:
    exact = Fraction(ticks, ticks_per_beat)
    if exact.denominator <= _MIDI_GRID_PER_QL:
        return exact
    return Fraction(round(exact * _MIDI_GRID_PER_QL), _MIDI_GRID_PER_QL)


class _GridSnapper:
    """Note times in ql from MIDI ticks, snapped to the grid within a tolerance.

    ``bar_starts`` (ql, ascending, from 0) are the barlines the grid is counted
    from; see :data:`MIDI_SNAP_TOLERANCE_QL`. Counts the times it moved and the
    largest move, for the melody's warnings.
    """

    def __init__(self, bar_starts: list[Fraction], ticks_per_beat: int) -> None:
        self.bar_starts = bar_starts
        self.ticks_per_beat = ticks_per_beat
        self.n_moved = 0
        self.largest = Fraction(0)

    def snap(self, ticks: int) -> Fraction:
        exact = Fraction(ticks, self.ticks_per_beat)
        start = self.bar_starts[max(0, bisect.bisect_right(self.bar_starts, exact) - 1)]
        offset = exact - start
        nearest = min(
            (Fraction(round(offset * parts), parts) for parts in (4, 3)),
            key=lambda point: abs(point - offset),
        )
        distance = abs(nearest - offset)
        # Exactly half-way is not near: a 32nd note at 3/8 ql is 1/24 from 1/3.
        if distance >= MIDI_SNAP_TOLERANCE_QL:
            return _ticks_to_ql(ticks, self.ticks_per_beat)
        if distance:
            self.n_moved += 1
            self.largest = max(self.largest, distance)
        return start + nearest

    def summary(self) -> str:
        return (
            f"timing snapped to the grid: {self.n_moved} note start(s)/end(s) moved "
            f"by at most {float(self.largest):.3g} ql (tolerance "
            f"{MIDI_SNAP_TOLERANCE_QL} ql)"
        )


@dataclass(slots=True)
class _MidiEvents:
    """What the reader needs from a MIDI file, at absolute ticks."""

    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    tempos: list[tuple[int, int]]  # (tick, microseconds per beat)
    keys: list[tuple[int, str]]  # (tick, mido key name like "Bb" or "F#m")
    # (track, channel) -> notes as (on tick, off tick, pitch), in order of onset
    notes: dict[tuple[int, int], list[tuple[int, int, int]]]
    track_ends: list[int]  # the tick of each track's last event
    # (track, channel) -> the first program change (instrument) of that channel
    programs: dict[tuple[int, int], int] = field(default_factory=dict)
    pickup_length: Fraction | None = None  # as recorded by melodyvae's writer
    pickup_text: str = ""  # the text event that recorded it
    # (track, channel) -> how many notes were never switched off
    n_unpaired: dict[tuple[int, int], int] = field(default_factory=dict)


def _collect_midi_events(midi: mido.MidiFile) -> _MidiEvents:
    events = _MidiEvents([], [], [], {}, [])
    for track_index, track in enumerate(midi.tracks):
        tick = 0
        # Per (channel, pitch), the on ticks waiting for their note-off: the first
        # note-on is closed by the first note-off (first in, first out).
        sounding: dict[tuple[int, int], deque[int]] = {}
        for message in track:
            tick += message.time
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                waiting = sounding.setdefault((message.channel, message.note), deque())
                waiting.append(tick)
            elif kind in ("note_off", "note_on"):
                waiting = sounding.get((message.channel, message.note))
                if waiting:
                    on_tick = waiting.popleft()
                    group = events.notes.setdefault((track_index, message.channel), [])
                    group.append((on_tick, tick, message.note))
                # else: a stray or duplicate note-off; nothing is sounding
            elif kind == "program_change":
                where = (track_index, message.channel)
                events.programs.setdefault(where, message.program)
            elif kind == "time_signature":
                events.time_signatures.append(
                    (tick, message.numerator, message.denominator)
                )
            elif kind == "set_tempo":
                events.tempos.append((tick, message.tempo))
            elif kind == "key_signature":
                events.keys.append((tick, message.key))
            elif kind == "text" and tick == 0:
                recorded = _PICKUP_TEXT.fullmatch(message.text.strip())
                if recorded:
                    events.pickup_text = recorded.group(0)
                    try:
                        events.pickup_length = Fraction(recorded.group(1))
                    except (ValueError, ZeroDivisionError):
                        # "1/0", or more digits than Python converts; checked
                        # with the other recorded values against bar 0 later.
                        events.pickup_length = Fraction(-1)
        events.track_ends.append(tick)
        # Notes never switched off end with their track.
        for (channel, pitch), waiting in sounding.items():
            for on_tick in waiting:
                where = (track_index, channel)
                events.n_unpaired[where] = events.n_unpaired.get(where, 0) + 1
                if tick > on_tick:
                    group = events.notes.setdefault((track_index, channel), [])
                    group.append((on_tick, tick, pitch))
    for group in events.notes.values():
        group.sort()
    return events


# SMPTE time-code files count ticks per video frame, not per beat; their times are
# converted through the tempo map to ticks of this resolution.
_SMPTE_TICKS_PER_BEAT = 960
# Frames per second of each SMPTE format; "29" is 29.97 drop-frame.
_SMPTE_FPS = {
    24: Fraction(24),
    25: Fraction(25),
    29: Fraction(30000, 1001),
    30: Fraction(30),
}


def _smpte_to_beat_ticks(
    events: _MidiEvents, division: int, name: str
) -> tuple[_MidiEvents, str]:
    """Events of an SMPTE-timed file at :data:`_SMPTE_TICKS_PER_BEAT` ticks a beat.

    ``division`` is the header's (negative) time division: minus the frames per
    second in its high byte, ticks per frame in its low byte. Such a file counts
    seconds; its tempo events say where the beats fall (the first tempo also
    holds before it). Returns the converted events and a note for the melody's
    warnings. Raises ReadError for an unknown frame rate or a file without a
    usable tempo, whose beats cannot be known.
    """
    frames = -(division >> 8)
    ticks_per_frame = division & 0xFF
    if frames not in _SMPTE_FPS or ticks_per_frame == 0:
        raise ReadError(
            f"{name}: corrupt MIDI file (SMPTE timing of {frames} frames per "
            f"second, {ticks_per_frame} ticks per frame)"
        )
    ticks_per_second = _SMPTE_FPS[frames] * ticks_per_frame
    tempos = sorted((tick, us) for tick, us in events.tempos if us > 0)
    if not tempos:
        raise ReadError(
            f"{name}: uses SMPTE time-code timing and has no tempo event, so where "
            "its beats fall is unknown"
        )

    # Beats at each tempo change, then any tick by the tempo in force there.
    starts = [0] + [tick for tick, _ in tempos[1:]]
    rates = [Fraction(10**6, us) / ticks_per_second for _, us in tempos]  # ql/tick
    beats_at = [Fraction(0)]
    for index in range(1, len(starts)):
        span = starts[index] - starts[index - 1]
        beats_at.append(beats_at[-1] + span * rates[index - 1])

    def convert(tick: int) -> int:
        index = bisect.bisect_right(starts, tick) - 1
        beats = beats_at[index] + (tick - starts[index]) * rates[index]
        return round(beats * _SMPTE_TICKS_PER_BEAT)

    converted = dataclasses.replace(
        events,
        time_signatures=[(convert(t), n, d) for t, n, d in events.time_signatures],
        tempos=[(convert(t), us) for t, us in events.tempos],
        keys=[(convert(t), k) for t, k in events.keys],
        notes={
            where: [(convert(on), convert(off), p) for on, off, p in group]
            for where, group in events.notes.items()
        },
        track_ends=[convert(t) for t in events.track_ends],
    )
    note = (
        f"SMPTE time-code timing ({float(_SMPTE_FPS[frames]):g} frames per second): "
        "beats placed by its tempo map"
    )
    return converted, note


def _midi_qpm(us_per_beat: int) -> float:
    """Quarter notes per minute of a MIDI tempo (1 to 2**24-1 us per beat).

    MIDI stores whole microseconds per beat: the error that leaves is rounded away
    (90 qpm is stored as 666667 us and would read back as 89.99995), unless the
    rounded tempo no longer fits a MIDI file (the slowest, 3.5762... qpm).
    """
    exact = mido.tempo2bpm(us_per_beat)
    rounded = round(exact, 3)
    return rounded if _storable_tempo(rounded) else exact


def _midi_key_name(mido_key: str) -> str:
    if mido_key.endswith("m"):
        return f"{mido_key[:-1]} minor"
    return f"{mido_key} major"


def _midi_bars(
    time_signatures: list[tuple[Fraction, int, int]],
    end: Fraction,
    repairs: list[str],
    name: str,
) -> list[Bar]:
    """Bars from the time-signature map (ql, numerator, denominator), to ``end``.

    Before the first time signature the meter is 4/4 (the MIDI default). A time
    signature that falls inside a bar takes effect at the next barline. One with
    no beats, more than :data:`MAX_METER_BEATS` beats or a beat shorter than a
    64th note is ignored. Raises ReadError (naming ``name``) when ``end`` lies
    beyond :data:`MAX_BARS` bars.
    """
    bars: list[Bar] = []
    start = Fraction(0)
    numerator, denominator = 4, 4
    pending = deque(sorted(time_signatures, key=lambda item: item[0]))
    while start < end or not bars:
        if len(bars) == MAX_BARS:
            raise _too_long(name, f"it runs to {_ql_text(end)} quarter notes")
        while pending and pending[0][0] <= start:
            at, new_numerator, new_denominator = pending.popleft()
            if not (
                0 < new_numerator <= MAX_METER_BEATS
                and new_denominator <= _MAX_MIDI_DENOMINATOR
            ):
                shown = (
                    new_denominator
                    if new_denominator <= _MAX_MIDI_DENOMINATOR
                    else f"2**{new_denominator.bit_length() - 1}"
                )
                repairs.append(f"time signature {new_numerator}/{shown} ignored")
                continue
            numerator, denominator = new_numerator, new_denominator
            if bars and at > bars[-1].start and at < start:
                repairs.append(
                    f"time signature {numerator}/{denominator} at {at} ql falls "
                    f"inside bar {len(bars) - 1}; applied from bar {len(bars)}"
                )
        length = Fraction(4 * numerator, denominator)
        bars.append(Bar(len(bars), start, length, f"{numerator}/{denominator}"))
        start += length
    return bars


def _read_midi(data: bytes, path: Path, name: str, part: int) -> Melody:
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (
        EOFError,
        OSError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        struct.error,
        KeySignatureError,
    ) as exc:
        raise ReadError(f"{name}: {_midi_error(exc)}") from exc
    ticks_per_beat = midi.ticks_per_beat
    if ticks_per_beat == 0:
        raise ReadError(f"{name}: corrupt MIDI file (0 ticks per beat)")

    events = _collect_midi_events(midi)
    timing_note = None
    if ticks_per_beat < 0:
        events, timing_note = _smpte_to_beat_ticks(events, ticks_per_beat, name)
        ticks_per_beat = _SMPTE_TICKS_PER_BEAT
    candidates = sorted(
        track_channel
        for track_channel, group in events.notes.items()
        if track_channel[1] != _DRUM_CHANNEL and group
    )
    if not candidates:
        detail = "only drum notes" if events.notes else "no notes"
        raise ReadError(f"{name}: {detail}")
    if part >= len(candidates):
        raise ReadError(
            f"{name}: has {len(candidates)} melodic track(s)/channel(s); "
            f"part={part} requested"
        )

    melody_warnings: list[str] = [timing_note] if timing_note else []
    n_unpaired = events.n_unpaired.get(candidates[part], 0)
    if n_unpaired:
        melody_warnings.append(
            f"{n_unpaired} note(s) never switched off: ended with their track"
        )
    time_signatures = [
        (_ticks_to_ql(tick, ticks_per_beat), numerator, denominator)
        for tick, numerator, denominator in events.time_signatures
    ]
    group = events.notes[candidates[part]]
    # The barlines the grid is counted from (the bars themselves come later,
    # from the snapped notes).
    last_tick = max(
        max(off for _, off, _ in group), events.track_ends[candidates[part][0]]
    )
    end_ql = Fraction(last_tick, ticks_per_beat)
    bar_starts = [b.start for b in _midi_bars(time_signatures, end_ql, [], name)]
    snapper = _GridSnapper(bar_starts, ticks_per_beat)
    # A file melodyvae wrote (it records the pickup) holds exact times, such as
    # the 36ths of a grace run in a triplet: nothing is snapped.
    snap = (
        (lambda ticks: _ticks_to_ql(ticks, ticks_per_beat))
        if events.pickup_text
        else snapper.snap
    )
    raw_notes = []
    for on_tick, off_tick, pitch in group:
        onset = snap(on_tick)
        raw_notes.append(_RawNote(onset, snap(off_tick) - onset, pitch))
    if snapper.n_moved:
        melody_warnings.append(snapper.summary())
    notes = _monophonic_notes(raw_notes)
    if not notes:
        raise ReadError(
            f"{name}: no notes (all are shorter than 1/{_MIDI_GRID_PER_QL} ql)"
        )

    if not events.time_signatures:
        _assume_four_four(name, melody_warnings)
    # Bars run to the last note's end, or to the melody track's end when that is
    # later: trailing rests that a track keeps keep their bars.
    track_end = _ticks_to_ql(events.track_ends[candidates[part][0]], ticks_per_beat)
    end = max(notes[-1].end, track_end)
    bars = _midi_bars(time_signatures, end, melody_warnings, name)

    # MIDI has no pickups. Files this project writes say whether bar 0 is one;
    # otherwise a melody that starts inside bar 0 after silence begins with one.
    pickup_length = events.pickup_length
    if pickup_length is not None and not 0 <= pickup_length < bars[0].length:
        melody_warnings.append(
            f"text {events.pickup_text[:40]!r} ignored: not a pickup length "
            f"within bar 0 ({bars[0].length} ql)"
        )
        pickup_length = None
    if pickup_length is None:
        first_onset = notes[0].onset
        inside = 0 < first_onset < bars[0].end
        pickup_length = bars[0].end - first_onset if inside else Fraction(0)
    if pickup_length > 0:
        first = bars[0]
        bars[0] = Bar(first.index, first.start, first.length, first.meter, pickup=True)

    # A tempo of 0 us per beat would be infinitely fast.
    tempos = sorted((tick, us) for tick, us in events.tempos if us > 0)
    if len(tempos) < len(events.tempos):
        melody_warnings.append("tempo of 0 microseconds per beat ignored")
    keys = sorted(events.keys)
    return Melody(
        title=path.stem,
        notes=notes,
        bars=bars,
        key=_midi_key_name(keys[0][1]) if keys else None,
        tempo_qpm=_midi_qpm(tempos[0][1]) if tempos else None,
        source=str(path),
        pickup_length=pickup_length,
        warnings=melody_warnings,
        program=_midi_program(events, candidates[part]),
    )


def _midi_program(events: _MidiEvents, track_channel: tuple[int, int]) -> int | None:
    """The channel's first program change; in a type-1 file it may sit on another
    track (a conductor track that sets up every channel)."""
    if track_channel in events.programs:
        return events.programs[track_channel]
    channel = track_channel[1]
    elsewhere = [p for (_, c), p in sorted(events.programs.items()) if c == channel]
    return elsewhere[0] if elsewhere else None
