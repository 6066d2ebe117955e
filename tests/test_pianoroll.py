import io

import mido
import numpy as np
import pretty_midi
import pytest

from midigenre.pianoroll import (
    RollSettings,
    Unusable,
    check_meter,
    join_phrases,
    phrases_of_file,
    read_song,
    roll_to_midi,
    split_phrases,
)
from shared.errors import GenreError
from tests.conftest import REAL_CLASSICAL, REAL_JAZZ, make_midi, random_grid_notes


def midi_bytes(pm) -> bytes:
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_grid_follows_ticks_not_seconds():
    # Tempo doubles at beat 4: in seconds the later notes come "early", on the beat grid they do not.
    data = make_midi(None, [(0, 480, 60), (480 * 8, 480 * 9, 62)], tempos=[(0, 60.0), (480 * 4, 120.0)])
    song = read_song(data)
    assert song.tempo == pytest.approx(60.0)
    on = np.argwhere(song.roll)
    assert {(int(t), int(p)) for t, p in on} == {(t, 60 - 24) for t in range(0, 4)} | {(t, 62 - 24) for t in range(32, 36)}


@pytest.mark.parametrize("tpq", [96, 480, 1024])
def test_step_rounding_any_resolution(tpq):
    q = tpq // 8  # a 32nd note: half a step
    data = make_midi(None, [(q - 1, tpq, 60), (q, tpq, 61), (tpq * 2, tpq * 2 + 1, 62)], tpq=tpq)
    roll = read_song(data).roll
    assert roll[0, 60 - 24] and not roll[0, 61 - 24] and roll[1, 61 - 24]  # below half a step rounds down, half rounds up
    assert roll[8, 62 - 24] and roll[:, 62 - 24].sum() == 1  # a very short note still lasts one step


def test_pitch_window_tracks_merged_drums_removed():
    notes = [(0, 480, 23, 0), (0, 480, 24, 1), (0, 480, 107, 0), (0, 480, 108, 1), (480, 960, 60, 1)]
    data = make_midi(None, notes, tracks=2, drum_notes=[(0, 480, 40)])
    roll = read_song(data).roll
    assert roll.shape == (8, 84)
    assert roll[:4, 0].all() and roll[:4, 83].all() and roll[4:8, 60 - 24].all()
    assert roll.sum() == 4 + 4 + 4  # 23 and 108 dropped, drum note 40 (row 16) dropped
    kept = read_song(data, RollSettings(keep_drums=True)).roll
    assert kept[:4, 40 - 24].all()


@pytest.mark.parametrize(
    "sigs, strict, lenient",
    [
        ([(0, 4, 4)], None, None),
        ([(0, 4, 4), (0, 4, 4)], None, None),  # the same event in two tracks counts once
        ([], "no time signature", None),
        ([(0, 3, 4)], "not 4/4", "not 4/4"),
        ([(0, 1, 4)], "not 4/4", "not 4/4"),
        ([(0, 1, 4), (0, 4, 4)], "meter changes", "meter changes"),
        ([(0, 4, 4), (1920, 4, 4)], "several time signatures", None),
        ([(960, 4, 4)], "first beat not at 0", "first beat not at 0"),
    ],
)
def test_meter_rules(sigs, strict, lenient):
    assert check_meter(sigs, "strict") == strict
    assert check_meter(sigs, "lenient") == lenient
    assert check_meter(sigs, "assume-4/4") is None


def test_assume_four_four_reads_pop909_style_files():
    data = make_midi(None, random_grid_notes(np.random.default_rng(0), 8), time_signatures=[(0, 1, 4)])
    with pytest.raises(Unusable) as err:
        read_song(data)
    assert err.value.reason == "not 4/4" and "1/4 at tick 0" in str(err.value)
    phrases, index, _ = phrases_of_file(data, RollSettings(meter="assume-4/4"))
    assert phrases.shape[1:] == (64, 84) and len(phrases) >= 1


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"RIFF....WAVEfmt not midi at all", "parse error"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x00\x90", "parse error"),
    ],
)
def test_broken_bytes(data, reason):
    with pytest.raises(Unusable) as err:
        read_song(data)
    assert err.value.reason == reason


def test_no_notes_drums_only_too_long_too_short(tmp_path):
    cases = [
        (make_midi(None, []), "no notes"),
        (make_midi(None, [], drum_notes=[(0, 100, 36)]), "drums only"),
        (make_midi(None, [(0, 480, 60), (480 * 4 * 50, 480 * 4 * 51, 60)]), "too long"),
        (make_midi(None, [(0, 480 * 12, 60)]), "too short"),
        (make_midi(None, [(0, 480 * 20, 10)]), "no notes in pitch range"),
    ]
    for data, reason in cases:
        with pytest.raises(Unusable) as err:
            phrases_of_file(data, RollSettings(max_bars=40))
        assert err.value.reason == reason, reason
    with pytest.raises(Unusable) as err:
        read_song(tmp_path / "missing.mid")
    assert err.value.reason == "unreadable"


