"""Bars to tokens and back: exact slots, skips with reasons, round trips."""

from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

from melodyvae.music.melody import Bar, Melody, Note
from melodyvae.music.reading import read_melodies
from melodyvae.music.tokens import (
    PAD,
    BarSkipped,
    Vocabulary,
    bar_to_tokens,
    bars_to_melody,
    canonical_meter,
    grid_for_meter,
    melody_to_bar_tokens,
    pad_measures,
    transpose_tokens,
    transposition_bounds,
)

DATA = Path(__file__).parent / "data"

VOCAB = Vocabulary()
HOLD, REST = VOCAB.hold, VOCAB.rest


def tok(pitch: int) -> int:
    return VOCAB.pitch_to_token(pitch)


def melody(notes, meter="4/4", n_bars=1, pickup=False) -> Melody:
    length = grid_for_meter(meter).bar_length
    bars = [
        Bar(i, i * length, length, meter, pickup=pickup and i == 0)
        for i in range(n_bars)
    ]
    return Melody("t", [Note(F(o), F(d), p) for o, d, p in notes], bars)


def test_grid_slot_offsets():
    assert grid_for_meter("4/4").slot_offsets()[:7] == [
        F(0),
        F(1, 4),
        F(1, 3),
        F(1, 2),
        F(2, 3),
        F(3, 4),
        F(1),
    ]
    assert grid_for_meter("6/8").slot_offsets()[:7] == [
        F(0),
        F(1, 4),
        F(1, 2),
        F(3, 4),
        F(1),
        F(5, 4),
        F(3, 2),
    ]
    assert grid_for_meter("9/8").n_slots == 18
    assert grid_for_meter("2/2").bar_length == 4


def test_worked_example_bar_to_tokens():
    # C5 @0 (1), D5 @1 (0.5), E5 @1.5 (0.5), rest @2 (1), G5 @3 (0.5), F5 @3.5 (0.5)
    m = melody([(0, 1, 72), (1, 0.5, 74), (1.5, 0.5, 76), (3, 0.5, 79), (3.5, 0.5, 77)])
    tokens = bar_to_tokens(m, m.bars[0], VOCAB)
    expected = np.full(24, HOLD)
    expected[[0, 6, 9, 12, 18, 21]] = [
        tok(72),
        tok(74),
        tok(76),
        REST,
        tok(79),
        tok(77),
    ]
    assert tokens.tolist() == expected.tolist()


def test_triplets_and_tie_into_next_bar():
    # Eighth triplets on beat 1, then a note tied over the barline into bar 1.
    m = melody(
        [(0, F(1, 3), 60), (F(1, 3), F(1, 3), 62), (F(2, 3), F(1, 3), 64), (1, 5, 65)],
        n_bars=2,
    )
    bar0, bar1 = melody_to_bar_tokens(m, VOCAB)
    assert bar0[:7].tolist() == [tok(60), HOLD, tok(62), HOLD, tok(64), HOLD, tok(65)]
    # The tied note sounds until 2 ql into bar 1, then a rest starts (slot 12).
    assert bar1[0] == HOLD and bar1[12] == REST
    assert (bar1[1:12] == HOLD).all() and (bar1[13:] == HOLD).all()


def test_off_grid_and_out_of_range_bars_are_skipped_with_reasons():
    quintuplet = melody([(i / 5, 0.2, 60) for i in range(5)] + [(1, 3, 62)])
    with pytest.raises(BarSkipped) as skipped:
        bar_to_tokens(quintuplet, quintuplet.bars[0], VOCAB)
    assert skipped.value.reason == "off-grid onset"

    low = melody([(0, 4, 30)])
    with pytest.raises(BarSkipped, match="pitch out of range"):
        bar_to_tokens(low, low.bars[0], VOCAB)

    odd = melody([(0, 3.5, 60)], meter="4/4")
    odd.bars[0] = Bar(0, F(0), F(7, 2), "7/8")
    with pytest.raises(BarSkipped, match="meter 7/8"):
        bar_to_tokens(odd, odd.bars[0], VOCAB)


def test_snapping_within_tolerance_keeps_the_bar_length():
    # A humanised onset 0.02 ql late snaps to the beat when allowed to.
    m = melody([(0, 1.02, 60), (F(51, 50), F(149, 50), 62)])
    with pytest.raises(BarSkipped):
        bar_to_tokens(m, m.bars[0], VOCAB)
    tokens = bar_to_tokens(m, m.bars[0], VOCAB, tolerance=F(1, 24))
    assert len(tokens) == 24 and tokens[0] == tok(60) and tokens[6] == tok(62)


@pytest.mark.parametrize("meter", ["2/4", "3/4", "4/4", "6/8", "9/8", "12/8"])
def test_random_token_bars_round_trip_through_notes(meter):
    """tokens → melody → tokens is the identity for well-formed token bars."""
    grid = grid_for_meter(meter)
    rng = np.random.default_rng(len(meter))
    for _ in range(40):
        n_bars = 3
        bars = rng.choice(
            [HOLD] * 6 + [REST] + [tok(p) for p in range(55, 80)],
            size=(n_bars, grid.n_slots),
        )
        bars[:, 0] = np.where(bars[:, 0] == HOLD, REST, bars[:, 0])
        # A rest after a rest (or leading) is the same silence: make it a hold.
        for row in bars:
            for i in range(1, len(row)):
                if row[i] == REST and row[i - 1 : i].tolist() == [REST]:
                    row[i] = HOLD
        m = bars_to_melody(list(bars), [meter] * n_bars, VOCAB)
        back = np.stack(melody_to_bar_tokens(m, VOCAB))
        assert _normalise_rests(back).tolist() == _normalise_rests(bars).tolist()


