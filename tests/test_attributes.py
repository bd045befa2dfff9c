"""Exact attribute values, starting with the worked example of the design brief."""

import numpy as np
import pytest

from melodyvae.music.attributes import (
    compute_attributes,
    contour,
    metrical_weights,
    note_density,
    pitch_range,
    rhythmic_complexity,
)
from melodyvae.music.tokens import Vocabulary, grid_for_meter

VOCAB = Vocabulary()
HOLD, REST = VOCAB.hold, VOCAB.rest


def measure(n_slots: int, events: dict[int, int | str]) -> np.ndarray:
    """A token measure: {slot: MIDI pitch or "rest"}, hold elsewhere."""
    tokens = np.full(n_slots, HOLD)
    for slot, event in events.items():
        tokens[slot] = REST if event == "rest" else VOCAB.pitch_to_token(event)
    return tokens


# C5 @0, D5 @6, E5 @9, rest @12, G5 @18, F5 @21 (the brief's worked example).
WORKED = measure(24, {0: 72, 6: 74, 9: 76, 12: "rest", 18: 79, 21: 77})


def test_worked_example_4_4():
    values = compute_attributes(WORKED[None], grid_for_meter("4/4"))[0]
    assert values[0] == pytest.approx((0.20 + 0.67 + 0.5 + 0.67 + 0.5) / 27.79)
    assert round(values[0], 4) == 0.0914
    assert values[1:].tolist() == [7.0, 5.0, 5.0]


def test_published_4_4_weights():
    weights = metrical_weights(grid_for_meter("4/4"))
    assert weights.sum() == pytest.approx(27.79)
    assert weights[[0, 6, 12, 18]].tolist() == [0.20, 0.67, 0.25, 0.67]
    assert weights[1:6].tolist() == [1, 2, 0.5, 2, 1]


def test_2_2_shares_the_4_4_weights():
    assert metrical_weights(grid_for_meter("2/2")).tolist() == (
        metrical_weights(grid_for_meter("4/4")).tolist()
    )


def test_compound_weights_6_8():
    weights = metrical_weights(grid_for_meter("6/8"))
    assert weights.tolist() == [0.20, 1, 0.5, 1, 0.5, 1, 0.67, 1, 0.5, 1, 0.5, 1]


def test_every_onset_gives_complexity_one():
    for meter in ("2/4", "3/4", "4/4", "6/8", "9/8", "12/8"):
        grid = grid_for_meter(meter)
        full = np.full((1, grid.n_slots), VOCAB.pitch_to_token(60))
        assert rhythmic_complexity(full, grid)[0] == pytest.approx(1.0)


def test_empty_and_single_note_measures():
    grid = grid_for_meter("4/4")
    silent = measure(24, {0: "rest"})
    single = measure(24, {0: 67})
    both = np.stack([silent, single])
    assert note_density(both).tolist() == [0, 1]
    assert pitch_range(both).tolist() == [0, 0]
    assert contour(both).tolist() == [0, 0]
    assert rhythmic_complexity(both, grid).tolist() == [0, pytest.approx(0.2 / 27.79)]
    assert compute_attributes(np.zeros((0, 24), dtype=int), grid).shape == (0, 4)


def test_descending_contour_and_holds_are_not_onsets():
    tokens = measure(24, {0: 76, 3: 72, 12: "rest", 15: 64})
    assert contour(tokens[None]).tolist() == [-12]
    assert pitch_range(tokens[None]).tolist() == [12]
    assert note_density(tokens[None]).tolist() == [3]


def test_vectorised_over_many_measures_matches_one_by_one():
    rng = np.random.default_rng(0)
    grid = grid_for_meter("4/4")
    tokens = rng.integers(0, VOCAB.size, size=(50, 24))
    together = compute_attributes(tokens, grid)
    one_by_one = np.concatenate([compute_attributes(t[None], grid) for t in tokens])
    assert np.array_equal(together, one_by_one)


