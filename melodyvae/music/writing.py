"""Write melodies as standard MIDI, MusicXML or ABC files that a DAW or notation
program can open.

MIDI files are type 1 with two tracks: a conductor track (title, tempo, time and
key signatures, one marker per melody, and a text event like
``melodyvae:pickup=1/2`` that records the pickup, which MIDI cannot express) and
the melody on channel 1 (0 counting from 0), after a program change that sets its
instrument (the melody's own ``program``, read from its input, else a piano). Both
tracks end where the last bar ends.
Times are written from the start of bar 0, so a pickup is an incomplete first bar
padded with rest at its start: a pickup note at 3.5 ql stays at 3.5 ql, the first
downbeat lands on the first barline and barlines line up in a sequencer. The
resolution is 480 ticks per quarter note, or the smallest multiple of 480 (up to
MIDI's limit of 32767) at which every time of the melody is a whole tick, such as
1440 for the 1/36-ql notes of a grace run in a triplet. Files written here read
back through :func:`melodyvae.music.reading.read_melodies` to the same bars and
notes (times that are not whole ticks even at 32767 per quarter, like septuplets
of septuplets, are rounded to the nearest tick).

Known shortcomings: a :class:`Melody` holds one tempo and one key, so tempo and
key changes of the input are not written (time signature changes are); a mode
like A dorian is written as the major key with its signature (G major), because a
MIDI key signature is major or minor.

MusicXML and ABC are notation: measures with their time signatures, the key
signature, the pickup as an incomplete first measure, ties across barlines,
pitches spelled in the key and tuplets where onsets leave the binary grid (laid
out by :mod:`melodyvae.music.notation`). They read back to the same bars, notes,
pickup, key and tempo, exactly (a melody without a key is written with no key
signature: ABC's ``K:none``).

Every file is written to a temporary file beside it and then renamed into place.

Example::

    from melodyvae.music.writing import melody_to_abc, melody_to_midi
    melody_to_midi(melody, "out/tune.mid")
    melody_to_abc(melody, "out/tune.abc")
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import mido

from melodyvae.errors import MelodyVAEWarning, UnsupportedError
from melodyvae.music.melody import Bar, Melody
from melodyvae.music.notation import (
    Group,
    KeyInfo,
    Speller,
    WrittenMeasure,
    WrittenNote,
    beat_length,
    lay_out,
    meter_numbers,
    parse_key,
)

logger = logging.getLogger(__name__)

TICKS_PER_BEAT = 480
# The largest resolution a MIDI header can hold (15 bits; the top bit means SMPTE).
MAX_TICKS_PER_BEAT = 32767
DEFAULT_TEMPO_QPM = 120.0

_MELODY_CHANNEL = 0

_MAJOR_BY_FIFTHS = {
    -7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
    1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#",
}  # fmt: skip
_MINOR_BY_FIFTHS = {
    -7: "Abm", -6: "Ebm", -5: "Bbm", -4: "Fm", -3: "Cm", -2: "Gm", -1: "Dm", 0: "Am",
    1: "Em", 2: "Bm", 3: "F#m", 4: "C#m", 5: "G#m", 6: "D#m", 7: "A#m",
}  # fmt: skip


def melody_to_midi(
    melody: Melody,
    path: str | Path,
    *,
    program: int | None = None,
    velocity: int = 90,
) -> None:
    """Write one melody as a type-1 MIDI file.

    Args:
        melody: the melody; its bars give the time signatures (a change is written
            at the bar where it happens), ``tempo_qpm`` the tempo (120 when None)
            and ``key`` the key signature (left out when None or not a key name
            like "G major"; a modal key such as "A dorian" is written as the
            major key with the same signature, "G major").
        path: the file to write. It is written to a temporary file in the same
            folder and then renamed, so a failure leaves no partial file.
        program: General MIDI program (instrument), 0-127; 0 is a piano. None
            (the default) takes the melody's own ``program``, else 0.
        velocity: note-on velocity, 1-127.

    Times are written exactly at 480 ticks per quarter note or the smallest
    multiple of it that holds them; only times that no resolution up to 32767
    holds are rounded to the nearest tick. A melody without
    notes gives a file of silent bars (which ``read_melodies`` refuses: no notes).

    Raises:
        ValueError: ``program`` or ``velocity`` is out of range, or a pitch is
            outside 0-127.
        OSError: the file cannot be written (e.g. its folder does not exist).
    """
    melodies_to_midi([melody], path, program=program, velocity=velocity)


def melodies_to_midi(
    melodies: Sequence[Melody],
    path: str | Path,
    *,
    program: int | None = None,
    velocity: int = 90,
) -> None:
    """Write several melodies one after the other into one type-1 MIDI file.

    Each melody starts at the end of the previous one's last bar, with its own
    time signatures, tempo and key signature, and a marker carrying its title, so
    every melody's barlines line up in a sequencer. Arguments are as for
    :func:`melody_to_midi`; the instrument is the first melody's when ``program``
    is None.

    Raises:
        ValueError: ``melodies`` is empty, or ``program``/``velocity`` is out of
            range.
        OSError: the file cannot be written.
    """
    if not melodies:
        raise ValueError("no melodies to write")
    if program is None:
        program = melodies[0].program or 0
    if not 0 <= program <= 127:
        raise ValueError(f"program must be 0-127, got {program}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be 1-127, got {velocity}")

    offsets = [Fraction(0)]
    for melody in melodies:
        offsets.append(offsets[-1] + _melody_end(melody))
    resolution = _resolution(melodies, offsets)
    midi = mido.MidiFile(type=1, ticks_per_beat=resolution)
    title = melodies[0].title if len(melodies) == 1 else f"{len(melodies)} melodies"
    conductor: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    notes: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    for melody, offset in zip(melodies, offsets, strict=False):
        conductor.extend(
            _conductor_events(melody, offset, len(melodies) > 1, resolution)
        )
        notes.extend(_note_events(melody, offset, velocity, resolution))

    # Both tracks end where the last bar ends, so trailing rests keep their bars.
    end_tick = _to_ticks(offsets[-1], resolution)
    midi.tracks.append(_track(title, conductor, end_tick))
    program_change = mido.Message(
        "program_change", channel=_MELODY_CHANNEL, program=program, time=0
    )
    notes.insert(0, (0, -1, program_change))
    midi.tracks.append(_track("Melody", notes, end_tick))
    _save_atomically(midi, Path(path))


def _to_ticks(time_ql: Fraction, resolution: int) -> int:
    return round(time_ql * resolution)


def _resolution(melodies: Sequence[Melody], offsets: list[Fraction]) -> int:
    """Ticks per quarter note: 480, or the smallest multiple of it at which every
    barline, onset and note end is a whole tick, when that is at most 32767."""
    resolution = TICKS_PER_BEAT
    for melody, offset in zip(melodies, offsets, strict=False):
        times = [bar.start for bar in melody.bars]
        times += [t for note in melody.notes for t in (note.onset, note.end)]
        for time_ql in times:
            denominator = Fraction(offset + time_ql).denominator
            if resolution % denominator:
                resolution = math.lcm(resolution, denominator)
                if resolution > MAX_TICKS_PER_BEAT:
                    return TICKS_PER_BEAT
    return resolution


def _melody_end(melody: Melody) -> Fraction:
    """Where the melody's last bar (or, without bars, its last note) ends."""
    bar_end = melody.bars[-1].end if melody.bars else Fraction(0)
    note_end = max((n.end for n in melody.notes), default=Fraction(0))
    return max(bar_end, note_end)


