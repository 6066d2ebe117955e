"""The Free Music Archive as published: ``fma_metadata/tracks.csv`` + ``fma_<subset>/NNN/NNNNNN.mp3``.

Items carry FMA's official split (training / validation / test) and are grouped by artist
(by track when the artist id is missing).
"""

from __future__ import annotations

import csv
from pathlib import Path

from audiogenre.datasets.folder import Skips
from audiogenre.datasets.items import AudioItem
from shared.errors import GenreError

FMA_SUBSETS = ("small", "medium", "large")  # each contains the ones before it
FMA_BROKEN = frozenset({98565, 98567, 98569, 99134, 108925, 133297})  # empty or too short to decode
FMA_SPLIT_NAMES = {"training": "train", "validation": "valid", "test": "test"}


def find_tracks_csv(root: Path) -> Path | None:
    """``ROOT/tracks.csv`` or ``ROOT/fma_metadata/tracks.csv``, whichever exists."""
    for p in (root / "tracks.csv", root / "fma_metadata" / "tracks.csv"):
        if p.is_file():
            return p
    return None


def fma_audio_dir(root: Path, subset: str) -> Path:
    """The folder holding ``NNN/NNNNNN.mp3``: ROOT/fma_<subset> (or a larger subset's), else ROOT."""
    for s in FMA_SUBSETS[FMA_SUBSETS.index(subset):] + ("full",):
        if (root / f"fma_{s}").is_dir():
            return root / f"fma_{s}"
    return root


def list_fma(root: Path, subset: str) -> tuple[list[AudioItem], Skips]:
    """The tracks of ``subset`` (and the smaller subsets it contains) that have a top genre and a file."""
    csv_path = find_tracks_csv(root)
    if csv_path is None:
        raise GenreError(f"FMA metadata missing: expected {root / 'fma_metadata' / 'tracks.csv'} "
                         f"(or {root / 'tracks.csv'}), from fma_metadata.zip")
    audio = fma_audio_dir(root, subset)
    rank = FMA_SUBSETS.index(subset)
    items, skips = [], []
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [next(reader, None) for _ in range(3)]
            if any(h is None for h in header) or not header[2] or header[2][0] != "track_id":
                raise GenreError(f"{csv_path} is not FMA's tracks.csv (expected a 3-row header ending in 'track_id')")
            columns = {(top, fld): i for i, (top, fld) in enumerate(zip(header[0], header[1]))}
            need = [("set", "subset"), ("set", "split"), ("track", "genre_top")]
            lacking = [f"{a}/{b}" for a, b in need if (a, b) not in columns]
            if lacking:
                raise GenreError(f"{csv_path} lacks column {', '.join(lacking)}; is it FMA's tracks.csv?")
            i_subset, i_split, i_genre = (columns[c] for c in need)
            i_artist = columns.get(("artist", "id"))
            for row in reader:
                if not row or not row[0].strip():
                    continue
                try:
                    tid = int(row[0])
                except ValueError:
                    raise GenreError(f"{csv_path}: track id {row[0]!r} on line {reader.line_num} is not a number"
                                     ) from None
                cell = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
                if cell(i_subset) not in FMA_SUBSETS or FMA_SUBSETS.index(cell(i_subset)) > rank:
                    continue
                genre = cell(i_genre)
                if not genre:
                    skips.append(("no top genre", None))
                    continue
                if tid in FMA_BROKEN:
                    skips.append(("known corrupt", genre))
                    continue
                p = audio / f"{tid // 1000:03d}" / f"{tid:06d}.mp3"
                if not p.is_file():
                    skips.append(("missing file", genre))
                    continue
                artist = cell(i_artist)
                items.append(AudioItem(path=p, genre=genre, split=FMA_SPLIT_NAMES.get(cell(i_split)),
                                       group=f"artist:{artist}" if artist else f"track:{tid}"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise GenreError(f"cannot read {csv_path}: {e}") from None
    if not items and any(reason == "missing file" for reason, _ in skips):
        raise GenreError(f"none of the {subset} subset's audio files listed in {csv_path} are in {audio} "
                         f"(expected {audio}/NNN/NNNNNN.mp3; unpack fma_{subset}.zip into {root})")
    return items, skips
