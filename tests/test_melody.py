"""The melody of a song, melody-locked transfer, the arrangement it is written as, and the
keep-the-song measures and baselines (issue 25)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from midigenre.baselines import random_accompaniment, random_edit
from midigenre.melody import accompaniment, below_melody, melody_notes, melody_track, skyline
from midigenre.metrics import content_added, content_removed, harmony_kept, melody_kept
from shared.errors import GenreError

REPO = Path(__file__).resolve().parents[1]


def roll_of(notes, steps=16, pitches=12):
    r = np.zeros((steps, pitches), dtype=bool)
    for s, e, p in notes:
        r[s:e, p] = True
    return r


# ----------------------------------------------------------------------------- skyline


def test_skyline_voice_rule():
    # a long low note, a melody above it, a lower note starting under the melody, a higher onset
    r = roll_of([(0, 16, 1), (0, 4, 8), (2, 3, 5), (4, 6, 7), (5, 7, 10), (9, 12, 3)])
    m = skyline(r)
    assert m[0:4, 8].all() and not m[0:4, 1].any()          # the top note, not the bass under it
    assert not m[2, 5]                                        # a lower onset under a sounding melody note
    assert m[4, 7] and m[5:7, 10].all() and not m[5, 7]       # a higher onset takes over
    assert not m[7:9].any()                                   # held notes do not become melody
    assert m[9:12, 3].all()                                   # the next onset does
    assert (m.sum(axis=1) <= 1).all()                         # one voice


def test_skyline_numpy_and_torch_agree_on_batches():
    rng = np.random.default_rng(0)
    x = rng.random((5, 64, 84)) > 0.93
    a = skyline(x)
    b = skyline(torch.from_numpy(x).unsqueeze(1).float())
    assert a.shape == x.shape and b.shape == (5, 1, 64, 84)
    np.testing.assert_array_equal(a, b[:, 0].numpy() > 0.5)
    np.testing.assert_array_equal(a[2], skyline(x[2]))        # a batch is its phrases one by one
    assert not (a & ~x).any()                                 # melody cells are notes of the roll


def test_below_melody_and_accompaniment():
    m = roll_of([(0, 4, 6)])
    allowed = below_melody(m)
    assert allowed[0:4, :6].all() and not allowed[0:4, 6:].any()
    assert allowed[4:].all()                                  # anything where the melody rests
    r = roll_of([(0, 4, 6), (0, 4, 2), (0, 4, 9), (5, 6, 11)])
    acc = accompaniment(r, m)
    assert acc[0, 2] and not acc[0, 9] and not acc[0, 6] and acc[5, 11]


def test_melody_track_choice():
    assert melody_track(["PIANO", "MELODY", "BRIDGE"], "auto") == 1
    assert melody_track(["comping", "bass"], "auto") is None
    assert melody_track(["Piano", "Flute"], "track:flute") == 1
    assert melody_track(["MELODY"], "skyline") is None
    with pytest.raises(GenreError, match="no track named 'sax'"):
        melody_track(["Piano"], "track:sax")
    with pytest.raises(GenreError, match="unknown melody mode"):
        melody_track(["Piano"], "top")


def test_melody_notes_skyline_takes_one_note_per_cell():
    start = np.array([0, 0, 0, 4])
    end = np.array([4, 4, 4, 8])
    row = np.array([7, 7, 2, 5])  # the melody pitch doubled by a second track
    mask, how = melody_notes(start, end, row, np.array([0, 1, 1, 0]), ["a", "b"], "auto")
    assert how == "skyline"
    assert mask.tolist() == [True, False, False, True]
    mask, how = melody_notes(start, end, row, np.array([0, 1, 1, 0]), ["lead", "b"], "auto")
    assert how == "track 'lead'" and mask.tolist() == [True, False, False, True]


# ----------------------------------------------------------------------------- measures and baselines


def test_melody_kept_and_harmony_kept():
    r = roll_of([(0, 4, 7), (4, 8, 9), (0, 8, 0), (0, 8, 4)])
    m = skyline(r)
    assert melody_kept(m, r) == (1.0, 1.0)
    above = r.copy()
    above[0:8, 11] = True
    assert melody_kept(m, above) == (1.0, 0.0)                # still sounding, no longer on top
    assert melody_kept(m, r & ~m) == (0.0, 0.0)
    assert np.isnan(melody_kept(np.zeros_like(r), r)[0])
    assert harmony_kept(r, r) == pytest.approx(1.0)
    assert harmony_kept(r, np.roll(r, 6, axis=1)) < 0.6       # a tritone away: other pitch classes
    wide = roll_of([(0, 4, 7), (0, 8, 0), (0, 8, 4)], pitches=24)
    assert harmony_kept(wide, np.roll(wide, 12, axis=1)) == pytest.approx(1.0)  # an octave: the same pitch classes
    silent = np.zeros_like(r)
    assert harmony_kept(r, silent) == 0.0


def test_random_edit_matches_rates_and_spares_the_melody():
    rng = np.random.default_rng(1)
    x = rng.random((40, 64, 84)) > 0.96
    m = skyline(x)
    y = random_edit(x, 0.4, 0.3, np.random.default_rng(2), melody=m)
    assert not (m & ~y).any()                                 # the melody stays
    assert not (y & ~x & ~below_melody(m)).any()              # nothing added above it
    removed, added = np.nanmean(content_removed(x, y)), np.nanmean(content_added(x, y))
    assert 0.3 < removed < 0.5 and 0.2 < added < 0.4
    z = random_edit(x, 0.0, 0.0, np.random.default_rng(2))
    np.testing.assert_array_equal(z, x)


def test_random_accompaniment_keeps_the_melody_on_top():
    rng = np.random.default_rng(3)
    x = rng.random((6, 64, 84)) > 0.95
    pool = rng.random((10, 64, 84)) > 0.9
    m = skyline(x)
    y = random_accompaniment(m, pool, np.random.default_rng(4))
    assert melody_kept(m, y)[1] == 1.0


# ----------------------------------------------------------------------------- melody-locked models


@pytest.mark.parametrize("multi", [False, True])
def test_melody_locked_generator_keeps_the_melody_whatever_its_weights(multi):
    from midigenre.models import Generator, preset

    torch.manual_seed(0)
    cfg = preset("small", g_channels=8, n_res_blocks=1, d_channels=8, melody_lock=True, pitch_plane=multi)
    g = Generator(cfg, n_genres=3 if multi else 0)
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 1)                                   # an arbitrary generator
    x = (torch.rand(4, 1, 64, 84) > 0.93).float()
    genre = torch.tensor([0, 1, 2, 0]) if multi else None
    y = g(x, genre)
    m = skyline(x > 0.5)
    assert (y[m] == 1).all()                                  # the melody, note for note
    assert (y[~below_melody(m) & ~m] == 0).all()              # nothing at or above it where it sounds
    given = torch.zeros_like(x)
    given[:, :, :, 40] = 1                                    # an explicit melody wins over the skyline
    y2 = g(x, genre, given)
    assert (y2[:, :, :, 40] == 1).all() and (y2[:, :, :, 41:] == 0).all()


def test_old_models_are_not_melody_locked(tmp_path):
    """A model.json written before --melody-lock existed (no melody_lock in its config) loads as a
    model that is not melody-locked; the shipped pair is."""
    import json

    from midigenre.models import Generators, preset, save_generators
    from midigenre.pianoroll import RollSettings
    from midigenre.transfer import GenreTransfer

    cfg = preset("small", g_channels=8, n_res_blocks=1, d_channels=8)
    gens = Generators(cfg)
    save_generators(tmp_path, gens.G_AB, gens.G_BA, cfg, genres={"a": "jazz", "b": "classical"},
                    roll_settings=RollSettings(meter="lenient").to_dict(), thresholds={"ab": 0.5, "ba": 0.5})
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["config"].pop("melody_lock")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    model = GenreTransfer.load(tmp_path)
    assert model.melody_lock is False
    assert model.transfer_phrases(np.zeros((1, 64, 84), bool), "classical")[0].shape == (1, 64, 84)
    assert GenreTransfer.load("jazz-classical-melody").melody_lock is True


# ----------------------------------------------------------------------------- whole songs


def song_with_tracks(path: Path, *, drums: bool = True) -> bytes:
    """4+ bars: a 'Lead' flute melody with varied velocities and off-grid timing, piano chords
    (partly above the melody), a bass, drums, and a tempo change."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack()
    meta += [mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
             mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
             mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(130), time=480 * 8)]
    mid.tracks.append(meta)

    def track(name, program, channel, notes):
        t = mido.MidiTrack()
        t.append(mido.MetaMessage("track_name", name=name, time=0))
        t.append(mido.Message("program_change", program=program, channel=channel, time=0))
        events = []
        for s, e, p, v in notes:
            events += [(s, 1, mido.Message("note_on", note=p, velocity=v, channel=channel)),
                       (e, 0, mido.Message("note_off", note=p, velocity=0, channel=channel))]
        now = 0
        for tick, _, msg in sorted(events, key=lambda x: (x[0], x[1])):
            t.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(t)

    melody = [(i * 240 + (7 if i % 3 else 0), i * 240 + 200, 72 + (i * 5) % 9, 50 + (i * 13) % 70) for i in range(36)]
    chords = [(b * 1920, b * 1920 + 1800, p, 70) for b in range(5) for p in (60, 64, 67, 79)]
    bass = [(b * 960, b * 960 + 900, 40 + (b % 3), 90) for b in range(10)]
    track("Lead", 73, 0, melody)
    track("Piano", 0, 1, chords)
    track("Bass", 32, 2, bass)
    if drums:
        t = [(b * 480, b * 480 + 100, 36, 100) for b in range(20)]
        track("Drums", 0, 9, t)
    buf = io.BytesIO()
    mid.save(file=buf)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture(scope="module")
