"""--format on sample, interpolate and edit: MIDI, MusicXML and ABC from the command
line, on a tiny model trained on real tunes."""

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from melodyvae.cli import cli
from melodyvae.music.reading import read_melodies

DATA = Path(__file__).parent / "data"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_sample_writes_the_same_music_in_every_format(tiny_model, tmp_path):
    model = ["-c", str(tiny_model["stem"])]
    common = ["sample", "--n", "3", "--seed", "5", "--temperature", "1", *model]
    read_back = {}
    for output_format, suffix in (
        ("midi", ".mid"),
        ("musicxml", ".musicxml"),
        ("abc", ".abc"),
    ):
        out = tmp_path / output_format
        result = run(*common, "-o", str(out), "--format", output_format)
        assert result.exit_code == 0, result.output
        names = sorted(p.name for p in out.iterdir())
        assert names == sorted(
            [f"sample_0{i}{suffix}" for i in (1, 2, 3)] + [f"all_samples{suffix}"]
        )
        read_back[output_format] = [
            read_melodies(out / f"sample_0{i}{suffix}")[0] for i in (1, 2, 3)
        ]
        everything = read_melodies(out / f"all_samples{suffix}")
        # ABC holds a tunebook of one tune per sample; the others one sequence.
        assert len(everything) == (3 if output_format == "abc" else 1)

    for midi, xml, abc in zip(*read_back.values(), strict=True):
        assert xml.notes == midi.notes
        assert abc.notes == midi.notes
        assert xml.bars == abc.bars == midi.bars
    first = ET.parse(tmp_path / "musicxml" / "sample_01.musicxml").getroot()
    assert first.findtext("work/work-title") == "sample_01"


def test_sample_refuses_to_overwrite_each_format(tiny_model, tmp_path):
    args = ["sample", "--n", "2", "-o", str(tmp_path), "-c", str(tiny_model["stem"])]
    assert run(*args, "--format", "abc").exit_code == 0
    # Another format does not collide with the ABC files ...
    assert run(*args, "--format", "musicxml").exit_code == 0
    # ... the same format does, unless --force.
    again = run(*args, "--format", "abc")
    assert again.exit_code == 1
    assert "sample_01.abc already exists" in again.output
    assert "--force" in again.output
    assert run(*args, "--format", "abc", "--force").exit_code == 0
    assert len(list(tmp_path.glob("*.musicxml"))) == 3


def test_an_unknown_format_is_a_usage_error(tmp_path):
    result = run("sample", "-o", str(tmp_path), "--format", "pdf")
    assert result.exit_code == 2
    assert "'pdf' is not one of" in result.output


def test_interpolate_writes_abc_and_musicxml(tiny_model, tmp_path):
    tune = DATA / "multi_tune.abc"
    model = ["-c", str(tiny_model["stem"])]
    for output_format, suffix in (("abc", ".abc"), ("musicxml", ".musicxml")):
        out = tmp_path / output_format
        args = ["interpolate", f"{tune}:1", f"{tune}:2", "--steps", "3"]
        result = run(*args, "-o", str(out), "--format", output_format, *model)
        assert result.exit_code == 0, result.output
        steps = sorted(out.glob(f"step_*{suffix}"))
        assert [p.name for p in steps] == [f"step_0{i}{suffix}" for i in (1, 2, 3)]
        assert (out / f"all_steps{suffix}").is_file()
    # One 4/4 bar per step, in the key of A (C major). A model this small may
    # decode silence, which the readers refuse, so the files are checked as text.
    abc = (tmp_path / "abc" / "step_02.abc").read_text().splitlines()
    assert abc[2:5] == ["X:1", "T:step_02", "M:4/4"]
    assert abc[6] == "K:C"
    assert abc[7].endswith("|]") and "|" not in abc[7][:-2]
    xml = ET.parse(tmp_path / "musicxml" / "step_02.musicxml").getroot()
    assert xml.findtext("work/work-title") == "step_02"
    assert len(xml.findall("part/measure")) == 1
    assert xml.findtext("part/measure/attributes/key/fifths") == "0"
    assert xml.findtext("part/measure/attributes/time/beats") == "4"


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("edited.musicxml", [], "musicxml"),
        ("edited.xml", [], "musicxml"),
        ("edited.abc", [], "abc"),
        ("edited.mid", [], "midi"),
        ("edited.abc", ["--format", "abc"], "abc"),
        ("edited.out", ["--format", "musicxml"], "musicxml"),
    ],
)
def test_edit_writes_the_format_its_output_names(
    tiny_model, tmp_path, name, options, expected
):
    out = tmp_path / name
    args = ["edit", str(DATA / "multi_tune.abc"), "--attr", "note_density", "1"]
    result = run(*args, "-o", str(out), *options, "-c", str(tiny_model["stem"]))

    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if expected == "musicxml":
        assert data.startswith(b"<?xml") and b"<score-partwise" in data
    elif expected == "abc":
        lines = data.decode().splitlines()
        assert lines[:5] == ["%abc-2.1", "", "X:1", "T:Tune C1", "M:4/4"]
        assert lines[6] == "K:C"
        assert lines[7].count("|") == 2  # the tune's two bars
    else:
        assert data.startswith(b"MThd")


def test_edit_defaults_to_a_file_beside_the_tune_in_the_chosen_format(
    tiny_model, tmp_path
):
    tune = tmp_path / "reel.abc"
    shutil.copy(DATA / "reel_2_2.abc", tune)
    args = ["edit", str(tune), "--attr", "contour", "1", "--format", "musicxml"]

    result = run(*args, "-c", str(tiny_model["stem"]))

    assert result.exit_code == 0, result.output
    [edited] = read_melodies(tmp_path / "reel-edited.musicxml")
    [original] = read_melodies(tune)
    assert edited.bars == original.bars  # the pickup and 2/2 bars are kept
    assert edited.key == "D major"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("edited.abc", ["--format", "midi"], "a .abc file is not midi; use .mid"),
        (
            "edited.mid",
            ["--format", "musicxml"],
            "a .mid file is not musicxml; use .musicxml",
        ),
        ("edited.mxl", [], "cannot write .mxl files"),
        ("edited.krn", ["--format", "abc"], "cannot write .krn files"),
    ],
)
def test_edit_refuses_an_output_suffix_of_another_format(
    tiny_model, tmp_path, name, options, message
):
    out = tmp_path / name
    args = ["edit", str(DATA / "multi_tune.abc"), "--attr", "contour", "1"]
    result = run(*args, "-o", str(out), *options, "-c", str(tiny_model["stem"]))

    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not out.exists()


def test_edit_keeps_the_overwrite_check(tiny_model, tmp_path):
    out = tmp_path / "edited.abc"
    out.write_text("mine")
    args = ["edit", str(DATA / "multi_tune.abc"), "--attr", "contour", "1"]
    args += ["-o", str(out), "-c", str(tiny_model["stem"])]

    refused = run(*args)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert out.read_text() == "mine"
    assert run(*args, "--force").exit_code == 0
    assert out.read_text().startswith("%abc-2.1")


def test_help_shows_the_format_option():
    for command in ("sample", "interpolate", "edit"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "--format [midi|musicxml|abc]" in result.output
