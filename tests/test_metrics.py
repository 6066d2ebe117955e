import numpy as np
import pytest

from midigenre.metrics import content_added, content_change, content_change_transposed, content_removed


def roll(cells, shape=(4, 6)):
    r = np.zeros(shape, dtype=bool)
    for t, p in cells:
        r[t, p] = True
    return r


# source: 4 notes; transferred: keeps 1, drops 3, adds 2 → |x − x̂| = 5
SRC = roll([(0, 0), (1, 1), (2, 2), (3, 3)])
OUT = roll([(0, 0), (0, 5), (1, 4)])


def test_hand_computed_asymmetric_values():
    assert content_change(SRC, OUT) == pytest.approx(5 / 4)
    assert content_added(SRC, OUT) == pytest.approx(2 / 4)
    assert content_removed(SRC, OUT) == pytest.approx(3 / 4)
    # swapping the arguments divides by the other roll's 3 notes: a different number
    assert content_change(OUT, SRC) == pytest.approx(5 / 3)
    assert content_added(OUT, SRC) == pytest.approx(3 / 3) and content_removed(OUT, SRC) == pytest.approx(2 / 3)


def test_batch_nan_and_thresholding():
    batch_src = np.stack([SRC, np.zeros_like(SRC)])
    batch_out = np.stack([OUT, OUT])
    c = content_change(batch_src, batch_out)
    assert c.shape == (2,) and c[0] == pytest.approx(1.25) and np.isnan(c[1])
    assert content_change(SRC.astype(float) * 0.9, OUT.astype(float) * 0.6) == pytest.approx(1.25)
    assert content_change(SRC, SRC) == 0.0


def test_transposition_invariant():
    up2 = np.roll(SRC, 2, axis=-1)  # the same piece two semitones up (circularly)
    assert content_change(SRC, up2) == pytest.approx(8 / 4)
    assert content_change_transposed(SRC, up2) == 0.0
    # transposed, then one note dropped: the best shift leaves that one note
    part = np.roll(SRC, 3, axis=-1)
    part[2] = False
    assert content_change(SRC, part) == pytest.approx(7 / 4) and content_change_transposed(SRC, part) == pytest.approx(1 / 4)
    # no shift lines up more than one of OUT's three notes with SRC's four: 4 + 3 − 2·1 cells differ
    assert content_change_transposed(SRC, OUT) == pytest.approx(5 / 4)


def test_transfer_strength_hand_computed():
    from midigenre.metrics import genre_fraction, s_tot, transfer_strength

    preds = np.array([0, 0, 1, 0])
    assert genre_fraction(preds, 0) == 0.75 and genre_fraction(preds, 1) == 0.25
    # originals 90 % A, transfers 20 % still A, cycled back 70 % A
    s_ab = transfer_strength(0.9, 0.2, 0.7)
    assert s_ab == pytest.approx(0.5 * (0.9 + 0.7 - 0.4))
    # swapping the transferred and cycled shares gives a different (lower) number
    assert transfer_strength(0.9, 0.7, 0.2) == pytest.approx(0.5 * (0.9 + 0.2 - 1.4))
    assert transfer_strength(1, 0, 1) == 1.0 and transfer_strength(1, 1, 1) == 0.0
    assert s_tot(s_ab, 0.1) == pytest.approx(0.5 * (0.6 + 0.1))