def _meter_numbers(meter: str, bar: Bar) -> tuple[int, int]:
    """A meter like "6/8" as MIDI numerator and power-of-two denominator.

    A meter MIDI cannot hold (a denominator that is not a power of two, or a
    malformed text) is written as a meter of the bar's length in eighths or finer.
    """
    numerator_text, _, denominator_text = meter.partition("/")
    if numerator_text.isdigit() and denominator_text.isdigit():
        numerator, denominator = int(numerator_text), int(denominator_text)
        if numerator > 0 and denominator > 0 and denominator & (denominator - 1) == 0:
            return numerator, denominator
    for denominator in (4, 8, 16, 32, 64):
        beats = bar.length * denominator / 4
        if beats.denominator == 1 and 0 < beats <= 255:
            warnings.warn(
                f"meter {meter!r} cannot be written to MIDI; "
                f"written as {beats}/{denominator}",
                MelodyVAEWarning,
                stacklevel=5,
            )
            return int(beats), denominator
    raise ValueError(f"bar {bar.index} of {bar.length} ql has no MIDI time signature")


def _key_signature(key_name: str | None) -> str | None:
    """A key name like "G major" or "A dorian" as a mido key ("G", "Em" ...)."""
    key_info = parse_key(key_name)
    if key_info is None:
        if key_name:
            logger.debug("key %r has no MIDI key signature; left out", key_name)
        return None
    if key_info.mode in ("minor", "aeolian"):
        # Minor keys are named from the relative minor's fifths (A minor = 0).
        return _MINOR_BY_FIFTHS.get(key_info.fifths)
    return _MAJOR_BY_FIFTHS.get(key_info.fifths)