def _normalise_rests(bars: np.ndarray) -> np.ndarray:
    """Collapse rest-then-hold runs: a rest continues through holds anyway."""
    out = bars.copy()
    for row in out:
        in_rest = False
        for i, t in enumerate(row):
            if t == REST:
                if in_rest and i > 0:
                    row[i] = HOLD
                in_rest = True
            elif t != HOLD:
                in_rest = False
    return out


def test_leading_hold_ties_over_the_barline():
    bars = [np.full(24, HOLD), np.full(24, HOLD)]
    bars[0][0] = tok(67)
    bars[1][12] = tok(69)
    m = bars_to_melody(bars, ["4/4", "4/4"], VOCAB)
    assert [(n.onset, n.duration, n.pitch) for n in m.notes] == [
        (0, 6, 67),
        (6, 2, 69),
    ]


def test_transposition_stays_inside_the_window():
    bars = np.full((2, 24), HOLD)
    bars[0, 0] = tok(VOCAB.pitch_min + 1)
    bars[0, 6] = tok(VOCAB.pitch_max - 2)
    bars[1, 0] = REST
    down, up = transposition_bounds(bars, VOCAB)
    assert down.tolist() == [-1, 0] and up.tolist() == [2, 0]
    moved = transpose_tokens(bars, np.array([2, 0]), VOCAB)
    assert moved[0, 6] == tok(VOCAB.pitch_max) and moved[1, 0] == REST


def _bar(events: dict[int, int], n_slots: int) -> list[int]:
    """Token list: {slot: MIDI pitch}, hold elsewhere."""
    tokens = [HOLD] * n_slots
    for slot, pitch in events.items():
        tokens[slot] = tok(pitch)
    return tokens


def test_a_real_6_8_bar_on_the_compound_grid():
    # meter_6_8.abc bar 1, "GAB c2A" in eighths (L:1/8): G4 A4 B4 at 0, 0.5, 1 ql,
    # C5 (a quarter) at 1.5, A4 at 2.5. Compound slots are sixths of a dotted
    # quarter (0.25 ql apart): 0 → 0, 0.5 → 2, 1 → 4, 1.5 → 6, 2.5 → 10.
    jig = read_melodies(DATA / "meter_6_8.abc")[0]
    bars = melody_to_bar_tokens(jig, VOCAB)
    assert [b.meter for b in jig.bars] == ["6/8"] * 3
    assert bars[0].tolist() == _bar({0: 67, 2: 69, 4: 71, 6: 72, 10: 69}, 12)
    # Bar 3, "G3 G3": two dotted quarters, one per beat.
    assert bars[2].tolist() == _bar({0: 67, 6: 67}, 12)


def test_a_real_3_4_bar_of_a_waltz():
    # O'Neill's 593 (a waltz in F, music21's oneills1850), bar 3, "c2 (BAGF)":
    # C5 a quarter at 0, then Bb4 A4 G4 F4 in eighths at 1, 1.5, 2, 2.5 ql, which
    # are slots 6, 9, 12, 15 of the simple grid (beat fractions 0, 1/4, 1/3, 1/2 …).
    waltz = read_melodies(DATA / "waltz_3_4.abc")[0]
    bars = melody_to_bar_tokens(waltz, VOCAB)
    assert {b.meter for b in waltz.bars} == {"3/4"}
    assert bars[2].tolist() == _bar({0: 72, 6: 70, 9: 69, 12: 67, 15: 65}, 18)


@pytest.mark.parametrize("name", ["meter_6_8.abc", "waltz_3_4.abc"])
def test_real_tunes_round_trip_tokens_melody_tokens(name):
    tune = read_melodies(DATA / name)[0]
    bars = melody_to_bar_tokens(tune, VOCAB)
    assert not any(isinstance(b, BarSkipped) for b in bars)
    rebuilt = bars_to_melody(bars, [b.meter for b in tune.bars], VOCAB)
    assert rebuilt.notes == tune.notes
    again = melody_to_bar_tokens(rebuilt, VOCAB)
    assert [b.tolist() for b in again] == [b.tolist() for b in bars]


def test_meters_of_one_grid_share_a_canonical_name_and_padding():
    assert canonical_meter("2/2") == "4/4"
    assert canonical_meter("6/8") == "6/8"
    padded = pad_measures([np.array([1, 2]), np.array([3, 4, 5, 6])])
    assert padded.tolist() == [[1, 2, PAD, PAD], [3, 4, 5, 6]]
    # Padding past a bar's slots is ignored when it becomes notes again.
    bar = np.array(_bar({0: 67, 6: 67}, 12) + [PAD] * 12)
    m = bars_to_melody([bar], ["6/8"], VOCAB)
    assert [(n.onset, n.duration, n.pitch) for n in m.notes] == [
        (0, F(3, 2), 67),
        (F(3, 2), F(3, 2), 67),
    ]