def locked_model(tmp_path_factory):
    from midigenre.models import Generators, preset, save_generators
    from midigenre.pianoroll import RollSettings

    torch.manual_seed(0)
    cfg = preset("small", g_channels=8, n_res_blocks=1, d_channels=8, melody_lock=True)
    gens = Generators(cfg)
    with torch.no_grad():
        for p in gens.parameters():
            p.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("locked")
    save_generators(folder, gens.G_AB, gens.G_BA, cfg, genres={"a": "pop", "b": "jazz"},
                    roll_settings=RollSettings(meter="lenient").to_dict(), thresholds={"ab": 0.5, "ba": 0.5})
    return folder


def test_locked_transfer_writes_an_arrangement(locked_model, tmp_path):
    from symusic import Score

    from midigenre.transfer import GenreTransfer, transfer_midi

    src = tmp_path / "song.mid"
    song_with_tracks(src)
    model = GenreTransfer.load(locked_model)
    assert model.melody_lock
    res = transfer_midi(src, model, "jazz", melody="auto")
    assert res.melody_found == "track 'Lead'"
    measures = res.song_measures()
    assert measures["melody_sounding"] == 1.0 and measures["melody_top"] == 1.0
    out = tmp_path / "out.mid"
    res.arrangement().dump_midi(str(out))
    a, b = Score(str(src)), Score(str(out))
    assert a.tpq == b.tpq
    assert b.tempos.numpy()["time"].tolist() == a.tempos.numpy()["time"].tolist()   # the tempo map
    lead_a = next(t for t in a.tracks if t.name == "Lead").notes.numpy()
    lead_b = next(t for t in b.tracks if t.name == "Lead")
    assert lead_b.program == 73
    for key in ("time", "duration", "pitch", "velocity"):                              # note for note
        np.testing.assert_array_equal(np.sort(lead_b.notes.numpy()[key]), np.sort(lead_a[key]))
    names = [t.name for t in b.tracks]
    assert any(t.is_drum for t in b.tracks)                                            # jazz keeps drums
    added = [t for t in b.tracks if t.name.startswith("jazz ")]
    assert added and {t.program for t in added} <= {0, 32}
    for t in added:
        assert all(1 <= n.velocity <= 127 for n in t.notes)
    # nothing sounds above the melody where it sounds
    melody_pitch = {}
    for n in lead_b.notes:
        for tick in range(n.time, n.time + n.duration, 60):
            melody_pitch[tick] = n.pitch
    for t in b.tracks:
        if t.is_drum or t.name == "Lead":
            continue
        for n in t.notes:
            assert n.pitch < melody_pitch.get(n.time, 128), (t.name, n)
    # drums dropped on request; the result as a roll is still available
    res2 = transfer_midi(src, model, "jazz", drums="drop")
    assert not any(i.is_drum for i in res2.midi().instruments) and len(names) >= 3
    assert len(res2.midi(roll=True).instruments) == 1