def _conductor_events(
    melody: Melody, offset: Fraction, with_marker: bool, resolution: int
) -> list[tuple[int, int, mido.MetaMessage]]:
    """Tempo, key, time signatures and title marker, as (tick, order, message)."""
    start = _to_ticks(offset, resolution)
    qpm = melody.tempo_qpm or DEFAULT_TEMPO_QPM
    events = [(start, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm)))]
    # MIDI cannot say whether bar 0 is a pickup; this text tells our reader.
    pickup_text = f"melodyvae:pickup={melody.pickup_length}"
    events.append((start, 0, mido.MetaMessage("text", text=pickup_text)))
    if with_marker:
        events.append((start, 0, mido.MetaMessage("marker", text=melody.title)))
    key_signature = _key_signature(melody.key)
    if key_signature is not None:
        events.append((start, 0, mido.MetaMessage("key_signature", key=key_signature)))

    previous: tuple[int, int] | None = None
    for bar in melody.bars:
        numbers = _meter_numbers(bar.meter, bar)
        if numbers != previous:
            numerator, denominator = numbers
            message = mido.MetaMessage(
                "time_signature", numerator=numerator, denominator=denominator
            )
            events.append((_to_ticks(offset + bar.start, resolution), 0, message))
            previous = numbers
    if not melody.bars:
        events.append((start, 0, mido.MetaMessage("time_signature")))
    return events


def _note_events(
    melody: Melody, offset: Fraction, velocity: int, resolution: int
) -> list[tuple[int, int, mido.Message]]:
    """Note-ons and note-offs as (tick, order, message); offs sort before ons."""
    events = []
    for melody_note in melody.notes:
        on_tick = _to_ticks(offset + melody_note.onset, resolution)
        # A note shorter than a tick still needs one tick to sound at all.
        off_tick = max(_to_ticks(offset + melody_note.end, resolution), on_tick + 1)
        pitch = melody_note.pitch
        events.append(
            (on_tick, 1, mido.Message("note_on", note=pitch, velocity=velocity))
        )
        events.append((off_tick, 0, mido.Message("note_off", note=pitch, velocity=0)))
    return events


def _track(
    name: str,
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]],
    end_tick: int,
) -> mido.MidiTrack:
    """A track from absolute-tick events, with delta times, ending at ``end_tick``.

    The track ends at the last event when that comes later than ``end_tick``.
    """
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def _save_atomically(midi: mido.MidiFile, path: Path) -> None:
    """Save a MIDI file to a temporary file in the target folder, then rename it."""
    _write_atomically(path, lambda file: midi.save(file=file))


