"""The meter-aware model: one model for bars of 2, 3 and 4 beats, simple and compound.

The end-to-end tests train a tiny model (one epoch, a few seconds) on real reels
(2/2, 2/4) and jigs (6/8) from Ryan's Mammoth Collection in music21's corpus.
"""

import json
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from melodyvae.cli import cli
from melodyvae.core.trainer import _batches
from melodyvae.music.model import MeasureBatch, MeasureVAE, MeasureVAEConfig
from melodyvae.music.training import load_trained_model

DATA = Path(__file__).parent / "data"
JIG = DATA / "ryans_mammoth_jigs" / "BridalJig.abc"


def test_config_of_a_single_grid_model_is_described_as_before():
    config = MeasureVAEConfig(vocab_size=51)
    assert "meters" not in config.to_dict()
    shipped = json.loads((Path("checkpoints") / "chorales.json").read_text())
    assert MeasureVAEConfig.from_dict(shipped["model_config"]).meters == ()


def test_config_of_a_meter_aware_model_round_trips_and_checks_its_meters():
    config = MeasureVAEConfig(vocab_size=51, meters=("4/4", "6/8", "3/4"))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["meters"] == ["4/4", "6/8", "3/4"]
    assert MeasureVAEConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="canonical"):
        MeasureVAEConfig(vocab_size=51, meters=("2/2", "6/8"))


def test_the_beat_gru_runs_one_step_per_beat_of_the_meter():
    torch.manual_seed(0)
    model = MeasureVAE(
        MeasureVAEConfig(vocab_size=51, latent_dim=8, meters=("4/4", "6/8", "3/4"))
    )
    model.eval()
    for index, n_slots in ((0, 24), (1, 12), (2, 18)):
        tokens = torch.ones((3, n_slots), dtype=torch.long)
        batch = MeasureBatch(tokens, torch.full((3,), index))
        output = model(batch, sample_latent=False)
        assert output.logits.shape == (3, n_slots, 51)
        decoded, _ = model.decode_free(output.mu, batch.meter)
        assert decoded.shape == (3, n_slots)
    # Measures of different lengths never share a call.
    with pytest.raises(ValueError, match="same number of beats"):
        model.decode_free(torch.zeros(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="needs the meter"):
        model.encode(torch.ones((1, 24), dtype=torch.long))


def test_grouped_batches_hold_one_group_and_cover_every_example():
    groups = np.array([0, 1, 0, 2, 1, 0, 0, 2, 1, 0])
    rng = np.random.default_rng(0)
    batches = _batches(len(groups), 3, rng, groups)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert all(len(set(groups[b].tolist())) == 1 for b in batches)
    assert all(len(b) <= 3 for b in batches)


@pytest.fixture(scope="module")
def meter_model(tmp_path_factory):
    """One epoch on 12 reels (2/2, 2/4) and 12 jigs (6/8): a meter-aware model."""
    work = tmp_path_factory.mktemp("meters")
    corpus = work / "reels_and_jigs"
    corpus.mkdir()
    reels = sorted((DATA / "ryans_mammoth_reels").glob("*.abc"))[:12]
    jigs = sorted((DATA / "ryans_mammoth_jigs").glob("*.abc"))
    for path in reels + jigs:
        shutil.copy(path, corpus / path.name)
    env = {"MELODYVAE_CACHE_DIR": str(work / "cache")}
    stem = work / "model"
    args = ["train", "--corpus", str(corpus), "--epochs", "1", "--batch-size", "32"]
    args += ["--latent-dim", "8", "--teacher-forcing", "1", "1", "-o", str(stem)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    return {"stem": stem, "env": env, "work": work, "corpus": corpus}


def test_the_checkpoint_records_the_meters_it_serves(meter_model):
    meta = json.loads(meter_model["stem"].with_suffix(".json").read_text())
    assert meta["meters"] == ["4/4", "2/2", "2/4", "6/8"]
    assert meta["model_config"]["meters"] == ["4/4", "2/4", "6/8"]
    assert set(meta["test_metrics"]["per_meter"]) <= {"4/4", "2/4", "6/8"}
    trained = load_trained_model(meter_model["stem"])
    assert trained.meter_aware and trained.meter_index("2/2") == 0


def test_sample_writes_bars_of_the_meter_asked_for(meter_model, tmp_path):
    out = tmp_path / "jigs"
    args = ["sample", "--n", "2", "--meter", "6/8", "-o", str(out)]
    result = CliRunner().invoke(cli, args + ["-c", str(meter_model["stem"])])
    assert result.exit_code == 0, result.output
    for path in sorted(out.glob("*.mid")):
        midi = mido.MidiFile(path)
        signatures = {
            (m.numerator, m.denominator)
            for track in midi.tracks
            for m in track
            if m.type == "time_signature"
        }
        assert signatures == {(6, 8)}, path.name


def test_a_meter_the_model_does_not_serve_is_one_clear_line(meter_model, tmp_path):
    stem = str(meter_model["stem"])
    args = ["sample", "--meter", "3/4", "-o", str(tmp_path / "w"), "-c", stem]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"melodyvae: error: {stem}: this model serves 4/4, 2/2, 2/4, 6/8, not 3/4"
    ]
    assert not (tmp_path / "w").exists()
    # The shipped chorale model serves 4-beat bars only.
    args = [
        "sample",
        "--meter",
        "6/8",
        "-o",
        str(tmp_path),
        "-c",
        "checkpoints/chorales",
    ]
    shipped = CliRunner().invoke(cli, args)
    assert shipped.exit_code == 1
    assert "checkpoints/chorales: this model serves 4/4, 2/2, not 6/8" in shipped.output


@pytest.mark.parametrize("meter", ["6/8", "3/4", "2/4", "9/8"])
def test_the_shipped_folk_model_samples_bars_of_other_meters(meter, tmp_path):
    from melodyvae.music.reading import read_melodies

    out = tmp_path / "s"
    args = ["sample", "--n", "2", "--meter", meter, "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for path in sorted(out.glob("sample_*.mid")):
        (melody,) = read_melodies(path)
        assert {bar.meter for bar in melody.bars} == {meter}


def test_edit_a_jig_with_the_meter_aware_model(meter_model, tmp_path):
    out = tmp_path / "jig.mid"
    args = ["edit", str(JIG), "--attr", "note_density", "1.5", "-o", str(out)]
    result = CliRunner().invoke(cli, args + ["-c", str(meter_model["stem"])])
    assert result.exit_code == 0, result.output
    assert "edited 0 of" not in result.output
    midi = mido.MidiFile(out)
    signatures = [m for t in midi.tracks for m in t if m.type == "time_signature"]
    assert {(m.numerator, m.denominator) for m in signatures} == {(6, 8)}


def test_evaluate_scores_the_4_beat_bars(meter_model, tmp_path):
    out = tmp_path / "metrics.json"
    args = ["evaluate", "-c", str(meter_model["stem"]), "--split", "train"]
    args += ["--traversal-bars", "8", "--json", str(out)]
    result = CliRunner().invoke(cli, args, env=meter_model["env"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["meters"] == ["4/4"]
    assert 0 <= record["recon_accuracy"] <= 1


@pytest.mark.parametrize(
    "tune", ["ryans_mammoth_jigs/BridalJig.abc", "waltz_3_4.abc"], ids=["jig", "waltz"]
)
def test_the_shipped_folk_model_edits_a_jig_and_a_waltz(tune, tmp_path):
    out = tmp_path / "edited.mid"
    args = ["edit", str(DATA / tune), "--attr", "contour", "1.5", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "edited" in result.output and out.is_file()
