"""Tests for melodyvae.music.reading: one test per tricky input file in tests/data.

The expected values are those of the cases README (shared/cases), written out
exactly: times are Fractions of a quarter note, relative to the start of the bar.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import zipfile
from fractions import Fraction as F
from pathlib import Path

import mido
import music21
import pytest
from datafiles import READABLE_FILES

from melodyvae.errors import MelodyVAEWarning, ReadError
from melodyvae.music import reading
from melodyvae.music.melody import Bar, Melody
from melodyvae.music.reading import (
    MAX_BARS,
    SUPPORTED_SUFFIXES,
    read_abc_text,
    read_melodies,
)
from melodyvae.music.writing import melody_to_midi

DATA = Path(__file__).parent / "data"


def midi(name: str) -> int:
    """MIDI number of a pitch name like "F#4" (C4 = 60)."""
    return int(music21.pitch.Pitch(name).midi)


def read_one(name: str, **options: int) -> Melody:
    melodies = read_melodies(DATA / name, **options)
    assert len(melodies) == 1
    return melodies[0]


# Pitch names as the expected values spell them, by MIDI number.
PITCH_NAMES = {
    midi(f"{step}{octave}"): f"{step}{octave}"
    for octave in range(2, 8)
    for step in ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")
}


def bar_notes(melody: Melody, index: int) -> list[tuple[F, F, str]]:
    """(onset in the bar, duration, pitch name) of the notes starting in a bar."""
    bar = melody.bars[index]
    return [
        (n.onset - bar.start, n.duration, PITCH_NAMES[n.pitch])
        for n in melody.notes
        if bar.start <= n.onset < bar.end
    ]


def quarters(*names: str, start: F = F(0)) -> list[tuple[F, F, str]]:
    """Consecutive quarter notes from ``start``."""
    return [(start + i, F(1), name) for i, name in enumerate(names)]


def regular_bars(
    meter: str, length: F, count: int, *, pickup: bool = False
) -> list[Bar]:
    """Bars numbered as in a score: a pickup is bar 0, else the first bar is 1."""
    first_number = 0 if pickup else 1
    return [
        Bar(first_number + i, i * length, length, meter, pickup=pickup and i == 0)
        for i in range(count)
    ]


# ----------------------------------------------------------------------------------
# The shared cases


def test_pickup_abc_pads_bar_0_so_the_pickup_starts_at_3_5() -> None:
    melody = read_one("pickup.abc")

    assert melody.title == "Tune A"
    assert melody.key == "G major"
    assert melody.pickup_length == F(1, 2)
    assert melody.bars == regular_bars("4/4", F(4), 4, pickup=True)
    assert bar_notes(melody, 0) == [(F(7, 2), F(1, 2), "D4")]
    assert bar_notes(melody, 1) == quarters("G4", "B4", "D5", "B4")
    assert bar_notes(melody, 2) == quarters("C5", "A4", "F#4", "D4")
    # G4 for 3.5, then rest to the end of the last (padded, not pickup) bar.
    assert bar_notes(melody, 3) == [(F(0), F(7, 2), "G4")]


def test_multi_tune_abc_reads_three_tunes_and_ignores_free_text() -> None:
    tunes = read_melodies(DATA / "multi_tune.abc")

    assert [t.title for t in tunes] == ["Tune C1", "Tune C2", "Tune C3"]
    first, second, third = tunes
    eighths = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
    assert first.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(first, 0) == [(F(i, 2), F(1, 2), p) for i, p in enumerate(eighths)]
    assert bar_notes(first, 1) == quarters("C5", "G4", "E4", "C4")

    assert second.bars == regular_bars("3/4", F(3), 2)
    assert bar_notes(second, 0) == quarters("F4", "A4", "C5")
    assert bar_notes(second, 1) == [(F(0), F(2), "F5"), (F(2), F(1), "C5")]

    assert third.bars == regular_bars("6/8", F(3), 2)
    assert bar_notes(third, 0) == [
        (F(0), F(1), "A4"),
        (F(1), F(1, 2), "B4"),
        (F(3, 2), F(1), "C5"),
        (F(5, 2), F(1, 2), "D5"),
    ]
    assert bar_notes(third, 1) == [(F(0), F(3, 2), "E5"), (F(3, 2), F(3, 2), "A4")]


def test_tuplets_abc_keeps_exact_tuplet_times_and_bar_lengths() -> None:
    melody = read_one("tuplets.abc")

    assert melody.bars == regular_bars("4/4", F(4), 4)
    third = F(1, 3)
    assert bar_notes(melody, 0) == [
        (F(0), third, "C4"),
        (third, third, "D4"),
        (2 * third, third, "E4"),
        (F(1), third, "F4"),
        (F(4, 3), third, "G4"),
        (F(5, 3), third, "A4"),
        (F(2), F(1), "B4"),
        (F(3), F(1), "C5"),
    ]
    assert bar_notes(melody, 1) == [
        (F(0), F(2, 3), "C5"),
        (F(2, 3), F(2, 3), "B4"),
        (F(4, 3), F(2, 3), "A4"),
        (F(2), F(2), "G4"),
    ]
    # (3:2:2: G4 for 2/3, A4 for 1/3, C4 for 2, then a quarter rest.
    assert bar_notes(melody, 2) == [
        (F(0), F(2, 3), "G4"),
        (F(2, 3), F(1, 3), "A4"),
        (F(1), F(2), "C4"),
    ]
    # The quintuplet is read exactly; the reader never lengthens the bar.
    fifth = F(1, 5)
    assert bar_notes(melody, 3) == [
        (F(0), fifth, "C4"),
        (fifth, fifth, "D4"),
        (2 * fifth, fifth, "E4"),
        (3 * fifth, fifth, "F4"),
        (4 * fifth, fifth, "G4"),
        (F(1), F(1), "G4"),
        (F(2), F(2), "G4"),
    ]


def test_grace_notes_abc_drops_grace_notes_and_cuts_barless_tune() -> None:
    # Only one plain barline: music21 makes no Measure objects for this tune.
    melody = read_one("grace_notes.abc")

    assert melody.key == "D major"
    assert melody.bars == regular_bars("6/8", F(3), 2)
    assert bar_notes(melody, 0) == [
        (F(0), F(1), "A4"),
        (F(1), F(1, 2), "B4"),
        (F(3, 2), F(1), "F#5"),
        (F(5, 2), F(1, 2), "E5"),
    ]
    assert bar_notes(melody, 1) == [(F(0), F(3, 2), "D5"), (F(3, 2), F(3, 2), "E5")]
    pitches = [n.pitch for n in melody.notes]
    assert max(pitches) - min(pitches) == 9


def test_chords_in_melody_abc_takes_top_notes_and_ignores_chord_symbols() -> None:
    melody = read_one("chords_in_melody.abc")

    assert melody.bars == regular_bars("4/4", F(4), 3)
    assert bar_notes(melody, 0) == quarters("C5", "E5", "D5", "D5")
    assert bar_notes(melody, 1) == [
        (F(0), F(2), "E5"),
        (F(2), F(1), "F5"),
        (F(3), F(1), "A5"),
    ]
    assert bar_notes(melody, 2) == [(F(0), F(4), "C5")]


def test_ties_across_bar_abc_merges_tied_notes() -> None:
    melody = read_one("ties_across_bar.abc")

    assert melody.bars == regular_bars("3/4", F(3), 5)
    assert [len(bar_notes(melody, i)) for i in range(5)] == [3, 2, 1, 0, 0]
    # Bar 1 begins with the held C5: a hold, not an onset.
    assert bar_notes(melody, 1) == [(F(1), F(1), "B4"), (F(2), F(1), "A4")]
    c5 = [n for n in melody.notes if n.pitch == midi("C5")]
    g4 = [n for n in melody.notes if n.pitch == midi("G4")]
    assert [(n.onset, n.duration) for n in c5] == [(F(2), F(2))]
    assert [(n.onset, n.duration) for n in g4] == [(F(1), F(1)), (F(6), F(9))]


def test_meter_6_8_abc_bars_are_3_ql() -> None:
    melody = read_one("meter_6_8.abc")

    assert melody.bars == regular_bars("6/8", F(3), 3)
    assert bar_notes(melody, 0) == [
        (F(0), F(1, 2), "G4"),
        (F(1, 2), F(1, 2), "A4"),
        (F(1), F(1, 2), "B4"),
        (F(3, 2), F(1), "C5"),
        (F(5, 2), F(1, 2), "A4"),
    ]


def test_empty_abc_is_a_clear_error() -> None:
    with pytest.raises(ReadError, match=r"^empty\.abc: empty file$"):
        read_melodies(DATA / "empty.abc")


def test_type0_multichannel_mid_takes_channel_0_only() -> None:
    melody = read_one("type0_multichannel.mid")

    assert melody.title == "type0_multichannel"
    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == quarters("C5", "D5", "E5", "F5")
    # Not cut short by the bass's G4 note-off on channel 1.
    assert bar_notes(melody, 1) == [(F(0), F(4), "G4")]
    assert melody.tempo_qpm == 120.0


def test_type1_tracks_with_drums_mid_ignores_drums_and_bass() -> None:
    melody = read_one("type1_tracks_with_drums.mid")

    assert melody.bars == regular_bars("3/4", F(3), 2)
    assert bar_notes(melody, 0) == quarters("G4", "B4", "D5")
    assert bar_notes(melody, 1) == quarters("C5", "A4", "F#4")
    assert melody.key == "G major"
    assert melody.tempo_qpm == 100.0


def test_type1_tracks_with_drums_mid_part_1_is_the_bass() -> None:
    melody = read_one("type1_tracks_with_drums.mid", part=1)

    assert bar_notes(melody, 0) == [(F(0), F(3), "G2")]
    assert bar_notes(melody, 1) == [(F(0), F(3), "D2")]
    with pytest.raises(
        ReadError, match=r"has 2 melodic track\(s\)/channel\(s\); part=2"
    ):
        read_melodies(DATA / "type1_tracks_with_drums.mid", part=2)


def test_overlapping_same_pitch_mid_pairs_notes_first_in_first_out() -> None:
    melody = read_one("overlapping_same_pitch.mid")

    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == [
        (F(0), F(1, 2), "C4"),
        (F(1, 2), F(1), "C4"),
        (F(2), F(1), "D4"),
    ]
    assert bar_notes(melody, 1) == [(F(0), F(2), "G4")]


def test_no_time_signature_mid_assumes_4_4_with_a_warning() -> None:
    with pytest.warns(MelodyVAEWarning, match="no time signature: assumed 4/4"):
        melody = read_one("no_time_signature.mid")

    assert melody.warnings == ["no time signature: assumed 4/4"]
    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4", "F4")
    assert bar_notes(melody, 1) == quarters("G4", "A4", "B4", "C5")


def test_empty_0_bytes_mid_is_a_clear_error() -> None:
    with pytest.raises(ReadError, match=r"^empty_0_bytes\.mid: empty file$"):
        read_melodies(DATA / "empty_0_bytes.mid")


def test_truncated_mid_says_truncated() -> None:
    with pytest.raises(ReadError) as caught:
        read_melodies(DATA / "truncated.mid")

    assert str(caught.value) == (
        "truncated.mid: truncated MIDI file: it ends in the middle of its header "
        "or a track"
    )


def test_two_voices_one_part_musicxml_never_mixes_voices() -> None:
    melody = read_one("two_voices_one_part.musicxml")

    assert melody.title == "Tune Q"
    assert melody.bars == regular_bars("4/4", F(4), 3)
    assert bar_notes(melody, 0) == [(F(0), F(2), "C5"), (F(2), F(2), "D5")]
    assert bar_notes(melody, 1) == [(F(0), F(4), "E5")]
    assert bar_notes(melody, 2) == [
        (F(0), F(1), "C5"),
        (F(1), F(1), "B4"),
        (F(2), F(2), "C5"),
    ]


def test_two_voices_one_part_musicxml_voice_1_is_the_lower_voice() -> None:
    melody = read_one("two_voices_one_part.musicxml", voice=1)

    assert bar_notes(melody, 0) == quarters("E4", "F4", "G4", "A4")
    assert bar_notes(melody, 1) == [(F(2), F(2), "G4")]
    assert bar_notes(melody, 2) == [(F(2), F(2), "E4")]
    with pytest.raises(ReadError, match=r"has 2 voice\(s\); voice=2 requested"):
        read_melodies(DATA / "two_voices_one_part.musicxml", voice=2)


def test_pickup_implicit_measure_musicxml_shifts_the_pickup() -> None:
    melody = read_one("pickup_implicit_measure.musicxml")

    assert melody.title == "Tune S"
    assert melody.pickup_length == F(1)
    assert melody.bars == regular_bars("3/4", F(3), 3, pickup=True)
    assert bar_notes(melody, 0) == [(F(2), F(1), "G4")]
    assert bar_notes(melody, 1) == [(F(0), F(2), "C5"), (F(2), F(1), "E5")]
    assert bar_notes(melody, 2) == [(F(0), F(2), "D5")]


# ----------------------------------------------------------------------------------
# More ABC


def test_reel_2_2_abc_has_4_ql_cut_time_bars() -> None:
    melody = read_one("reel_2_2.abc")

    assert melody.bars == regular_bars("2/2", F(4), 4, pickup=True)
    assert bar_notes(melody, 0) == [(F(7, 2), F(1, 2), "A4")]
    assert bar_notes(melody, 1) == [
        (F(0), F(1), "D5"),
        (F(1), F(1, 2), "F#5"),
        (F(3, 2), F(1, 2), "D5"),
        (F(2), F(1, 2), "A4"),
        (F(5, 2), F(1, 2), "D5"),
        (F(3), F(1, 2), "F#5"),
        (F(7, 2), F(1, 2), "A4"),
    ]
    assert bar_notes(melody, 3) == [(F(0), F(4), "D5")]


def test_no_unit_length_abc_uses_the_meter_default() -> None:
    short_meter, long_meter = read_melodies(DATA / "no_unit_length.abc")

    # Below 3/4 the default unit is a sixteenth; from 3/4 on an eighth.
    assert [n.duration for n in short_meter.notes] == [F(1, 4)] * 8
    assert short_meter.bars == regular_bars("2/4", F(2), 1)
    assert [n.duration for n in long_meter.notes] == [F(1, 2)] * 6
    assert long_meter.bars == regular_bars("3/4", F(3), 1)


def test_latin1_title_abc_falls_back_to_latin_1() -> None:
    melody = read_one("latin1_title.abc")

    assert melody.title == "Café Reel"
    assert melody.warnings == ["not UTF-8: decoded as Latin-1"]
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4", "F4")


def test_no_barlines_abc_is_cut_into_bars_of_its_meter() -> None:
    melody = read_one("no_barlines.abc")

    assert melody.bars == regular_bars("3/4", F(3), 3)
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4")
    assert bar_notes(melody, 1) == quarters("F4", "G4", "A4")
    assert bar_notes(melody, 2) == [(F(0), F(1), "B4"), (F(1), F(2), "C5")]


def test_inline_meter_key_abc_changes_meter_key_and_unit_length() -> None:
    melody = read_one("inline_meter_key.abc")

    assert melody.key == "G major"
    assert [(b.meter, b.start, b.length) for b in melody.bars] == [
        ("4/4", F(0), F(4)),
        ("3/4", F(4), F(3)),
        ("3/4", F(7), F(3)),
        ("6/8", F(10), F(3)),
        ("2/4", F(13), F(2)),
    ]
    assert bar_notes(melody, 1) == quarters("F#5", "G5", "A5")
    # After [K:F], B is B flat; the body M:6/8 line and [L:1/4] take effect too.
    assert bar_notes(melody, 2) == [(F(0), F(1), "B-4"), (F(1), F(2), "C5")]
    assert bar_notes(melody, 3) == [
        (F(i, 2), F(1, 2), p)
        for i, p in enumerate(["A4", "B-4", "C5", "D5", "E5", "F5"])
    ]
    assert bar_notes(melody, 4) == quarters("A4", "B-4")


def test_key_change_line_abc_respells_the_notes_after_it() -> None:
    # A K: line in the tune body (not inline): after K:F, B is B flat.
    melody = read_one("key_change_line.abc")

    assert melody.key == "G major"
    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == quarters("F#4", "G4", "A4", "B4")
    assert bar_notes(melody, 1) == quarters("B-4", "C5", "D5", "B-4")


def test_key_none_abc_has_no_key() -> None:
    # music21 gives K:none a C major signature; the tune has no key at all.
    melody = read_one("key_none.abc")

    assert melody.key is None
    assert bar_notes(melody, 2) == [(F(0), F(2), "D5"), (F(2), F(2), "A4")]


def test_key_none_then_body_key_abc_takes_the_key_in_force_at_the_first_note() -> None:
    # The header's K:none is overridden by a body K:G before any note: f is F#.
    melody = read_one("key_none_then_body_key.abc")

    assert melody.key == "G major"
    assert bar_notes(melody, 0)[-1] == (F(3), F(1), "F#5")


def test_a_body_key_none_before_the_first_note_overrides_the_header() -> None:
    header = ["X:1", "T:t", "K:G"]
    assert reading._abc_without_key(reading._opening_fields(header, ["K:none", "GA|"]))
    # A K: after the first line of music is a key change, not the opening key.
    assert not reading._abc_without_key(
        reading._opening_fields(header, ["GA|", "K:none", "GA|"])
    )


@pytest.mark.parametrize(
    "field", ["K:none", "K: none", "K:None % no key", "K:none clef=bass", "K:HP"]
)
def test_abc_key_fields_that_name_no_key(field: str) -> None:
    assert reading._abc_without_key(["X:1", "T:t", field])
    assert not reading._abc_without_key(["X:1", "T:t", "K:Hp"])
    assert not reading._abc_without_key(["X:1", "T:t", "K:D"])


def test_key_highland_pipes_abc_without_and_with_signature() -> None:
    # K:HP: bagpipe notation without a signature (no key); K:Hp: the pipes'
    # signature of two sharps, so c and f sound C sharp and F sharp.
    assert read_one("key_highland_pipes.abc").key is None
    with_signature = read_one("key_highland_pipes_hp.abc")
    assert with_signature.key == "D major"
    assert bar_notes(with_signature, 1)[0] == (F(0), F(1, 2), "E5")
    assert bar_notes(with_signature, 1)[1] == (F(1, 2), F(1, 2), "C#5")


def test_two_voices_abc_reads_one_voice_at_a_time() -> None:
    upper = read_melodies(DATA / "two_voices.abc")
    lower = read_melodies(DATA / "two_voices.abc", voice=1)

    assert [n.pitch for n in upper[0].notes] == [
        midi(p) for p in "C5 D5 E5 F5 G5".split()
    ]
    assert [n.pitch for n in lower[0].notes] == [
        midi(p) for p in "C4 E4 G4 E4 C4".split()
    ]
    assert [n.pitch for n in upper[1].notes] == [midi(p) for p in "E5 D5 C5 C5".split()]
    assert [n.pitch for n in lower[1].notes] == [midi(p) for p in "C4 G3 C4 C4".split()]
    assert lower[1].bars == regular_bars("3/4", F(3), 2)


def test_two_voices_abc_without_the_voice_is_an_error() -> None:
    with pytest.raises(ReadError, match=r"^two_voices\.abc: none of its 2 tunes"):
        read_melodies(DATA / "two_voices.abc", voice=2)


def test_fermata_annotation_spacer_abc_keeps_every_note_in_place() -> None:
    # music21 alone drops the note after ">" and after H, and drops x rests.
    melody = read_one("fermata_annotation_spacer.abc")

    assert melody.bars == regular_bars("3/4", F(3), 3)
    assert bar_notes(melody, 0) == [
        (F(0), F(1), "G5"),
        (F(1), F(3, 4), "E5"),
        (F(7, 4), F(1, 4), "G5"),
        (F(2), F(3, 4), "F#5"),
        (F(11, 4), F(1, 4), "D5"),
    ]
    assert bar_notes(melody, 1) == [(F(1), F(2), "G4")]
    assert melody.warnings == []


def test_grace_in_tuplet_abc_keeps_the_tuplet_whole() -> None:
    # music21 alone counts the grace note as one of the three.
    melody = read_one("grace_in_tuplet.abc")

    assert melody.bars == regular_bars("2/4", F(2), 2)
    assert bar_notes(melody, 0) == [
        (F(0), F(1, 2), "D5"),
        (F(1, 2), F(1, 2), "G5"),
        (F(1), F(1, 3), "G5"),
        (F(4, 3), F(1, 3), "F#5"),
        (F(5, 3), F(1, 3), "G5"),
    ]
    assert bar_notes(melody, 1) == [(F(0), F(2), "G4")]


def test_file_header_fields_abc_apply_to_every_tune() -> None:
    first, second = read_melodies(DATA / "file_header_fields.abc")

    assert first.bars == regular_bars("3/4", F(3), 2)
    assert bar_notes(first, 0) == quarters("C4", "D4", "E4")
    assert second.bars == regular_bars("2/4", F(2), 2)
    assert bar_notes(second, 0) == quarters("C4", "D4")


def test_section_pickups_abc_joins_a_short_last_bar_and_the_next_pickup() -> None:
    melody, after_double_bar = read_melodies(
        DATA / "section_pickups.abc", expand_repeats=False
    )

    assert melody.bars == regular_bars("4/4", F(4), 8, pickup=True)
    assert bar_notes(melody, 0) == [(F(3), F(1), "D4")]
    # G6 :| |: d2  ->  one bar.
    assert bar_notes(melody, 3) == [(F(0), F(3), "G4"), (F(3), F(1), "D5")]
    # The first ending is short: padded with rest at its end.
    assert bar_notes(melody, 6) == [(F(0), F(3), "G4")]
    assert bar_notes(melody, 7) == [(F(0), F(4), "G4")]
    assert melody.warnings == []

    # A pickup after a double bar sits at the end of its bar.
    assert after_double_bar.pickup_length == 0
    assert after_double_bar.bars == regular_bars("4/4", F(4), 5)
    assert bar_notes(after_double_bar, 2) == [(F(3), F(1), "D5")]


def test_rest_pickup_abc_is_a_pickup_of_rest() -> None:
    melody = read_one("rest_pickup.abc")

    assert melody.pickup_length == F(1, 2)
    assert melody.bars == regular_bars("4/4", F(4), 3, pickup=True)
    assert bar_notes(melody, 0) == []
    assert bar_notes(melody, 1) == quarters("G4", "A4", "B4", "C5")


def test_rest_first_full_bar_abc_is_not_a_pickup() -> None:
    melody = read_one("rest_first_full_bar.abc")

    assert melody.pickup_length == 0
    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == quarters("G4", "A4", "B4", start=F(1))


def test_unparseable_tune_abc_skips_that_tune_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="melodyvae.music.reading"):
        melodies = read_melodies(DATA / "unparseable_tune.abc")

    assert [m.title for m in melodies] == ["Readable One", "Readable Three"]
    assert "unparseable_tune.abc X:2: music21 cannot parse this tune" in caplog.text


def test_abc_text_whose_only_tune_cannot_be_read_is_an_error() -> None:
    text = "X:7\nT:Broken\nM:2/4\nL:1/4\nK:C\nC/0 D|E2|]\n"

    with pytest.raises(ReadError, match=r"^broken\.abc X:7: music21 cannot parse"):
        read_abc_text(text, "some/folder/broken.abc")


def test_abc_text_without_x_line_is_one_tune_named_after_the_source() -> None:
    [melody] = read_abc_text("M:3/4\nL:1/4\nK:D\nd e f|a3|]\n", "untitled.abc")

    assert melody.title == "untitled (X:1)"
    assert melody.key == "D major"
    assert bar_notes(melody, 1) == [(F(0), F(3), "A5")]


def test_abc_text_with_only_free_text_has_no_tune() -> None:
    with pytest.raises(ReadError, match=r"^<abc>: no ABC tune found"):
        read_abc_text("just some words about tunes\n")


def test_blank_abc_text_is_empty() -> None:
    with pytest.raises(ReadError, match=r"^<abc>: empty file$"):
        read_abc_text("  \n\n")


# ----------------------------------------------------------------------------------
# More MIDI


def test_meter_change_key_tempo_mid_follows_the_time_signature_map() -> None:
    melody = read_one("meter_change_key_tempo.mid")

    assert melody.bars == [
        Bar(0, F(0), F(4), "4/4", pickup=True),
        Bar(1, F(4), F(3), "3/4"),
        Bar(2, F(7), F(3), "3/4"),
    ]
    assert melody.pickup_length == F(1, 2)
    assert bar_notes(melody, 0) == [(F(7, 2), F(1, 2), "F4")]
    assert bar_notes(melody, 1) == quarters("B-4", "D5", "F5")
    assert bar_notes(melody, 2) == [(F(0), F(2), "B-4"), (F(2), F(1), "A4")]
    assert melody.key == "Bb major"
    assert melody.tempo_qpm == 90.0


def test_humanised_timing_mid_snaps_near_grid_times_but_keeps_tuplets() -> None:
    melody = read_one("humanised_timing.mid")

    assert bar_notes(melody, 0) == [
        (F(0), F(1), "C4"),  # off at tick 478 -> 1 ql
        (F(1), F(1, 2), "D4"),  # on at tick 482 -> 1 ql
        (F(3, 2), F(1, 2), "E4"),  # on at tick 721 -> 1.5 ql
        (F(2), F(1, 5), "F4"),  # 96 ticks: an exact quintuplet
        (F(11, 5), F(1, 5), "G4"),
    ]
    assert melody.warnings == [
        "timing snapped to the grid: 4 note start(s)/end(s) moved by at most "
        "0.00417 ql (tolerance 1/24 ql)"
    ]


def test_note_without_off_mid_ends_the_note_with_its_track() -> None:
    melody = read_one("note_without_off.mid")

    # C4 is never switched off; D4's onset cuts it.
    assert bar_notes(melody, 0) == [(F(0), F(1), "C4"), (F(1), F(1), "D4")]
    assert melody.warnings == ["1 note(s) never switched off: ended with their track"]


def test_not_midi_mid_is_a_clear_error() -> None:
    with pytest.raises(ReadError, match=r"^not_midi\.mid: not a MIDI file"):
        read_melodies(DATA / "not_midi.mid")


def test_smpte_timing_mid_without_a_tempo_is_refused() -> None:
    with pytest.raises(
        ReadError,
        match=r"^smpte_timing\.mid: uses SMPTE time-code timing and has no tempo "
        r"event, so where its beats fall is unknown$",
    ):
        read_melodies(DATA / "smpte_timing.mid")


def test_smpte_with_tempo_mid_places_beats_by_its_tempo_map() -> None:
    # 25 frames x 40 ticks a second; at 100 qpm a quarter is 600 ticks. Notes
    # start and end up to 6 ticks (6 ms) off the beat.
    melody = read_one("smpte_with_tempo.mid")

    assert melody.bars == regular_bars("3/4", F(3), 2)
    assert bar_notes(melody, 0) == quarters("G4", "B4", "D5")
    assert bar_notes(melody, 1) == [(F(0), F(3), "C5")]
    assert melody.tempo_qpm == 100.0
    assert melody.warnings == [
        "SMPTE time-code timing (25 frames per second): beats placed by its tempo map",
        "timing snapped to the grid: 3 note start(s)/end(s) moved by at most "
        "0.0104 ql (tolerance 1/24 ql)",
    ]


def test_midi_has_no_voices() -> None:
    with pytest.raises(
        ReadError, match=r"^no_time_signature\.mid: MIDI files have no voices"
    ):
        read_melodies(DATA / "no_time_signature.mid", voice=1)


# ----------------------------------------------------------------------------------
# More MusicXML and kern


def test_percussion_part_first_musicxml_skips_percussion() -> None:
    melody = read_one("percussion_part_first.musicxml")

    assert melody.title == "Tune With Drums"
    assert melody.key == "F major"
    assert [(b.meter, b.start, b.length) for b in melody.bars] == [
        ("4/4", F(0), F(4)),
        ("3/4", F(4), F(3)),
    ]
    # Chord -> top note C5; the grace note and the chord symbol make no notes; the
    # tie across the barline gives one C5 of 3 ql.
    assert bar_notes(melody, 0) == [
        (F(0), F(1), "F4"),
        (F(1), F(1), "C5"),
        (F(2), F(3), "C5"),
    ]
    assert bar_notes(melody, 1) == [(F(1), F(1), "B-4"), (F(2), F(1), "A4")]
    with pytest.raises(ReadError, match=r"has 1 pitched part\(s\); part=1 requested"):
        read_melodies(DATA / "percussion_part_first.musicxml", part=1)


def test_two_spines_krn_part_0_is_the_top_staff() -> None:
    top = read_one("two_spines.krn")
    bottom = read_one("two_spines.krn", part=1)

    assert top.title == "Two Spines"
    assert top.bars == regular_bars("3/4", F(3), 2)
    assert bar_notes(top, 0) == quarters("E4", "F4", "G4")
    assert bar_notes(top, 1) == [(F(0), F(3), "A4")]
    assert bar_notes(bottom, 0) == quarters("C4", "D4", "E4")


# ----------------------------------------------------------------------------------
# Files and options


def test_unknown_suffix_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "tune.txt"
    path.write_text("X:1\n")

    with pytest.raises(ReadError) as caught:
        read_melodies(path)

    message = str(caught.value)
    assert message.startswith("tune.txt: unsupported file type (suffix '.txt')")
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"^nowhere\.mid: file not found"):
        read_melodies(tmp_path / "nowhere.mid")


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "PICKUP.ABC"
    path.write_bytes((DATA / "pickup.abc").read_bytes())

    assert read_melodies(path)[0].title == "Tune A"


def test_abc_has_no_parts() -> None:
    with pytest.raises(ReadError, match=r"^pickup\.abc: ABC files have no parts"):
        read_melodies(DATA / "pickup.abc", part=1)


def test_negative_part_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="part must be 0 or more"):
        read_melodies(DATA / "pickup.abc", part=-1)


@pytest.mark.parametrize("name", READABLE_FILES)
@pytest.mark.filterwarnings("ignore::melodyvae.errors.MelodyVAEWarning")
def test_every_readable_file_gives_sound_bars_and_notes(name: str) -> None:
    for melody in read_melodies(DATA / name):
        assert_sound(melody)


def assert_sound(melody: Melody) -> None:
    """Bars run from 0 without gaps and cover the notes; notes never overlap.

    Bars are numbered as in a score: a pickup is bar 0, the first full bar 1.
    """
    assert melody.notes, melody.title
    start = F(0)
    first_number = 0 if melody.pickup_length > 0 else 1
    for index, bar in enumerate(melody.bars):
        assert (bar.index, bar.start) == (first_number + index, start), melody.title
        assert bar.length > 0
        assert bar.pickup == (index == 0 and melody.pickup_length > 0)
        start = bar.end
    assert melody.notes[0].onset >= 0
    assert melody.notes[-1].end <= melody.bars[-1].end, melody.title
    for before, after in zip(melody.notes, melody.notes[1:], strict=False):
        assert before.end <= after.onset, (melody.title, before, after)
    for note in melody.notes:
        assert isinstance(note.onset, F) and isinstance(note.duration, F)
        assert note.duration > 0


def test_a_real_tunebook_from_the_music21_corpus_reads_soundly() -> None:
    path = Path(music21.__file__).parent / "corpus" / "airdsAirs" / "book1.abc"

    melodies = read_melodies(path)

    n_tunes = len(re.findall(r"(?m)^X:", path.read_text(encoding="utf-8")))
    assert len(melodies) == n_tunes == 200
    for melody in melodies:
        assert_sound(melody)
    meters = {bar.meter for melody in melodies for bar in melody.bars}
    assert {"2/2", "2/4", "3/4", "4/4", "6/8"} <= meters
    assert sum(melody.bars[0].pickup for melody in melodies) > 50


def test_zero_length_notes_mid_never_hide_the_real_notes() -> None:
    # Each quarter note is preceded by a zero-length note of the same pitch.
    melody = read_one("zero_length_notes.mid")
    assert [bar.index for bar in melody.bars] == [1, 2]
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4", "F4")
    assert bar_notes(melody, 1) == quarters("G4", "A4", "B4", "C5")


# ----------------------------------------------------------------------------------
# Hostile input: limits, and refusals that come at once


def test_huge_abc_note_is_too_long() -> None:
    text = "X:1\nM:4/4\nL:1/8\nK:C\nC999999|\n"

    with pytest.raises(
        ReadError,
        match=r"^huge_note\.abc X:1: too long: the music lasts 499999\.5 quarter notes "
        rf"\(125000 bars of 4/4\), more than the {MAX_BARS} bars a melody may have$",
    ):
        read_abc_text(text, "huge_note.abc")


def test_a_melody_of_max_bars_is_read_and_one_bar_more_is_not() -> None:
    # With L:1/4, a note of 4 * MAX_BARS quarters fills exactly MAX_BARS 4/4 bars.
    quarters = 4 * MAX_BARS
    [melody] = read_abc_text(f"X:1\nM:4/4\nL:1/4\nK:C\nC{quarters}|\n")
    assert len(melody.bars) == MAX_BARS

    with pytest.raises(
        ReadError, match=rf"too long: the music lasts {quarters + 4} quarter notes"
    ):
        read_abc_text(f"X:1\nM:4/4\nL:1/4\nK:C\nC{quarters + 4}|\n")


def test_huge_duration_musicxml_is_too_long() -> None:
    with pytest.raises(
        ReadError,
        match=r"^huge_duration\.musicxml: too long: measure 1 lasts 999999 quarter "
        r"notes \(250000 bars of 4/4\)",
    ):
        read_melodies(DATA / "huge_duration.musicxml")


def test_huge_delta_time_mid_is_too_long() -> None:
    # A rest of 2**27 ticks at 480 per quarter: about 70,000 bars.
    with pytest.raises(
        ReadError,
        match=r"^huge_delta_time\.mid: too long: it runs to 279622\.2667 quarter notes",
    ):
        read_melodies(DATA / "huge_delta_time.mid")


def test_abc_with_more_barlines_than_max_bars_is_refused_before_parsing() -> None:
    text = "X:1\nM:4/4\nL:1/4\nK:C\n" + "CDEF|" * (MAX_BARS + 1) + "\n"

    with pytest.raises(
        ReadError, match=rf"^<abc> X:1: too long: it has {MAX_BARS + 1} b"
    ):
        read_abc_text(text)


def test_musicxml_with_more_measures_than_max_bars_is_refused(tmp_path: Path) -> None:
    measure = '<measure number="1"><note><rest/><duration>4</duration></note></measure>'
    path = tmp_path / "long.musicxml"
    path.write_text(
        '<?xml version="1.0"?><score-partwise><part-list><score-part id="P1"/>'
        f'</part-list><part id="P1">{measure * (MAX_BARS + 1)}</part></score-partwise>'
    )

    with pytest.raises(ReadError, match=r"^long\.musicxml: too long: its parts have"):
        read_melodies(path)


def test_kern_with_more_barlines_than_max_bars_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.krn"
    path.write_text("**kern\n*M4/4\n" + "=\n1c\n" * (MAX_BARS + 1) + "*-\n")

    with pytest.raises(
        ReadError, match=rf"^long\.krn: too long: it has {MAX_BARS + 1}"
    ):
        read_melodies(path)


def test_huge_abc_meter_is_refused_before_music21_builds_it() -> None:
    with pytest.raises(
        ReadError,
        match=r"^<abc> X:1: meter M:999999/1 has 999999 beats, more than the 64 a bar",
    ):
        read_abc_text("X:1\nM:999999/1\nL:1/8\nK:C\nC|\n")


def test_meter_field_inside_an_abc_music_line_is_checked_too() -> None:
    # music21 reads "M:" as a field anywhere in a music line.
    with pytest.raises(ReadError, match=r"^<abc> X:1: meter M:999/4 has 999 beats"):
        read_abc_text("X:1\nM:4/4\nL:1/8\nK:C\nCD M:999/4\n")


def test_huge_meter_musicxml_is_refused() -> None:
    with pytest.raises(
        ReadError,
        match=r"^huge_meter\.musicxml: meter with <beats>999999</beats> has 999999 ",
    ):
        read_melodies(DATA / "huge_meter.musicxml")


def test_huge_meter_krn_is_refused() -> None:
    with pytest.raises(
        ReadError, match=r"^huge_meter\.krn: meter \*M999999/4 has 999999"
    ):
        read_melodies(DATA / "huge_meter.krn")


def test_additive_abc_meter_is_read_as_its_sum() -> None:
    # music21 alone reads "2+2+3" as 223 beats, and a longer sum never finishes.
    [melody] = read_abc_text("X:1\nM:2+2+3/8\nL:1/8\nK:C\nCDEFGAB|CDEFGAB|\n")
    assert melody.bars == regular_bars("7/8", F(7, 2), 2)

    [melody] = read_abc_text(f"X:1\nM:{'1+' * 11}1/8\nL:1/8\nK:C\nCDEFGAB|\n")
    assert melody.bars[0].meter == "12/8"


def test_abc_meter_with_bars_of_no_length_is_refused() -> None:
    with pytest.raises(
        ReadError, match=r"^<abc> X:1: meter 1/999999 has bars of no length$"
    ):
        read_abc_text("X:1\nM:1/999999\nK:C\nCD\n")


def test_abc_measure_far_past_its_bar_is_read_without_barlines() -> None:
    # music21 would give the 4995.5 ql overflow a 9991/8 time signature, which
    # takes hours to build.
    [melody] = read_abc_text("X:1\nM:4/4\nL:1/8\nK:C\nCD|z9999|\n")

    assert melody.warnings == [
        "measure 2 runs 4995.5 ql past its bar: read without barlines"
    ]
    assert len(melody.bars) == 1251
    assert bar_notes(melody, 0) == [(F(0), F(1, 2), "C4"), (F(1, 2), F(1, 2), "D4")]


def test_abc_tempo_of_zero_is_ignored() -> None:
    [melody] = read_abc_text("X:1\nM:4/4\nL:1/4\nQ:1/4=0\nK:C\nCDEF|\n")

    assert melody.tempo_qpm is None
    assert melody.warnings == ["tempo 0 ignored: not a usable tempo"]


def test_zero_tempo_mid_is_ignored() -> None:
    melody = read_one("zero_tempo.mid")

    assert melody.tempo_qpm is None
    assert melody.warnings == ["tempo of 0 microseconds per beat ignored"]


def test_slowest_tempo_mid_reads_a_tempo_midi_can_store(tmp_path: Path) -> None:
    melody = read_one("slowest_tempo.mid")

    assert melody.tempo_qpm == pytest.approx(3.5762789)
    assert mido.bpm2tempo(melody.tempo_qpm) == 0xFFFFFF
    melody_to_midi(melody, tmp_path / "again.mid")


@pytest.mark.parametrize(
    "name", ["pickup_text_divides_by_zero.mid", "pickup_text_longer_than_bar_0.mid"]
)
def test_unusable_pickup_text_mid_is_ignored(name: str) -> None:
    melody = read_one(name)

    assert melody.pickup_length == 0
    assert len(melody.warnings) == 1
    assert "ignored: not a pickup length within bar 0 (4 ql)" in melody.warnings[0]


def test_tiny_beat_time_signature_mid_is_ignored() -> None:
    # 4/2**40 would make bars of 2**-38 ql: a trillion bars for four quarters.
    melody = read_one("tiny_beat_time_signature.mid")

    assert melody.warnings == ["time signature 4/2**40 ignored"]
    assert melody.bars == regular_bars("4/4", F(4), 1)


def test_zero_ticks_per_beat_mid_is_corrupt() -> None:
    with pytest.raises(
        ReadError,
        match=r"^zero_ticks_per_beat\.mid: corrupt MIDI file \(0 ticks per beat\)$",
    ):
        read_melodies(DATA / "zero_ticks_per_beat.mid")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "pipe.mid"
    os.mkfifo(path)

    def let_a_blocked_reader_go() -> None:
        # Opening the pipe for writing ends a reader's wait (so a regression fails
        # instead of hanging); without a reader it fails at once.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    timer = threading.Timer(5.0, let_a_blocked_reader_go)
    timer.start()
    try:
        with pytest.raises(
            ReadError, match=r"^pipe\.mid: is a named pipe, not a regular file"
        ):
            read_melodies(path)
    finally:
        timer.cancel()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_refused(tmp_path: Path) -> None:
    # Reading /dev/zero never ends.
    path = tmp_path / "zero.mid"
    path.symlink_to("/dev/zero")

    with pytest.raises(
        ReadError, match=r"^zero\.mid: is a character device, not a regular file"
    ):
        read_melodies(path)


def test_file_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)

    with pytest.raises(
        ReadError,
        match=r"^multi_tune\.abc: file too large \(266 bytes; the limit is 100 bytes",
    ):
        read_melodies(DATA / "multi_tune.abc")


def test_path_with_a_nul_character_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"^bad\x00name\.abc: invalid path"):
        read_melodies(tmp_path / "bad\0name.abc")


def test_mxl_that_is_not_a_zip_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.mxl"
    path.write_bytes((DATA / "pickup_implicit_measure.musicxml").read_bytes())

    with pytest.raises(
        ReadError,
        match=r"^plain\.mxl: not a readable compressed MusicXML file \(BadZipFile",
    ):
        read_melodies(path)


def test_mxl_that_unpacks_past_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 1000)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("score.xml", b" " * 5000)
    path = tmp_path / "bomb.mxl"
    path.write_bytes(packed.getvalue())

    with pytest.raises(
        ReadError, match=r"^bomb\.mxl: unpacks to more than 1000 bytes$"
    ):
        read_melodies(path)


# ----------------------------------------------------------------------------------
# Repeats, endings and other real-file shapes


def test_repeats_and_endings_abc_are_read_in_played_order() -> None:
    simple, endings, implied = read_melodies(DATA / "repeats_and_endings.abc")

    # |: A :| -> A A
    a, b = quarters("C4", "D4", "E4", "F4"), quarters("G4", "A4", "B4", "C5")
    assert simple.bars == regular_bars("4/4", F(4), 4)
    assert [bar_notes(simple, i) for i in range(4)] == [a, b, a, b]

    # D |: A |1 B :|2 C |] -> D A B A C; the pickup stays bar 0, and the first
    # ending's short bar is padded with rest.
    assert endings.pickup_length == F(1)
    assert endings.bars == regular_bars("3/4", F(3), 5, pickup=True)
    assert bar_notes(endings, 0) == [(F(2), F(1), "D4")]
    assert bar_notes(endings, 1) == quarters("G4", "A4", "B4")
    assert bar_notes(endings, 2) == [(F(0), F(2), "C5"), (F(2), F(1), "D4")]
    assert bar_notes(endings, 3) == quarters("G4", "A4", "B4")
    assert bar_notes(endings, 4) == [(F(0), F(3), "D5")]

    # A :| B :| -> A A B B: the second :| goes back to the first, not the start.
    assert [bar_notes(implied, i) for i in range(4)] == [
        quarters("C4", "D4"),
        quarters("C4", "D4"),
        quarters("E4", "F4"),
        quarters("E4", "F4"),
    ]
    assert all(not melody.warnings for melody in (simple, endings, implied))


def test_repeats_and_endings_abc_as_written_keeps_each_bar_once() -> None:
    simple, endings, implied = read_melodies(
        DATA / "repeats_and_endings.abc", expand_repeats=False
    )

    assert len(simple.bars) == 2
    assert endings.bars == regular_bars("3/4", F(3), 4, pickup=True)
    assert bar_notes(endings, 2) == [(F(0), F(2), "C5"), (F(2), F(1), "D4")]
    assert bar_notes(endings, 3) == [(F(0), F(3), "D5")]
    assert len(implied.bars) == 2


def test_repeats_and_endings_musicxml_are_read_in_played_order() -> None:
    # Written (music21): G4 A4 B4 |: C5 D5 E5 |1 F5 (3) :|2 G5 (3) |] in 3/4.
    melody = read_one("repeats_and_endings.musicxml")
    written = read_one("repeats_and_endings.musicxml", expand_repeats=False)

    section = quarters("C5", "D5", "E5")
    assert melody.bars == regular_bars("3/4", F(3), 5)
    assert [bar_notes(melody, i) for i in range(5)] == [
        quarters("G4", "A4", "B4"),
        section,
        [(F(0), F(3), "F5")],
        section,
        [(F(0), F(3), "G5")],
    ]
    assert len(written.bars) == 4
    assert bar_notes(written, 3) == [(F(0), F(3), "G5")]


def test_common_and_cut_time_abc_are_4_4_and_2_2() -> None:
    common, cut = read_melodies(DATA / "common_and_cut_time.abc")

    assert common.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(common, 1) == quarters("G4", "A4", "B4", "C5")
    assert cut.bars == regular_bars("2/2", F(4), 2)
    assert bar_notes(cut, 0) == quarters("C5", "B4", "A4", "G4")


def test_pitch_above_127_abc_is_moved_into_midi_range_with_a_warning() -> None:
    # c''''' is C10, MIDI 132: music21 alone folds it to 120 without a word.
    melody = read_one("pitch_above_127.abc")

    assert [n.pitch for n in melody.notes] == [120, 120, 127, 120]
    assert melody.warnings == [
        "1 note(s) outside MIDI's 0-127 (MIDI 132) moved by octaves into it"
    ]


def test_pitch_above_127_abc_never_transposes_out_of_the_model_window() -> None:
    # Training transposes bars at random (training.make_batch_maker) within the
    # bounds of tokens.transposition_bounds: a bar at the top of MIDI cannot go up.
    from melodyvae.music.tokens import (
        Vocabulary,
        melody_to_bar_tokens,
        transpose_tokens,
        transposition_bounds,
    )

    vocab = Vocabulary(pitch_min=0, pitch_max=127)
    [tokens] = melody_to_bar_tokens(read_one("pitch_above_127.abc"), vocab)
    bars = tokens[None]
    down, up = transposition_bounds(bars, vocab)
    assert (int(down[0]), int(up[0])) == (-120, 0)
    moved = transpose_tokens(bars, down, vocab)
    pitches = [vocab.token_to_pitch(t) for t in moved[0] if t >= 2]
    assert min(pitches) == 0 and max(pitches) == 7


def test_two_parts_musicxml_reads_each_part_at_sounding_pitch() -> None:
    flute = read_one("two_parts.musicxml")
    # The clarinet in B-flat is written D4 E4 F#4 G4 | A4, a tone above its sound.
    clarinet = read_one("two_parts.musicxml", part=1)

    assert bar_notes(flute, 0) == quarters("C5", "D5", "E5", "F5")
    assert bar_notes(clarinet, 0) == quarters("C4", "D4", "E4", "F4")
    assert bar_notes(clarinet, 1) == [(F(0), F(4), "G4")]
    with pytest.raises(ReadError, match=r"has 2 pitched part\(s\); part=2 requested"):
        read_melodies(DATA / "two_parts.musicxml", part=2)


def test_running_status_mid_reads_note_offs_without_status_bytes() -> None:
    # One track: note-offs are note-ons of velocity 0 sent under running status.
    melody = read_one("running_status.mid")

    assert melody.bars == regular_bars("4/4", F(4), 1)
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4", "F4")


def test_meter_change_on_other_track_mid_applies_to_the_melody() -> None:
    # Track 0 holds only a tempo; 3/4 is on the melody track, and the change to
    # 2/4 (with a faster tempo) on the bass track.
    melody = read_one("meter_change_on_other_track.mid")

    assert melody.bars == [Bar(1, F(0), F(3), "3/4"), Bar(2, F(3), F(2), "2/4")]
    assert bar_notes(melody, 0) == quarters("G4", "B4", "D5")
    assert bar_notes(melody, 1) == quarters("C5", "D5")
    assert melody.tempo_qpm == 100.0
    assert melody.warnings == []


def test_high_resolution_15360_mid_snaps_humanised_times_and_says_so() -> None:
    # 15360 ticks per quarter; notes start and end up to 200 ticks off the beat,
    # and an exact eighth triplet (5120 ticks) with one start 7 ticks late.
    melody = read_one("high_resolution_15360.mid")

    assert melody.bars == regular_bars("4/4", F(4), 2)
    assert bar_notes(melody, 0) == quarters("C4", "D4", "E4", "F4")
    third = F(1, 3)
    assert bar_notes(melody, 1) == [
        (F(0), third, "G4"),
        (third, third, "A4"),
        (2 * third, third, "B4"),
        (F(1), F(3), "C5"),
    ]
    assert melody.warnings == [
        "timing snapped to the grid: 8 note start(s)/end(s) moved by at most "
        "0.013 ql (tolerance 1/24 ql)"
    ]


def test_swung_timing_mid_keeps_triplet_swing_and_leaves_light_swing_off_grid() -> None:
    from melodyvae.music.measure import FULL_RANGE
    from melodyvae.music.tokens import BarSkipped, melody_to_bar_tokens

    melody = read_one("swung_timing.mid")

    # Bar 1 swings 2:1, which is the triplet grid; bar 2 swings 60:40 (288 of 480
    # ticks), 0.067 ql from the nearest slot: beyond the snapping tolerance.
    pairs = [("C4", "D4"), ("E4", "F4"), ("G4", "A4"), ("B4", "C5")]
    assert bar_notes(melody, 0) == [
        note
        for beat, (long, short) in enumerate(pairs)
        for note in ((beat, F(2, 3), long), (beat + F(2, 3), F(1, 3), short))
    ]
    assert bar_notes(melody, 1)[:2] == [(F(0), F(3, 5), "C4"), (F(3, 5), F(2, 5), "D4")]
    assert melody.warnings == []
    first, second = melody_to_bar_tokens(melody, FULL_RANGE)
    assert not isinstance(first, BarSkipped)
    assert isinstance(second, BarSkipped)
    assert str(second) == "off-grid onset: MIDI 62 at 0.6 ql"


def test_drums_only_mid_is_a_clear_error() -> None:
    with pytest.raises(ReadError, match=r"^drums_only\.mid: only drum notes$"):
        read_melodies(DATA / "drums_only.mid")


def test_corrupt_track_mid_names_the_problem() -> None:
    # A valid header, then a track whose first event has no status byte.
    with pytest.raises(ReadError) as caught:
        read_melodies(DATA / "corrupt_track.mid")

    assert str(caught.value) == (
        "corrupt_track.mid: corrupt MIDI file "
        "(OSError: running status without last_status)"
    )