def _naming(error: OSError, path: Path) -> OSError:
    """The same error (class, errno, message) naming the file asked for rather
    than the temporary one beside it."""
    return type(error)(error.errno, error.strerror, str(path))


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file in the target folder, then rename it into
    place, so that a failure leaves the previous file (or none) and no partial one.
    """
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        if error.strerror:
            raise _naming(error, path) from error
        raise
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions any new file gets (reading the umask means setting it).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.strerror:
            raise _naming(error, path) from error
        raise
    logger.debug("wrote %s", path)


# ----------------------------------------------------------------------------------
# MusicXML


def melody_to_musicxml(melody: Melody, path: str | Path) -> None:
    """Write one melody as an uncompressed MusicXML score with one part.

    The score has one measure per bar, with the bar's time signature where it
    changes, the key signature of ``melody.key`` (left out when None or not a key
    name), a metronome mark for ``tempo_qpm`` (left out when None) and the title.
    A pickup is an incomplete first measure (implicit, numbered 0);
    a note that runs past a barline is split there and tied; pitches are spelled
    in the key (Bb in F major, F# in D major); onsets off the binary grid are
    written as tuplets (see :mod:`melodyvae.music.notation`). Read back with
    :func:`~melodyvae.music.reading.read_melodies`, the file gives the same bars,
    notes, pickup, key and tempo.

    Args:
        melody: the melody.
        path: the file to write (``.musicxml`` or ``.xml`` to be read back). It is
            written to a temporary file in the same folder and then renamed, so a
            failure leaves no partial file.

    Raises:
        ValueError: a pitch is outside 0-127.
        UnsupportedError: music21 cannot write a rhythm (note values shorter than
            a 1024th).
        OSError: the file cannot be written (e.g. its folder does not exist).
    """
    melodies_to_musicxml([melody], path)


def melodies_to_musicxml(melodies: Sequence[Melody], path: str | Path) -> None:
    """Write several melodies one after the other into one MusicXML part.

    Each melody starts a new measure after a double barline (the last one ends
    with a final barline), with its title above its first measure, its own key
    signature, tempo and time signatures; a pickup is an incomplete measure. As
    with :func:`melodies_to_midi`, reading the file back gives one melody in which
    each melody starts where the previous one's last bar ends. Arguments are as
    for :func:`melody_to_musicxml`.

    Raises:
        ValueError: ``melodies`` is empty, or a pitch is outside 0-127.
        UnsupportedError: music21 cannot write a rhythm.
        OSError: the file cannot be written.
    """
    from music21.musicxml.xmlObjects import MusicXMLExportException

    if not melodies:
        raise ValueError("no melodies to write")
    _check_pitches(melodies)
    try:
        data = _musicxml_bytes(melodies)
    except MusicXMLExportException as exc:
        raise UnsupportedError(
            f"{_score_title(melodies)}: cannot be written as MusicXML ({exc})"
        ) from exc
    _write_atomically(Path(path), lambda file: file.write(data))


def _check_pitches(melodies: Sequence[Melody]) -> None:
    for melody in melodies:
        for melody_note in melody.notes:
            if not 0 <= melody_note.pitch <= 127:
                raise ValueError(
                    f"{melody.title}: pitch {melody_note.pitch} at "
                    f"{melody_note.onset} ql is outside 0-127"
                )


def _score_title(melodies: Sequence[Melody]) -> str:
    return melodies[0].title if len(melodies) == 1 else f"{len(melodies)} melodies"


def _musicxml_bytes(melodies: Sequence[Melody]) -> bytes:
    """The MusicXML text of the melodies in sequence, built as a music21 score."""
    from music21 import bar as m21_bar
    from music21 import clef, expressions, key, metadata, meter, stream, tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter, ScoreExporter
    from music21.stream.enums import ShowNumber

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = _score_title(melodies)
    part = stream.Part()
    part.partName = "Melody"
    number = 0
    previous_meter: tuple[int, int] | None = None
    previous_key: KeyInfo | None = None
    for position, melody in enumerate(melodies):
        key_info = parse_key(melody.key)
        speller = Speller(key_info)
        measures = lay_out(melody)
        for index, written in enumerate(measures):
            number = written.bar.index if position == 0 else number + 1
            measure = stream.Measure(number=number)
            if written.is_pickup:
                # An incomplete measure that does not count in the numbering.
                measure.paddingLeft = float(written.offset)
                measure.showNumber = ShowNumber.NEVER
            numbers = meter_numbers(written.bar)
            if numbers != previous_meter:
                measure.timeSignature = meter.TimeSignature("{}/{}".format(*numbers))
                previous_meter = numbers
            if index == 0:
                if key_info is not None:
                    tonic = key_info.tonic + (
                        "#" * key_info.tonic_alter or "-" * -key_info.tonic_alter
                    )
                    measure.keySignature = key.Key(tonic, key_info.mode)
                elif previous_key is not None:
                    # A melody without a key after one with a key: no accidentals.
                    measure.keySignature = key.KeySignature(0)
                previous_key = key_info
                if melody.tempo_qpm:
                    qpm = melody.tempo_qpm
                    shown = int(qpm) if float(qpm).is_integer() else qpm
                    measure.insert(0, tempo.MetronomeMark(number=shown))
                if len(melodies) > 1:
                    title = expressions.TextExpression(melody.title)
                    title.placement = "above"
                    measure.insert(0, title)
            for group in written.groups:
                for element in _music21_notes(group, speller):
                    measure.append(element)
            if index == len(measures) - 1:
                last = position == len(melodies) - 1
                measure.rightBarline = m21_bar.Barline("final" if last else "double")
            part.append(measure)
    first = part.getElementsByClass(stream.Measure).first()
    if first is not None:
        first.clef = clef.bestClef(part, recurse=True)
    score.insert(0, part)

    # GeneralObjectExporter.parse, with two changes to the header: music21 writes
    # the title both as work-title and movement-title, and reads a title back only
    # from a work-title that no movement-title repeats; and it names "Music21" as
    # the composer when there is none.
    well_formed = GeneralObjectExporter(score).fromGeneralObject(score)
    exporter = ScoreExporter(well_formed)
    root = exporter.parse()
    for movement_title in root.findall("movement-title"):
        root.remove(movement_title)
    for identification in root.findall("identification"):
        for creator in identification.findall("creator"):
            identification.remove(creator)
    return exporter.asBytes()


def _music21_notes(group: Group, speller: Speller) -> list:
    """music21 notes and rests for one group, with ties and tuplet brackets."""
    from music21 import duration, note, pitch, tie

    elements = []
    last = len(group.notes) - 1
    for index, written in enumerate(group.notes):
        value = duration.Duration(written.value)
        if group.is_tuplet:
            assert group.unit is not None
            unit_type = duration.Duration(group.unit).type
            tuplet = duration.Tuplet(
                group.actual,
                group.normal,
                durationActual=unit_type,
                durationNormal=unit_type,
            )
            if index == 0:
                tuplet.type = "startStop" if index == last else "start"
            elif index == last:
                tuplet.type = "stop"
            value.appendTuplet(tuplet)
        if written.pitch is None:
            element = note.Rest(duration=value)
        else:
            spelled = speller.spell(written.pitch)
            m21_pitch = pitch.Pitch(step=spelled.letter, octave=spelled.octave)
            if spelled.alter:
                m21_pitch.accidental = pitch.Accidental(spelled.alter)
            element = note.Note(m21_pitch, duration=value)
            if written.tie_back and written.tie_forward:
                element.tie = tie.Tie("continue")
            elif written.tie_forward:
                element.tie = tie.Tie("start")
            elif written.tie_back:
                element.tie = tie.Tie("stop")
        elements.append(element)
    return elements


# ----------------------------------------------------------------------------------
# ABC

_ABC_MODES = {
    "major": "",
    "ionian": "",
    "minor": "m",
    "aeolian": "m",
    "dorian": "Dor",
    "phrygian": "Phr",
    "lydian": "Lyd",
    "mixolydian": "Mix",
    "locrian": "Loc",
}
_ABC_ACCIDENTALS = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}
# ABC readers take each number of a tuplet "(p:q:r" as a single digit.
_ABC_MAX_DIGIT = 9


def melody_to_abc(melody: Melody, path: str | Path) -> None:
    """Write one melody as an ABC 2.1 file with one tune.

    See :func:`abc_text` for what is written. The file is UTF-8, written to a
    temporary file in the same folder and then renamed, so a failure leaves no
    partial file.

    Raises:
        ValueError: a pitch is outside 0-127.
        OSError: the file cannot be written (e.g. its folder does not exist).
    """
    melodies_to_abc([melody], path)


def melodies_to_abc(melodies: Sequence[Melody], path: str | Path) -> None:
    """Write several melodies as an ABC 2.1 tunebook, one tune each (X:1, X:2 ...).

    Raises:
        ValueError: ``melodies`` is empty, or a pitch is outside 0-127.
        OSError: the file cannot be written.
    """
    data = abc_text(melodies).encode("utf-8")
    _write_atomically(Path(path), lambda file: file.write(data))


def abc_text(melodies: Sequence[Melody]) -> str:
    """The melodies as an ABC 2.1 tunebook text, one tune per melody.

    Each tune has the header fields X (its number from 1), T (the title), M (the
    first bar's meter), L (1/8, or 1/16 when a note value is shorter than an
    eighth or not a whole number of eighths), Q (the tempo, left out when None)
    and K (the key; C when None or not a key name). Bars follow the melody's
    bars, four to a line, with an inline ``[M:..]`` where the meter changes; a
    pickup is the short first bar; a note that runs past a barline is split and
    tied with ``-``; onsets off the binary grid are tuplets written ``(p:q:r``
    (a tuplet that needs a number above 9 is written as notes of their sounding
    lengths, like ``C4/15``).
    Accidentals are written against the key signature and carry through the bar
    (the text starts with ``%abc-2.1``, which says so); one is repeated wherever
    a reader that carries accidentals only within one octave would read the note
    otherwise. :func:`~melodyvae.music.reading.read_abc_text` reads each tune back
    to the same bars, notes, pickup, key and tempo.

    Raises:
        ValueError: ``melodies`` is empty, or a pitch is outside 0-127.
    """
    if not melodies:
        raise ValueError("no melodies to write")
    _check_pitches(melodies)
    tunes = [_abc_tune(melody, number) for number, melody in enumerate(melodies, 1)]
    return "%abc-2.1\n\n" + "\n".join(tunes)


def _abc_tune(melody: Melody, number: int) -> str:
    measures = lay_out(melody)
    key_info = parse_key(melody.key)
    speller = Speller(key_info)
    values = [written.value for measure in measures for written in measure.notes]
    eighth = Fraction(1, 2)
    unit = eighth if all(v % eighth == 0 for v in values) else Fraction(1, 4)

    header = [f"X:{number}"]
    title = " ".join(melody.title.split()).replace("%", "\\%")
    if title:
        header.append(f"T:{title}")
    numerator, denominator = meter_numbers(measures[0].bar)
    header.append(f"M:{numerator}/{denominator}")
    header.append(f"L:1/{int(4 / unit)}")
    if melody.tempo_qpm:
        header.append(f"Q:{_abc_tempo(melody.tempo_qpm)}")
    if key_info is None:
        # ABC 2.1's "no key signature": every accidental is written out, and
        # the tune reads back without a key rather than in an invented C major.
        header.append("K:none")
    else:
        header.append(f"K:{key_info.tonic_name}{_ABC_MODES[key_info.mode]}")

    lines: list[str] = []
    line: list[str] = []
    full_bars = 0
    previous = (numerator, denominator)
    for index, measure in enumerate(measures):
        numbers = meter_numbers(measure.bar)
        text = _abc_measure(measure, speller, unit, beat_length(*numbers))
        if numbers != previous:
            text = f"[M:{numbers[0]}/{numbers[1]}] {text}"
            previous = numbers
        last = index == len(measures) - 1
        line.append(text + (" |]" if last else " |"))
        full_bars += not measure.is_pickup
        if full_bars == 4 or last:
            lines.append(" ".join(line))
            line = []
            full_bars = 0
    return "\n".join(header + lines) + "\n"


def _abc_tempo(qpm: float) -> str:
    """A Q: field value; a tempo that is not a whole number of quarters per minute
    is given in eighths or sixteenths per minute when that makes it whole."""
    for denominator in (4, 8, 16):
        beats = qpm * denominator / 4
        if float(beats).is_integer():
            return f"1/{denominator}={int(beats)}"
    return f"1/4={round(qpm)}"


def _abc_measure(
    measure: WrittenMeasure, speller: Speller, unit: Fraction, beat: Fraction
) -> str:
    """A measure's notes as ABC, a space before each note that starts a beat."""
    # Accidentals carry through the bar: by letter and octave (ABC's "octave"
    # rule) and by letter alone (its "pitch" rule, the 2.1 default). An
    # accidental is written unless both rules already give the note's alteration.
    by_octave: dict[tuple[str, int], int] = {}
    by_letter: dict[str, int] = {}

    def note_text(written: WrittenNote, sounding: bool = False) -> str:
        length = _abc_length((written.duration if sounding else written.value) / unit)
        if written.pitch is None:
            return f"z{length}"
        spelled = speller.spell(written.pitch)
        letter, alter, octave = spelled.letter, spelled.alter, spelled.octave
        signature = speller.signature[letter]
        accidental = ""
        if (
            by_octave.get((letter, octave), signature) != alter
            or by_letter.get(letter, signature) != alter
        ):
            accidental = _ABC_ACCIDENTALS[alter]
            by_octave[(letter, octave)] = alter
            by_letter[letter] = alter
        if octave >= 5:
            name = letter.lower() + "'" * (octave - 5)
        else:
            name = letter + "," * (4 - octave)
        return f"{accidental}{name}{length}{'-' if written.tie_forward else ''}"

    pieces: list[tuple[Fraction, str]] = []
    for group in measure.groups:
        notes = group.notes
        if group.is_tuplet and max(group.actual, group.normal) <= _ABC_MAX_DIGIT:
            texts = [note_text(written) for written in notes]
            # "(p:q:r" scales the next r notes, so a long group is written as
            # several that each fit the single digit readers take for r.
            for first in range(0, len(texts), _ABC_MAX_DIGIT):
                chunk = texts[first : first + _ABC_MAX_DIGIT]
                opening = f"({group.actual}:{group.normal}:{len(chunk)}"
                if (group.actual, group.normal) == (3, 2) and len(chunk) == 3:
                    opening = "(3"  # the usual triplet needs no more
                pieces.append((notes[first].start, opening + "".join(chunk)))
        else:
            # Plain notes; and a tuplet beyond ABC's single digits, as notes of
            # their sounding lengths (like C4/15), which ABC allows.
            sounding = group.is_tuplet
            pieces.extend(
                (written.start, note_text(written, sounding)) for written in notes
            )
    out = ""
    for start, text in pieces:
        if out and (start / beat).denominator == 1:
            out += " "
        out += text
    return out


def _abc_length(multiple: Fraction) -> str:
    """A note length as a multiple of the unit length: "", "3", "/", "3/2", "/4"."""
    if multiple == 1:
        return ""
    if multiple.denominator == 1:
        return str(multiple.numerator)
    if multiple.numerator == 1:
        return "/" if multiple.denominator == 2 else f"/{multiple.denominator}"
    return f"{multiple.numerator}/{multiple.denominator}"
