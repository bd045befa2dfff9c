"""End to end through the command line on a tiny model trained on real tunes."""

import json
from pathlib import Path

import mido
import pretty_midi
import pytest
from click.testing import CliRunner

from melodyvae.cli import cli

DATA = Path(__file__).parent / "data"


def test_train_writes_a_checkpoint_with_its_description(tiny_model):
    meta = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    assert meta["model_config"]["latent_dim"] == 8
    assert [a["name"] for a in meta["attributes"]] == [
        "rhythmic_complexity",
        "pitch_range",
        "note_density",
        "contour",
    ]
    assert set(meta["test_metrics"]["spearman"]) == {
        a["name"] for a in meta["attributes"]
    }
    assert 0 <= meta["test_metrics"]["recon_accuracy"] <= 1
    assert len(meta["history"]) == 2
    assert Path(str(tiny_model["stem"]) + ".safetensors").is_file()


def test_second_train_reuses_the_cache_and_refuses_to_overwrite(tiny_model):
    cached = list((tiny_model["work"] / "cache").glob("*.npz"))
    assert len(cached) == 1
    args = [
        "train",
        "--corpus",
        str(tiny_model["corpus"]),
        "-o",
        str(tiny_model["stem"]),
    ]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 1
    assert "--force" in result.output


def test_resume_continues_after_the_last_epoch(tiny_model, tmp_path):
    stem = tmp_path / "resumed"
    base = ["train", "--corpus", str(tiny_model["corpus"]), "--batch-size", "64"]
    base += ["--latent-dim", "8", "-o", str(stem)]
    runner = CliRunner()
    assert (
        runner.invoke(cli, base + ["--epochs", "1"], env=tiny_model["env"]).exit_code
        == 0
    )
    result = runner.invoke(
        cli, base + ["--epochs", "2", "--resume"], env=tiny_model["env"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    # Same seed: identical to the uninterrupted two-epoch run.
    straight = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    assert meta["history"][1]["train_loss"] == pytest.approx(
        straight["history"][1]["train_loss"], rel=1e-5
    )


def test_sample_writes_readable_midi(tiny_model, tmp_path):
    out = tmp_path / "samples"
    args = ["sample", "--n", "3", "-o", str(out), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("sample_*.mid"))
    assert [f.name for f in files] == [
        "sample_01.mid",
        "sample_02.mid",
        "sample_03.mid",
    ]
    for path in files + [out / "all_samples.mid"]:
        mido.MidiFile(path)
        midi = pretty_midi.PrettyMIDI(str(path))
        assert all(0 <= n.pitch <= 127 for i in midi.instruments for n in i.notes)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--force" in again.output


def test_edit_writes_midi_and_a_bar_table(tiny_model, tmp_path):
    tune = DATA / "multi_tune.abc"
    out = tmp_path / "edited.mid"
    args = ["edit", str(tune), "--attr", "note_density", "1.5", "-o", str(out)]
    args += ["-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "edited 1 of 2 bars" in result.output  # the final bar is kept
    midi = mido.MidiFile(out)
    assert midi.length > 0
    pretty_midi.PrettyMIDI(str(out))


def test_edit_refuses_a_tune_the_model_cannot_take(tiny_model, tmp_path):
    out = tmp_path / "waltz.mid"
    args = ["edit", str(DATA / "ties_across_bar.abc"), "--attr", "contour", "1"]
    args += ["-o", str(out), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "no bar this model can edit" in result.output
    assert not out.exists()


def test_attributes_json_of_a_tune_with_a_pickup():
    result = CliRunner().invoke(cli, ["attributes", str(DATA / "pickup.abc"), "--json"])
    assert result.exit_code == 0, result.output
    bars = json.loads(result.output)["tunes"][0]["bars"]
    assert [(b["index"], b["pickup"], b["status"]) for b in bars] == [
        (0, True, "ok"),
        (1, False, "ok"),
        (2, False, "ok"),
        (3, False, "ok"),
    ]
    # Pickup: one eighth D4 at 3.5 ql (slot 21, weight 0.5).
    assert bars[0]["rhythmic_complexity"] == pytest.approx(0.5 / 27.79)
    assert (bars[0]["note_density"], bars[0]["pitch_range"]) == (1, 0)
    # Bar 1: G4 B4 D5 B4 in quarters.
    assert bars[1]["rhythmic_complexity"] == pytest.approx(1.79 / 27.79)
    assert [bars[1][k] for k in ("pitch_range", "note_density", "contour")] == [7, 4, 4]


def test_interpolate_between_two_bars(tiny_model, tmp_path):
    tune = DATA / "multi_tune.abc"
    out = tmp_path / "path"
    args = ["interpolate", f"{tune}:1", f"{tune}:2", "--steps", "4", "-o", str(out)]
    args += ["-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("step_*.mid"))) == 4
    assert (out / "all_steps.mid").is_file()


def test_errors_are_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["attributes", str(DATA / "truncated.mid")])
    assert result.exit_code == 1
    assert "truncated.mid" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(cli, ["sample", "-c", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("train", "sample", "interpolate", "edit", "attributes", "corpus"):
        assert command in result.output


def test_bad_bar_selections_are_refused(tiny_model, tmp_path):
    tune = str(DATA / "pickup.abc")
    model = ["-c", str(tiny_model["stem"])]
    # A bar the tune lacks is exit 1; a selection that is not one is a usage error.
    for bars, message, code in [
        ("99", "has bars 0-3", 1),
        ("3-1", "runs backwards", 2),
        ("2-", "use numbers and ranges", 2),
        ("x", "use numbers and ranges", 2),
        ("1-999999999999", "has bars 0-3", 1),
    ]:
        out = tmp_path / f"{message[:4]}.mid"
        args = ["edit", tune, "--attr", "contour", "1", "--bars", bars, "-o", str(out)]
        result = CliRunner().invoke(cli, args + model)
        assert result.exit_code == code, (bars, result.output)
        assert message in result.output, (bars, result.output)
        assert not out.exists()


def test_bad_shifts_and_bar_specs_are_usage_errors(tiny_model, tmp_path):
    tune = str(DATA / "pickup.abc")
    model = ["-c", str(tiny_model["stem"])]
    for attr in (["note_density", "nan"], ["note_density", "1e308"]):
        args = ["edit", tune, "--attr", *attr, "-o", str(tmp_path / "x.mid")] + model
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
    args = ["interpolate", f"{tune}:x", f"{tune}:1", "-o", str(tmp_path / "i")] + model
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "FILE:N" in result.output


def test_evaluate_never_writes_over_its_checkpoint(tiny_model):
    stem = tiny_model["stem"]
    args = ["evaluate", "-c", str(stem), "--json", str(stem) + ".json", "--force"]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 1 and "refusing" in result.output
    assert json.loads(Path(str(stem) + ".json").read_text())["format_version"] == 1


def test_a_json_that_is_not_a_checkpoint_is_one_line(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "list.safetensors").write_bytes(b"")
    result = CliRunner().invoke(cli, ["sample", "-c", str(tmp_path / "list")])
    assert result.exit_code == 1
    assert "not a checkpoint description" in result.output


def test_resume_refuses_other_settings(tiny_model, tmp_path):
    stem = tmp_path / "run"
    base = ["train", "--corpus", str(tiny_model["corpus"]), "--batch-size", "64"]
    base += ["-o", str(stem), "--epochs", "2"]
    runner = CliRunner()
    first = runner.invoke(
        cli, base[:-1] + ["1", "--latent-dim", "8"], env=tiny_model["env"]
    )
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        cli, base + ["--latent-dim", "16", "--resume"], env=tiny_model["env"]
    )
    assert again.exit_code == 1
    assert "cannot resume" in again.output and "model" in again.output


def test_init_from_starts_at_a_trained_model_and_records_it(tiny_model, tmp_path):
    stem = tmp_path / "tuned"
    args = ["train", "--corpus", str(tiny_model["corpus"]), "--batch-size", "64"]
    args += ["--latent-dim", "8", "--epochs", "1", "-o", str(stem)]
    args += ["--init-from", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 0, result.output
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["training"]["init_from"]["checkpoint"] == str(tiny_model["stem"])
    assert meta["training"]["init_from"]["training"]["epochs"] == 2
    # A model of another size cannot be the start.
    other = CliRunner().invoke(
        cli,
        args[:-2]
        + ["--latent-dim", "16", "--init-from", str(tiny_model["stem"]), "--force"],
        env=tiny_model["env"],
    )
    assert other.exit_code == 1 and "differs" in other.output


# -- check: which bars a model can take (the shipped folk model) ---------------

FOLK = json.loads((Path(__file__).parents[1] / "checkpoints" / "folk.json").read_text())


def check_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["check", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_check_reports_the_model_it_checks_against():
    record = check_json(str(DATA / "running_status.mid"))

    assert record["meters"] == FOLK["meters"]
    vocab = FOLK["vocabulary"]
    assert record["pitch_window"] == [vocab["pitch_min"], vocab["pitch_max"]]
    assert (record["n_usable"], record["n_bars"]) == (1, 1)


def test_check_swung_timing_mid_says_to_quantise_the_off_grid_bar():
    [tune] = check_json(str(DATA / "swung_timing.mid"))["tunes"]

    first, second = tune["bars"]
    assert first["usable"] and first["problem"] is None
    assert not second["usable"]
    assert second["problem"] == "off the grid"
    assert second["detail"] == "off-grid onset: MIDI 62 at 0.6 ql"
    assert second["advice"] == (
        "quantise to sixteenths or eighth-note triplets in your DAW"
    )


def test_check_inline_meter_key_abc_names_the_meters_the_model_lacks():
    [tune] = check_json(str(DATA / "inline_meter_key.abc"))["tunes"]

    for bar in tune["bars"]:
        served = bar["meter"] in FOLK["meters"]
        assert bar["usable"] == served, bar
        if not served:
            assert bar["problem"] == "meter not served"
            assert bar["advice"] == f"train a model with --meters {bar['meter']}"


def test_check_pitch_above_127_abc_suggests_an_octave_transposition():
    [tune] = check_json(str(DATA / "pitch_above_127.abc"))["tunes"]

    assert tune["warnings"] == [
        "1 note(s) outside MIDI's 0-127 (MIDI 132) moved by octaves into it"
    ]
    [bar] = tune["bars"]
    assert bar["problem"] == "pitch outside the model's window"
    # MIDI 120-127 fits a window of at least 8 semitones somewhere below.
    low, high = FOLK["vocabulary"]["pitch_min"], FOLK["vocabulary"]["pitch_max"]
    octaves = next(
        k for k in range(1, 11) if low <= 120 - 12 * k <= 127 - 12 * k <= high
    )
    count = "an octave" if octaves == 1 else f"{octaves} octaves"
    assert bar["advice"].startswith(f"transpose down {count} ")


def test_check_counts_repeats_as_played_unless_as_written():
    played = check_json(str(DATA / "repeats_and_endings.abc"))
    written = check_json(str(DATA / "repeats_and_endings.abc"), "--as-written")

    assert [t["n_bars"] for t in played["tunes"]] == [4, 5, 4]
    assert [t["n_bars"] for t in written["tunes"]] == [2, 4, 2]
    pickup = played["tunes"][1]["bars"][0]
    assert (pickup["index"], pickup["pickup"], pickup["usable"]) == (0, True, False)


def test_check_table_ends_with_a_summary_and_exits_0_with_unusable_bars():
    result = CliRunner().invoke(cli, ["check", str(DATA / "swung_timing.mid")])

    assert result.exit_code == 0, result.output
    assert "quantise" in result.output
    assert result.output.strip().splitlines()[-1].startswith("1 of 2 bars usable by ")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.abc", "empty.abc: empty file"),
        ("tune_without_notes.abc", "tune_without_notes.abc X:1: no notes"),
        ("corrupt_track.mid", "corrupt_track.mid: corrupt MIDI file"),
        ("drums_only.mid", "drums_only.mid: only drum notes"),
    ],
)
def test_check_of_an_unreadable_file_is_one_line_and_exit_1(name, message):
    result = CliRunner().invoke(cli, ["check", str(DATA / name)])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"melodyvae: error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_attributes_reads_repeats_as_played_unless_as_written():
    path = str(DATA / "repeats_and_endings.abc")
    runner = CliRunner()
    played = runner.invoke(cli, ["attributes", path, "--json"])
    written = runner.invoke(cli, ["attributes", path, "--json", "--as-written"])

    assert played.exit_code == written.exit_code == 0
    played_bars = [len(t["bars"]) for t in json.loads(played.output)["tunes"]]
    written_bars = [len(t["bars"]) for t in json.loads(written.output)["tunes"]]
    assert (played_bars, written_bars) == ([4, 5, 4], [2, 4, 2])


def test_encode_reads_repeats_as_played_unless_as_written(tmp_path):
    # The first tune is 4/4: |: A B :|, two written bars.
    import numpy as np

    path = str(DATA / "repeats_and_endings.abc")
    counts = []
    for extra in ([], ["--as-written"]):
        out = tmp_path / f"latents{len(extra)}.npz"
        result = CliRunner().invoke(cli, ["encode", path, "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        with np.load(out) as arrays:
            first_tune = arrays["tune"] == 0
            counts.append(arrays["bar"][first_tune].tolist())
    assert counts == [[1, 2, 3, 4], [1, 2]]