def test_split_drops_tail_and_empty_phrases_and_keeps_positions():
    roll = np.zeros((64 * 3 + 10, 84), dtype=bool)
    roll[5, 3] = roll[64 * 2 + 7, 9] = roll[64 * 3 + 2, 1] = True  # phrase 1 empty; tail has a note
    phrases, index = split_phrases(roll)
    assert phrases.shape == (2, 64, 84) and index.tolist() == [0, 2]
    assert phrases[1, 7, 9]
    padded, idx = split_phrases(roll, keep_empty=True, pad_tail=True)
    assert padded.shape == (4, 64, 84) and idx.tolist() == [0, 1, 2, 3] and padded[3, 2, 1]
    back = join_phrases(phrases, index)
    assert back.shape == (64 * 3, 84) and back[64 * 2 + 7, 9] and back.sum() == 2


def test_settings_validation_and_hash():
    assert RollSettings().phrase_steps == 64 and RollSettings().steps_per_bar == 16
    assert RollSettings().hash() == RollSettings().hash() != RollSettings(meter="lenient").hash()
    assert RollSettings.from_dict(RollSettings(max_bars=9).to_dict()) == RollSettings(max_bars=9)
    with pytest.raises(GenreError):
        RollSettings(meter="3/4")
    with pytest.raises(GenreError):
        RollSettings(lowest_pitch=100, n_pitches=84)
    with pytest.raises(GenreError):
        RollSettings.from_dict({"meter": "strict", "colour": "blue"})


def test_roll_to_midi_carries_tempo_meter_velocity():
    roll = np.zeros((64, 84), dtype=bool)
    roll[0:4, 36] = roll[4:5, 36] = roll[8:16, 0] = True  # a held 4-step note merges with the next step
    pm = roll_to_midi(roll, tempo=90.0)
    data = midi_bytes(pm)
    mf = mido.MidiFile(file=io.BytesIO(data))
    metas = [m for t in mf.tracks for m in t if m.is_meta]
    assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (4, 4) for m in metas)
    assert any(m.type == "set_tempo" and mido.tempo2bpm(m.tempo) == pytest.approx(90.0, rel=1e-5) for m in metas)
    back = pretty_midi.PrettyMIDI(io.BytesIO(data))
    ticks = sorted((n.pitch, back.time_to_tick(n.start), back.time_to_tick(n.end), n.velocity) for n in back.instruments[0].notes)
    step = back.resolution // 4
    assert ticks == [(24, 8 * step, 16 * step, 100), (60, 0, 5 * step, 100)]
    assert back.instruments[0].program == 0 and not back.instruments[0].is_drum


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_exact_for_on_grid_input(seed):
    rng = np.random.default_rng(seed)
    notes = random_grid_notes(rng, bars=17, n=150, lo=20, hi=112)  # some outside the window, a partial tail
    first = phrases_of_file(make_midi(None, notes, tracks=3, tempos=[(0, 137.0)]))
    song = join_phrases(first[0], first[1])
    pm = roll_to_midi(song, tempo=first[2])
    second = phrases_of_file(midi_bytes(pm))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert second[2] == pytest.approx(137.0)


def test_roll_to_midi_rejects_bad_shapes():
    with pytest.raises(ValueError):
        roll_to_midi(np.zeros((64, 80)))
    with pytest.raises(ValueError):
        roll_to_midi(np.zeros((64, 84)), tempo=0)


def test_real_files_round_trip(shared_midi):
    for name in REAL_JAZZ[:2]:
        phrases, index, tempo = phrases_of_file(shared_midi / "jazz" / name)
        assert phrases.shape[1:] == (64, 84) and phrases.dtype == bool and len(phrases) > 5
        again = phrases_of_file(midi_bytes(roll_to_midi(join_phrases(phrases, index), tempo)))
        np.testing.assert_array_equal(phrases, again[0])
    # classical files in the subset are not 4/4 or change meter: the strict rule says why
    reasons = []
    for name in REAL_CLASSICAL:
        with pytest.raises(Unusable) as err:
            phrases_of_file(shared_midi / "classical" / name)
        reasons.append(err.value.reason)
    assert reasons == ["not 4/4", "not 4/4", "meter changes"]
