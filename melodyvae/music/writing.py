"""Write melodies as standard MIDI files a DAW or notation program can open.

The files are type 1 with two tracks: a conductor track (title, tempo, time and key
signatures, one marker per melody, and a text event like ``melodyvae:pickup=1/2``
that records the pickup, which MIDI cannot express) and the melody on channel 1 (0
counting from 0). Both tracks end where the last bar ends.
Times are written at 480 ticks per quarter note from the start of bar 0, so a pickup
note at 3.5 ql stays at 3.5 ql and barlines line up in a sequencer. Files written
here read back through :func:`melodyvae.music.reading.read_melodies` to the same
bars and notes (times that are not whole ticks, like septuplets, are rounded to the
nearest tick).

Example::

    from melodyvae.music.writing import melody_to_midi
    melody_to_midi(melody, "out/tune.mid")
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import mido

from melodyvae.errors import MelodyVAEWarning
from melodyvae.music.melody import Bar, Melody

logger = logging.getLogger(__name__)

TICKS_PER_BEAT = 480
DEFAULT_TEMPO_QPM = 120.0

_MELODY_CHANNEL = 0

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
_MAJOR_BY_FIFTHS = {
    -7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
    1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#",
}  # fmt: skip
_MINOR_BY_FIFTHS = {
    -7: "Abm", -6: "Ebm", -5: "Bbm", -4: "Fm", -3: "Cm", -2: "Gm", -1: "Dm", 0: "Am",
    1: "Em", 2: "Bm", 3: "F#m", 4: "C#m", 5: "G#m", 6: "D#m", 7: "A#m",
}  # fmt: skip


def melody_to_midi(
    melody: Melody, path: str | Path, *, program: int = 0, velocity: int = 90
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
        program: General MIDI program (instrument), 0-127; 0 is a piano.
        velocity: note-on velocity, 1-127.

    Times are rounded to the nearest tick (1/480 ql), which only changes notes
    off that grid, like septuplets or triplets within triplets. A melody without
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
    program: int = 0,
    velocity: int = 90,
) -> None:
    """Write several melodies one after the other into one type-1 MIDI file.

    Each melody starts at the end of the previous one's last bar, with its own
    time signatures, tempo and key signature, and a marker carrying its title, so
    every melody's barlines line up in a sequencer. Arguments are as for
    :func:`melody_to_midi`.

    Raises:
        ValueError: ``melodies`` is empty, or ``program``/``velocity`` is out of
            range.
        OSError: the file cannot be written.
    """
    if not melodies:
        raise ValueError("no melodies to write")
    if not 0 <= program <= 127:
        raise ValueError(f"program must be 0-127, got {program}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be 1-127, got {velocity}")

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    title = melodies[0].title if len(melodies) == 1 else f"{len(melodies)} melodies"
    conductor: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    notes: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    offset = Fraction(0)
    for melody in melodies:
        conductor.extend(_conductor_events(melody, offset, len(melodies) > 1))
        notes.extend(_note_events(melody, offset, velocity))
        offset += _melody_end(melody)

    # Both tracks end where the last bar ends, so trailing rests keep their bars.
    end_tick = _to_ticks(offset)
    midi.tracks.append(_track(title, conductor, end_tick))
    program_change = mido.Message(
        "program_change", channel=_MELODY_CHANNEL, program=program, time=0
    )
    notes.insert(0, (0, -1, program_change))
    midi.tracks.append(_track("Melody", notes, end_tick))
    _save_atomically(midi, Path(path))


def _to_ticks(time_ql: Fraction) -> int:
    return round(time_ql * TICKS_PER_BEAT)


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
    if not key_name:
        return None
    tonic, _, mode = key_name.strip().partition(" ")
    mode = mode.strip().lower() or "major"
    if not tonic or tonic[0].upper() not in _MAJOR_FIFTHS or mode not in _MODE_OFFSETS:
        logger.debug("key %r has no MIDI key signature; left out", key_name)
        return None
    fifths = _MAJOR_FIFTHS[tonic[0].upper()] + _MODE_OFFSETS[mode]
    for accidental in tonic[1:]:
        if accidental in "#♯":
            fifths += 7
        elif accidental in "b-♭":
            fifths -= 7
        else:
            return None
    if mode in ("minor", "aeolian"):
        # Minor keys are named from the relative minor's fifths (A minor = 0).
        return _MINOR_BY_FIFTHS.get(fifths)
    return _MAJOR_BY_FIFTHS.get(fifths)


def _conductor_events(
    melody: Melody, offset: Fraction, with_marker: bool
) -> list[tuple[int, int, mido.MetaMessage]]:
    """Tempo, key, time signatures and title marker, as (tick, order, message)."""
    start = _to_ticks(offset)
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
            events.append((_to_ticks(offset + bar.start), 0, message))
            previous = numbers
    if not melody.bars:
        events.append((start, 0, mido.MetaMessage("time_signature")))
    return events


def _note_events(
    melody: Melody, offset: Fraction, velocity: int
) -> list[tuple[int, int, mido.Message]]:
    """Note-ons and note-offs as (tick, order, message); offs sort before ons."""
    events = []
    for melody_note in melody.notes:
        on_tick = _to_ticks(offset + melody_note.onset)
        # A note shorter than a tick still needs one tick to sound at all.
        off_tick = max(_to_ticks(offset + melody_note.end), on_tick + 1)
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
    """Save to a temporary file in the target folder, then rename it into place."""
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            midi.save(file=file)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions any new file gets (reading the umask means setting it).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    logger.debug("wrote %s", path)
