"""Whole-tune editing mechanics, independent of any trained weights."""

from dataclasses import replace
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

from melodyvae.music.generation import (
    encodable_bars,
    interpolate_latents,
    octave_moves,
    replace_bars,
)
from melodyvae.music.reading import read_melodies
from melodyvae.music.tokens import Vocabulary, grid_for_meter
from melodyvae.music.training import TrainedModel

DATA = Path(__file__).parent / "data"


def four_beat_model() -> TrainedModel:
    """The parts of a trained model that tokenising and rebuilding bars use."""
    return TrainedModel(
        model=None,
        vocab=Vocabulary(),
        grid=grid_for_meter("4/4"),
        meters=("4/4", "2/2"),
        attribute_dims={},
        meta={},
        path=Path("none"),
    )


def test_replacing_every_bar_by_its_own_tokens_gives_the_tune_back():
    trained = four_beat_model()
    for name in ("pickup.abc", "chords_in_melody.abc", "reel_2_2.abc"):
        melody = read_melodies(DATA / name)[0]
        encodable = encodable_bars(trained, melody)
        assert encodable.tokens, name
        rebuilt = replace_bars(melody, encodable.tokens, trained)
        assert rebuilt.notes == melody.notes, name
        assert rebuilt.bars == melody.bars


def test_pickup_is_kept_and_reported():
    trained = four_beat_model()
    melody = read_melodies(DATA / "pickup.abc")[0]
    encodable = encodable_bars(trained, melody)
    assert encodable.reasons == {0: "pickup bar"}
    assert encodable.indices == [1, 2, 3]


def test_replacing_one_bar_leaves_the_others_identical():
    trained = four_beat_model()
    melody = read_melodies(DATA / "pickup.abc")[0]
    new_bar = np.full(24, trained.vocab.hold)
    new_bar[0] = trained.vocab.pitch_to_token(60)
    edited = replace_bars(melody, {2: new_bar}, trained)
    bar2 = melody.bars[2]
    inside = [n for n in edited.notes if bar2.start <= n.onset < bar2.end]
    assert [(n.onset - bar2.start, n.duration, n.pitch) for n in inside] == [
        (F(0), F(4), 60)
    ]
    outside_before = [n for n in melody.notes if not bar2.start <= n.onset < bar2.end]
    outside_after = [n for n in edited.notes if not bar2.start <= n.onset < bar2.end]
    assert outside_after == outside_before


def test_interpolation_includes_both_ends():
    start, end = np.zeros((2, 3)), np.ones((2, 3))
    path = interpolate_latents(start, end, 5)
    assert path.shape == (5, 2, 3)
    assert np.allclose(path[0], 0) and np.allclose(path[-1], 1)
    assert np.allclose(path[2], 0.5)


def test_octave_moves_bring_a_low_tune_into_the_window_and_back():
    trained = four_beat_model()
    reel = read_melodies(DATA / "ryans_mammoth_reels" / "BanjoReel.abc")[0]
    low = replace(reel, notes=[replace(n, pitch=n.pitch - 24) for n in reel.notes])
    full_bars = [bar.index for bar in reel.bars if not bar.pickup]

    assert octave_moves(trained, reel) == {}
    assert octave_moves(trained, low) == dict.fromkeys(full_bars, 2)
    moved = encodable_bars(trained, low, move_octaves=True)
    plain = encodable_bars(trained, reel)
    # The model sees the bars of the tune as written, two octaves up ...
    assert moved.indices == plain.indices == full_bars
    assert all((moved.tokens[i] == plain.tokens[i]).all() for i in full_bars)
    # ... and the bars it gives back are moved down again.
    rebuilt = replace_bars(low, moved.tokens, trained, octaves=moved.octaves)
    assert rebuilt.notes == low.notes
    assert rebuilt.bars == low.bars

    # A bar already inside the window moves with the rest of the tune.
    bar5 = reel.bars[5]
    mixed = replace(
        low,
        notes=[
            replace(n, pitch=n.pitch + 24) if bar5.start <= n.onset < bar5.end else n
            for n in low.notes
        ],
    )
    moved = encodable_bars(trained, mixed, move_octaves=True)
    assert moved.octaves[5] == 2
    tokens = plain.tokens[5]
    assert (moved.tokens[5] == np.where(tokens >= 2, tokens + 24, tokens)).all()
    rebuilt = replace_bars(mixed, moved.tokens, trained, octaves=moved.octaves)
    assert rebuilt.notes == mixed.notes


def test_a_bar_wider_than_the_window_fits_no_octave():
    trained = four_beat_model()
    melody = read_melodies(DATA / "pickup.abc")[0]
    bar1 = melody.bars[1]  # G4 B4 D5 B4
    notes = [
        replace(n, pitch=n.pitch - 45) if n.onset == bar1.start else n
        for n in melody.notes
    ]
    wide = replace(melody, notes=notes)  # bar 1 spans MIDI 22-74

    encodable = encodable_bars(trained, wide, move_octaves=True)

    assert 1 not in encodable.tokens and 1 not in octave_moves(trained, wide)
    assert encodable.reasons[1] == (
        "pitches MIDI 22-74 do not fit the model's pitch window MIDI 48-96, "
        "in any octave"
    )
    assert encodable.indices == [2, 3]


def test_a_sampled_measure_does_not_depend_on_the_others_decoded_with_it(
    tiny_model,
):
    from melodyvae.music.generation import _row_uniforms, decode_latents, prior_codes
    from melodyvae.music.training import load_trained_model

    trained = load_trained_model(tiny_model["stem"])
    codes = prior_codes(trained, 5, seed=3)
    meters = [trained.meters[0]] * 5
    together = decode_latents(trained, codes, meters, temperature=1.0, seed=7)
    alone = decode_latents(
        trained, codes[3:4], meters[:1], temperature=1.0, seed=7, row_ids=[3]
    )
    assert np.array_equal(alone[0], together[3])
    # A measure's numbers come from the seed and its number alone.
    first = _row_uniforms(7, np.array([3, 0]), 48)
    assert np.array_equal(first, _row_uniforms(7, np.array([3, 0]), 48))
    assert np.array_equal(first[0], _row_uniforms(7, np.array([3]), 48)[0])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], _row_uniforms(8, np.array([3]), 48)[0])
    with pytest.raises(ValueError, match="row ids"):
        decode_latents(trained, codes, meters, temperature=1.0, seed=7, row_ids=[1])


def test_sampling_never_draws_a_token_of_probability_zero():
    import torch

    from melodyvae.music.model import _inverse_cdf

    probs = torch.tensor([[0.2, 0.8, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    highest = torch.full((3,), 1.0 - 2**-24)
    assert _inverse_cdf(probs, highest).tolist() == [1, 1, 0]
    assert _inverse_cdf(probs, torch.zeros(3)).tolist() == [0, 0, 0]
    middle = torch.tensor([0.1, 0.6, 0.5])
    assert _inverse_cdf(probs, middle).tolist() == [0, 1, 0]
