"""Shared fixtures: MIDI files made in code (exact ticks via mido) and a fixed slice of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import mido
import numpy as np
import pytest

# Tiny models gain nothing from threads, and idle OpenMP threads spin: on a machine with other
# jobs two threads can be 10x slower than one (see benchmarks/train_speed.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_MIDI = Path(os.environ.get("GENRE_SHARED_DATA", REPO.parent / "shared" / "data")) / "midi"

# A small fixed subset of the real data (never copied into the repo).
REAL_JAZZ = ["ArtPepper_Anthropology.mid", "ArtPepper_BluesForBlanche.mid", "ArtPepper_Desafinado.mid"]
REAL_CLASSICAL = ["albeniz_alb_esp1.mid", "albeniz_alb_esp2.mid", "albeniz_alb_esp3.mid"]


def make_midi(
    path: Path | None,
    notes: list[tuple[int, int, int]] | list[tuple[int, int, int, int]],
    *,
    tpq: int = 480,
    time_signatures: list[tuple[int, int, int]] = ((0, 4, 4),),
    tempos: list[tuple[int, float]] = ((0, 120.0),),
    drum_notes: list[tuple[int, int, int]] = (),
    tracks: int = 1,
) -> bytes:
    """Write a type-1 MIDI file with exact tick positions and return its bytes.

    notes : (start_tick, end_tick, pitch[, track]) — track cycles over ``tracks`` pitched tracks.
    time_signatures : (tick, numerator, denominator); tempos : (tick, bpm).
    drum_notes : (start_tick, end_tick, pitch) on channel 10.
    """
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta = [(t, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for t, n, d in time_signatures]
    meta += [(t, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for t, bpm in tempos]
    mid.tracks.append(_track(meta))
    for k in range(tracks):
        events = []
        for note in notes:
            s, e, p = note[:3]
            if (note[3] if len(note) > 3 else 0) % tracks != k:
                continue
            events += [(s, mido.Message("note_on", note=p, velocity=90, channel=k)),
                       (e, mido.Message("note_off", note=p, velocity=0, channel=k))]
        mid.tracks.append(_track(events))
    if drum_notes:
        events = []
        for s, e, p in drum_notes:
            events += [(s, mido.Message("note_on", note=p, velocity=90, channel=9)),
                       (e, mido.Message("note_off", note=p, velocity=0, channel=9))]
        mid.tracks.append(_track(events))
    import io

    buf = io.BytesIO()
    mid.save(file=buf)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _track(events):
    # note-offs before note-ons at the same tick, so back-to-back notes stay separate
    events = sorted(events, key=lambda e: (e[0], 0 if e[1].type in ("note_off",) else 1))
    track, now = mido.MidiTrack(), 0
    for t, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    return track


def random_grid_notes(rng: np.random.Generator, bars: int, tpq: int = 480, n: int = 60, lo: int = 30, hi: int = 100):
    """Random on-grid notes (16th-note grid) covering ``bars`` bars, as (start, end, pitch)."""
    step = tpq // 4
    total = bars * 16
    out = []
    for _ in range(n):
        s = int(rng.integers(0, total - 1))
        e = int(min(total, s + rng.integers(1, 8)))
        out.append((s * step, e * step, int(rng.integers(lo, hi))))
    return out


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def shared_midi() -> Path:
    if not SHARED_MIDI.is_dir():
        pytest.skip(f"the shared data folder {SHARED_MIDI} is absent (CI has it)")
    return SHARED_MIDI


@pytest.fixture
def song_folder(tmp_path: Path) -> Path:
    """A folder of good and bad .mid files made in code: 3 good 4/4 songs (one nested) + one of each bad kind."""
    rng = np.random.default_rng(7)
    d = tmp_path / "songs"
    (d / "nested").mkdir(parents=True)
    make_midi(d / "a.mid", random_grid_notes(rng, 9), tracks=2)  # 2 full phrases + a tail
    make_midi(d / "b.mid", random_grid_notes(rng, 8), tempos=[(0, 90.0), (480 * 8, 150.0)])
    make_midi(d / "nested" / "c.midi", random_grid_notes(rng, 12))
    (d / "zero.mid").write_bytes(b"")
    (d / "text.mid").write_text("this is not a MIDI file\n")
    good = make_midi(None, random_grid_notes(rng, 8))
    (d / "truncated.mid").write_bytes(good[: len(good) // 2])
    make_midi(d / "drums.mid", [], drum_notes=[(0, 120, 36), (480, 600, 38)])
    make_midi(d / "silent.mid", [])
    make_midi(d / "waltz.mid", random_grid_notes(rng, 8), time_signatures=[(0, 3, 4)])
    make_midi(d / "changes.mid", random_grid_notes(rng, 8), time_signatures=[(0, 4, 4), (480 * 8, 3, 4)])
    make_midi(d / "short.mid", [(0, 480, 60)])
    make_midi(d / "copy_of_a.mid", [])  # replaced below by a byte copy
    (d / "copy_of_a.mid").write_bytes((d / "a.mid").read_bytes())
    (d / "notes.txt").write_text("not a MIDI suffix, ignored when scanning folders")
    return d


# Drop reasons the song_folder above must produce, file by file.
SONG_FOLDER_EXPECTED = {
    "a.mid": "",
    "b.mid": "",
    "nested/c.midi": "",
    "zero.mid": "empty file",
    "text.mid": "parse error",
    "truncated.mid": "parse error",
    "drums.mid": "drums only",
    "silent.mid": "no notes",
    "waltz.mid": "not 4/4",
    "changes.mid": "meter changes",
    "short.mid": "too short",
    "copy_of_a.mid": "duplicate",
}


def make_cache(folder, genre, n_songs, lo, hi, seed, out):
    """A cache of ``n_songs`` random 8-bar songs (2 phrases each) with pitches in [lo, hi)."""
    from midigenre.prepare import prepare

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_songs):
        notes = random_grid_notes(rng, 8, n=60, lo=lo, hi=hi) + [(127 * 120, 128 * 120, lo)]
        make_midi(folder / f"{genre}{i:02d}.mid", notes)
    prepare([folder], genre, out)
    return out


@pytest.fixture(scope="session")
def caches(tmp_path_factory):
    """Genre 'low' (pitches 30–60) and 'high' (60–90): 10 songs × 2 phrases each, made once per
    session and shared: READ ONLY (a test that writes into a cache or next to it copies it into
    its ``tmp_path`` first). The songs are in ``caches[0].parent / "low"`` and ``… / "high"``."""
    root = tmp_path_factory.mktemp("caches")
    a = make_cache(root / "low", "low", 10, 30, 60, 1, root / "low.h5")
    b = make_cache(root / "high", "high", 10, 60, 90, 2, root / "high.h5")
    return a, b


@pytest.fixture(scope="session")
def small_caches(tmp_path_factory):
    """Like ``caches`` with 4 songs per genre, for tests that train and look only at what the
    trainer does (3 training songs: an epoch is 6 phrases); READ ONLY."""
    root = tmp_path_factory.mktemp("small_caches")
    a = make_cache(root / "low", "low", 4, 30, 60, 1, root / "low.h5")
    b = make_cache(root / "high", "high", 4, 60, 90, 2, root / "high.h5")
    return a, b


TINY_MODEL = {"g_channels": 8, "n_res_blocks": 2, "d_channels": 8}


@pytest.fixture
def tiny_preset(monkeypatch):
    """The CycleGAN preset 'tiny' (8 channels, 2 residual blocks), registered for one test."""
    from midigenre import models

    monkeypatch.setitem(models.PRESETS, "tiny", models.ModelConfig(**TINY_MODEL))
    return "tiny"


@pytest.fixture(scope="session")
def tiny_run(caches, tmp_path_factory):
    """A tiny CycleGAN low ↔ high trained for one epoch: a run folder, made once; READ ONLY."""
    from midigenre import models
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig

    run = tmp_path_factory.mktemp("tiny_run") / "run"
    a, b = GenreSource.parse(caches[0]), GenreSource.parse(caches[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(models.PRESETS, "tiny", models.ModelConfig(**TINY_MODEL))
        CycleGANTask(a, b, run, TrainConfig(preset="tiny", epochs=1, batch_size=4, sample_phrases=1)).fit()
    return run
