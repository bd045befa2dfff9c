"""Tests for the MusicXML and ABC writers: round trips through melodyvae's own
readers, spelling in the key, pickups, ties, tuplets, meters and atomic writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from fractions import Fraction as F
from pathlib import Path

import pytest
from datafiles import DATA, READABLE_FILES

from melodyvae.errors import UnsupportedError
from melodyvae.music.melody import Bar, Melody, Note
from melodyvae.music.notation import Speller, lay_out, note_values, parse_key
from melodyvae.music.reading import read_abc_text, read_melodies
from melodyvae.music.writing import (
    abc_text,
    melodies_to_abc,
    melodies_to_musicxml,
    melody_to_abc,
    melody_to_musicxml,
)

NAMED_CASES = [
    "pickup.abc",
    "tuplets.abc",
    "ties_across_bar.abc",
    "inline_meter_key.abc",
    "reel_2_2.abc",
    "meter_6_8.abc",
]


def assert_same_music(again: Melody, melody: Melody, tempo_step: float = 0) -> None:
    """Same notes, bars and pickup; the same tempo within ``tempo_step`` (ABC's Q:
    field holds whole beats per minute, so a tempo like 3.58 is written rounded)."""
    assert again.notes == melody.notes
    assert again.bars == melody.bars
    assert again.pickup_length == melody.pickup_length
    if melody.tempo_qpm is None or again.tempo_qpm is None:
        assert again.tempo_qpm == melody.tempo_qpm
    else:
        assert abs(again.tempo_qpm - melody.tempo_qpm) <= tempo_step


def one_bar(notes: list[Note], key: str | None = None, meter: str = "4/4") -> Melody:
    length = F(4 * int(meter[0]), int(meter[2:]))
    return Melody("one bar", notes, [Bar(1, F(0), length, meter)], key=key)


def musicxml_pitches(path: Path) -> list[tuple[str, int, int]]:
    """(step, alter, octave) of every written note of a MusicXML file."""
    found = []
    for pitch in ET.parse(path).getroot().iter("pitch"):
        alter = pitch.findtext("alter")
        found.append(
            (
                pitch.findtext("step"),
                int(float(alter)) if alter else 0,
                int(pitch.findtext("octave")),
            )
        )
    return found


def body(text: str) -> str:
    """The music lines of a one-tune ABC text (after its K: line)."""
    lines = text.splitlines()
    key_line = next(i for i, line in enumerate(lines) if line.startswith("K:"))
    return "\n".join(lines[key_line + 1 :])


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("name", READABLE_FILES)
@pytest.mark.filterwarnings("ignore::melodyvae.errors.MelodyVAEWarning")
def test_every_readable_file_round_trips_through_musicxml(
    name: str, tmp_path: Path
) -> None:
    for index, melody in enumerate(read_melodies(DATA / name)):
        out = tmp_path / f"{index}.musicxml"
        melody_to_musicxml(melody, out)

        [again] = read_melodies(out)

        assert_same_music(again, melody)
        assert again.key == melody.key
        assert again.title == melody.title


@pytest.mark.parametrize("name", READABLE_FILES)
@pytest.mark.filterwarnings("ignore::melodyvae.errors.MelodyVAEWarning")
def test_every_readable_file_round_trips_through_abc(name: str) -> None:
    for melody in read_melodies(DATA / name):
        [again] = read_abc_text(abc_text([melody]))

        assert_same_music(again, melody, tempo_step=0.5)
        # A melody without a key is written with K:none and reads back without.
        assert again.key == melody.key
        assert again.title == melody.title


@pytest.mark.parametrize("name", NAMED_CASES)
def test_named_cases_round_trip_through_written_files(
    name: str, tmp_path: Path
) -> None:
    [melody] = read_melodies(DATA / name)
    abc_file = tmp_path / "tune.abc"
    xml_file = tmp_path / "tune.musicxml"

    melody_to_abc(melody, abc_file)
    melody_to_musicxml(melody, xml_file)

    for out in (abc_file, xml_file):
        [again] = read_melodies(out)
        assert_same_music(again, melody)
        assert again.key == melody.key
        assert [b.meter for b in again.bars] == [b.meter for b in melody.bars]


def test_pickup_abc_is_written_with_its_short_first_bar() -> None:
    [melody] = read_melodies(DATA / "pickup.abc")

    text = abc_text([melody])

    assert text.splitlines()[:8] == [
        "%abc-2.1",
        "",
        "X:1",
        "T:Tune A",
        "M:4/4",
        "L:1/8",
        "K:G",
        "D | G2 B2 d2 B2 | c2 A2 F2 D2 | G6- Gz |]",
    ]


def test_tuplets_abc_is_written_as_tuplet_groups() -> None:
    [melody] = read_melodies(DATA / "tuplets.abc")

    text = body(abc_text([melody]))

    assert text == (
        "(3C2D2E2 (3F2G2A2 B4 c4 | (3c4B4A4 G8 | (3:2:2G4A2 C8 z4 | "
        "(5:4:5CDEFG G4 G8 |]"
    )


def test_meter_changes_are_inline_fields_and_time_signatures(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "inline_meter_key.abc")
    out = tmp_path / "meters.musicxml"

    text = body(abc_text([melody]))
    melody_to_musicxml(melody, out)

    assert [field for field in text.split() if field.startswith("[M:")] == [
        "[M:3/4]",
        "[M:6/8]",
        "[M:2/4]",
    ]
    times = [
        (measure.get("number"), time.findtext("beats"), time.findtext("beat-type"))
        for measure in ET.parse(out).getroot().iter("measure")
        for time in measure.iter("time")
    ]
    assert times == [("1", "4", "4"), ("2", "3", "4"), ("4", "6", "8"), ("5", "2", "4")]


def test_ties_across_barlines(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "ties_across_bar.abc")
    out = tmp_path / "ties.musicxml"

    melody_to_musicxml(melody, out)

    assert body(abc_text([melody])) == "E2 G2 c2- | c2 B2 A2 | G6- | G6- |\nG6 |]"
    ties = [
        (n.findtext("pitch/step"), [t.get("type") for t in n.findall("tie")])
        for n in ET.parse(out).getroot().iter("note")
    ]
    assert ties == [
        ("E", []),
        ("G", []),
        ("C", ["start"]),
        ("C", ["stop"]),
        ("B", []),
        ("A", []),
        ("G", ["start"]),
        ("G", ["stop", "start"]),
        ("G", ["stop"]),
    ]


def test_a_pickup_is_an_incomplete_implicit_measure(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    out = tmp_path / "pickup.musicxml"

    melody_to_musicxml(melody, out)

    root = ET.parse(out).getroot()
    first = next(root.iter("measure"))
    assert (first.get("number"), first.get("implicit")) == ("0", "yes")
    divisions = int(first.findtext("attributes/divisions"))
    durations = [int(d.text) for d in first.iter("duration")]
    assert F(sum(durations), divisions) == melody.pickup_length == F(1, 2)
    assert root.findtext("work/work-title") == "Tune A"


def test_a_rest_pickup_keeps_its_length(tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "rest_pickup.abc")
    out = tmp_path / "rest.musicxml"

    melody_to_musicxml(melody, out)

    assert body(abc_text([melody])).startswith("z | G2 A2 B2 c2 |")
    [again] = read_melodies(out)
    assert again.pickup_length == F(1, 2)
    assert again.bars[0].pickup


# -- spelling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_name", "pitches", "spelled"),
    [
        ("F major", [70, 65, 61, 66], [
            ("B", -1, 4), ("F", 0, 4), ("C", 1, 4), ("F", 1, 4),
        ]),
        ("Bb major", [70, 63, 68], [("B", -1, 4), ("E", -1, 4), ("A", -1, 4)]),
        ("D major", [66, 61, 70], [("F", 1, 4), ("C", 1, 4), ("A", 1, 4)]),
        ("E minor", [66, 63, 65], [("F", 1, 4), ("D", 1, 4), ("F", 0, 4)]),
        ("A minor", [68, 66, 70], [("G", 1, 4), ("F", 1, 4), ("B", -1, 4)]),
        ("G# minor", [67], [("F", 2, 4)]),
        ("Db major", [71, 59], [("C", -1, 5), ("C", -1, 4)]),
        (None, [61, 63, 66, 68, 70], [
            ("C", 1, 4), ("E", -1, 4), ("F", 1, 4), ("G", 1, 4), ("B", -1, 4),
        ]),
    ],
)  # fmt: skip
def test_pitches_are_spelled_in_the_key(
    key_name: str | None,
    pitches: list[int],
    spelled: list[tuple[str, int, int]],
    tmp_path: Path,
) -> None:
    notes = [Note(F(i, 2), F(1, 2), p) for i, p in enumerate(pitches)]
    melody = one_bar(notes, key_name)
    out = tmp_path / "spelled.musicxml"
    speller = Speller(parse_key(key_name))

    melody_to_musicxml(melody, out)

    assert [
        (s.letter, s.alter, s.octave) for s in map(speller.spell, pitches)
    ] == spelled
    assert musicxml_pitches(out) == spelled
    [again] = read_melodies(out)
    assert again.notes == melody.notes


def test_abc_accidentals_follow_the_key_signature() -> None:
    # F major: Bb and Eb are written plain and flat; D major: F# plain.
    f_major = one_bar([Note(F(i), F(1), p) for i, p in enumerate([70, 65, 63, 70])])
    f_major.key = "F major"
    d_major = one_bar([Note(F(i), F(1), p) for i, p in enumerate([66, 61, 65, 66])])
    d_major.key = "D major"

    assert body(abc_text([f_major])) == "B2 F2 _E2 B2 |]"
    assert body(abc_text([d_major])) == "F2 C2 =F2 ^F2 |]"
    for melody in (f_major, d_major):
        [again] = read_abc_text(abc_text([melody]))
        assert again.notes == melody.notes


def test_abc_accidentals_carry_through_the_bar_and_end_at_the_barline() -> None:
    # C major: F#4 F#4 F4 F#5 | F#4; every reading of ABC's carrying rules
    # (per octave, or per letter in all octaves) gives the same pitches.
    pitches = [66, 66, 65, 78, 66]
    notes = [Note(F(i), F(1), p) for i, p in enumerate(pitches)]
    bars = [Bar(1, F(0), F(4), "4/4"), Bar(2, F(4), F(4), "4/4")]
    melody = Melody("carry", notes, bars, key="C major")

    text = abc_text([melody])

    assert body(text) == "^F2 F2 =F2 ^f2 | ^F2 z6 |]"
    [again] = read_abc_text(text)
    assert again.notes == melody.notes


# -- rhythm ------------------------------------------------------------------------


def test_the_model_grid_of_sixteenths_and_eighth_triplets(tmp_path: Path) -> None:
    third, sixth = F(1, 3), F(1, 6)
    notes = [
        Note(F(0), third, 60),  # an eighth and a sixteenth, as a triplet
        Note(third, sixth, 62),
        Note(F(1, 2), F(1, 4), 64),  # two plain sixteenths
        Note(F(3, 4), F(1, 4), 65),
        Note(F(1), third, 67),  # eighth triplets
        Note(F(4, 3), third, 69),
        Note(F(5, 3), third, 71),
        Note(F(2), 2 * third, 72),  # quarter triplets, the last tied over
        Note(F(8, 3), F(4, 3) + F(4), 70),
    ]
    melody = one_bar(notes, "F major")
    out = tmp_path / "grid.musicxml"

    text = abc_text([melody])
    melody_to_musicxml(melody, out)

    assert body(text) == "(3:2:2C2DEF (3G2A2=B2 (3:2:2c4_B8- | B16 |]"
    for again in (read_abc_text(text)[0], read_melodies(out)[0]):
        assert again.notes == melody.notes
        assert [b.start for b in again.bars] == [F(0), F(4)]
    tuplets = [
        (n.findtext("time-modification/actual-notes"), n.findtext("type"))
        for n in ET.parse(out).getroot().iter("note")
        if n.find("time-modification") is not None
    ]
    assert tuplets == [
        ("3", "eighth"),
        ("3", "16th"),
        ("3", "eighth"),
        ("3", "eighth"),
        ("3", "eighth"),
        ("3", "quarter"),
        ("3", "half"),
    ]


def test_six_eight_quintuplets_and_long_notes_round_trip(tmp_path: Path) -> None:
    unit = F(3, 10)  # five in the time of three eighths
    notes = [Note(i * unit, unit, p) for i, p in enumerate([60, 62, 64, 65, 67])]
    notes.append(Note(F(3, 2), F(3, 2) + F(6), 67))  # tied over two bars
    bars = [Bar(1, F(0), F(3), "6/8"), Bar(2, F(3), F(3), "6/8")]
    bars.append(Bar(3, F(6), F(3), "6/8"))
    melody = Melody("compound", notes, bars, key="G major", tempo_qpm=90.0)
    out = tmp_path / "compound.musicxml"

    text = abc_text([melody])
    melody_to_musicxml(melody, out)

    assert body(text) == "(5:3:5CDE=FG G3- | G6- | G6 |]"
    for again in (read_abc_text(text)[0], read_melodies(out)[0]):
        assert_same_music(again, melody)


def test_a_note_past_the_last_bar_gets_bars_of_the_last_meter() -> None:
    melody = one_bar([Note(F(2), F(7), 60)], meter="3/4")

    measures = lay_out(melody)

    assert [(m.bar.start, m.bar.meter) for m in measures] == [
        (F(0), "3/4"),
        (F(3), "3/4"),
        (F(6), "3/4"),
    ]
    [again] = read_abc_text(abc_text([melody]))
    assert again.notes == melody.notes


@pytest.mark.parametrize(
    ("length", "values"),
    [
        (F(1), [F(1)]),
        (F(7, 2), [F(3), F(1, 2)]),
        (F(5), [F(4), F(1)]),
        (F(3, 4), [F(3, 4)]),
        (F(5, 8), [F(1, 2), F(1, 8)]),
        (F(16), [F(12), F(4)]),
    ],
)
def test_note_values(length: F, values: list[F]) -> None:
    assert note_values(length) == values


def test_note_values_refuses_lengths_off_the_binary_grid() -> None:
    with pytest.raises(ValueError, match="not a sum"):
        note_values(F(1, 3))


# -- tempo, keys, titles -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_name", "abc_key"),
    [
        ("G major", "K:G"),
        ("E minor", "K:Em"),
        ("Bb major", "K:Bb"),
        ("F# minor", "K:F#m"),
        ("A dorian", "K:ADor"),
        ("D mixolydian", "K:DMix"),
    ],
)
def test_keys_and_modes_round_trip(key_name: str, abc_key: str, tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    melody.key = key_name
    out = tmp_path / "key.musicxml"

    text = abc_text([melody])
    melody_to_musicxml(melody, out)

    assert abc_key in text.splitlines()
    for again in (read_abc_text(text)[0], read_melodies(out)[0]):
        assert again.key == key_name
        assert again.notes == melody.notes


@pytest.mark.parametrize(
    ("qpm", "field"), [(90.0, "Q:1/4=90"), (112.5, "Q:1/8=225"), (None, None)]
)
def test_tempo_round_trips(
    qpm: float | None, field: str | None, tmp_path: Path
) -> None:
    [melody] = read_melodies(DATA / "meter_6_8.abc")
    melody.tempo_qpm = qpm
    out = tmp_path / "tempo.musicxml"

    text = abc_text([melody])
    melody_to_musicxml(melody, out)

    assert [line for line in text.splitlines() if line.startswith("Q:")] == (
        [field] if field else []
    )
    assert read_abc_text(text)[0].tempo_qpm == qpm
    assert read_melodies(out)[0].tempo_qpm == qpm


def test_a_melody_without_key_has_no_key_signature_in_musicxml(tmp_path: Path) -> None:
    melody = one_bar([Note(F(0), F(4), 61)])
    out = tmp_path / "nokey.musicxml"

    melody_to_musicxml(melody, out)

    assert list(ET.parse(out).getroot().iter("key")) == []
    assert read_melodies(out)[0].key is None


# -- several melodies ----------------------------------------------------------------


def test_melodies_in_sequence_in_musicxml(tmp_path: Path) -> None:
    tunes = read_melodies(DATA / "multi_tune.abc")
    tunes += read_melodies(DATA / "pickup.abc")
    out = tmp_path / "book.musicxml"

    melodies_to_musicxml(tunes, out)

    [together] = read_melodies(out)
    # Like melodies_to_midi: each starts where the previous one's last bar ends,
    # a pickup padded to its full bar.
    offsets = [F(0), F(8), F(14), F(20)]
    assert together.notes == [
        replace(n, onset=n.onset + offset)
        for tune, offset in zip(tunes, offsets, strict=True)
        for n in tune.notes
    ]
    assert [(b.meter, b.start) for b in together.bars][5:8] == [
        ("6/8", F(17)),
        ("4/4", F(20)),
        ("4/4", F(24)),
    ]
    assert together.title == "4 melodies"
    root = ET.parse(out).getroot()
    words = [w.text for w in root.iter("words")]
    assert words == ["Tune C1", "Tune C2", "Tune C3", "Tune A"]
    fifths = [k.findtext("fifths") for k in root.iter("key")]
    assert fifths == ["0", "-1", "0", "1"]
    barlines = [b.findtext("bar-style") for b in root.iter("barline")]
    assert barlines == ["light-light", "light-light", "light-light", "light-heavy"]


def test_melodies_to_abc_writes_a_tunebook(tmp_path: Path) -> None:
    tunes = read_melodies(DATA / "multi_tune.abc")
    out = tmp_path / "book.abc"

    melodies_to_abc(tunes, out)

    again = read_melodies(out)
    assert [t.title for t in again] == ["Tune C1", "Tune C2", "Tune C3"]
    for tune, read_back in zip(tunes, again, strict=True):
        assert_same_music(read_back, tune)
        assert read_back.key == tune.key
    assert [line for line in out.read_text().splitlines() if line[:2] == "X:"] == [
        "X:1",
        "X:2",
        "X:3",
    ]


# -- errors and files ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".musicxml", ".abc"])
def test_bad_input_leaves_the_previous_file(suffix: str, tmp_path: Path) -> None:
    out = tmp_path / f"tune{suffix}"
    out.write_text("the previous version")
    melody = one_bar([Note(F(0), F(1), 128)])
    write = melody_to_musicxml if suffix == ".musicxml" else melody_to_abc

    with pytest.raises(ValueError, match="outside 0-127"):
        write(melody, out)
    with pytest.raises(ValueError, match="no melodies"):
        (melodies_to_musicxml if suffix == ".musicxml" else melodies_to_abc)([], out)

    assert out.read_text() == "the previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_failed_musicxml_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")
    out = tmp_path / "tune.musicxml"
    out.write_text("the previous version")

    def broken_replace(source: str, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("melodyvae.music.writing.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        melody_to_musicxml(melody, out)

    assert out.read_text() == "the previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.musicxml"]


@pytest.mark.parametrize("write", [melody_to_musicxml, melody_to_abc])
def test_a_missing_folder_is_an_os_error(write, tmp_path: Path) -> None:
    [melody] = read_melodies(DATA / "pickup.abc")

    with pytest.raises(FileNotFoundError):
        write(melody, tmp_path / "no" / "such" / "folder.out")


def test_a_rhythm_musicxml_cannot_hold_is_an_unsupported_error(
    tmp_path: Path,
) -> None:
    tiny = F(1, 1024)
    melody = one_bar([Note(F(0), tiny, 60), Note(tiny, F(4) - tiny, 62)])
    out = tmp_path / "tiny.musicxml"

    with pytest.raises(UnsupportedError, match="cannot be written as MusicXML"):
        melody_to_musicxml(melody, out)

    assert list(tmp_path.iterdir()) == []
    # ABC takes any length.
    assert read_abc_text(abc_text([melody]))[0].notes == melody.notes