# Per-meter weights from the one rule in attributes.py: downbeat 0.20, the half-bar
# beat of a 4-beat bar 0.25, other beats 0.67; simple off-beats (1/4 … 3/4) 1, 2,
# 0.5, 2, 1; compound off-beats (1/6 … 5/6: sixteenth, eighth, sixteenth, eighth,
# sixteenth) 1, 0.5, 1, 0.5, 1.
SIMPLE = [1, 2, 0.5, 2, 1]
COMPOUND = [1, 0.5, 1, 0.5, 1]


@pytest.mark.parametrize(
    ("meter", "expected", "total"),
    [
        ("2/4", [0.20, *SIMPLE, 0.67, *SIMPLE], 13.87),
        ("3/4", [0.20, *SIMPLE, 0.67, *SIMPLE, 0.67, *SIMPLE], 21.04),
        ("4/4", [0.20, *SIMPLE, 0.67, *SIMPLE, 0.25, *SIMPLE, 0.67, *SIMPLE], 27.79),
        ("6/8", [0.20, *COMPOUND, 0.67, *COMPOUND], 8.87),
        ("9/8", [0.20, *COMPOUND, 0.67, *COMPOUND, 0.67, *COMPOUND], 13.54),
        (
            "12/8",
            [0.20, *COMPOUND, 0.67, *COMPOUND, 0.25, *COMPOUND, 0.67, *COMPOUND],
            17.79,
        ),
    ],
)
def test_weights_of_every_meter(meter, expected, total):
    weights = metrical_weights(grid_for_meter(meter))
    assert weights.tolist() == expected
    assert weights.sum() == pytest.approx(total)


def test_worked_example_3_4():
    # Bar 3 of O'Neill's 593 (tests/data/waltz_3_4.abc), "c2 (BAGF)": C5 @0,
    # Bb4 @6, A4 @9, G4 @12, F4 @15. Weights 0.20 (downbeat) + 0.67 (beat 2)
    # + 0.5 (eighth) + 0.67 (beat 3) + 0.5 (eighth) = 2.54 of 21.04.
    bar = measure(18, {0: 72, 6: 70, 9: 69, 12: 67, 15: 65})
    values = compute_attributes(bar[None], grid_for_meter("3/4"))[0]
    assert values[0] == pytest.approx(2.54 / 21.04)
    assert round(values[0], 4) == 0.1207
    assert values[1:].tolist() == [7.0, 5.0, -7.0]


def test_worked_example_6_8():
    # Bar 1 of tests/data/meter_6_8.abc, "GAB c2A": G4 @0, A4 @2, B4 @4, C5 @6,
    # A4 @10. Weights 0.20 (downbeat) + 0.5 + 0.5 (eighths) + 0.67 (beat 2)
    # + 0.5 (eighth) = 2.37 of 8.87.
    bar = measure(12, {0: 67, 2: 69, 4: 71, 6: 72, 10: 69})
    values = compute_attributes(bar[None], grid_for_meter("6/8"))[0]
    assert values[0] == pytest.approx(2.37 / 8.87)
    assert round(values[0], 4) == 0.2672
    assert values[1:].tolist() == [5.0, 5.0, 2.0]


def test_measures_of_several_meters_in_one_padded_array():
    rng = np.random.default_rng(1)
    meters = ["4/4", "6/8", "3/4", "2/2", "12/8", "2/4", "9/8"] * 5
    rows = []
    for meter in meters:
        n_slots = grid_for_meter(meter).n_slots
        rows.append(rng.integers(0, VOCAB.size, size=n_slots))
    padded = np.full((len(rows), 24), -1)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    together = compute_attributes(padded, meters)
    one_by_one = np.concatenate(
        [
            compute_attributes(row[None], grid_for_meter(meter))
            for row, meter in zip(rows, meters, strict=True)
        ]
    )
    assert np.allclose(together, one_by_one, rtol=0, atol=1e-12)
