"""How well the skyline finds a song's melody: note precision and recall against true melody tracks.

Songs whose files name their melody — POP909 (``MELODY`` beside ``BRIDGE`` and ``PIANO``) and
the jazz data (``melody``, the transcribed solo, beside ``bass`` and ``comping``) — are read with
every track merged, as a song without names would be; :func:`midigenre.melody.melody_notes` in
``skyline`` mode picks the melody notes, and they are matched with the melody track's notes by
grid onset and pitch. Precision: the share of the skyline's notes that are melody notes; recall:
the share of the melody's notes the skyline finds. Beside it, the naive top line (the highest
sounding note at every step, no voice rule) as the baseline.

    python benchmarks/melody.py --data ../shared/data/midi --part test   # the split's held-out songs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def naive_top(start, end, row, steps):
    """Notes whose onset cell is the highest sounding cell at that step (no voice rule)."""
    from midigenre.pianoroll import _fill

    roll = _fill(start, end, row, steps, int(row.max()) + 1)
    rank = np.arange(1, roll.shape[1] + 1)
    top = (roll * rank).max(axis=1) - 1
    return top[np.minimum(start, steps - 1)] == row


def score(pred: np.ndarray, truth: np.ndarray, start: np.ndarray, row: np.ndarray) -> tuple[int, int, int]:
    """(matched, predicted, true) notes, a note being its (onset step, pitch) cell."""
    cells = lambda m: set(zip(start[m].tolist(), row[m].tolist()))  # noqa: E731
    p, t = cells(pred), cells(truth)
    return len(p & t), len(p), len(t)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "midi"))
    ap.add_argument("--songs", type=int, default=100, help="songs per collection (the first N by name)")
    ap.add_argument("--split", default=str(Path(__file__).resolve().parents[1] / "data" / "models" / "four-genres-melody" / "split.json"),
                    help="a split.json naming the songs of each part")
    ap.add_argument("--part", default="test", choices=["train", "valid", "test"],
                    help="the part of the split to measure on (the voice rule was chosen on 'train')")
    args = ap.parse_args(argv)
    from midigenre.dataset import SongSplit
    from midigenre.melody import melody_notes, melody_track
    from midigenre.pianoroll import RollSettings, Unusable, read_song
    from midigenre.song_quality import split_songs

    split = SongSplit.load(args.split)

    settings = RollSettings(meter="assume-4/4")
    print("| collection | songs | melody notes | skyline precision | skyline recall | skyline F1 | "
          "top line precision | top line recall | top line F1 | ms per song |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for genre in ("pop", "jazz"):
        files = split_songs(split, genre, args.part, [Path(args.data) / genre])[: args.songs]
        totals = {"skyline": np.zeros(3), "top": np.zeros(3)}
        n_songs, seconds = 0, 0.0
        for f in files:
            try:
                song = read_song(f, settings, keep_notes=True)
            except Unusable:
                continue
            nt = song.notes
            names = [name for name, _ in nt.tracks]
            k = melody_track(names, "auto")
            if k is None:
                continue
            truth = nt.track == k
            t0 = time.perf_counter()
            sky, _ = melody_notes(nt.start, nt.end, nt.row, nt.track, names, "skyline", total=len(song.roll))
            seconds += time.perf_counter() - t0
            totals["skyline"] += score(sky, truth, nt.start, nt.row)
            totals["top"] += score(naive_top(nt.start, nt.end, nt.row, len(song.roll)), truth, nt.start, nt.row)
            n_songs += 1
        cells = []
        for key in ("skyline", "top"):
            m, p, t = totals[key]
            prec, rec = m / max(p, 1), m / max(t, 1)
            cells += [f"{prec:.3f}", f"{rec:.3f}", f"{2 * prec * rec / max(prec + rec, 1e-9):.3f}"]
        print(f"| {genre} | {n_songs} | {int(totals['skyline'][2])} | " + " | ".join(cells)
              + f" | {1000 * seconds / max(n_songs, 1):.0f} |")


if __name__ == "__main__":
    main()
