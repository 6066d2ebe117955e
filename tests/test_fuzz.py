"""The fuzz campaign kept as tests: bad MIDI, damaged caches and broken audio through the
commands that read them. Each case ends in a one-line error and a non-zero exit, or in a
sensible result; never a traceback, a damaged cache, a clipped song or a worse one.

The inputs are built by tests/fuzz_inputs.py (which also runs the slow cases as
``python -m tests.fuzz_inputs``: 100k notes, 20 minutes of audio, 500 files, kill -9 during
prepare, in separate processes with time and memory limits). Here every command runs in-process through click's CliRunner.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shared.errors import GenreError
from tests import fuzz_inputs as F
from tests.conftest import REPO
from tests.test_audio import fluidsynth_ready


needs_fluidsynth = pytest.mark.skipif(fluidsynth_ready() is not None, reason=f"FluidSynth not usable: {fluidsynth_ready()}")


def run(argv: list[str], expect: str = "error", check=None) -> F.Outcome:
    """Run ``genre ARGV`` in-process and assert the fuzz verdict is ok."""
    o = F.run_inprocess([str(a) for a in argv])
    case = F.Case("test", "test", argv, expect, check=check)
    v = F.verdict(case, o)
    assert v == "ok", f"{' '.join(map(str, argv))}: {v}\n{o.out}\n{o.err}\n{o.exception!r}"
    if expect == "error" or (expect == "either" and o.rc):
        assert "Traceback" not in o.out + o.err
    return o


# ----------------------------------------------------------------------------- MIDI files


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz-midi")
    for name, data in F.midi_inputs().items():
        (d / f"{name.replace('/', '_').replace('^', '')}.mid").write_bytes(data)
    (d / "a440.mid").write_bytes(F.song(ns=[(0, 480 * 4, 69)]))
    return d


BAD_MIDI = ["zero-byte", "random-bytes", "text", "tpq-0", "smpte-division", "truncated@286", "pitch-byte-over-127",
            "note-at-tick-227", "no-notes", "drum-only", "pitches-out-of-range"]


@pytest.mark.parametrize("name", BAD_MIDI)
def test_bad_midi_plot_and_transfer_answer_in_one_line(midi_dir, tmp_path, name):
    src = midi_dir / f"{name}.mid"
    run(["midi", "plot", src, "-o", tmp_path / "p.png"])
    o = run(["midi", "transfer", src, "--to", "classical", "-o", tmp_path / "t.mid"])
    assert not (tmp_path / "t.mid").exists() and "nan" not in o.out


def test_song_outside_the_pitch_window_is_refused_not_transferred_to_nothing(midi_dir, tmp_path):
    o = run(["midi", "transfer", midi_dir / "pitches-out-of-range.mid", "--to", "classical", "-o", tmp_path / "t.mid"])
    assert "no notes in pitch range" in o.err + o.out and "outside MIDI 24..107" in o.err + o.out


@pytest.mark.parametrize("name,expect", [("tpq-0", "error"), ("smpte-division", "error"), ("zero-byte", "error"),
                                         ("note-at-tick-227", "error"), ("no-notes", "error"), ("drum-only", "ok")])
@needs_fluidsynth
def test_render_answers_bad_midi(midi_dir, tmp_path, name, expect):
    o = run(["render", midi_dir / f"{name}.mid", "-o", tmp_path / "r.wav", "--rate", "8000"], expect)
    if name == "note-at-tick-227":
        assert "too long" in o.err and "4096" in o.err  # refused before any sample is made, as prepare does


@needs_fluidsynth
@pytest.mark.parametrize("name", ["good", "tempo-0", "tempo-0-later"])
def test_render_reads_tempo_0_as_the_rest_of_the_toolkit(midi_dir, tmp_path, name):
    # 16 bars at 120 bpm (a tempo of 0 µs per quarter is ignored, as prepare/transfer/plot do)
    run(["render", midi_dir / f"{name}.mid", "-o", tmp_path / "r.wav", "--rate", "8000"], "ok",
        check=F.check_render(tmp_path / "r.wav", seconds=32.0, rate=8000))


@needs_fluidsynth
@pytest.mark.parametrize("rate", [96000, 192000])
def test_render_above_fluidsynths_rate_keeps_the_pitch(midi_dir, tmp_path, rate):
    run(["render", midi_dir / "a440.mid", "-o", tmp_path / "r.wav", "--rate", str(rate), "--seconds", "1"], "ok",
        check=F.check_render(tmp_path / "r.wav", freq=440.0, rate=rate))


@needs_fluidsynth
def test_streamed_render_equals_the_one_in_memory(tmp_path):
    import soundfile as sf

    from audiogenre.render import Renderer, render_to_file, tracks_of_file

    src = REPO / "data" / "examples" / "jazz_example.mid"
    tracks = tracks_of_file(src)
    with Renderer(rate=8000) as r:
        whole = r.render(tracks, seconds=12.0)
    with Renderer(rate=8000) as r:  # a fresh synthesiser: FluidSynth's LFOs run on between renders
        parts = list(r.blocks(tracks, seconds=12.0, block_seconds=0.7))
    assert len(parts) > 10 and np.array_equal(np.concatenate(parts), whole)
    secs = render_to_file(src, tmp_path / "s.flac", rate=8000, seconds=3.0)
    assert secs == pytest.approx(3.0) and sf.info(str(tmp_path / "s.flac")).frames == 24000


@needs_fluidsynth
@pytest.mark.parametrize("seconds", [None, "5"])
def test_render_from_past_the_end_is_refused_with_or_without_seconds(midi_dir, tmp_path, seconds):
    # good.mid is 16 bars at 120 bpm: 32 s
    o = run(["render", midi_dir / "good.mid", "-o", tmp_path / "r.wav", "--rate", "8000", "--start", "40",
             *(["--seconds", seconds] if seconds else [])])
    assert "nothing to render" in o.err and not (tmp_path / "r.wav").exists()
    run(["render", midi_dir / "good.mid", "-o", tmp_path / "r.wav", "--rate", "8000", "--start", "30", "--seconds", "5"],
        "ok", check=F.check_render(tmp_path / "r.wav", seconds=5.0, rate=8000))  # a start inside the song still plays


@needs_fluidsynth
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGQUIT"])
def test_render_stopped_by_a_signal_leaves_no_temporary_file(tmp_path, sig):
    import os
    import signal
    import subprocess

    src = tmp_path / "long.mid"
    src.write_bytes(F.song(2200, seed=3))  # 2200 bars at 120 bpm: 73 minutes
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "cli", "render", str(src), "-o", str(out / "r.wav")], cwd=str(REPO),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        def rendering():  # the temporary file of the audio, not the folder's write probe (.write-test-…)
            return [f for f in out.iterdir() if not f.name.startswith(".write-test")]

        while not rendering() and p.poll() is None and time.time() - t0 < 120:
            time.sleep(0.1)  # the temporary file appears when the rendering starts
        assert rendering(), "the rendering never started"
        p.send_signal(getattr(signal, sig))
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + getattr(signal, sig) and f"Interrupted ({sig})" in err and "Traceback" not in err
    assert list(out.iterdir()) == []
    # warned up front, with an estimate, before any sample was made
    assert "1.2 hours long" in err and "GB" in err and err.index("Warning") < err.index("Interrupted")


def test_prepare_of_a_mixed_folder_counts_every_file(tmp_path):
    from midigenre.dataset import PhraseCache

    d = tmp_path / "mixed"
    d.mkdir()
    bad = [v for k, v in F.midi_inputs().items() if k != "good"]
    for i in range(6):
        (d / f"good{i}.mid").write_bytes(F.song(8, seed=50 + i))
    for i, data in enumerate(bad):
        (d / f"bad{i:02d}.mid").write_bytes(data)
    out = tmp_path / "c.h5"
    run(["midi", "prepare", d, "-g", "g", "-o", out], "ok", check=F.check_prepare_counts(out, "g"))
    with PhraseCache(out) as c:
        assert len(c.files("g")["name"]) + len(c.dropped("g")["name"]) == 6 + len(bad)


@needs_fluidsynth
def test_a_report_again_into_its_folder_keeps_what_the_user_added(midi_dir, tmp_path):
    out = tmp_path / "rep"
    args = ["report", "jazz-classical-melody", "--songs", midi_dir / "good.mid", "--max-bars", "4", "--max-seconds", "2", "-o", out]
    run(args, "ok")
    (out / "notes.txt").write_text("my notes")
    (out / "img" / "sketch.png").write_bytes(b"mine")
    (out / "mine").mkdir()
    (out / "mine" / "take2.wav").write_bytes(b"mine too")
    run(args, "ok")
    assert (out / "notes.txt").read_text() == "my notes" and (out / "img" / "sketch.png").read_bytes() == b"mine"
    assert (out / "mine" / "take2.wav").read_bytes() == b"mine too"
    import json

    rep = json.loads((out / "report.json").read_text())
    assert "notes.txt" not in rep["files"] and "index.html" in rep["files"]
    stale = out / "audio" / "song_9_source.ogg"  # a file an earlier report listed as its own goes
    stale.write_bytes(b"old")
    rep["files"].append("audio/song_9_source.ogg")
    (out / "report.json").write_text(json.dumps(rep))
    run(args, "ok")
    assert not stale.exists() and (out / "notes.txt").exists()
    # a file of the user's where the new report writes one: refused, everything left as it was
    (out / "index.html").unlink()
    (out / "index.html").write_text("my page")
    files = json.loads((out / "report.json").read_text())
    files["files"].remove("index.html")
    (out / "report.json").write_text(json.dumps(files))
    o = run(args)
    assert "index.html" in o.err and (out / "index.html").read_text() == "my page" and (out / "notes.txt").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------- caches


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz-cache")
    good = F.make_good_cache(d / "src", d / "good.h5", songs_per_genre=4)
    return F.cache_inputs(good, d / "damaged")


DAMAGED = ["zero-byte", "random-bytes", "truncated@50%", "corrupted-chunk", "bit-flip-in-chunk", "settings-not-json",
           "settings-wrong-types", "settings-a-list", "schema-version-text", "schema-version-99", "kind-other",
           "missing-phrases", "missing-files-group", "genre-is-a-dataset", "phrase-file-out-of-range",
           "phrase-index-negative", "phrase-index-huge", "phrase-index-all-zeros", "tempo-0", "first-phrase-out-of-range", "counts-disagree", "phrases-(N,32,84)", "phrases-float",
           "plain-hdf5"]


def _copy(caches, name, tmp_path) -> Path:
    p = tmp_path / "c.h5"
    shutil.copyfile(caches[name], p)
    return p


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_cache_is_refused_in_one_line_by_every_reader(caches, tmp_path, name):
    path = _copy(caches, name, tmp_path)
    reads_chunks = name in ("corrupted-chunk", "bit-flip-in-chunk")  # the tables are fine: inspect/split may work
    run(["midi", "inspect", path, "--files", "--dropped"], "either" if reads_chunks else "error")
    run(["midi", "plot", path, "-g", "jazz", "--index", "0:2", "-o", tmp_path / "p.png"])
    run(["midi", "export", path, "-g", "jazz", "--song", "0", "-o", tmp_path / "x.mid"])
    run(["midi", "split", path, "-o", tmp_path / "s.json"], "either" if reads_chunks else "error")
    assert not (tmp_path / "x.mid").exists() and not (tmp_path / "p.png").exists()


def test_phrases_all_in_one_place_are_refused_by_the_song_reader(caches, tmp_path):
    from midigenre.dataset import PhraseCache

    path = _copy(caches, "phrase-index-all-zeros", tmp_path)
    o = run(["midi", "export", path, "-g", "jazz", "--song", "0", "-o", tmp_path / "x.mid"])
    assert "do not rise within a song" in o.err and not (tmp_path / "x.mid").exists()
    with pytest.raises(GenreError, match="damaged"), PhraseCache(path) as c:
        c.check("jazz")
    with PhraseCache(_copy(caches, "good", tmp_path)) as c:  # songs with gaps (empty phrases) are fine
        c.check()
        _, pos, _, _ = c.song("jazz", 0)
        assert len(pos) > 1 and (np.diff(pos) > 0).all()


@pytest.mark.parametrize("name", ["phrases-(N,32,84)", "phrase-file-out-of-range", "corrupted-chunk"])
def test_damaged_cache_is_not_trained_on(caches, tmp_path, name):
    path = _copy(caches, name, tmp_path)
    o = run(["midi", "train-classifier", "--genre", f"jazz={path}", "--genre", f"classical={path}", "--out", tmp_path / "clf",
             "--epochs", "1", "--device", "cpu"])
    assert "damaged" in o.err
    if name == "phrases-(N,32,84)":
        assert "(N, 64, 84)" in o.err


@pytest.mark.parametrize("name", ["missing-phrases", "settings-not-json", "counts-disagree"])
def test_prepare_into_a_damaged_cache_refuses_and_keeps_it(caches, tmp_path, midi_dir, name):
    path = _copy(caches, name, tmp_path)
    before = path.read_bytes()
    o = run(["midi", "prepare", midi_dir / "good.mid", "-g", "pop", "-o", path, "--meter", "lenient"])
    assert "--overwrite" in o.err and path.read_bytes() == before
    # --overwrite replaces the whole damaged file with a good one
    run(["midi", "prepare", midi_dir / "good.mid", "-g", "pop", "-o", path, "--meter", "lenient", "--overwrite"], "ok")
    run(["midi", "inspect", path], "ok")


def test_damaged_chunk_read_by_the_dataset_is_one_genre_error(caches, tmp_path):
    from midigenre.dataset import PhraseCache, PhraseDataset

    path = _copy(caches, "corrupted-chunk", tmp_path)
    ds = PhraseDataset(path, "jazz")
    with pytest.raises(GenreError, match="damaged: cannot read the phrases of 'jazz'"):
        ds.__getitems__([0, 1])
    with PhraseCache(path) as c:
        with pytest.raises(GenreError, match="damaged"):
            c.phrases("jazz", [0, 1])
        assert c.phrases("classical", [0]).shape == (1, 64, 84)  # the other genre is untouched


def test_an_error_after_a_progress_bar_starts_its_own_line(caches, tmp_path):
    # stderr is not a terminal here (a log file, a pipe): `grep '^Error'` must find the error
    o = run(["midi", "merge", caches["good"], _copy(caches, "corrupted-chunk", tmp_path), "-o", tmp_path / "m.h5"])
    lines = o.err.split("\n")
    assert any("reading '" in x for x in lines)  # a bar was drawn before the error
    assert [x for x in lines if x.startswith("Error: ")] and not [x for x in lines if "\rError" in x]


def test_out_of_range_phrase_rows_are_refused(caches, tmp_path):
    path = _copy(caches, "good", tmp_path)
    o = run(["midi", "export", path, "-g", "jazz", "--index", "0,999", "-o", tmp_path / "x.mid"])
    assert "out of range" in o.err and not (tmp_path / "x.mid").exists()
    run(["midi", "plot", path, "-g", "jazz", "--index", "999", "-o", tmp_path / "p.png"])


# ----------------------------------------------------------------------------- prepare: locks, litter


def _songs(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"s{i:02d}.mid").write_bytes(F.song(8, seed=seed + i))
    return folder


def test_prepare_that_keeps_no_file_and_merge_of_missing_shards_exit_non_zero(midi_dir, tmp_path):
    from midigenre.dataset import PhraseCache

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("zero-byte", "text", "no-notes"):
        shutil.copyfile(midi_dir / f"{name}.mid", bad / f"{name}.mid")
    o = run(["midi", "prepare", bad, "-g", "g", "-o", tmp_path / "c.h5"])
    assert "no file was kept" in o.err and "--allow-empty" in o.err and "files kept" in o.out  # the summary says why
    run(["midi", "prepare", bad, "-g", "g", "-o", tmp_path / "c2.h5", "--allow-empty"], "ok")
    with PhraseCache(tmp_path / "c2.h5") as c:
        assert len(c.dropped("g")["name"]) == 3 and c.n_phrases("g") == 0

    src = _songs(tmp_path / "songs", 6, 0)
    shards = [tmp_path / f"s{i}.h5" for i in (1, 2, 3)]
    for i, s in enumerate(shards, 1):
        run(["midi", "prepare", src, "-g", "g", "-o", s, "--shard", f"{i}/3", "--allow-empty"], "ok")
    o = run(["midi", "merge", shards[0], shards[2], "-o", tmp_path / "m.h5"])
    assert "shard 2 of 3 is missing" in o.err and "--partial" in o.err and not (tmp_path / "m.h5").exists()
    o = run(["midi", "merge", shards[0], shards[2], "-o", tmp_path / "m.h5", "--partial"], "ok")
    assert "missing 2" in o.out
    run(["midi", "merge", *shards, "-o", tmp_path / "all.h5"], "ok")


def test_two_prepares_into_one_cache_at_once_keep_both_genres(tmp_path):
    from midigenre.dataset import PhraseCache
    from midigenre.prepare import prepare

    out = tmp_path / "c.h5"
    srcs = [_songs(tmp_path / g, 4, 10 * k) for k, g in enumerate("ab")]
    errors = []

    def job(src, genre):
        try:
            prepare([src], genre, out, progress=lambda r: time.sleep(0.05))  # slow: the runs overlap
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=job, args=(s, g)) for s, g in zip(srcs, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with PhraseCache(out) as c:
        assert c.genres == ["a", "b"] and all(len(c.files(g)["name"]) == 4 for g in "ab")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no lock files or temporaries left


def test_a_second_prepare_of_the_same_genre_is_refused_while_one_runs(tmp_path):
    from midigenre.prepare import prepare

    out = tmp_path / "c.h5"
    src = _songs(tmp_path / "a", 4, 0)
    started, errors = threading.Event(), []

    def slow(res):
        started.set()
        time.sleep(0.15)

    t = threading.Thread(target=lambda: prepare([src], "a", out, progress=slow))
    t.start()
    started.wait(10)
    with pytest.raises(GenreError, match="another prepare run is writing genre 'a'"):
        prepare([src], "a", out, overwrite=True)
    t.join()
    assert not errors and out.exists()


def test_resume_removes_what_killed_runs_left(tmp_path):
    from midigenre.dataset import PhraseCache
    from midigenre.prepare import _Journal, prepare

    out = tmp_path / "c.h5"
    src = _songs(tmp_path / "a", 3, 0)
    prepare([src], "a", out)
    # what a kill -9 leaves: temporary caches, a journal, a lock file of the dead run
    for k in range(3):
        (tmp_path / f".c.h5.x{k}yz.tmp.h5").write_bytes(b"half a cache")
    (tmp_path / ".c.h5.b.lock").write_bytes(b"")
    _Journal(out, "b", "0" * 16).start()
    src_b = _songs(tmp_path / "b", 3, 20)
    prepare([src_b], "b", out, resume=True)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [], left
    with PhraseCache(out) as c:
        assert c.genres == ["a", "b"]


# ----------------------------------------------------------------------------- messages that name the real problem


def test_a_missing_path_is_called_missing_not_a_missing_model(tmp_path):
    o = run(["report", tmp_path / "missing.wav", "-o", tmp_path / "rep"])
    assert "no such file" in o.err and "model" not in o.err
    o = run(["report", f"{tmp_path / 'missing'}/", "-o", tmp_path / "rep"])
    assert "no such folder" in o.err
    o = run(["report", "no-such-model", "-o", tmp_path / "rep"])  # a name: still answered with the shipped models
    assert "no such model" in o.err
    o = run(["midi", "choose", f"{tmp_path / 'nonexistent'}/", "--out", tmp_path / "ch"])
    assert "no such run folder" in o.err and "kept epochs" not in o.err


def test_choose_on_a_pair_run_says_it_needs_a_multi_genre_run(tmp_path):
    run_dir = tmp_path / "pair"
    shutil.copytree(REPO / "data" / "models" / "jazz-classical-melody", run_dir)  # a CycleGAN's run folder holds its model as this
    (run_dir / "epochs" / "epoch_001").mkdir(parents=True)
    shutil.copyfile(run_dir / "model.json", run_dir / "epochs" / "epoch_001" / "model.json")
    for kept in (True, False):
        if not kept:
            shutil.rmtree(run_dir / "epochs")
        o = run(["midi", "choose", run_dir, "--out", tmp_path / "ch"])
        assert "CycleGAN (pair) run" in o.err and "multi-genre" in o.err and "--genre" in o.err


# ----------------------------------------------------------------------------- training processes


def test_nproc_beyond_the_cores_is_refused_unless_insisted(tmp_path):
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    many = str(cores + 1)
    missing = tmp_path / "missing.h5"  # a process that starts fails at once on it: cheap either way
    midi = ["midi", "train", "--a", f"{missing}:jazz", "--b", f"{missing}:pop", "--out", tmp_path / "run",
            "--device", "cpu", "--epochs", "1", "--batch-size", "64", "--nproc", many]
    for argv in (midi, ["audio", "train", tmp_path / "no-data", "-o", tmp_path / "clf", "--device", "cpu", "--nproc", many]):
        o = run(argv)
        assert f"--nproc {many} is more than the {cores} CPU core" in o.err and "--nproc-anyway" in o.err
        assert "starting" not in o.err  # refused before any process started
    assert not (tmp_path / "run").exists() and not (tmp_path / "clf").exists()
    o = F.run_inprocess([str(a) for a in [*midi, "--nproc-anyway"]])  # insisted: they start (and meet the missing cache)
    assert o.exception is None and o.rc == 1 and f"starting {many} processes" in o.err and "is more than" not in o.err


# ----------------------------------------------------------------------------- audio


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> dict[str, Path]:
    return F.audio_inputs(tmp_path_factory.mktemp("fuzz-audio"))


@pytest.mark.parametrize("name", ["zero-byte", "text", "header-only", "nan", "inf", "one-sample", "silent", "fake-mp3"])
def test_bad_audio_is_refused_in_one_line(audio_dir, tmp_path, name):
    o = run(["audio", "transform", audio_dir[name], "--to", "jazz", "--steps", "1", "-o", tmp_path / "t.wav"])
    assert not (tmp_path / "t.wav").exists()
    assert "File does not exist" not in o.err  # an existing file that is not audio is not called missing


@pytest.mark.parametrize("name", ["8kHz-mono", "192kHz-6ch"])
def test_odd_rates_and_channels_are_transformed_as_they_are(audio_dir, tmp_path, name):
    import soundfile as sf

    run(["audio", "transform", audio_dir[name], "--to", "jazz", "--steps", "2", "-o", tmp_path / "t.wav"], "either",
        check=F._transform_check(audio_dir[name], tmp_path / "t.wav"))
    if (tmp_path / "t.wav").exists():
        a, b = sf.info(str(audio_dir[name])), sf.info(str(tmp_path / "t.wav"))
        assert (a.samplerate, a.channels, a.frames) == (b.samplerate, b.channels, b.frames)


def run_limited(argv: list[str], expect: str = "error", mem_gb: float = 4.0, timeout: float = 300.0) -> F.Outcome:
    """``genre ARGV`` in its own process, limited in memory and time (for cases that once ran away)."""
    o = F.run_subprocess([str(a) for a in argv], timeout=timeout, mem_gb=mem_gb)
    v = F.verdict(F.Case("test", "test", argv, expect), o)
    assert v == "ok", f"{' '.join(map(str, argv))}: {v}\n{o.out}\n{o.err}"
    return o


@pytest.mark.parametrize("name", ["rate-1Hz", "rate-3Hz"])
def test_a_header_claiming_a_few_hertz_is_refused_before_resampling(audio_dir, tmp_path, name):
    # resampled to 16 kHz (transform) or 22.05 kHz (transcription) these 10 s would be 10-30 GB
    src = audio_dir[name]
    for argv in (["audio", "transform", src, "--to", "jazz", "--steps", "1", "-o", tmp_path / "t.wav"],
                 ["audio", "transcribe", src, "-o", tmp_path / "t.mid"],
                 ["audio", "arrange", src, "--to", "classical", "-o", tmp_path / "x.wav"]):
        o = run_limited(argv)
        assert "sample rate of" in o.err and "Hz" in o.err and o.seconds < 60
    assert not [p.name for p in tmp_path.iterdir()]


def test_resampling_is_bounded_whatever_the_rates():
    from audiogenre.audio import MAX_RESAMPLED, resample

    with pytest.raises(GenreError, match="would make"):
        resample(np.zeros(MAX_RESAMPLED // 1000 + 1, np.float32), 16, 16000)


@pytest.mark.parametrize("change", ["no sample_rate", "no seconds", "no settings", "seconds 0", "rate 1"])
def test_an_audio_model_without_its_clip_settings_is_refused(audio_dir, tmp_path, change):
    import json

    from audiogenre.models import DEFAULT_AUDIO_MODEL

    model = tmp_path / "clf"
    shutil.copytree(DEFAULT_AUDIO_MODEL, model)
    meta = json.loads((model / "model.json").read_text())
    settings = meta["settings"]
    if change == "no settings":
        del meta["settings"]
    elif change.startswith("no "):
        del settings[change[3:]]
    elif change == "seconds 0":
        settings["seconds"] = 0
    else:
        settings["sample_rate"] = 1
    (model / "model.json").write_text(json.dumps(meta))
    o = run(["audio", "transform", audio_dir["good"], "--classifier", model, "--to", "jazz", "--steps", "1", "-o",
             tmp_path / "t.wav"])
    assert "model.json" in o.err and ("settings" in o.err) and not (tmp_path / "t.wav").exists()
    if change.startswith("no ") and change != "no settings":
        assert change[3:] in o.err
    run(["audio", "fad", "--reference", audio_dir["good"], "--test", audio_dir["8kHz-mono"], "--embedding", model])


def test_float_file_above_full_scale_is_not_clipped_silently(audio_dir, tmp_path):
    import soundfile as sf

    from audiogenre.audio import snr_db

    src = audio_dir["float-peak-7.6"]
    o = run(["audio", "transform", src, "--to", "jazz", "--steps", "3", "-o", tmp_path / "t.wav"], "ok")
    assert "peaks at 7.60" in o.out
    a, _ = sf.read(str(src), dtype="float32")
    b, _ = sf.read(str(tmp_path / "t.wav"), dtype="float32")
    assert sf.info(str(tmp_path / "t.wav")).subtype == "FLOAT" and np.abs(b).max() > 7.0
    assert snr_db(a, b - a) >= 25.0
    o = run(["audio", "transform", src, "--to", "jazz", "--steps", "3", "-o", tmp_path / "t.flac"], "ok")
    assert "to fit .flac" in o.out
    c, _ = sf.read(str(tmp_path / "t.flac"), dtype="float32")
    assert np.abs(c).max() <= 1.0 and snr_db(a / 7.6, c - a / 7.6) > 20.0


# ----------------------------------------------------------------------------- the transformation's guards


def _shipped():
    from audiogenre.models import DEFAULT_AUDIO_MODEL, AudioClassifier

    model, meta = AudioClassifier.load(DEFAULT_AUDIO_MODEL)
    return model, float(meta["settings"]["seconds"])


def test_the_snr_floor_holds_however_hard_the_optimiser_pushes(audio_dir, tmp_path):
    from audiogenre.audio import load_audio
    from audiogenre.transform import TransformConfig, transform_audio, transform_file

    model, w = _shipped()
    audio = load_audio(audio_dir["good"])
    cfg = TransformConfig(lr=2e-3, lam=0.0, steps=8, target_prob=1.0, window=w, overlap=0.75, min_snr=25.0)
    out, rep, _ = transform_audio(model, audio, "jazz", cfg, progress=False)
    assert rep.snr_db >= 25.0 - 1e-6 and rep.min_snr_db == 25.0 and rep.p_after > rep.p_before
    assert any("SNR floor" in n for n in rep.notes)
    rep = transform_file(model, audio_dir["good"], "jazz", tmp_path / "o.wav", cfg, progress=False)
    assert rep.snr_db >= 25.0 and rep.p_after > rep.p_before  # measured on the written file
    loose = dataclasses.replace(cfg, min_snr=None)
    _, rep, _ = transform_audio(model, audio, "jazz", loose, progress=False)
    assert rep.snr_db < 20.0  # without the floor the same settings cost the song more: the floor did the work


class _Contrary:
    """A classifier whose gradients point the wrong way: every step lowers p(target)."""

    genres = ["a", "b"]

    def __init__(self):
        import torch

        class Flip(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, g):
                return -g

        self.flip = Flip
        self.moved_to = None
        self.w = torch.nn.Parameter(torch.ones(1))

    def genre_index(self, g):
        if g not in self.genres:
            raise GenreError(f"unknown genre {g!r}")
        return self.genres.index(g)

    def __call__(self, x):
        import torch

        m = self.flip.apply(x).mean(dim=-1, keepdim=True) * 200.0 * self.w
        return torch.cat([m, -m], dim=-1)

    def parameters(self):
        return [self.w]

    def eval(self):
        return self

    def to(self, device):
        self.moved_to = str(device)
        return self


def test_a_result_worse_than_the_input_is_never_written(tmp_path):
    import soundfile as sf

    from audiogenre.audio import Audio
    from audiogenre.transform import TransformConfig, transform_audio, transform_file

    x = F.tone_mix(3.0, 16000, 1, seed=1)
    sf.write(str(tmp_path / "in.wav"), x, 16000)
    model = _Contrary()
    cfg = TransformConfig(lr=1e-2, steps=5, window=1.0, overlap=0.25, target_prob=0.99)
    out, rep, delta = transform_audio(model, Audio(x, 16000), "a", cfg, device="cpu", progress=False)
    assert model.moved_to == "cpu"  # the model goes to the device it is asked to run on
    assert rep.p_after >= rep.p_before and not np.any(delta)
    with pytest.raises(GenreError, match="could not raise p\\(a\\).*nothing written"):
        transform_file(model, tmp_path / "in.wav", "a", tmp_path / "out.wav", cfg, progress=False)
    assert not (tmp_path / "out.wav").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_steps_reported_per_window_are_true_to_the_step_budget(audio_dir, tmp_path):
    import json

    o = run(["audio", "transform", audio_dir["good"], "--to", "jazz", "--steps", "2", "-o", tmp_path / "t.wav",
             "--json", tmp_path / "r.json"], "ok")
    rows = [x.split() for x in o.out.splitlines() if x.strip()[:1].isdigit() and " s " in x]
    shown = [r[3] for r in rows]  # "0.0–", "3.0", "s", STEPS, …
    assert shown and all(int(n) <= 2 for k in shown for n in k.split("+")), o.out  # --steps 2: at most 2 a pass
    rep = json.loads((tmp_path / "r.json").read_text())
    for w, k in zip(rep["windows"], shown):
        assert w["steps"] == sum(w["passes"]) == sum(map(int, k.split("+"))) and all(n <= 2 for n in w["passes"])
    if any(len(w["passes"]) > 1 for w in rep["windows"]):
        assert "worked on again in a later pass" in o.out


def test_window_defaults_come_from_one_place():
    from audiogenre.transform import DEFAULT_WINDOW, TransformConfig, default_windows

    assert default_windows(3.0) == (3.0, 0.75)  # a quarter of a short window
    assert default_windows(None) == (DEFAULT_WINDOW, 1.0) == (TransformConfig().window, TransformConfig().overlap)
    assert default_windows(3.0, window=8.0, overlap=0.5) == (8.0, 0.5)


# ----------------------------------------------------------------------------- every offset, every byte


def _midi_variants():
    """The good song cut at every offset, with single bytes flipped, and as random bytes."""
    good = F.song(16, seed=1)
    rng = np.random.default_rng(0)
    out = [good[:k] for k in range(len(good))]
    for k in range(0, len(good), 7):
        b = bytearray(good)
        b[k] ^= 0xFF
        out.append(bytes(b))
    out += [rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes() for _ in range(50)]
    out += [good[:14] + rng.integers(0, 256, 300, dtype=np.uint8).tobytes() for _ in range(50)]
    return out


def test_every_truncation_and_flipped_byte_is_a_reason_or_a_song(tmp_path):
    """The readers of prepare/plot/transfer and of render either read a file or say why not."""
    from audiogenre.render import tracks_of_file
    from midigenre.pianoroll import DROP_REASONS, RollSettings, Unusable, phrases_of_file

    reasons = set()
    path = tmp_path / "x.mid"
    for data in _midi_variants():
        try:
            phrases_of_file(data, RollSettings(meter="assume-4/4", max_bars=512))
        except Unusable as err:
            reasons.add(err.reason)
        path.write_bytes(data)
        try:
            tracks_of_file(path, max_bars=512)
        except GenreError:
            pass
    assert reasons <= set(DROP_REASONS) and {"parse error", "empty file"} <= reasons


# ----------------------------------------------------------------------------- round 3: transfer and models

EXAMPLES = REPO / "data" / "examples"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    """A tiny CycleGAN low ↔ high (one epoch) trained from caches made in code, a tiny genre
    classifier of low, mid and high (a judge that knows more than the pair), and the caches
    (their songs in ``<cache>.parent / GENRE``); READ ONLY."""
    from midigenre import models
    from midigenre.classifier import ClassifierConfig, train_classifier
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig
    from tests.conftest import TINY_MODEL, make_cache

    root = tmp_path_factory.mktemp("pair")
    c = {g: make_cache(root / g, g, 8, lo, hi, seed, root / f"{g}.h5")
         for g, lo, hi, seed in (("low", 30, 52, 1), ("mid", 52, 74, 3), ("high", 74, 96, 2))}
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(models.PRESETS, "tiny", models.ModelConfig(**TINY_MODEL))
        CycleGANTask(GenreSource.parse(c["low"]), GenreSource.parse(c["high"]), run,
                     TrainConfig(preset="tiny", epochs=1, batch_size=4, sample_phrases=1)).fit()
    train_classifier([GenreSource.parse(c[g]) for g in ("low", "mid", "high")], root / "judge",
                     ClassifierConfig(channels=(8, 8, 8, 8), epochs=10, batch_size=8, lr=2e-3), device="cpu")
    return {"run": run, "judge": root / "judge", **c}


def _model_copy(name_or_folder, tmp_path, edit=None) -> Path:
    import json

    from shared.registry import model_folder

    folder = tmp_path / "model"
    shutil.copytree(model_folder(name_or_folder), folder)
    if edit is not None:
        meta = json.loads((folder / "model.json").read_text())
        edit(meta)
        (folder / "model.json").write_text(json.dumps(meta))  # NaN is written as NaN, as Python reads it
    return folder


def test_two_outputs_of_one_transfer_on_one_path_are_refused(tmp_path):
    # item 4: -o song.png --png wrote the picture over the MIDI result
    src = EXAMPLES / "jazz_example.mid"
    o = run(["midi", "transfer", src, "--from", "jazz", "--to", "classical", "-o", tmp_path / "song.png", "--png"])
    assert "would be the same file" in o.err and "--png" in o.err and not (tmp_path / "song.png").exists()
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("a.mid", "a.midi"):  # both would go to out/a.classical.mid
        shutil.copyfile(src, songs / name)
    o = run(["midi", "transfer", songs, "--from", "jazz", "--to", "classical", "-o", tmp_path / "out"])
    assert "would be the same file" in o.err and "a.classical.mid" in o.err and not (tmp_path / "out").exists()


def test_a_same_genre_transfer_is_refused_unless_the_genre_is_given(tmp_path):
    # item 6: --from X --to X, and a vote that equals --to, passed silently
    src = EXAMPLES / "jazz_example.mid"  # made in code: four-genres-melody takes it for classical
    o = run(["midi", "transfer", src, "--model", "four-genres-melody", "--from", "pop", "--to", "pop", "-o", tmp_path / "p.mid"])
    assert "--from and --to are both pop" in o.err and not (tmp_path / "p.mid").exists()
    o = run(["midi", "transfer", src, "--model", "four-genres-melody", "--to", "classical", "-o", tmp_path / "c.mid"])
    assert "takes the song for classical already" in o.err and "--from" in o.err and not (tmp_path / "c.mid").exists()
    o = run(["midi", "transfer", src, "--model", "four-genres-melody", "--from", "jazz", "--to", "classical",
             "-o", tmp_path / "c.mid"], "ok")
    assert "jazz → classical" in o.out and (tmp_path / "c.mid").exists()


@pytest.mark.parametrize("key,value", [("ab", float("nan")), ("ab", 2.0), ("ba", -1), ("ab", "0.5"), ("folk", 1.0),
                                       ("pair:jazz:pop", float("nan"))])
def test_thresholds_outside_0_1_in_a_model_json_are_refused(tmp_path, key, value):
    # item 7: NaN, 2.0, -1 gave 0 notes or 84 sustained notes with exit 0
    def edit(meta):
        if key.startswith("pair:"):
            _, s, t = key.split(":")
            meta["pair_thresholds"][s][t] = value
        else:
            meta["thresholds"][key] = value

    name = "jazz-classical-melody" if key in ("ab", "ba") else "four-genres-melody"
    folder = _model_copy(name, tmp_path, edit)
    o = run(["midi", "transfer", EXAMPLES / "jazz_example.mid", "--model", folder, "--from", "jazz", "--to",
             "classical" if name == "jazz-classical-melody" else "pop", "-o", tmp_path / "t.mid"])
    assert "not a threshold between 0 and 1" in o.err and "model.json" in o.err and not (tmp_path / "t.mid").exists()


@needs_fluidsynth
def test_audio_transfer_refuses_a_rate_it_cannot_render_before_transcribing(tmp_path):
    # item 10: a 6 kHz file was transcribed (slow) before "cannot render at 6000 Hz"; silence would
    # have stopped the transcription first, so the answer shows which check comes first
    import soundfile as sf

    sf.write(str(tmp_path / "low-rate.wav"), np.zeros(6000 * 10, np.float32), 6000)
    o = run(["audio", "arrange", tmp_path / "low-rate.wav", "--to", "classical", "-o", tmp_path / "o.wav"])
    assert "cannot render at 6000 Hz" in o.err and "resample" in o.err and not (tmp_path / "o.wav").exists()


def test_the_shipped_pair_tells_a_songs_genre_and_refuses_other_genres(shared_midi, tmp_path):
    # item 12: the default pair model took any song for jazz ("jazz → classical", exit 0)
    folk = shared_midi / "folk" / "reelsh-l42.mid"
    o = run(["midi", "transfer", folk, "--to", "classical", "-o", tmp_path / "f.mid"])
    assert "takes the song for folk" in o.err and "--model four-genres-melody" in o.err and "--from jazz or classical" in o.err
    assert not (tmp_path / "f.mid").exists()
    o = run(["midi", "transfer", folk, "--from", "jazz", "--to", "classical", "-o", tmp_path / "f.mid"], "ok")
    assert "jazz → classical" in o.out and "told by" not in o.out
    jazz = shared_midi / "jazz" / "ArtPepper_Desafinado.mid"
    o = run(["midi", "transfer", jazz, "--to", "classical", "-o", tmp_path / "j.mid"], "ok")
    assert "jazz → classical (source genre told by the judge four-genres-melody" in o.out


def test_a_pair_with_its_own_judge_tells_the_genre_and_one_without_says_it_assumes(pair, tmp_path):
    # item 12 on a model built here: a judge classifier in the model folder's judge/
    folder = _model_copy(pair["run"], tmp_path)
    low, mid, high = (pair[g].parent / g / f"{g}00.mid" for g in ("low", "mid", "high"))
    o = run(["midi", "transfer", low, "--model", folder, "--to", "high", "-o", tmp_path / "l.mid"], "ok")
    assert "source genre assumed" in o.out  # no judge: the pair's other genre, said so
    shutil.copytree(pair["judge"], folder / "judge")
    o = run(["midi", "transfer", low, "--model", folder, "--to", "high", "-o", tmp_path / "l.mid"], "ok")
    assert "low → high (source genre told by the model's judge (judge/)" in o.out
    o = run(["midi", "transfer", mid, "--model", folder, "--to", "high", "-o", tmp_path / "m.mid"])
    assert "takes the song for mid" in o.err and "only low ↔ high" in o.err and "--from low or high" in o.err
    assert "four-genres" not in o.err  # it knows no mid
    run(["midi", "transfer", mid, "--model", folder, "--from", "low", "--to", "high", "-o", tmp_path / "m.mid"], "ok")
    o = run(["midi", "transfer", high, "--model", folder, "--to", "high", "-o", tmp_path / "h.mid"])
    assert "takes the song for high already" in o.err


def _absolute_paths(value, where="") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _absolute_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _absolute_paths(v, f"{where}[{i}]")]
    return [f"{where} = {value}"] if isinstance(value, str) and value.startswith("/") else []


def test_no_model_json_keeps_the_training_machines_paths(pair, tmp_path, monkeypatch):
    # item 13: the shipped model.json named /work/exp/jazz.h5, and evaluate's error showed it
    import json

    from shared.registry import read_meta, shipped_model_names

    for name in shipped_model_names():
        assert _absolute_paths(read_meta(name)) == [], name
    meta = read_meta(pair["run"])  # written now: relative to where the training ran; config.json keeps the path
    cache = meta["data"]["a"]["cache"]
    assert _absolute_paths(meta) == [] and Path(cache).resolve() == pair["low"].resolve()
    assert json.loads((pair["run"] / "config.json").read_text())["data"]["a"]["cache"] == str(pair["low"].resolve())
    monkeypatch.chdir(tmp_path)
    o = run(["midi", "evaluate", "--classifier", pair["judge"]])  # the shipped model, its caches not here
    assert "the model's jazz cache (jazz.h5, as its training named it) is not here" in o.err and "--a FILE.h5" in o.err
    assert "/work" not in o.err
    # a run's evaluate finds its caches through its config.json, or takes FILE.h5:GENRE as train does
    o = run(["midi", "evaluate", "--model", pair["run"], "--classifier", pair["judge"]], "ok")
    assert "low ↔ high on the held-out songs" in o.out
    run(["midi", "evaluate", "--model", pair["run"], "--classifier", pair["judge"], "--a", f"{pair['low']}:low",
         "--b", f"{pair['high']}:high"], "ok")


def test_a_meter_refusal_names_the_pop_way_in(tmp_path):
    from tests.conftest import make_midi, random_grid_notes

    src = tmp_path / "pop909-like.mid"
    make_midi(src, random_grid_notes(np.random.default_rng(0), 8), time_signatures=[(0, 1, 4)])
    o = run(["midi", "transfer", src, "--from", "jazz", "--to", "classical", "-o", tmp_path / "o.mid"])
    assert "not 4/4" in o.err and "--meter assume-4/4" in o.err and "--model four-genres-melody --from pop" in o.err
    o = run(["midi", "transfer", src, "--model", "four-genres-melody", "--to", "jazz", "-o", tmp_path / "o.mid"])
    assert "--from pop" in o.err and "--model four-genres" not in o.err


def test_tiny_data_gets_a_warning(pair, tmp_path, tiny_preset):
    from tests.conftest import make_cache

    o = run(["midi", "prepare", pair["low"].parent / "low", "-g", "low", "-o", tmp_path / "low.h5"], "ok")
    assert "warning: 'low'" in o.err and "only 16 phrases" in o.err
    small = make_cache(tmp_path / "few", "few", 4, 60, 90, 5, tmp_path / "few.h5")
    o = run(["midi", "train", "--a", pair["low"], "--b", small, "--out", tmp_path / "run", "--preset", tiny_preset,
             "--epochs", "1", "--batch-size", "4", "--sample-phrases", "1", "--device", "cpu"], "ok")
    assert "warning: 'few' has only 8 phrases" in o.err and "warning: the held-out part of 'few' is 1 song" in o.err


def test_a_folder_transfer_into_its_own_subfolder_leaves_earlier_results_alone(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    shutil.copyfile(EXAMPLES / "jazz_example.mid", songs / "a.mid")
    args = ["midi", "transfer", songs, "--from", "jazz", "--to", "classical", "-o", songs / "out"]
    run(args, "ok")
    o = run(args, "ok")  # again: out/a.classical.mid is not a song to transfer
    assert "left out 1 results of an earlier transfer" in o.err
    assert sorted(p.relative_to(songs).as_posix() for p in songs.rglob("*.mid")) == ["a.mid", "out/a.classical.mid"]
    (songs / "a.mid").rename(tmp_path / "a.mid")  # a folder with nothing but earlier results: the error names it
    o = run(args)
    assert f"no song to transfer in {songs}" in o.err and "earlier transfer into" in o.err
    # into the songs' own folder, a file named like a result is the user's too: never written over
    shutil.copyfile(tmp_path / "a.mid", songs / "out" / "a.mid")
    o = run(["midi", "transfer", songs / "out", "--from", "jazz", "--to", "classical", "-o", songs / "out"])
    assert "would overwrite the input" in o.err and f"(a file of the folder {songs / 'out'})" in o.err


def test_notes_left_out_of_the_pitch_window_are_reported(tmp_path):
    from tests.conftest import make_midi

    src = tmp_path / "high.mid"
    make_midi(src, [(i * 120, i * 120 + 120, 120) for i in range(64)] + [(0, 480 * 16, 60)])
    o = run(["midi", "transfer", src, "--from", "jazz", "--to", "classical", "-o", tmp_path / "o.mid"], "ok")
    assert "64 of its 65 notes lie outside MIDI 24..107 and are left out" in o.out


@needs_fluidsynth
def test_a_short_clip_is_transcribed_and_only_the_transfer_wants_a_phrase(tmp_path):
    from tests.test_transcribe import _missing, _piece, _render

    if _missing():
        pytest.skip(_missing())
    from audiogenre.audio import write_audio

    song = tmp_path / "short.wav"
    write_audio(song, _render(_piece(bars=2)[0], seconds=4.5), 22_050)  # 2 bars at 120 bpm
    o = run(["audio", "transcribe", song, "-o", tmp_path / "t.mid"], "ok")
    assert (tmp_path / "t.mid").exists() and "phrase" not in o.out + o.err
    o = run(["audio", "arrange", song, "--to", "classical", "-o", tmp_path / "t.wav"])
    assert "shorter than one 4-bar phrase" in o.err


def test_a_target_out_of_reach_is_said_early_and_nothing_is_written(tmp_path):
    import soundfile as sf

    noise = 0.3 * np.random.default_rng(0).standard_normal(16000 * 6).astype(np.float32)
    sf.write(str(tmp_path / "noise.wav"), noise, 16000)
    o = run(["audio", "transform", tmp_path / "noise.wav", "--to", "pop", "--steps", "5", "-o", tmp_path / "o.wav"])
    assert "note: p(pop) in window 1 went from" in o.err and "out of reach" in o.err
    assert "pop is out of reach for this song" in o.err and "nothing written" in o.err
    assert not (tmp_path / "o.wav").exists()


# ----------------------------------------------------------------------------- fresh fuzz pass


@pytest.mark.parametrize("name", ["tempo-0", "tempo-0-later"])
def test_a_transfer_of_a_song_with_tempo_0_is_written_at_the_toolkits_tempo(midi_dir, tmp_path, name):
    # the arrangement kept the source's tempo map, a tempo of 0 µs per quarter included, and
    # writing it died in pretty_midi (ZeroDivisionError); a tempo of 0 is ignored, as render,
    # prepare and plot do: 120 bpm from the start, the earlier tempo on after a later one
    import pretty_midi

    out = tmp_path / "t.mid"
    run(["midi", "transfer", midi_dir / f"{name}.mid", "--from", "jazz", "--to", "classical", "-o", out], "ok",
        check=F._transfer_check(out))
    _, bpm = pretty_midi.PrettyMIDI(str(out)).get_tempo_changes()
    assert len(bpm) and np.allclose(bpm, 120.0, atol=0.01), bpm


def test_two_outputs_of_one_audio_command_on_one_path_are_refused(audio_dir, tmp_path):
    # item 4 beyond midi transfer: transform -o t.wav --json t.wav wrote its JSON report over the
    # transformed audio and said "wrote t.wav" (exit 0); embed -o e.png drew its plot (by default
    # -o with .png) over the embeddings; evaluate --png X --json X likewise
    out = tmp_path / "t.wav"
    for json_out in (out, tmp_path / "t.wav.json"):  # the second: the record beside -o
        o = run(["audio", "transform", audio_dir["good"], "--to", "jazz", "--steps", "1", "-o", out, "--json", json_out])
        assert "would be the same file" in o.err and "--json" in o.err and not list(tmp_path.iterdir())
    data = tmp_path / "no-data"  # refused before the data set is opened
    for argv in (["audio", "embed", "audio-rendered", data, "-o", tmp_path / "e.png"],
                 ["audio", "embed", "audio-rendered", data, "-o", tmp_path / "e.npz", "--png", tmp_path / "e.npz"],
                 ["audio", "evaluate", "audio-rendered", data, "--png", tmp_path / "r.x", "--json", tmp_path / "r.x"]):
        o = run(argv)
        assert "would be the same file" in o.err and "--png" in o.err and not list(tmp_path.iterdir())


def test_evaluate_says_which_phrases_it_scored_in_plain_words(pair):
    # "jazz ↔ classical on the every phrase of the caches"
    o = run(["midi", "evaluate", "--model", pair["run"], "--classifier", pair["judge"], "--all-phrases"], "ok")
    assert "low ↔ high on every phrase of the caches:" in o.out
    o = run(["midi", "evaluate", "--model", pair["run"], "--classifier", pair["judge"]], "ok")
    assert "low ↔ high on the held-out songs of the model's split:" in o.out


@needs_fluidsynth
def test_audio_transfer_takes_from_as_its_refusal_says(tmp_path, monkeypatch):
    # a multi-genre model that took the recording for the --to genre said "say which with --from
    # GENRE", and audio transfer had no --from; a pair took its other genre without saying so
    from tests.test_transcribe import _missing, _piece, _render

    if _missing():
        pytest.skip(_missing())
    from audiogenre.audio import write_audio
    from midigenre.transfer import MultiGenreTransfer

    song = tmp_path / "piece.wav"
    write_audio(song, _render(_piece(bars=8)[0]), 22_050)  # 8 bars at 120 bpm
    monkeypatch.setattr(MultiGenreTransfer, "predict_genre",
                        lambda self, phrases: ("pop", {g: float(g == "pop") for g in self.names}))
    o = run(["audio", "arrange", song, "--model", "four-genres-melody", "--to", "pop", "-o", tmp_path / "p.wav"])
    assert "takes the song for pop already" in o.err and "--from" in o.err and not (tmp_path / "p.wav").exists()
    o = run(["audio", "arrange", song, "--model", "four-genres-melody", "--from", "jazz", "--to", "pop", "-o",
             tmp_path / "p.wav"], "ok")
    assert "jazz → pop:" in o.out and (tmp_path / "p.wav").exists()
    o = run(["audio", "arrange", song, "--model", "four-genres-melody", "--to", "folk", "-o", tmp_path / "f.wav"], "ok")
    assert "pop → folk (source genre told by the model: 100% of the phrases; say it with --from)" in o.out
    o = run(["audio", "arrange", song, "--to", "jazz", "-o", tmp_path / "j.wav"], "ok")
    assert "classical → jazz (source genre assumed: the model's other genre; say it with --from)" in o.out
    o = run(["audio", "arrange", song, "--from", "jazz", "--to", "jazz", "-o", tmp_path / "x.wav"])
    assert "--from must be classical" in o.err and not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("meta,split", [("[1, 2]", None), ('"a string"', None), ("{bad", None),
                                        ({"genres": 3}, None), ({"genres": {"a": 1, "b": 2}}, None),
                                        ({"settings": "x"}, None), ({"keep_source": [1]}, None),
                                        (None, "{bad"), (None, "[1]"), (None, '{"genres": {"jazz": 5}}')])
def test_genre_model_answers_a_damaged_model_folder_in_one_line(tmp_path, meta, split):
    # genre model died with AttributeError/TypeError tracebacks on a model.json that is not an
    # object or whose fields have the wrong types, and on a damaged split.json
    folder = _model_copy("jazz-classical-melody", tmp_path, (lambda m: m.update(meta)) if isinstance(meta, dict) else None)
    if isinstance(meta, str):
        (folder / "model.json").write_text(meta)
    if split is not None:
        (folder / "split.json").write_text(split)
    for songs in ([], ["--songs", "test"]):
        o = run(["model", folder, *songs], "either" if isinstance(meta, dict) and songs else "error")
        assert o.rc == 0 or str(folder) in o.err
    o = run(["model", EXAMPLES / "jazz_example.mid"])  # a file is not a model: not "…/model.json cannot be read"
    assert "not a model folder" in o.err


def test_a_report_of_a_midi_song_says_to_name_a_model(midi_dir, tmp_path):
    # "genre report song.mid -o rep/" said "<the song's folder> is not a model folder (no model.json)"
    o = run(["report", midi_dir / "good.mid", "-o", tmp_path / "rep"])
    assert "is a song, not a model" in o.err and f"--songs {midi_dir / 'good.mid'}" in o.err
    assert not (tmp_path / "rep").exists()


def test_a_window_worked_on_again_is_not_blamed_on_a_neighbour_it_does_not_have(audio_dir, tmp_path):
    # one window (the whole 6 s song) short of the target after its steps was revisited, and the
    # note said "a neighbour's change had pushed p(jazz) back"
    o = run(["audio", "transform", audio_dir["good"], "--to", "jazz", "--window", "100", "--steps", "1", "-o",
             tmp_path / "t.wav"], "ok")
    assert "1 of 1 windows were worked on again" in o.out and "neighbour" not in o.out
    assert "the step budget (--steps 1) ran out before p(jazz) reached 0.9" in o.out


def test_fad_takes_a_shipped_classifiers_name_as_its_embedding(audio_dir, tmp_path):
    # --embedding audio-rendered was looked up as a wav2vec2 name on Hugging Face ("not in the
    # local Hugging Face cache and cannot be downloaded here"); every other option takes the name
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("good", "8kHz-mono", "192kHz-6ch"):
        shutil.copyfile(audio_dir[name], ref / audio_dir[name].name)
    o = run(["audio", "fad", "--reference", ref, "--test", audio_dir["float-peak-7.6"], "--embedding", "audio-rendered"],
            "ok")
    assert o.out.startswith("FAD ")
    o = run(["audio", "fad", "--reference", ref, "--test", ref, "--embedding", "jazz-classical-melody"])
    assert "not a 'audio-classifier' model" in o.err and "Hugging Face" not in o.err


def test_an_output_over_an_audio_file_of_an_input_folder_is_refused(audio_dir, tmp_path):
    # audio fad --json REF/good.wav wrote its JSON over a reference recording (exit 0); the data
    # set commands (embed, evaluate) likewise checked only the folder itself, not its files
    ref = tmp_path / "ref"
    (ref / "jazz").mkdir(parents=True)
    for name in ("good", "8kHz-mono"):
        shutil.copyfile(audio_dir[name], ref / "jazz" / audio_dir[name].name)
    victim = ref / "jazz" / audio_dir["good"].name
    before = victim.read_bytes()
    for argv in (["audio", "fad", "--reference", ref, "--test", audio_dir["8kHz-mono"], "--embedding", "audio-rendered",
                  "--json", victim],
                 ["audio", "fad", "--reference", audio_dir["8kHz-mono"], "--test", ref / "jazz", "--embedding",
                  "audio-rendered", "--json", victim],
                 ["audio", "embed", "audio-rendered", ref, "-o", victim],
                 ["audio", "embed", "audio-rendered", ref, "-o", tmp_path / "e.npz", "--png", victim],
                 ["audio", "evaluate", "audio-rendered", ref, "--json", victim],
                 ["audio", "evaluate", "audio-rendered", ref, "--png", victim]):
        o = run(argv)
        assert "would overwrite an audio file of the input folder" in o.err and victim.read_bytes() == before
    run(["audio", "fad", "--reference", ref, "--test", audio_dir["8kHz-mono"], "--embedding", "audio-rendered",
         "--json", ref / "jazz" / "fad.json"], "ok")  # a new file in the folder is fine (and not read as audio)
