"""Tests for melodyvae.music.writing: MIDI output and the read-write round trip."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction as F
from pathlib import Path

import mido
import pretty_midi
import pytest
from datafiles import DATA, READABLE_FILES

from melodyvae.music.melody import Bar, Melody, Note
from melodyvae.music.reading import read_melodies
from melodyvae.music.writing import melodies_to_midi, melody_to_midi


def absolute_messages(path: Path) -> list[tuple[int, int, mido.Message]]:
    """(track, absolute tick, message) for every message in a MIDI file."""
    found = []
    for track_index, track in enumerate(mido.MidiFile(path).tracks):
        tick = 0
        for message in track:
            tick += message.time
            found.append((track_index, tick, message))
    return found


def sounding_notes(path: Path) -> list[tuple[int, int, int]]:
    """(on tick, off tick, pitch) of every note in a MIDI file."""
    started: dict[int, int] = {}
    notes = []
    for _, tick, message in absolute_messages(path):
        if message.type == "note_on" and message.velocity > 0:
            started[message.note] = tick
        elif message.type in ("note_on", "note_off"):
            notes.append((started.pop(message.note), tick, message.note))
    return sorted(notes)


@pytest.mark.parametrize("name", READABLE_FILES)
@pytest.mark.filterwarnings("ignore::melodyvae.errors.MelodyVAEWarning")
def test_every_readable_file_round_trips_through_midi(
    name: str, tmp_path: Path
) -> None:
    for index, melody in enumerate(read_melodies(DATA / name)):
        out = tmp_path / f"{index}.mid"
        melody_to_midi(melody, out)

        [again] = read_melodies(out)

        assert again.bars == melody.bars
        assert again.notes == melody.notes
        assert again.pickup_length == melody.pickup_length


def test_pickup_note_is_written_at_3_5_ql(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    out = tmp_path / "pickup.mid"

    melody_to_midi(melody, out)

    midi = mido.MidiFile(out)
    assert (midi.type, midi.ticks_per_beat, len(midi.tracks)) == (1, 480, 2)
    first_on, first_off, pitch = sounding_notes(out)[0]
    assert (first_on, first_off, pitch) == (1680, 1920, 62)
    meta = [(tick, m) for track, tick, m in absolute_messages(out) if track == 0]
    signatures = [
        (t, m.numerator, m.denominator) for t, m in meta if m.type == "time_signature"
    ]
    assert signatures == [(0, 4, 4)]
    assert [(t, m.key) for t, m in meta if m.type == "key_signature"] == [(0, "G")]
    assert [(t, m.tempo) for t, m in meta if m.type == "set_tempo"] == [(0, 500000)]
    assert [m.name for t, m in meta if m.type == "track_name"] == ["Tune A"]
    assert [(t, m.text) for t, m in meta if m.type == "text"] == [
        (0, "melodyvae:pickup=1/2")
    ]


def test_ties_across_bar_are_written_as_single_long_notes(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "ties_across_bar.abc")
    out = tmp_path / "ties.mid"

    melody_to_midi(melody, out)

    lengths = {(pitch, off - on) for on, off, pitch in sounding_notes(out)}
    assert (72, 2 * 480) in lengths  # one C5 of 2 ql
    assert (67, 9 * 480) in lengths  # one G4 of 9 ql
    assert len(sounding_notes(out)) == 6


def test_meter_changes_are_written_at_their_bars(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "inline_meter_key.abc")
    out = tmp_path / "meters.mid"

    melody_to_midi(melody, out)

    signatures = [
        (tick, m.numerator, m.denominator)
        for track, tick, m in absolute_messages(out)
        if m.type == "time_signature"
    ]
    assert signatures == [
        (0, 4, 4),
        (4 * 480, 3, 4),
        (10 * 480, 6, 8),
        (13 * 480, 2, 4),
    ]


@pytest.mark.parametrize(
    ("key_name", "mido_key"),
    [
        ("G major", "G"),
        ("E minor", "Em"),
        ("Bb major", "Bb"),
        ("B- major", "Bb"),
        ("F# minor", "F#m"),
        ("A dorian", "G"),
        ("D mixolydian", "G"),
        (None, None),
        ("not a key", None),
    ],
)
def test_key_signature(
    key_name: str | None, mido_key: str | None, tmp_path: Path
) -> None:
    melody = Melody(
        "k", [Note(F(0), F(4), 60)], [Bar(0, F(0), F(4), "4/4")], key=key_name
    )
    out = tmp_path / "key.mid"

    melody_to_midi(melody, out)

    keys = [m.key for _, _, m in absolute_messages(out) if m.type == "key_signature"]
    assert keys == ([mido_key] if mido_key else [])


def test_tempo_program_and_velocity_are_written(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    melody.tempo_qpm = 90.0
    out = tmp_path / "tempo.mid"

    melody_to_midi(melody, out, program=73, velocity=100)

    messages = [m for _, _, m in absolute_messages(out)]
    assert [m.program for m in messages if m.type == "program_change"] == [73]
    assert {m.velocity for m in messages if m.type == "note_on"} == {100}
    assert read_melodies(out)[0].tempo_qpm == 90.0


def test_melodies_are_written_one_after_the_other(tmp_path: Path) -> None:
    tunes = read_melodies(DATA / "multi_tune.abc")
    out = tmp_path / "book.mid"

    melodies_to_midi(tunes, out)

    [together] = read_melodies(out)
    assert [(b.meter, b.start) for b in together.bars] == [
        ("4/4", F(0)),
        ("4/4", F(4)),
        ("3/4", F(8)),
        ("3/4", F(11)),
        ("6/8", F(14)),
        ("6/8", F(17)),
    ]
    shifted = [
        replace(n, onset=n.onset + offset)
        for tune, offset in zip(tunes, (F(0), F(8), F(14)), strict=True)
        for n in tune.notes
    ]
    assert together.notes == shifted
    markers = [(t, m.text) for _, t, m in absolute_messages(out) if m.type == "marker"]
    assert markers == [(0, "Tune C1"), (8 * 480, "Tune C2"), (14 * 480, "Tune C3")]


def test_a_midi_file_without_the_pickup_text_guesses_from_the_first_onset(
    tmp_path: Path,
) -> None:
    # A pickup of rests cannot be seen in the notes, so files from other programs
    # (without the writer's text event) read a melody starting after bar 0 as
    # having no pickup, and one starting inside bar 0 as having one.
    [rest_pickup] = read_melodies(DATA / "rest_pickup.abc")
    [rest_first] = read_melodies(DATA / "rest_first_full_bar.abc")
    for melody, expected in ((rest_pickup, F(0)), (rest_first, F(3))):
        out = tmp_path / "plain.mid"
        melody_to_midi(melody, out)
        midi = mido.MidiFile(out)
        for track in midi.tracks:
            for message in [m for m in track if m.type == "text"]:
                track.remove(message)
        midi.save(out)

        [again] = read_melodies(out)

        assert again.notes == melody.notes
        assert again.pickup_length == expected
        assert again.bars[0].pickup == (expected > 0)


def test_trailing_rest_bars_survive_the_round_trip(tmp_path: Path) -> None:
    bars = [Bar(1, F(0), F(3), "3/4"), Bar(2, F(3), F(3), "3/4")]
    melody = Melody("rests", [Note(F(0), F(2), 60)], bars)
    out = tmp_path / "rests.mid"

    melody_to_midi(melody, out)

    [again] = read_melodies(out)
    assert again.bars == bars
    assert again.notes == melody.notes


def test_a_melody_without_notes_writes_silent_bars(tmp_path: Path) -> None:
    melody = Melody("silence", [], [Bar(0, F(0), F(4), "4/4")])
    out = tmp_path / "silence.mid"

    melody_to_midi(melody, out)

    assert sounding_notes(out) == []
    assert mido.MidiFile(out).length == pytest.approx(2.0)  # one 4/4 bar at 120 qpm


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    out = tmp_path / "tune.mid"
    out.write_bytes(b"the previous version")

    def broken_save(self: mido.MidiFile, filename: object = None, file: object = None):
        file.write(b"MThd half a file")
        raise OSError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        melody_to_midi(melody, out)

    assert out.read_bytes() == b"the previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.mid"]


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")

    with pytest.raises(FileNotFoundError):
        melody_to_midi(melody, tmp_path / "no" / "such" / "folder.mid")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"program": 128}, "program must be 0-127"),
        ({"velocity": 0}, "velocity must be 1-127"),
    ],
)
def test_out_of_range_options_are_refused(
    options: dict[str, int], message: str, tmp_path: Path
) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")

    with pytest.raises(ValueError, match=message):
        melody_to_midi(melody, tmp_path / "x.mid", **options)
    assert list(tmp_path.iterdir()) == []


def test_no_melodies_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no melodies"):
        melodies_to_midi([], tmp_path / "x.mid")


def test_the_instrument_is_one_program_change_before_the_first_note(
    tmp_path: Path,
) -> None:
    tunes = read_melodies(DATA / "multi_tune.abc")
    for program, out in ((0, tmp_path / "piano.mid"), (40, tmp_path / "violin.mid")):
        melodies_to_midi(tunes, out, program=program)

        melody_track = [
            (tick, m) for track, tick, m in absolute_messages(out) if track == 1
        ]
        changes = [(t, m) for t, m in melody_track if m.type == "program_change"]
        assert [(t, m.channel, m.program) for t, m in changes] == [(0, 0, program)]
        first_note = next(
            i for i, (_, m) in enumerate(melody_track) if m.type == "note_on"
        )
        assert melody_track.index(changes[0]) < first_note
        assert pretty_midi.PrettyMIDI(str(out)).instruments[0].program == program


def test_the_melodys_own_instrument_is_written_and_read_back(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    assert melody.program is None  # ABC names no instrument
    out = tmp_path / "piano.mid"
    melody_to_midi(melody, out)
    assert read_melodies(out)[0].program == 0

    violin = tmp_path / "violin.mid"
    melody_to_midi(replace(melody, program=40), violin)

    assert pretty_midi.PrettyMIDI(str(violin)).instruments[0].program == 40
    assert read_melodies(violin)[0].program == 40
    # An explicit program wins over the melody's.
    melody_to_midi(replace(melody, program=40), out, program=73)
    assert read_melodies(out)[0].program == 73


def test_a_program_change_on_the_conductor_track_names_the_instrument(
    tmp_path: Path,
) -> None:
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("time_signature", numerator=4, denominator=4),
            mido.Message("program_change", channel=0, program=71, time=0),
        ]
    )
    notes = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=80, time=0),
            mido.Message("note_off", note=60, velocity=0, time=1920),
        ]
    )
    midi.tracks.extend([conductor, notes])
    path = tmp_path / "clarinet.mid"
    midi.save(path)

    assert read_melodies(path)[0].program == 71


def test_times_off_the_480_grid_are_written_exactly(tmp_path: Path) -> None:
    # A grace run in a triplet (O'Neill's "The Maiden") has onsets in 36ths of a
    # quarter note, which 480 ticks per quarter cannot hold.
    onsets = [F(2), F(73, 36), F(37, 18), F(25, 12), F(19, 9), F(3)]
    notes = [
        Note(onset, end - onset, 60 + i)
        for i, (onset, end) in enumerate(zip(onsets, [*onsets[1:], F(4)], strict=True))
    ]
    melody = Melody("m", notes, [Bar(0, F(0), F(4), "4/4")])
    out = tmp_path / "graces.mid"

    melody_to_midi(melody, out)

    assert mido.MidiFile(out).ticks_per_beat == 1440
    assert read_melodies(out)[0].notes == notes
    # Times 480 ticks per quarter hold keep that resolution.
    [tune] = read_melodies(DATA / "pickup.abc")
    melody_to_midi(tune, out)
    assert mido.MidiFile(out).ticks_per_beat == 480


def test_a_musicxml_instrument_is_kept_in_the_midi(tmp_path: Path) -> None:
    from music21 import instrument, meter, note, stream

    part = stream.Part()
    part.insert(0, instrument.Violin())  # <midi-program>41</midi-program>, 1-based
    measure = stream.Measure()
    measure.timeSignature = meter.TimeSignature("4/4")
    measure.append(note.Note("C5", quarterLength=4))
    part.append(measure)
    score = stream.Score()
    score.insert(0, part)
    score.write("musicxml", fp=tmp_path / "violin.musicxml")
    out = tmp_path / "violin.mid"

    [melody] = read_melodies(tmp_path / "violin.musicxml")
    melody_to_midi(melody, out)

    assert melody.program == 40
    assert pretty_midi.PrettyMIDI(str(out)).instruments[0].program == 40


def test_a_dotted_sixteenth_and_a_thirty_second_are_not_snapped_to_thirds(
    tmp_path: Path,
) -> None:
    # A MIDI file from elsewhere (no melodyvae pickup text): 3/8 ql lies exactly
    # half-way between the grid points 1/4 and 1/3, so it is not moved.
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack(
        [mido.MetaMessage("time_signature", numerator=4, denominator=4)]
    )
    now = 0
    for tick, kind, pitch in [
        (0, "note_on", 60),
        (180, "note_off", 60),
        (180, "note_on", 62),
        (240, "note_off", 62),
        (240, "note_on", 64),
        (1920, "note_off", 64),
    ]:
        track.append(mido.Message(kind, note=pitch, velocity=80, time=tick - now))
        now = tick
    midi.tracks.append(track)
    path = tmp_path / "strathspey.mid"
    midi.save(path)

    [melody] = read_melodies(path)

    assert [(n.onset, n.duration) for n in melody.notes] == [
        (0, F(3, 8)),
        (F(3, 8), F(1, 8)),
        (F(1, 2), F(7, 2)),
    ]
    assert not melody.warnings


def test_a_folder_that_cannot_be_written_is_named_not_the_temporary_file(
    tmp_path: Path,
) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    out = tmp_path / "missing" / "tune.mid"
    with pytest.raises(FileNotFoundError) as error:
        melody_to_midi(melody, out)
    assert error.value.filename == str(out)
    assert not (tmp_path / "missing").exists()
