"""Editing whole tunes (``melodyvae edit``) and what the written MIDI keeps.

The tune is a real reel from Ryan's Mammoth Collection (a one-beat pickup, then
bars of 2/2 in G major, MIDI 55-72); the model is the tiny one of
``conftest.py`` (trained on reels; pitch window MIDI 48-96).
"""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction as F
from pathlib import Path

import mido
import pretty_midi
import pytest
from click.testing import CliRunner

from melodyvae.cli import cli
from melodyvae.music.melody import Bar, Melody, Note
from melodyvae.music.reading import read_melodies
from melodyvae.music.writing import melody_to_midi

DATA = Path(__file__).parent / "data"
REEL = DATA / "ryans_mammoth_reels" / "BanjoReel.abc"
WALTZ = DATA / "ties_across_bar.abc"


def reel() -> Melody:
    [melody] = read_melodies(REEL)
    return melody


def run(tiny_model, *args: str):
    # Wide enough that rich does not wrap the bar table.
    args = [*args, "-c", str(tiny_model["stem"])]
    return CliRunner().invoke(cli, args, env={"COLUMNS": "200"})


def bar_contents(melody: Melody) -> list[tuple[str, list[tuple[F, F, int]]]]:
    """Per bar: its meter and the notes sounding in it, cut at its barlines, as
    (start, end, pitch) from the barline."""
    contents = []
    for bar in melody.bars:
        notes = [
            (
                max(n.onset, bar.start) - bar.start,
                min(n.end, bar.end) - bar.start,
                n.pitch,
            )
            for n in melody.notes
            if n.onset < bar.end and n.end > bar.start
        ]
        contents.append((bar.meter, notes))
    return contents


def transposed(melody: Melody, semitones: int) -> Melody:
    notes = [Note(n.onset, n.duration, n.pitch + semitones) for n in melody.notes]
    return replace(melody, notes=notes)


# -- --bars ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "selected"),
    [("5-8", {5, 6, 7, 8}), ("3", {3}), ("1-4,9-12", {1, 2, 3, 4, 9, 10, 11, 12})],
)
def test_bars_outside_the_selection_are_identical(tiny_model, tmp_path, spec, selected):
    out = tmp_path / "edited.mid"
    args = ["edit", str(REEL), "--bars", spec, "--attr", "note_density", "3"]

    result = run(tiny_model, *args, "-o", str(out))

    assert result.exit_code == 0, result.output
    original = reel()
    assert f"edited {len(selected)} of {len(original.bars)} bars" in result.output
    [edited] = read_melodies(out)
    assert edited.bars == original.bars
    assert edited.pickup_length == original.pickup_length == 1
    before, after = bar_contents(original), bar_contents(edited)
    kept = [bar.index for bar in original.bars if bar.index not in selected]
    assert [after[i] for i in kept] == [before[i] for i in kept]
    assert any(after[i] != before[i] for i in selected)


