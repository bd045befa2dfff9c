"""Attribute requests in musical units: calibration, candidate choice, key snapping,
interpolation paths, and the commands that use them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner

from melodyvae.cli import cli
from melodyvae.core.trainer import Split
from melodyvae.errors import CheckpointError, MelodyVAEError
from melodyvae.music.attributes import ATTRIBUTE_NAMES
from melodyvae.music.calibration import (
    Calibration,
    CalibrationMissing,
    calibration_of,
    fit_attribute,
    fit_calibration,
)
from melodyvae.music.control import (
    COORDINATE_LIMIT,
    TOLERANCES,
    Request,
    _band,
    _Search,
    candidate_key,
    key_scale,
    parse_request,
    snap_to_scale,
)
from melodyvae.music.generation import interpolate_latents
from melodyvae.music.tokens import Vocabulary, canonical_meter

DATA = Path(__file__).parent / "data"
REEL = DATA / "ryans_mammoth_reels" / "AlhambraReel.abc"


# -- calibration ---------------------------------------------------------------------


def _steps_fit():
    """Note counts that rise in steps with the coordinate: 0-1 → 4, 1-2 → 6 ..."""
    coordinates = np.linspace(-3, 3, 601)
    values = np.floor(coordinates) * 2 + 8
    return fit_attribute("note_density", 2, coordinates, values)


def test_calibration_is_monotone_and_round_trips_a_value():
    fitted = _steps_fit()
    assert (np.diff(fitted.coordinates) > 0).all()
    assert (np.diff(fitted.values) >= 0).all()
    assert fitted.low == 2 and fitted.high == 14
    for value in (2.0, 5.0, 8.0, 9.5, 14.0):
        coordinate = fitted.value_to_coordinate(value)
        assert fitted.coordinate_to_value(coordinate) == pytest.approx(value)
    # A whole number of notes sits on a plateau: the middle of it is chosen.
    assert fitted.value_to_coordinate(8.0) == pytest.approx(0.5, abs=0.01)
    # Beyond the learned values: the most extreme coordinate seen.
    assert fitted.value_to_coordinate(99.0) == pytest.approx(3.0)
    assert not fitted.in_range(15.0) and fitted.in_range(14.0)


def test_calibration_survives_its_json_and_rejects_a_broken_one():
    coordinates = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    attributes = np.column_stack(
        [
            coordinates[:, 0],
            coordinates[:, 1] * 2,
            coordinates[:, 2] + 5,
            coordinates[:, 3],
        ]
    )
    split = Split(np.zeros((200, 24), dtype=np.int64), attributes)
    dims = dict(zip(ATTRIBUTE_NAMES, range(4), strict=True))
    calibration = fit_calibration(coordinates, split, ["4/4"] * 200, dims)
    data = json.loads(json.dumps(calibration.to_dict()))
    again = Calibration.from_dict(data)
    fitted = again.for_meter("2/2")["note_density"]
    assert fitted.dim == 2
    # The steepest direction of density is its own dim.
    assert np.argmax(np.abs(fitted.direction)) == 2
    assert fitted.coordinate_to_value(0.0) == pytest.approx(5.0, abs=0.3)
    with pytest.raises(MelodyVAEError, match="6/8"):
        again.for_meter("6/8")
    data["grids"]["4/4"]["attributes"]["contour"]["values"].reverse()
    with pytest.raises(CheckpointError, match="malformed calibration"):
        calibration_of({"calibration": data}, "model")
    with pytest.raises(CalibrationMissing, match="melodyvae calibrate -c model"):
        calibration_of({}, "model")


# -- requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mode", "amount"),
    [
        ("note_density=8", "target", 8.0),
        ("pitch_range=+2", "change", 2.0),
        ("contour=-5", "change", -5.0),
        ("contour==-5", "target", -5.0),
        ("rhythmic_complexity=0.25", "target", 0.25),
    ],
)
def test_parse_request(text, mode, amount):
    request = parse_request(text)
    assert (request.mode, request.amount) == (mode, amount)


def test_signed_values_are_targets_for_new_bars():
    assert parse_request("contour=+5", relative=False).mode == "target"


@pytest.mark.parametrize("text", ["density=8", "note_density", "note_density=x"])
def test_bad_requests_are_refused(text):
    with pytest.raises(MelodyVAEError):
        parse_request(text)


def test_a_change_must_move_the_right_way():
    request = Request("note_density", "change", 1.0)
    low, high = _band(request, np.array([9.0]), np.array([8.0]))
    # 8 → 8 lies within the tolerance of 9 but did not move: not accepted.
    assert low[0] > 8.0 and high[0] == 10.0


# -- choosing among candidates -------------------------------------------------------


def _attrs(rc, pr, nd, co):
    return np.array([rc, pr, nd, co], dtype=float)


def test_a_candidate_that_meets_the_target_beats_one_closer_to_the_original():
    before = _attrs(0.1, 7, 8, 0)
    aimed = {"note_density": 12.0}
    unchanged = candidate_key(_attrs(0.1, 7, 8, 0), before, aimed, {}, 0.0)
    met = candidate_key(_attrs(0.2, 9, 12, 2), before, aimed, {}, 0.6)
    assert met < unchanged


def test_among_candidates_that_meet_it_the_least_crosstalk_wins():
    before = _attrs(0.1, 7, 8, 0)
    aimed = {"note_density": 12.0}
    calm = candidate_key(_attrs(0.1, 7, 12, 0), before, aimed, {}, 0.3)
    wild = candidate_key(_attrs(0.3, 14, 12, 9), before, aimed, {}, 0.3)
    assert calm < wild


def test_a_shift_that_moves_the_wrong_way_is_a_miss():
    before = _attrs(0.1, 7, 8, 0)
    wrong = candidate_key(_attrs(0.1, 7, 7, 0), before, {}, {"note_density": 1.0}, 0)
    right = candidate_key(_attrs(0.1, 7, 9, 0), before, {}, {"note_density": 1.0}, 0)
    assert wrong[0] > 0 and right[0] == 0


def test_the_search_brackets_a_step_function():
    # A decoder whose note count is 2·floor(x) + 8 along the coordinate.
    fitted = _steps_fit()
    codes = np.zeros((1, 4), dtype=np.float32)

    def reach(x):
        return np.floor(x) * 2 + 8

    aimed_x = np.array([0.2])
    search = _Search.start(
        codes,
        2,
        aimed_x,
        low=np.array([12.5]),
        high=np.array([13.5]),
        goal=np.array([13.0]),
        reached=reach(aimed_x),
        fitted=[fitted],
    )
    for _ in range(8):
        x = search.probe()[:, 2]
        search.update(reach(x))
        if search.met.all():
            break
    # 13 notes is never reached exactly; the search ends on 12 or 14 instead of
    # drifting off: the band was unreachable, the bracket is narrow.
    assert search.upper[0] - search.lower[0] < 0.5 or search.met.all()


def test_a_bar_stuck_at_the_coordinate_limit_turns_to_its_own_grids_direction():
    # Two bars of grids of which only the first has a steepest direction in the
    # calibration: both coordinates are at the limit and still below the band.
    import dataclasses

    with_direction = dataclasses.replace(
        _steps_fit(), direction=np.array([1.0, 0.0, 0.0, 0.0])
    )
    without = _steps_fit()
    codes = np.zeros((2, 4), dtype=np.float32)
    at_limit = np.array([COORDINATE_LIMIT, COORDINATE_LIMIT])
    search = _Search.start(
        codes,
        2,
        at_limit,
        low=np.array([30.0, 30.0]),
        high=np.array([31.0, 31.0]),
        goal=np.array([30.5, 30.5]),
        reached=np.array([14.0, 14.0]),
        fitted=[with_direction, without],
    )
    assert search.switched.tolist() == [True, False]
    delta = search.probe()
    # The first goes on along dim 0 from where dim 2 stopped; the second stays.
    assert delta[0, 2] == COORDINATE_LIMIT and delta[0, 0] > 0
    assert delta[1].tolist() == [0.0, 0.0, COORDINATE_LIMIT, 0.0]


# -- key snapping --------------------------------------------------------------------


def test_key_scale_from_the_signature_and_estimated():
    assert key_scale("D major", []).pitch_classes == frozenset({1, 2, 4, 6, 7, 9, 11})
    # A dorian has G major's signature.
    assert key_scale("A dorian", []).pitch_classes == frozenset({0, 2, 4, 6, 7, 9, 11})
    estimated = key_scale(None, [62, 66, 69, 74, 73, 71, 69, 67, 66])
    assert estimated.estimated and estimated.name == "D major"
    with pytest.raises(MelodyVAEError):
        key_scale(None, [])


def test_key_scale_of_a_tune_without_a_key_is_estimated_from_its_notes():
    from melodyvae.music.reading import read_melodies

    melody = read_melodies(DATA / "key_none.abc")[0]
    scale = key_scale(melody.key, [n.pitch for n in melody.notes])
    # D F A d f ... with every F natural.
    assert scale.estimated and scale.name == "D minor"


def test_snapping_moves_notes_outside_the_key_towards_the_next_note():
    vocab = Vocabulary()
    rest, hold = vocab.rest, vocab.hold
    d_major = key_scale("D major", []).pitch_classes
    c = vocab.pitch_to_token(72)  # C natural: between B (71) and C# (73)
    up = vocab.pitch_to_token(74)
    down = vocab.pitch_to_token(69)
    bars = np.array(
        [
            [c, hold, up, hold, rest, hold],  # C then D: goes up to C#
            [c, hold, down, hold, rest, hold],  # C then A: goes down to B
            [up, hold, down, hold, rest, hold],  # already in D major
        ]
    )
    snapped, moved = snap_to_scale(bars, vocab, d_major)
    assert vocab.token_to_pitch(int(snapped[0, 0])) == 73
    assert vocab.token_to_pitch(int(snapped[1, 0])) == 71
    assert (snapped[2] == bars[2]).all()
    assert moved.tolist() == [1, 1, 0]


# -- interpolation -------------------------------------------------------------------


def test_slerp_keeps_its_ends_and_moves_the_norm_linearly():
    a = np.array([3.0, 0.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 5.0, 0.0, 0.0], dtype=np.float32)
    path = interpolate_latents(a, b, 5, "slerp")
    assert np.allclose(path[0], a) and np.allclose(path[-1], b)
    assert np.allclose(np.linalg.norm(path, axis=1), [3.0, 3.5, 4.0, 4.5, 5.0])
    # Halfway, the direction is halfway round the arc.
    middle = path[2] / np.linalg.norm(path[2])
    assert np.allclose(middle, [np.sqrt(0.5), np.sqrt(0.5), 0, 0], atol=1e-6)
    linear = interpolate_latents(a, b, 5, "linear")
    assert np.allclose(linear[2], [1.5, 2.5, 0, 0])


# -- commands ------------------------------------------------------------------------


def test_training_stores_a_calibration(tiny_model):
    meta = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    calibration = calibration_of(meta)
    # One calibration per grid the model serves (reels: 4/4 and 2/2 share one).
    assert set(calibration.grids) == {canonical_meter(m) for m in meta["meters"]}
    assert calibration.meters["4/4"] == [
        m for m in meta["meters"] if m in ("4/4", "2/2")
    ]
    assert set(calibration.for_meter("2/2")) == set(ATTRIBUTE_NAMES)


def test_calibrate_refuses_to_refit_without_force(tiny_model, tmp_path):
    stem = tmp_path / "copy"
    for suffix in (".json", ".safetensors"):
        shutil.copy(str(tiny_model["stem"]) + suffix, str(stem) + suffix)
    runner = CliRunner()
    result = runner.invoke(cli, ["calibrate", "-c", str(stem)], env=tiny_model["env"])
    assert result.exit_code == 1 and "--force" in result.output
    meta = json.loads(stem.with_suffix(".json").read_text())
    del meta["calibration"]
    stem.with_suffix(".json").write_text(json.dumps(meta))
    # Without a calibration, targets in musical units say what to do.
    args = ["edit", str(REEL), "--set", "note_density=8", "-c", str(stem)]
    result = runner.invoke(cli, args + ["-o", str(tmp_path / "x.mid")])
    assert result.exit_code == 1
    assert "melodyvae calibrate" in result.output
    assert not (tmp_path / "x.mid").exists()
    result = runner.invoke(cli, ["calibrate", "-c", str(stem)], env=tiny_model["env"])
    assert result.exit_code == 0, result.output
    assert "calibration" in json.loads(stem.with_suffix(".json").read_text())


def test_edit_with_targets_writes_a_report_of_requested_and_achieved(
    tiny_model, tmp_path
):
    out, report = tmp_path / "denser.mid", tmp_path / "report.json"
    args = ["edit", str(REEL), "--set", "note_density=+2", "--set", "pitch_range=40"]
    args += ["--tries", "3", "-o", str(out), "--report", str(report)]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "request met in" in result.output
    # 40 semitones is more than any training bar spans: said, not clipped silently.
    assert "outside what the model learned" in result.output
    record = json.loads(report.read_text())
    assert [r["mode"] for r in record["requests"]] == ["change", "target"]
    edited = [b for b in record["bars"] if b["status"] == "edited"]
    assert edited and record["summary"]["edited"] == len(edited)
    for bar in edited:
        assert bar["requested"]["note_density"] == bar["before"]["note_density"] + 2
        assert bar["requested"]["pitch_range"] == 40
        assert "pitch_range" in bar["outside_training_range"]
        assert bar["aimed"]["pitch_range"] < 40
        error = bar["after"]["note_density"] - bar["requested"]["note_density"]
        assert bar["error"]["note_density"] == pytest.approx(error)
        assert set(bar["unrequested_change"]) == {"rhythmic_complexity", "contour"}
        assert 1 <= bar["try"] <= 3
    kept = [b for b in record["bars"] if b["status"] == "kept"]
    assert {b["reason"] for b in kept} >= {"final bar"}
    pretty_midi.PrettyMIDI(str(out))


def test_edit_keep_key_leaves_every_edited_note_in_the_key(tiny_model, tmp_path):
    out, report = tmp_path / "in-key.mid", tmp_path / "report.json"
    args = ["edit", str(REEL), "--attr", "pitch_range", "3", "--keep-key"]
    args += ["--tries", "2", "-o", str(out), "--report", str(report)]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "into D major (key signature)" in result.output
    record = json.loads(report.read_text())
    assert record["key"]["name"] == "D major"
    d_major = {1, 2, 4, 6, 7, 9, 11}
    pitches = {
        n.pitch % 12 for n in pretty_midi.PrettyMIDI(str(out)).instruments[0].notes
    }
    assert pitches <= d_major


def test_sample_with_a_target_reports_each_sample(tiny_model, tmp_path):
    args = ["sample", "--n", "4", "--set", "contour=+5", "-o", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "contour = 5 st" in result.output
    assert "request met in" in result.output
    assert len(list((tmp_path / "s").glob("sample_*.mid"))) == 4


def test_a_request_twice_is_a_usage_error(tiny_model, tmp_path):
    args = ["edit", str(REEL), "--attr", "contour", "1", "--set", "contour=3"]
    result = CliRunner().invoke(
        cli, args + ["-o", str(tmp_path / "x.mid"), "-c", str(tiny_model["stem"])]
    )
    assert result.exit_code == 2
    assert "more than once" in result.output


def test_interpolate_slerp_prints_the_attributes_along_the_path(tiny_model, tmp_path):
    args = ["interpolate", f"{DATA / 'pickup.abc'}:1", f"{DATA / 'pickup.abc'}:3"]
    args += ["--steps", "4", "--method", "slerp", "-o", str(tmp_path / "p")]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "along the path: rhythmic_complexity" in result.output


def test_evaluate_runs_the_edit_benchmark(tiny_model, tmp_path):
    out = tmp_path / "m.json"
    args = ["evaluate", "-c", str(tiny_model["stem"]), "--json", str(out)]
    args += ["--edit-bars", "16", "--traversal-bars", "8"]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 0, result.output
    bench = json.loads(out.read_text())["edit_benchmark"]
    assert bench["n_bars"] == 16
    assert bench["tolerances"] == TOLERANCES
    assert set(bench["success"]) == {"tries_1", "tries_8"}
    assert set(bench["direction_at_1sd"]["tries_8"]["per_attribute"]) == set(
        ATTRIBUTE_NAMES
    )
    # 4 attributes × 4 changes × 2 numbers of tries.
    assert len(bench["per_request"]) == 32
    for entry in bench["per_request"]:
        assert entry["success"] is None or 0 <= entry["success"] <= 1


def test_edit_never_writes_over_its_checkpoint(tiny_model, tmp_path):
    stem = tmp_path / "own"
    for suffix in (".json", ".safetensors"):
        shutil.copy(str(tiny_model["stem"]) + suffix, str(stem) + suffix)
    before = stem.with_suffix(".json").read_text()
    for extra in (
        ["-o", str(tmp_path / "x.mid"), "--report", str(stem) + ".json"],
        ["-o", str(stem) + ".safetensors", "--format", "midi"],
    ):
        args = ["edit", str(REEL), "--set", "note_density=+1", "-c", str(stem)]
        result = CliRunner().invoke(cli, args + extra + ["--force"])
        assert result.exit_code == 1
        assert "refusing to write over the checkpoint" in result.output
    assert stem.with_suffix(".json").read_text() == before


@pytest.mark.parametrize("bad", ["garbage", {"version": 1, "grids": {"4/4": 3}}])
def test_a_malformed_calibration_is_one_line(tiny_model, tmp_path, bad):
    stem = tmp_path / "bad"
    shutil.copy(str(tiny_model["stem"]) + ".safetensors", str(stem) + ".safetensors")
    meta = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    meta["calibration"] = bad
    stem.with_suffix(".json").write_text(json.dumps(meta))
    args = ["edit", str(REEL), "--set", "note_density=8", "-c", str(stem)]
    result = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "x.mid")])
    assert result.exit_code == 1
    assert "malformed calibration" in result.output
    assert "calibrate --force" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    ["note_density==-5", "pitch_range==-1", "rhythmic_complexity=2"],
)
def test_a_target_no_bar_can_have_is_refused(text):
    with pytest.raises(MelodyVAEError, match="by definition"):
        parse_request(text)


def test_targets_at_the_ends_of_the_defined_ranges_and_any_change_are_accepted():
    assert parse_request("rhythmic_complexity=1").amount == 1.0
    assert parse_request("note_density=0").amount == 0.0
    assert parse_request("note_density=-5").mode == "change"
    assert parse_request("contour==-30").amount == -30.0
    # Sampling has no bar values: a signed value is a target there.
    with pytest.raises(MelodyVAEError):
        parse_request("note_density=-5", relative=False)


def test_sampled_candidates_come_every_eighth_try_while_searching():
    from melodyvae.music.control import tries_for_a_sample

    assert tries_for_a_sample([parse_request("note_density=8")]) == 8
    assert tries_for_a_sample([Request("note_density", "shift", 1.0)]) == 8
    assert tries_for_a_sample([Request("note_density", "shift", 0.0)]) == 2
    # New bars have no value to shift from: a shift does not search there.
    shift = [Request("note_density", "shift", 1.0)]
    assert tries_for_a_sample(shift, editing=False) == 2
    assert tries_for_a_sample([parse_request("note_density=8")], editing=False) == 8


def test_the_try_temperature_help_states_the_sampling_period():
    # The CLI keeps the control module off its start-up path, so its help text
    # spells the period out; this keeps the two in step.
    from melodyvae.music.control import SAMPLE_EVERY

    result = CliRunner().invoke(cli, ["edit", "--help"], terminal_width=200)
    assert f"every {SAMPLE_EVERY}th try" in " ".join(result.output.split())


def test_an_idle_try_temperature_is_said(tiny_model, tmp_path):
    args = ["edit", str(REEL), "--attr", "note_density", "1", "--tries", "3"]
    args += ["--try-temperature", "0.9", "-o", str(tmp_path / "x.mid")]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "--try-temperature has no effect here" in result.output
    assert "start at --tries 8" in result.output


def test_sample_says_which_options_need_set(tiny_model, tmp_path):
    base = ["sample", "--n", "1", "-c", str(tiny_model["stem"]), "--force"]
    quiet = CliRunner().invoke(cli, base + ["-o", str(tmp_path / "a")])
    assert quiet.exit_code == 0, quiet.output
    assert "no effect" not in quiet.output
    extra = ["--tries", "4", "--try-temperature", "0.9", "-o", str(tmp_path / "b")]
    loud = CliRunner().invoke(cli, base + extra)
    assert loud.exit_code == 0, loud.output
    assert "--tries has no effect without --set" in loud.output
    assert "--try-temperature has no effect without --set" in loud.output


def test_a_calibration_fitted_to_other_weights_is_refused(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file

    stem = tmp_path / "swapped"
    meta = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    assert len(meta["calibration"]["weights"]) == 64
    stem.with_suffix(".json").write_text(json.dumps(meta))
    weights = load_file(str(tiny_model["stem"]) + ".safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.01
    save_file(weights, str(stem) + ".safetensors")
    args = ["edit", str(REEL), "--set", "note_density=8", "-c", str(stem)]
    result = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "x.mid")])
    assert result.exit_code == 1
    assert "fitted to other weights" in result.output
    assert "calibrate --force" in result.output
    assert not (tmp_path / "x.mid").exists()


def test_the_shipped_calibrations_belong_to_their_weights():
    from melodyvae.core.checkpoint import weights_fingerprint
    from melodyvae.music.training import load_trained_model

    for name in ("folk", "chorales"):
        trained = load_trained_model(Path(__file__).parents[1] / "checkpoints" / name)
        fingerprint = weights_fingerprint(trained.model.state_dict())
        calibration = calibration_of(trained.meta, name, fingerprint)
        assert calibration.weights == fingerprint


@pytest.mark.parametrize("text", ["foo=3", "note_density=abc", "note_density=1e309"])
def test_a_malformed_set_is_a_usage_error(tiny_model, tmp_path, text):
    args = ["edit", str(REEL), "--set", text, "-o", str(tmp_path / "x.mid")]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 2, result.output


def test_an_edited_bar_is_the_same_whichever_other_bars_are_edited(
    tiny_model, tmp_path
):
    args = ["edit", str(REEL), "--attr", "note_density", "1", "--tries", "8"]
    args += ["-c", str(tiny_model["stem"]), "--seed", "5"]
    outputs = {}
    for bars in ("1-8", "4"):
        out = tmp_path / f"bars-{bars}.mid"
        result = CliRunner().invoke(cli, args + ["--bars", bars, "-o", str(out)])
        assert result.exit_code == 0, result.output
        midi = pretty_midi.PrettyMIDI(str(out))
        outputs[bars] = midi

    # Bar 4 (0-based bar 3 of the reel, no pickup) in both files.
    def bar_notes(midi):
        start, end = midi.get_downbeats()[3:5]
        notes = midi.instruments[0].notes
        return [(n.pitch, round(n.start, 4)) for n in notes if start <= n.start < end]

    assert bar_notes(outputs["1-8"]) == bar_notes(outputs["4"])
