"""Property-based tests: whatever a file holds, the readers answer or refuse cleanly.

Random bytes under every supported suffix, plausible-but-wrong ABC text and random
MIDI event lists are written to files and read back. The property: ``read_melodies``
returns sound melodies or raises a :class:`MelodyVAEError` whose message is one line
starting with the file name. Any other exception, a read that takes longer than
:data:`SECONDS_PER_READ`, or a melody longer than :data:`MAX_BARS` bars fails.

The examples are derandomised, so every run (and CI) tries the same inputs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import signal
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from melodyvae.errors import MelodyVAEError
from melodyvae.music.melody import Melody
from melodyvae.music.reading import MAX_BARS, read_melodies

# Generous: every example here reads in well under a second; only a hang gets near.
SECONDS_PER_READ = 10.0

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.filterwarnings("ignore::melodyvae.errors.MelodyVAEWarning")

_counter = itertools.count()


class ReaderHung(BaseException):
    """A read ran past its time limit.

    A BaseException, so that a reader's ``except Exception`` cannot turn it into
    an ordinary read error and hide the hang.
    """


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ReaderHung` in the block after ``seconds`` (POSIX main thread).

    The alarm repeats every second until the block ends: an exception raised while
    the interpreter runs a garbage-collection callback is ignored, so one alarm
    alone could be lost. A block that ends after an alarm fails even so.
    """
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    fired = []

    def on_alarm(signum: int, frame: object) -> None:
        fired.append(signum)
        raise ReaderHung(f"the read took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        raise ReaderHung(f"the read took more than {seconds} s")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(folder: Path, data: bytes, suffix: str) -> Path:
    """A new file per example, so that no reader can see an earlier one's data."""
    path = folder / f"case{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


def assert_reads_or_refuses(path: Path) -> list[Melody]:
    """Read ``path``: sound melodies, or a MelodyVAEError of one line naming it."""
    try:
        with time_limit(SECONDS_PER_READ):
            melodies = read_melodies(path)
    except MelodyVAEError as exc:
        message = str(exc)
        assert message.startswith(path.name), message
        assert "\n" not in message, message
        # With --hypothesis-show-statistics: how often each kind of refusal occurs.
        event("refused: " + re.sub(r"[\d.]+", "N", message.rsplit(": ", 1)[-1])[:40])
        return []
    finally:
        path.unlink()
    assert melodies
    event("read")
    for melody in melodies:
        assert_sound(melody)
    return melodies


def assert_sound(melody: Melody) -> None:
    """The invariants every later step relies on."""
    assert melody.notes
    assert 0 < len(melody.bars) <= MAX_BARS
    start = Fraction(0)
    for bar in melody.bars:
        assert bar.start == start and bar.length > 0
        start = bar.end
    assert melody.notes[0].onset >= 0
    assert melody.notes[-1].end <= melody.bars[-1].end
    for before, after in zip(melody.notes, melody.notes[1:], strict=False):
        assert before.end <= after.onset
    for note in melody.notes:
        assert note.duration > 0 and 0 <= note.pitch <= 127
    assert 0 <= melody.pickup_length < melody.bars[0].length
    assert melody.bars[0].pickup == (melody.pickup_length > 0)
    if melody.tempo_qpm is not None:
        assert math.isfinite(melody.tempo_qpm) and melody.tempo_qpm > 0
        # The writer must be able to store it as a MIDI tempo.
        assert 0 < mido.bpm2tempo(melody.tempo_qpm) <= 0xFFFFFF


# ----------------------------------------------------------------------------------
# 1. Random bytes under every suffix

# Starts that get random bytes past each format's first check (magic numbers).
_PREFIXES = {
    ".mid": [b"", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk"],
    ".abc": [b"", b"X:1\nK:C\n", b"%abc-2.1\nX:1\nM:4/4\nL:1/8\nK:G\n"],
    ".musicxml": [b"", b'<?xml version="1.0"?>\n<score-partwise><part-list>'],
    ".xml": [b"", b"<score-timewise><measure><part>"],
    ".mxl": [b"", b"PK\x03\x04\x14\x00\x00\x00\x08\x00"],
    ".krn": [b"", b"**kern\n*M4/4\n", b"**kern\t**kern\n4c\t4e\n"],
}


@st.composite
def random_files(draw: st.DrawFn) -> tuple[bytes, str]:
    suffix = draw(st.sampled_from(sorted(_PREFIXES)))
    prefix = draw(st.sampled_from(_PREFIXES[suffix]))
    return prefix + draw(st.binary(max_size=600)), suffix


@settings(FUZZ, max_examples=240)
@given(case=random_files())
def test_random_bytes_are_read_or_refused(folder: Path, case: tuple[bytes, str]):
    data, suffix = case
    assert_reads_or_refuses(write(folder, data, suffix))


# ----------------------------------------------------------------------------------
# 2. Plausible but wrong ABC


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


def mostly(usual: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """A usual value five times in six, else an odd one."""
    return weighted((5, st.sampled_from(usual)), (1, st.sampled_from(odd)))


_METERS = mostly(
    ["4/4", "6/8", "3/4", "2/2", "C", "C|", "9/8", "2/4"],
    ["0/4", "4/0", "13/7", "-3/4", "999999/1", "65/4", "1/999999", "2+2+3/8"]
    + ["(3+2)/8", "", "x", "none", "4/", "/4", "1/3", "4/4 % 1999", "3/8+2/4"]
    + ["1+1+1+1+1+1+1+1+1+1+1+1/8", "64/4", "4/128"],
)
_UNITS = mostly(
    ["1/8", "1/4", "1/16"],
    ["0", "1/0", "1/999999", "99999/1", "x", "3/8", "", "1/3", "2"],
)
_KEYS = mostly(
    ["C", "G", "D", "Dm", "Amix", "F#dor", "Bb"],
    ["Cb", "nonsense", "", "none", "HP", "Hp", "C clef=bass", "D transpose=-2"]
    + ["^f_b", "Gmaj^c", "K:C", "exp ^c _b =f"],
)
_TEMPOS = mostly(
    ["1/4=120", "3/8=80", "1/2=60"],
    ["120", "0", "1/4=0", "1/0=100", "0/4=100", "-5", "1/4=1e400", '"fast"', "abc"]
    + ["1/4=99999999999999999999", "1/4=nan", "1/4=0.001"],
)
_VOICES = st.sampled_from(["1", "2", "T1 clef=treble", "", "B name=x"])


def _field(letter: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda value: f"{letter}:{value}")


_other_fields = st.sampled_from(
    ["T:Title", "T:Ünïcödé", "T:", "C:Trad.", "R:reel", "W:words", "N:M:999999/1"]
    + ["%%MIDI program 1", "% comment", "I:linebreak $"]
)
_header_fields = st.one_of(
    _field("M", _METERS),
    _field("L", _UNITS),
    _field("Q", _TEMPOS),
    _field("V", _VOICES),
    _other_fields,
)

_lengths = mostly(
    ["", "", "2", "/", "3", "4", "/2", "3/2", "6"],
    ["//", "/0", "0", "/3", "999999", "/999999", "99999999999999", "1/0", "2/"]
    + ["///", "299", "9999", "3/0"],
)
_letters = st.sampled_from(list("ABCDEFGabcdefgz"))
_octaves = mostly(["", "", ",", "'"], [",,,,,,,,,,,,", "", ",'", "'',,"])
_accidentals = mostly(["", "", "", "^", "_", "="], ["^^", "__", "^/", "_/", "^^^"])
_notes = st.builds(
    lambda accidental, letter, octave, length: accidental + letter + octave + length,
    _accidentals,
    weighted((8, _letters), (1, st.sampled_from(list("xZyHLMOPSTuv")))),
    _octaves,
    _lengths,
)
_chords = st.lists(_notes, max_size=4).map(lambda notes: "[" + "".join(notes) + "]")
_graces = st.lists(_notes, max_size=3).map(lambda notes: "{" + "".join(notes) + "}")
_tuplets = st.builds(
    lambda p, rest: f"({p}{rest}",
    st.integers(0, 12),
    mostly([""], [":2", ":3:2", "::", ":0", ":2:0", ":999", "::9"]),
)
_inline_fields = st.one_of(
    _field("M", _METERS),
    _field("L", _UNITS),
    _field("K", _KEYS),
    _field("Q", _TEMPOS),
    _field("V", _VOICES),
    _field("P", st.sampled_from(["A", "B"])),
).map(lambda field: f"[{field}]")
_barlines = st.sampled_from(["|", "|", "|", "||", "|]", "[|", "|:", ":|", "::", "|1"])
_barlines |= st.sampled_from([":|2", "[2", "[1", ":||:", "|]|"])
_symbols = st.sampled_from(
    [" ", " ", "-", "(", ")", ">", "<", ">>", "~", ".", "H", "T", "!trill!", "+"]
    + ['"Am"', '"^text"', '"', "!", "\\", "%", "&", "y", "$", "[", "]", "{", "}"]
)
_body_tokens = weighted(
    (12, _notes),
    (3, _barlines),
    (1, _chords),
    (1, _graces),
    (1, _tuplets),
    (1, _inline_fields),
    (2, _symbols),
)
_music_lines = st.lists(_body_tokens, min_size=1, max_size=24).map("".join)
_body_lines = weighted(
    (12, _music_lines),
    (1, _field("M", _METERS)),
    (1, _field("K", _KEYS)),
    (1, _field("L", _UNITS)),
    (1, _field("V", _VOICES)),
)


@st.composite
def abc_tunes(draw: st.DrawFn) -> str:
    """A tune: X, M, L and K fields (each now and then missing), then music."""
    lines = []
    for letter, values in (
        ("X", mostly(["1", "2", "10"], ["", "x", "-1"])),
        ("M", _METERS),
        ("L", _UNITS),
    ):
        if draw(st.integers(0, 7)):
            lines.append(f"{letter}:{draw(values)}")
    lines += draw(st.lists(_header_fields, max_size=2))
    if draw(st.integers(0, 7)):
        lines.append(f"K:{draw(_KEYS)}")
    lines += draw(st.lists(_body_lines, min_size=1, max_size=5))
    return "\n".join(lines) + "\n"


@st.composite
def abc_files(draw: st.DrawFn) -> bytes:
    """One or two tunes, now and then after a file header or with stray bytes."""
    header = draw(st.lists(_header_fields, max_size=2))
    tunes = draw(st.lists(abc_tunes(), min_size=1, max_size=2))
    text = "\n".join(header + ["", "\n".join(tunes)])
    data = text.encode("utf-8")
    # Now and then, bytes that are not UTF-8 somewhere in the text.
    stray = draw(mostly([""], ["\xff", "\xc3(", "\x00", "\xe9", "\r"]))
    if stray:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + stray.encode("latin-1") + data[at:]
    return data


@settings(FUZZ, max_examples=300)
@given(data=abc_files())
def test_random_abc_is_read_or_refused(folder: Path, data: bytes):
    assert_reads_or_refuses(write(folder, data, ".abc"))


# ----------------------------------------------------------------------------------
# 3. Random MIDI event lists

# In ticks: mostly musical, rarely (about one file in four) as far as a MIDI delta
# time reaches.
_deltas = weighted(
    (40, st.sampled_from([0, 0, 60, 120, 240, 480, 960])),
    (40, st.integers(0, 1920)),
    (1, st.sampled_from([2**20, 2**27, 2**28 - 1])),
    (1, st.integers(0, 2**28 - 1)),
)
_pickup_texts = ["melodyvae:pickup=1/2", "melodyvae:pickup=1/0", "melodyvae:pickup=0"]
_pickup_texts += ["melodyvae:pickup=99999", "melodyvae:pickup=4", "melodyvae:pickup=x"]
_keys = ["C", "G", "D", "A", "E", "B", "F#", "C#", "F", "Bb", "Eb", "Ab", "Db", "Gb"]
_keys += ["Cb", "Am", "Em", "Bm", "F#m", "C#m", "G#m", "D#m", "A#m", "Dm", "Gm", "Cm"]
_keys += ["Fm", "Bbm", "Ebm", "Abm"]
# In microseconds per beat: none at all, the fastest, the slowest MIDI can store.
_extreme_tempos = st.sampled_from([0, 1, 0xFFFFFF])
_pitches = st.integers(0, 127)
_channels = weighted((3, st.sampled_from([0, 0, 1, 9])), (1, st.integers(0, 15)))
# MIDI text events hold bytes; mido reads and writes them as Latin-1.
_latin1_text = st.text(st.characters(max_codepoint=255), max_size=8)


def _meta(kind: str, **fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(mido.MetaMessage, st.just(kind), time=_deltas, **fields)


def _channel_message(kind: str, **fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        mido.Message, st.just(kind), channel=_channels, time=_deltas, **fields
    )


@st.composite
def _notes(draw: st.DrawFn) -> list[mido.Message]:
    """A note-on and, usually, its note-off (or a note-on of velocity 0)."""
    channel, pitch = draw(_channels), draw(_pitches)
    on = mido.Message(
        "note_on",
        channel=channel,
        note=pitch,
        velocity=draw(st.integers(1, 127)),
        time=draw(_deltas),
    )
    off_kind = draw(st.sampled_from(["note_off", "note_off", "note_on", "none"]))
    if off_kind == "none":
        return [on]
    off = mido.Message(off_kind, channel=channel, note=pitch, time=draw(_deltas))
    return [on, off]


# Raw bytes, since mido refuses to build some time signatures a file can hold:
# numerator, denominator as a power of two, clocks per click, 32nds per quarter.
_time_signatures = st.builds(
    lambda data, time: [mido.UnknownMetaMessage(0x58, data, time=time)],
    st.tuples(
        weighted((3, st.sampled_from([2, 3, 4, 6])), (1, st.integers(0, 255))),
        weighted((3, st.sampled_from([1, 2, 3])), (1, st.integers(0, 255))),
        _pitches,
        _pitches,
    ),
    _deltas,
)
_others = st.one_of(
    _channel_message("note_on", note=_pitches, velocity=st.integers(0, 127)),
    _channel_message("note_off", note=_pitches, velocity=st.integers(0, 127)),
    _meta("set_tempo", tempo=st.one_of(_extreme_tempos, st.integers(0, 0xFFFFFF))),
    _meta("key_signature", key=st.sampled_from(_keys)),
    _meta("text", text=st.one_of(st.sampled_from(_pickup_texts), _latin1_text)),
    _meta("end_of_track"),
    _channel_message("control_change", control=_pitches, value=_pitches),
    _channel_message("program_change", program=_pitches),
    _channel_message("pitchwheel", pitch=st.integers(-8192, 8191)),
).map(lambda message: [message])
_events = weighted((6, _notes()), (1, _time_signatures), (2, _others))
_ticks_per_beat = weighted(
    (6, st.sampled_from([96, 480, 480, 960])),
    (1, st.sampled_from([1, 2, 3, 0x7FFF])),
    (1, st.integers(1, 0x7FFF)),
    (1, st.just(0)),
    # SMPTE: the high byte is minus the frames per second.
    (1, st.sampled_from([-24, -25, -29, -30]).map(lambda fps: fps * 256 + 40)),
)


@st.composite
def midi_files(draw: st.DrawFn) -> bytes:
    """A type 0, 1 or 2 file of one to three tracks of random events."""
    file_type = draw(st.sampled_from([1, 0, 2]))
    n_tracks = 1 if file_type == 0 else draw(st.integers(1, 3))
    midi = mido.MidiFile(type=file_type, ticks_per_beat=draw(_ticks_per_beat))
    for _ in range(n_tracks):
        events = draw(st.lists(_events, max_size=16))
        midi.tracks.append(mido.MidiTrack(itertools.chain.from_iterable(events)))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


@settings(FUZZ, max_examples=300)
@given(data=midi_files())
def test_random_midi_is_read_or_refused(folder: Path, data: bytes):
    assert_reads_or_refuses(write(folder, data, ".mid"))