def test_the_pickup_and_the_final_bar_are_kept(tiny_model, tmp_path):
    out = tmp_path / "edited.mid"

    result = run(
        tiny_model, "edit", str(REEL), "--attr", "contour", "2", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    n_bars = len(reel().bars)
    assert f"edited {n_bars - 2} of {n_bars} bars" in result.output
    assert "kept: pickup bar" in result.output and "kept: final bar" in result.output
    before = bar_contents(reel())
    after = bar_contents(read_melodies(out)[0])
    assert after[0] == before[0] and after[-1] == before[-1]
    for bars, reason in (("0", "pickup bar"), (str(n_bars - 1), "final bar")):
        refused = tmp_path / f"bar{bars}.mid"
        args = ["edit", str(REEL), "--bars", bars, "--attr", "contour", "2"]
        result = run(tiny_model, *args, "-o", str(refused))
        assert result.exit_code == 1
        assert f"no bar this model can edit ({reason})" in result.output
        assert not refused.exists()


def test_help_says_how_bars_are_numbered():
    result = CliRunner().invoke(cli, ["edit", "--help"])
    text = " ".join(result.output.split())
    assert "pickup is bar 0, the first full bar is bar 1" in text
    assert "1-4,9-12" in text


# -- the model's pitch window -----------------------------------------------------


def test_a_tune_below_the_window_is_moved_up_for_the_model_and_back(
    tiny_model, tmp_path
):
    original = reel()
    low = tmp_path / "low.mid"  # MIDI 31-48: every bar outside 48-96
    melody_to_midi(transposed(original, -24), low)
    args = ["--attr", "note_density", "2", "--attr", "contour", "-1"]

    from_low = run(tiny_model, "edit", str(low), *args, "-o", str(tmp_path / "a.mid"))
    from_reel = run(tiny_model, "edit", str(REEL), *args, "-o", str(tmp_path / "b.mid"))

    assert from_low.exit_code == 0, from_low.output
    assert from_reel.exit_code == 0, from_reel.output
    line = (
        "outside the model's pitch window (MIDI 48-96): moved bars "
        f"1-{len(original.bars) - 2} up 2 octaves for the model, and back in the output"
    )
    assert line in " ".join(from_low.output.split())
    assert "pitch window" not in from_reel.output
    [edited_low] = read_melodies(tmp_path / "a.mid")
    [edited_reel] = read_melodies(tmp_path / "b.mid")
    # The model saw the same bars, so the edits are the same, two octaves apart.
    assert edited_low.notes == transposed(edited_reel, -24).notes
    assert edited_low.bars == original.bars
    before = bar_contents(transposed(original, -24))
    assert bar_contents(edited_low)[0] == before[0]
    assert bar_contents(edited_low)[-1] == before[-1]


def test_a_bar_wider_than_the_window_is_kept_and_reported(tiny_model, tmp_path):
    original = reel()
    bar3 = original.bars[3]
    # Bar 3's first note moved down so far that the bar spans more than the
    # window's four octaves: no octave fits it.
    in_bar3 = [n for n in original.notes if bar3.start <= n.onset < bar3.end]
    low_note = replace(in_bar3[0], pitch=max(n.pitch for n in in_bar3[1:]) - 49)
    notes = [low_note if n is in_bar3[0] else n for n in original.notes]
    wide = tmp_path / "wide.mid"
    melody_to_midi(replace(original, notes=notes), wide)
    out = tmp_path / "edited.mid"

    result = run(
        tiny_model, "edit", str(wide), "--attr", "contour", "2", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    n_bars = len(original.bars)
    assert f"edited {n_bars - 3} of {n_bars} bars" in result.output
    text = " ".join(result.output.split())
    assert "do not fit the model's pitch window MIDI 48-96, in any octave" in text
    assert (
        bar_contents(read_melodies(out)[0])[3]
        == bar_contents(read_melodies(wide)[0])[3]
    )


# -- what the written MIDI keeps ----------------------------------------------------


def reel_with_a_waltz_inside() -> Melody:
    """The reel with two 3/4 bars of a real waltz between its bars 8 and 9, at 96
    quarter notes per minute, for a violin (program 40)."""
    original = reel()
    [waltz] = read_melodies(WALTZ)
    cut = original.bars[9].start
    inserted = [b for b in waltz.bars if not b.pickup][:2]
    begin, length = inserted[0].start, sum(b.length for b in inserted)
    notes = [
        Note(n.onset, min(n.end, cut) - n.onset, n.pitch)
        for n in original.notes
        if n.onset < cut
    ]
    notes += [
        Note(n.onset - begin + cut, min(n.end, begin + length) - n.onset, n.pitch)
        for n in waltz.notes
        if begin <= n.onset < begin + length
    ]
    notes += [
        Note(n.onset + length, n.duration, n.pitch)
        for n in original.notes
        if n.onset >= cut
    ]
    bars = list(original.bars[:9])
    bars += [Bar(0, b.start - begin + cut, b.length, b.meter) for b in inserted]
    bars += [replace(b, start=b.start + length) for b in original.bars[9:]]
    return replace(
        original,
        notes=notes,
        bars=bars,
        tempo_qpm=96.0,
        program=40,
        title="Banjo waltz",
    )


def midi_facts(path: Path) -> dict:
    """Tempo, time and key signatures, program and first note, read with mido."""
    midi = mido.MidiFile(path)
    facts: dict = {"tempos": [], "meters": [], "keys": [], "programs": []}
    first_note = None
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                facts["tempos"].append((tick, message.tempo))
            elif message.type == "time_signature":
                facts["meters"].append((tick, message.numerator, message.denominator))
            elif message.type == "key_signature":
                facts["keys"].append((tick, message.key))
            elif message.type == "program_change":
                facts["programs"].append((tick, message.channel, message.program))
            elif message.type == "note_on" and message.velocity > 0:
                if first_note is None or tick < first_note:
                    first_note = tick
    # In quarter notes, so files of different resolutions compare.
    # A tiny model may decode a bar of rests: then there is no first note.
    facts["first_note"] = (
        None if first_note is None else F(first_note, midi.ticks_per_beat)
    )
    for name in ("tempos", "meters", "keys", "programs"):
        facts[name] = [
            (F(tick, midi.ticks_per_beat), *rest) for tick, *rest in facts[name]
        ]
    return facts


def test_edit_keeps_tempo_meters_key_pickup_and_instrument(tiny_model, tmp_path):
    tune = tmp_path / "banjo_waltz.mid"
    melody = reel_with_a_waltz_inside()
    melody_to_midi(melody, tune)
    out = tmp_path / "edited.mid"

    result = run(
        tiny_model, "edit", str(tune), "--attr", "note_density", "2", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    assert "kept: meter 3/4" in " ".join(result.output.split())
    facts = midi_facts(out)
    assert facts == midi_facts(tune)
    assert facts["tempos"] == [(0, mido.bpm2tempo(96))]
    # 2/2 from bar 0; 3/4 for the two waltz bars after bar 8; 2/2 again.
    assert facts["meters"] == [(0, 2, 2), (36, 3, 4), (42, 2, 2)]
    assert facts["keys"] == [(0, "G")]
    assert facts["programs"] == [(0, 0, 40)]
    # The pickup is the end of a full bar 0: its one quarter starts at 3 ql, and
    # the first downbeat is the barline at 4 ql.
    assert facts["first_note"] == 3

    # The same, as pretty_midi reads it (seconds at 96 qpm).
    midi = pretty_midi.PrettyMIDI(str(out))
    seconds = 60 / 96
    times, tempi = midi.get_tempo_changes()
    assert list(times) == [0] and tempi == pytest.approx([96])
    assert [
        (ts.numerator, ts.denominator, round(ts.time / seconds, 6))
        for ts in midi.time_signature_changes
    ] == [(2, 2, 0), (3, 4, 36), (2, 2, 42)]
    assert [k.key_number for k in midi.key_signature_changes] == [
        pretty_midi.key_name_to_key_number("G Major")
    ]
    [instrument] = midi.instruments
    assert instrument.program == 40 and not instrument.is_drum
    assert min(n.start for n in instrument.notes) == pytest.approx(3 * seconds)
    assert midi.get_downbeats()[1] == pytest.approx(4 * seconds)

    [again] = read_melodies(out)
    assert (again.pickup_length, again.program, again.tempo_qpm) == (1, 40, 96)
    assert again.bars == melody.bars


def test_edit_of_an_abc_tune_writes_its_pickup_meter_and_key(tiny_model, tmp_path):
    out = tmp_path / "edited.mid"

    result = run(
        tiny_model, "edit", str(REEL), "--attr", "contour", "1", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    facts = midi_facts(out)
    # ABC names no tempo or instrument: 120 qpm and a piano.
    assert facts["tempos"] == [(0, mido.bpm2tempo(120))]
    assert facts["meters"] == [(0, 2, 2)]
    assert facts["keys"] == [(0, "G")]
    assert facts["programs"] == [(0, 0, 0)]
    assert facts["first_note"] == 3


def test_interpolate_keeps_the_tempo_key_meter_and_instrument_of_a(
    tiny_model, tmp_path
):
    tune = tmp_path / "banjo_waltz.mid"
    melody_to_midi(reel_with_a_waltz_inside(), tune)
    out = tmp_path / "path"

    result = run(
        tiny_model,
        "interpolate",
        f"{tune}:2",
        f"{tune}:5",
        "--steps",
        "3",
        "-o",
        str(out),
    )

    assert result.exit_code == 0, result.output
    for path in [out / "step_01.mid", out / "all_steps.mid"]:
        facts = midi_facts(path)
        assert facts["tempos"][0] == (0, mido.bpm2tempo(96))
        assert {m[1:] for m in facts["meters"]} == {(2, 2)}
        assert {k for _, k in facts["keys"]} == {"G"}
        assert facts["programs"] == [(0, 0, 40)]


def test_sample_writes_the_models_meter_at_120_qpm_for_a_piano(tiny_model, tmp_path):
    out = tmp_path / "samples"
    meter = json.loads(tiny_model["stem"].with_suffix(".json").read_text())["meters"][0]
    numerator, denominator = map(int, meter.split("/"))

    # Sampled at temperature 1, so that even the tiny model writes notes.
    result = run(tiny_model, "sample", "--n", "2", "--temperature", "1", "-o", str(out))

    assert result.exit_code == 0, result.output
    facts = midi_facts(out / "sample_01.mid")
    assert facts["tempos"] == [(0, mido.bpm2tempo(120))]
    assert facts["meters"] == [(0, numerator, denominator)]
    assert facts["keys"] == []
    assert facts["programs"] == [(0, 0, 0)]
    midi = pretty_midi.PrettyMIDI(str(out / "all_samples.mid"))
    # Each sample is a melody of its own, with its own time signature.
    assert [(t.numerator, t.denominator) for t in midi.time_signature_changes] == [
        (numerator, denominator)
    ] * 2
    bar_seconds = numerator * 4 / denominator * 60 / 120
    assert list(midi.get_downbeats())[:2] == pytest.approx([0, bar_seconds])
    assert [i.program for i in midi.instruments] == [0]
