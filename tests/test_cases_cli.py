"""Every tricky case file through ``melodyvae attributes``, as a user would run it.

The expected values come from the case descriptions: bar numbers (a pickup is bar
0), meters, and the onsets per bar; broken files give one line and exit 1.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from melodyvae.cli import cli

DATA = Path(__file__).parent / "data"

# file → per tune, a list of (bar number, meter, note density or None if skipped)
EXPECTED_BARS = {
    "pickup.abc": [[(0, "4/4", 1), (1, "4/4", 4), (2, "4/4", 4), (3, "4/4", 1)]],
    "multi_tune.abc": [
        [(1, "4/4", 8), (2, "4/4", 4)],
        [(1, "3/4", 3), (2, "3/4", 2)],
        [(1, "6/8", 4), (2, "6/8", 2)],
    ],
    "tuplets.abc": [[(1, "4/4", 8), (2, "4/4", 4), (3, "4/4", 3), (4, "4/4", None)]],
    "grace_notes.abc": [[(1, "6/8", 4), (2, "6/8", 2)]],
    "chords_in_melody.abc": [[(1, "4/4", 4), (2, "4/4", 3), (3, "4/4", 1)]],
    "ties_across_bar.abc": [
        [(1, "3/4", 3), (2, "3/4", 2), (3, "3/4", 1), (4, "3/4", 0), (5, "3/4", 0)]
    ],
    "meter_6_8.abc": [[(1, "6/8", 5), (2, "6/8", "any"), (3, "6/8", "any")]],
    "type0_multichannel.mid": [[(1, "4/4", 4), (2, "4/4", 1)]],
    "type1_tracks_with_drums.mid": [[(1, "3/4", 3), (2, "3/4", 3)]],
    "overlapping_same_pitch.mid": [[(1, "4/4", 3), (2, "4/4", 1)]],
    "no_time_signature.mid": [[(1, "4/4", 4), (2, "4/4", 4)]],
    "two_voices_one_part.musicxml": [[(1, "4/4", 2), (2, "4/4", 1), (3, "4/4", 3)]],
    "pickup_implicit_measure.musicxml": [[(0, "3/4", 1), (1, "3/4", 2), (2, "3/4", 1)]],
}

BROKEN = {
    "empty.abc": "empty",
    "empty_0_bytes.mid": "empty",
    "truncated.mid": "truncated",
}


def run_attributes(name: str):
    return CliRunner().invoke(cli, ["attributes", str(DATA / name), "--json"])


@pytest.mark.parametrize("name", sorted(EXPECTED_BARS))
def test_case_file_bars_and_onsets(name):
    result = run_attributes(name)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("{") :])
    got = []
    for tune in record["tunes"]:
        rows = []
        for bar in tune["bars"]:
            density = bar["note_density"] if bar["status"] == "ok" else None
            rows.append((bar["index"], bar["meter"], density))
        got.append(rows)
    expected = EXPECTED_BARS[name]
    # "any": the case describes only other bars exactly; this one must be measured.
    got = [
        [
            (i, m, "any") if e[2] == "any" and d is not None else (i, m, d)
            for (i, m, d), e in zip(rows, expected_rows, strict=True)
        ]
        for rows, expected_rows in zip(got, expected, strict=True)
    ]
    assert got == expected


def test_grace_notes_do_not_count_for_range():
    bars = json.loads(run_attributes("grace_notes.abc").output)["tunes"][0]["bars"]
    assert bars[0]["pitch_range"] == 9  # A4 to F#5


def test_chord_tops_make_the_melody():
    bars = json.loads(run_attributes("chords_in_melody.abc").output)["tunes"][0]["bars"]
    # C5 E5 D5 D5: range 4, contour +2.
    assert (bars[0]["pitch_range"], bars[0]["contour"]) == (4, 2)


def test_tuplet_bar_off_the_grid_is_skipped_with_a_reason():
    bars = json.loads(run_attributes("tuplets.abc").output)["tunes"][0]["bars"]
    assert bars[3]["status"] == "skipped"
    assert "off-grid" in bars[3]["reason"]
    assert bars[3]["note_density"] is None


def test_missing_time_signature_is_announced():
    result = CliRunner().invoke(
        cli, ["attributes", str(DATA / "no_time_signature.mid")]
    )
    assert result.exit_code == 0
    assert "assumed 4/4" in result.output


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_gives_one_clear_line(name):
    result = run_attributes(name)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert name in lines[0] and BROKEN[name] in lines[0]
    assert "Traceback" not in result.output
