"""evaluate, encode and traverse through the command line on the tiny model."""

import json
from pathlib import Path

import mido
import numpy as np
import pytest
from click.testing import CliRunner

from melodyvae.cli import cli
from melodyvae.music.evaluation import evenly_spread
from melodyvae.music.reading import read_melodies

DATA = Path(__file__).parent / "data"
KEYS = (
    "interpretability",
    "mig",
    "sap",
    "modularity",
    "scc",
    "traversal_spearman",
    "traversal_crosstalk",
)
NAMES = {"rhythmic_complexity", "pitch_range", "note_density", "contour"}


@pytest.fixture(scope="module")
def evaluated(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    args = ["evaluate", "-c", str(tiny_model["stem"]), "--split", "train"]
    args += ["--traversal-bars", "16", "--json", str(out / "m.json")]
    args += ["--out", str(out / "plots")]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 0, result.output
    return {"out": out, "args": args, "output": result.output}


def test_evaluate_json_has_every_metric_per_attribute(evaluated):
    record = json.loads((evaluated["out"] / "m.json").read_text())
    for key in KEYS:
        assert set(record[key]) == {"mean", "per_attribute"}, key
        assert set(record[key]["per_attribute"]) == NAMES, key
        values = list(record[key]["per_attribute"].values())
        assert record[key]["mean"] == pytest.approx(np.mean(values)) or key == (
            "modularity"
        )
    assert 0 <= record["recon_accuracy"] <= 1
    assert 0 <= record["onset_accuracy"] <= 1
    assert record["split"] == "train"
    assert record["corpus"]["name"].endswith("ryans_mammoth_reels")
    assert record["traversal_bars"] == 16
    assert "interpretability" in evaluated["output"]


def test_evaluate_is_deterministic(evaluated, tiny_model):
    args = list(evaluated["args"])
    args[args.index("--json") + 1] = str(evaluated["out"] / "again.json")
    args.remove("--out")
    args.remove(str(evaluated["out"] / "plots"))
    assert CliRunner().invoke(cli, args, env=tiny_model["env"]).exit_code == 0
    first = json.loads((evaluated["out"] / "m.json").read_text())
    second = json.loads((evaluated["out"] / "again.json").read_text())
    assert first == second


def test_evaluate_draws_each_attribute_against_its_dim(evaluated):
    pictures = sorted(p.name for p in (evaluated["out"] / "plots").iterdir())
    assert pictures == [f"latent_{n}.png" for n in sorted(NAMES)]
    for name in pictures:
        assert (evaluated["out"] / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_refuses_to_overwrite_without_force(evaluated, tiny_model):
    result = CliRunner().invoke(cli, evaluated["args"], env=tiny_model["env"])
    assert result.exit_code == 1 and "--force" in result.output


def test_encode_a_file_gives_one_row_per_usable_bar(tiny_model, tmp_path):
    tune = DATA / "multi_tune.abc"
    out = tmp_path / "latents.npz"
    args = ["encode", str(tune), "-o", str(out), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = np.load(out)
    n = len(data["latents"])
    assert data["latents"].shape == (n, 8)
    assert data["attributes"].shape == (n, 4)
    assert list(data["attribute_names"]) == [
        "rhythmic_complexity",
        "pitch_range",
        "note_density",
        "contour",
    ]
    # Only the first of the three tunes is in 4/4; its two bars are numbered 1, 2.
    assert data["tune"].tolist() == [0, 0]
    assert data["bar"].tolist() == [1, 2]
    assert list(data["titles"]) == [m.title for m in read_melodies(tune)]


def test_encode_a_corpus_split(tiny_model, tmp_path):
    out = tmp_path / "train.npz"
    args = ["encode", "--corpus", str(tiny_model["corpus"]), "--split", "train"]
    args += ["-o", str(out), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args, env=tiny_model["env"])
    assert result.exit_code == 0, result.output
    meta = json.loads(tiny_model["stem"].with_suffix(".json").read_text())
    assert len(np.load(out)["latents"]) == meta["corpus"]["n_measures"]["train"]


def test_encode_needs_exactly_one_source(tiny_model, tmp_path):
    model = ["-c", str(tiny_model["stem"]), "-o", str(tmp_path / "x.npz")]
    neither = CliRunner().invoke(cli, ["encode", *model])
    assert neither.exit_code == 1 and "either FILE or --corpus" in neither.output
    wrong = ["encode", str(DATA / "pickup.abc"), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, [*wrong, "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and ".npz" in result.output


def test_traverse_writes_a_picture_and_midi_per_attribute(tiny_model, tmp_path):
    out = tmp_path / "trav"
    args = ["traverse", "--bar", f"{DATA / 'multi_tune.abc'}:2", "--steps", "5"]
    args += ["-o", str(out), "-c", str(tiny_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "traversal.png").read_bytes()[:4] == b"\x89PNG"
    for name in NAMES:
        midi = mido.MidiFile(out / f"{name}.mid")
        signatures = [m for t in midi.tracks for m in t if m.type == "time_signature"]
        assert signatures, name
    assert len(list(out.iterdir())) == 5


def test_traverse_one_attribute_from_the_prior_centre(tiny_model, tmp_path):
    out = tmp_path / "one"
    args = ["traverse", "--attr", "contour", "-o", str(out)]
    result = CliRunner().invoke(cli, args + ["-c", str(tiny_model["stem"])])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["contour.mid", "traversal.png"]
    bad = CliRunner().invoke(
        cli, ["traverse", "--bar", "nofile.mid", "-o", str(tmp_path / "b")]
    )
    # A --bar without its bar number is a malformed command line.
    assert bad.exit_code == 2 and "FILE:N" in bad.output


def test_evenly_spread_indices():
    assert evenly_spread(3, 10).tolist() == [0, 1, 2]
    assert evenly_spread(101, 5).tolist() == [0, 25, 50, 75, 100]
