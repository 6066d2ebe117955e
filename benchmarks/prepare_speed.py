"""How fast is ``midigenre.prepare`` compared with the way the reference code prepares data?

Four ways to turn the same real MIDI files (by default 120: every k-th file of the sorted jazz
and classical folders, 60 each) into 64-step x 84-pitch phrases, each timed end to end and
reported as the best of ``--repeat`` runs (the files are read once beforehand, so every way
finds them in the OS page cache):

* ``baseline``      the reference's way, in one process: ``pretty_midi.PrettyMIDI(path)``,
                    Brunner's filter (one time signature, 4/4, at time 0), drums dropped, a binary
                    roll on a 16th-note grid from ``pm.get_beats()`` (4 steps per beat, like
                    pypianoroll's ``beat_resolution=4``), MIDI 24..107 merged over instruments,
                    64-step phrases (trailing partial and empty ones dropped), then one gzip HDF5
                    dataset written with h5py.
* ``pipeline w=1``  ``midigenre.prepare.prepare(paths, ..., workers=1)`` into a temporary folder.
* ``pipeline w=W``  the same with ``--workers`` processes (pool start-up included).
* ``symusic parse`` ``symusic.Score(path)`` per file and nothing else: the floor set by the
                    compiled parser (no roll, no hashing, no HDF5).

Reading the output: ``files/s`` counts every file given (kept or dropped); ``phrases/s`` counts
the phrases written; ``vs baseline`` is the ratio of files/s to the baseline's. The two ways
should keep about the same files and phrases: note times are rounded to the grid differently
(ticks in the pipeline, seconds through beat times in the baseline), pretty_midi reads time
signatures from the first track only while the pipeline reads all tracks, and the pipeline
drops byte-identical duplicates; the check lines below the table show both counts.

Run from the repo root:  python benchmarks/prepare_speed.py [--files 120] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pretty_midi
from symusic import Score

from midigenre.pianoroll import RollSettings
from midigenre.prepare import prepare

REPO = Path(__file__).resolve().parent.parent
GENRES = ("jazz", "classical")
STEPS_PER_BEAT, LOWEST, N_PITCHES, PHRASE_STEPS = 4, 24, 84, 64


def pick_files(data: Path, n: int) -> list[Path]:
    """Every k-th file of each genre's sorted list, n in all, split evenly between GENRES."""
    picked = []
    for i, genre in enumerate(GENRES):
        want = n // len(GENRES) + (i < n % len(GENRES))
        files = sorted(p for p in (data / genre).iterdir() if p.suffix.lower() in (".mid", ".midi"))
        if len(files) < want:
            raise SystemExit(f"{data / genre} has {len(files)} MIDI files, {want} wanted")
        picked += files[:: len(files) // want][:want]
    return picked


# ----------------------------------------------------------------------------- baseline


def baseline_phrases(path: Path) -> np.ndarray | None:
    """Phrases (n, 64, 84) of one file the reference's way, or None if the file is dropped."""
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception:
        return None
    ts = pm.time_signature_changes
    if len(ts) != 1 or (ts[0].numerator, ts[0].denominator) != (4, 4) or ts[0].time != 0:
        return None
    instruments = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not instruments:
        return None
    beats = pm.get_beats()
    if len(beats) < 2:
        return None
    beats = np.append(beats, 2 * beats[-1] - beats[-2])  # one more beat, as pypianoroll does

    def to_step(t):  # seconds -> nearest 16th-note step, by interpolating between beats
        return np.floor(np.interp(t, beats, np.arange(len(beats))) * STEPS_PER_BEAT + 0.5).astype(np.int64)

    notes = [n for inst in instruments for n in inst.notes]
    starts = to_step(np.array([n.start for n in notes]))
    ends = np.maximum(to_step(np.array([n.end for n in notes])), starts + 1)
    roll = np.zeros((int(ends.max()), N_PITCHES), dtype=bool)
    for note, s, e in zip(notes, starts.tolist(), ends.tolist()):
        if LOWEST <= note.pitch < LOWEST + N_PITCHES:
            roll[s:e, note.pitch - LOWEST] = True
    n = len(roll) // PHRASE_STEPS
    phrases = roll[: n * PHRASE_STEPS].reshape(n, PHRASE_STEPS, N_PITCHES)
    phrases = phrases[phrases.any(axis=(1, 2))]
    return phrases if len(phrases) else None


def run_baseline(files: list[Path], out: Path) -> tuple[int, int, set[str]]:
    """Returns (files kept, phrases, kept paths)."""
    collected, kept = [], set()
    for path in files:
        phrases = baseline_phrases(path)
        if phrases is not None:
            collected.append(phrases)
            kept.add(str(path.resolve()))
    data = np.concatenate(collected) if collected else np.zeros((0, PHRASE_STEPS, N_PITCHES), bool)
    with h5py.File(out, "w") as h5:  # same chunk shape and gzip level as the pipeline's cache
        h5.create_dataset("phrases", data=data, chunks=(16, PHRASE_STEPS, N_PITCHES), compression="gzip", compression_opts=4)
    return len(kept), len(data), kept


# ----------------------------------------------------------------------------- the other ways


WORKERS_USED: dict[int, int] = {}  # -j asked -> processes prepare() started (it uses fewer on small jobs)


def run_pipeline(files: list[Path], out: Path, workers: int) -> tuple[int, int, set[str]]:
    report = prepare([str(p) for p in files], "bench", out, RollSettings(), workers=workers, overwrite=True)
    assert report.files_read == len(files), (report.files_read, len(files))
    WORKERS_USED[workers] = report.workers
    with h5py.File(out, "r") as h5:
        kept = set(h5["genres/bench/files/path"].asstr()[:])
    return report.kept, report.phrases, kept


def run_parse_only(files: list[Path], out: Path) -> tuple[int, int, set[str]]:
    n = 0
    for path in files:
        try:
            Score.from_file(str(path))
            n += 1
        except Exception:  # unparsable: counted as read, like the other ways do
            pass
    return n, 0, set()


def best_of(repeat: int, fn, files: list[Path], *args) -> tuple[float, tuple]:
    """Best wall time of ``repeat`` calls, each writing into a fresh temporary folder."""
    best, result = float("inf"), None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="prepare_speed_") as tmp:
            t0 = time.perf_counter()
            result = fn(files, Path(tmp) / "out.h5", *args)
            best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=120, help="number of files, split between jazz and classical (120)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "midi", help="folder with jazz/ and classical/")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the parallel pipeline run (2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per way; the best is reported (3)")
    args = ap.parse_args()

    files = pick_files(args.data.resolve(), args.files)
    mb = sum(len(p.read_bytes()) for p in files) / 1e6  # also warms the page cache for every way
    print(f"{len(files)} files ({mb:.1f} MB) from {args.data.resolve()}, best of {args.repeat} runs\n")

    ways = [
        ("baseline (pretty_midi)", run_baseline, ()),
        ("pipeline, 1 worker", run_pipeline, (1,)),
        (f"pipeline, {args.workers} workers", run_pipeline, (args.workers,)),
        ("symusic parse only", run_parse_only, ()),
    ]
    times, results = {}, {}
    for name, fn, extra in ways:
        times[name], results[name] = best_of(args.repeat, fn, files, *extra)

    print(f"(the -j {args.workers} run started {WORKERS_USED[args.workers]} process(es): prepare() uses one per "
          f"{__import__('midigenre.prepare').prepare.MIN_FILES_PER_WORKER} files at most)\n")
    base_rate = len(files) / times[ways[0][0]]
    print(f"{'way':<24}{'seconds':>9}{'files/s':>10}{'phrases/s':>11}{'vs baseline':>13}")
    for name, _, _ in ways:
        sec, (_, phrases, _) = times[name], results[name]
        per_s = f"{phrases / sec:>11.0f}" if name != ways[-1][0] else f"{'-':>11}"
        print(f"{name:<24}{sec:>9.2f}{len(files) / sec:>10.1f}{per_s}{len(files) / sec / base_rate:>12.1f}x")

    (bk, bp, bset), (pk, pp, pset) = results[ways[0][0]], results[ways[2][0]]
    same = "same" if (bk, bp) == (pk, pp) else f"differ: files {pk - bk:+d}, phrases {pp - bp:+d} ({(pp - bp) / max(bp, 1):+.1%})"
    print(f"\nkept: baseline {bk} files / {bp} phrases; pipeline {pk} files / {pp} phrases -> {same}")
    if bset != pset:
        print(f"kept by baseline only: {len(bset - pset)} files; by pipeline only: {len(pset - bset)} files")
    pipe, parse = times[ways[2][0]], times[ways[-1][0]]
    print(f"\nspeedup: pipeline ({args.workers} workers) = {times[ways[0][0]] / pipe:.1f} x baseline; "
          f"pipeline time = {pipe / parse:.1f} x symusic parse-only time")


if __name__ == "__main__":
    main()