def test_cli_transfer_melody_options(locked_model, tmp_path):
    src = tmp_path / "song.mid"
    song_with_tracks(src)
    cmd = [sys.executable, "-m", "cli", "midi", "transfer", str(src), "--model", str(locked_model), "--to", "jazz",
           "-o", str(tmp_path / "out.mid"), "--melody", "track:Lead", "--drums", "drop"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "melody" in run.stdout and (tmp_path / "out.mid").exists()
    bad = subprocess.run(cmd[:-4] + ["--melody", "track:Sax"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and "no track named 'Sax'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_harmony_loss_is_the_harmony_measure_on_notes():
    import torch

    from midigenre.cyclegan import harmony_distance
    from midigenre.metrics import harmony_kept

    rng = np.random.default_rng(3)
    x = rng.random((3, 64, 84)) < 0.03
    y = x.copy()
    y[:, 32:] = rng.random((3, 32, 84)) < 0.03  # the second half's harmony rewritten
    loss = harmony_distance(torch.from_numpy(x)[:, None].float(), torch.from_numpy(y)[:, None].float())
    assert abs(float(loss) - (1 - harmony_kept(x, y))) < 1e-5
    assert float(harmony_distance(torch.from_numpy(x).float(), torch.from_numpy(x).float())) < 1e-5
    soft = torch.full((3, 64, 84), 0.2, requires_grad=True)
    harmony_distance(torch.from_numpy(x).float(), soft).backward()
    assert soft.grad is not None and torch.isfinite(soft.grad).all()


class _DensityJudge:
    """A judge for tests: 'jazz' when a phrase holds more than ``cells`` note cells, else 'pop'."""

    genres = ["pop", "jazz"]

    def __init__(self, cells=150):
        self.cells = cells

    def predict(self, x):
        return (np.asarray(x).sum(axis=(1, 2)) > self.cells).astype(int)

    def index(self, genre):
        return self.genres.index(genre)


def test_song_quality_grid_and_choice_with_keep_source(locked_model, tmp_path):
    from midigenre.choose import choose_by_song, song_direction_grid, song_passes
    from midigenre.song_quality import transfer_songs
    from midigenre.transfer import GenreTransfer

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"s{i}.mid")
        song_with_tracks(paths[-1], drums=False)
    model = GenreTransfer.load(locked_model)
    d = transfer_songs(model, paths, "pop", "jazz", keep_probabilities=True)
    assert d.songs == 2 and d.source.shape == d.result.shape == d.probabilities.shape
    rows = song_direction_grid(model, d, {"density": _DensityJudge()}, target_real=d.source, grid=(0.4, 0.6))
    assert [(r["keep_source"], r["threshold"]) for r in rows] == [(False, 0.4), (False, 0.6), (True, 0.4), (True, 0.6)]
    for plain, kept in zip(rows[:2], rows[2:]):
        # keeping the source keeps its accompaniment under the melody: fewer notes removed, as much harmony
        assert kept["removed"] <= plain["removed"] and kept["harmony"] >= plain["harmony"] - 1e-9
        assert kept["melody_sounding"] == plain["melody_sounding"] == 1.0
        assert set(song_passes(kept, "density")) == {"share", "harmony", "melody", "onsets", "all"}
    (locked_model / "split.json").write_text('{"genres": {}}')  # a combination needs its sources' split
    res = choose_by_song([locked_model], tmp_path / "chosen", songs={"pop": paths[:1], "jazz": paths[1:]},
                       judge=_DensityJudge(), grid=(0.5,))
    chosen = GenreTransfer.load(res["model"])
    assert chosen.melody_lock
    for key, way in (("pop→jazz", "ab"), ("jazz→pop", "ba")):
        assert chosen.thresholds[way] == res["chosen"][key]["threshold"]
        assert chosen.keep_source[way] == res["chosen"][key]["keep_source"]


def test_shipped_melody_model_keeps_the_example_tune_and_writes_an_arrangement(tmp_path):
    import pretty_midi

    from midigenre.transfer import GenreTransfer, transfer_midi

    model = GenreTransfer.load("four-genres-melody")
    assert model.melody_lock and model.kind == "multi-genre"
    res = transfer_midi(REPO / "data" / "examples" / "jazz_example.mid", model, "jazz", source_genre="folk")
    m = res.song_measures()
    assert m["melody_sounding"] == 1.0 and m["melody_top"] == 1.0
    assert res.transferred.sum() > res.melody.sum()  # an accompaniment, not the melody alone
    out = tmp_path / "a.mid"
    res.midi().write(str(out))
    written = pretty_midi.PrettyMIDI(str(out))
    source = pretty_midi.PrettyMIDI(str(REPO / "data" / "examples" / "jazz_example.mid"))
    notes = {(round(n.start, 4), round(n.end, 4), n.pitch) for i in written.instruments for n in i.notes}
    n = res.notes
    mel = np.flatnonzero(res.melody_notes)
    assert len(mel) > 10
    for k in mel:  # every melody note, at its own time and length
        start, end = source.tick_to_time(int(n.start_tick[k])), source.tick_to_time(int(n.end_tick[k]))
        assert (round(start, 4), round(end, 4), int(n.row[k]) + res.settings.lowest_pitch) in notes


def test_the_feature_judge_leaves_the_callers_random_state_alone():
    from midigenre.judges import FeatureJudge

    rng = np.random.default_rng(0)
    phrases = [rng.random((8, 64, 84)) < p for p in (0.02, 0.08)]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = FeatureJudge.train(phrases, ["sparse", "dense"], "h", seed=1, epochs=2)
    after = torch.rand(3)
    assert torch.equal(after, expected)
    b = FeatureJudge.train(phrases, ["sparse", "dense"], "h", seed=1, epochs=2)
    assert (a.predict(phrases[0]) == b.predict(phrases[0])).all()  # still seeded: the same judge twice


def test_the_feature_judge_trains_on_the_shared_loop_alone_in_a_distributed_run(monkeypatch):
    """Each process that asks for a judge trains the whole judge itself: the loop neither splits
    its batches across the processes nor waits for them."""
    import shared.distributed
    from midigenre.judges import FeatureJudge
    from shared.training import TrainingLoop

    rng = np.random.default_rng(1)
    phrases = [rng.random((8, 64, 84)) < p for p in (0.02, 0.08)]
    plain = FeatureJudge.train(phrases, ["sparse", "dense"], "h", seed=2, epochs=2)
    runs = []
    real_run = TrainingLoop.run
    monkeypatch.setattr(TrainingLoop, "run", lambda self: runs.append(self) or real_run(self))
    monkeypatch.setattr(shared.distributed, "context", lambda device=None: shared.distributed.Context(1, 2, "gloo"))
    judge = FeatureJudge.train(phrases, ["sparse", "dense"], "h", seed=2, epochs=2)
    assert len(runs) == 1 and runs[0].dist.world == 1 and len(runs[0].position.history) == 2
    for a, b in zip(plain.net.state_dict().values(), judge.net.state_dict().values()):
        assert torch.equal(a, b)
