"""Listing genre-labelled audio collections: which files, which genre, which split.

Three layouts are understood (see :func:`open_dataset`), one module each:

* ``folder`` (:mod:`.folder`) — ``ROOT/<genre>/**/<file>.<ext>``, or the clips named by
  ``ROOT/manifest.json`` as written by ``genre audio render-dataset`` (the manifest format,
  reader and writer, lives in that module too);
* ``fma`` (:mod:`.fma`) — the Free Music Archive as published (``fma_metadata/tracks.csv`` + ``fma_small/``);
* ``gtzan`` (:mod:`.gtzan`) — GTZAN (``<genre>/<genre>.000NN.{wav,au}``), with either no official
  split or the fault-filtered, artist-conflict-free split of Kereliuk, Sturm & Larsen (2015),
  shipped in ``audiogenre/gtzan_filtered/``.

:mod:`.items` holds the item and data-set types, the audio extensions and the seeded split by
group (its hash is the one rendering uses); :mod:`.segments` cuts items into segments.

Nothing here decodes audio: :func:`segment` reads file lengths with ``soundfile.info``, the rest
only looks at names and metadata. Splits keep a *group* (source song, track or artist) on one side.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from audiogenre.datasets.fma import FMA_BROKEN, FMA_SPLIT_NAMES, FMA_SUBSETS, find_tracks_csv, list_fma
from audiogenre.datasets.folder import (
    MANIFEST_FORMAT,
    MANIFEST_KIND,
    MANIFEST_NAME,
    list_folder,
    manifest_clip,
    read_manifest,
    write_manifest,
)
from audiogenre.datasets.gtzan import (
    GTZAN_CORRUPT,
    GTZAN_FILTERED_DIR,
    GTZAN_GENRES,
    GTZAN_SPLITS,
    find_gtzan_dir,
    list_gtzan,
    read_gtzan_filtered,
)
from audiogenre.datasets.items import (
    AUDIO_EXTENSIONS,
    SPLITS,
    AudioDataset,
    AudioItem,
    check_fractions,
    is_audio,
    side_of,
    unit_hash,
    walk_audio,
)
from audiogenre.datasets.segments import audio_duration, segment
from shared.errors import GenreError

KINDS = ("folder", "fma", "gtzan")
DATASET_KINDS = ("auto",) + KINDS  # what ``open_dataset(kind=...)`` and ``--kind`` accept

__all__ = [
    "AUDIO_EXTENSIONS", "DATASET_KINDS", "FMA_BROKEN", "FMA_SPLIT_NAMES", "FMA_SUBSETS", "GTZAN_CORRUPT",
    "GTZAN_FILTERED_DIR", "GTZAN_GENRES", "GTZAN_SPLITS", "KINDS", "MANIFEST_FORMAT", "MANIFEST_KIND",
    "MANIFEST_NAME", "SPLITS", "AudioDataset", "AudioItem", "audio_duration", "check_fractions", "detect_kind",
    "is_audio", "manifest_clip", "open_dataset", "read_gtzan_filtered", "read_manifest", "segment", "side_of",
    "unit_hash", "walk_audio", "write_manifest",
]


def open_dataset(
    path: str | os.PathLike,
    kind: str = "auto",
    *,
    gtzan_split: str = "random",
    fma_subset: str = "small",
    genres: Sequence[str] | None = None,
) -> AudioDataset:
    """List the genre-labelled audio under ``path``.

    kind : ``"auto"`` (fma when a ``tracks.csv`` is found, gtzan when the folder looks like GTZAN,
        else folder), ``"folder"``, ``"fma"`` or ``"gtzan"``.
    gtzan_split : ``"random"`` (no official split; group = file) or ``"filtered"`` (the
        fault-filtered split of Kereliuk, Sturm & Larsen 2015: 443 / 197 / 290 files).
    fma_subset : ``"small"``, ``"medium"`` (includes small) or ``"large"`` (every track).
    genres : keep only these genres (each must be present).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise GenreError(f"{root} does not exist")
    if not root.is_dir():
        raise GenreError(f"{root} is not a folder; give the folder that holds the audio collection")
    root = root.resolve()
    if kind not in DATASET_KINDS:
        raise GenreError(f"unknown dataset kind '{kind}'; use one of: {', '.join(DATASET_KINDS)}")
    if gtzan_split not in GTZAN_SPLITS:
        raise GenreError(f"unknown GTZAN split '{gtzan_split}'; use one of: {', '.join(GTZAN_SPLITS)}")
    if fma_subset not in FMA_SUBSETS:
        raise GenreError(f"unknown FMA subset '{fma_subset}'; use one of: {', '.join(FMA_SUBSETS)}")
    if kind == "auto":
        kind = detect_kind(root)

    if kind == "fma":
        items, skips = list_fma(root, fma_subset)
    elif kind == "gtzan":
        items, skips = list_gtzan(root, gtzan_split)
    else:
        items, skips = list_folder(root)

    if not items:
        what = "usable audio files" if skips else "audio files"
        detail = f" (skipped: {_format_counts(_count(skips))})" if skips else ""
        raise GenreError(f"no {what} found in {root} as a {kind} dataset{detail}; "
                         f"{_LAYOUT_HINT[kind]}")
    present = sorted({it.genre for it in items})
    if genres is not None:
        wanted = _resolve_genres(genres, present, root)
        items = [it for it in items if it.genre in wanted]
        skips = [(reason, g) for reason, g in skips if g is None or g in wanted]
        present = sorted(wanted)
    if len(present) < 2:
        have = ", ".join(present) or "none"
        raise GenreError(f"{root} has fewer than 2 genres to tell apart (it has: {have}); "
                         f"genre classification needs at least 2")
    items.sort(key=lambda it: (it.genre, str(it.path), it.start))
    return AudioDataset(root=root, kind=kind, items=items, genres=present, skipped=_count(skips))


_LAYOUT_HINT = {
    "folder": "expected ROOT/<genre>/<file> with one of " + ", ".join(AUDIO_EXTENSIONS),
    "fma": "expected ROOT/fma_metadata/tracks.csv and ROOT/fma_small/NNN/NNNNNN.mp3",
    "gtzan": "expected ROOT/<genre>/<genre>.000NN.wav (or .au) for the GTZAN genres",
}


def detect_kind(root: Path) -> str:
    """``"fma"`` when a ``tracks.csv`` is found, ``"gtzan"`` when the folder looks like GTZAN, else ``"folder"``."""
    if find_tracks_csv(root) is not None:
        return "fma"
    if find_gtzan_dir(root, strict=True) is not None:
        return "gtzan"
    return "folder"


def _resolve_genres(genres: Sequence[str], present: list[str], root: Path) -> set[str]:
    """Map requested genre names onto present ones (exact, else case-insensitive); absent ones are an error."""
    if isinstance(genres, str):
        genres = [genres]
    lower: dict[str, list[str]] = {}
    for g in present:
        lower.setdefault(g.lower(), []).append(g)
    wanted, absent = set(), []
    for g in genres:
        if g in present:
            wanted.add(g)
        elif len(lower.get(g.lower(), [])) == 1:
            wanted.add(lower[g.lower()][0])
        else:
            absent.append(g)
    if absent:
        raise GenreError(f"genre {', '.join(repr(g) for g in absent)} is not in {root} (it has: {', '.join(present)})")
    return wanted


def _count(skips: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for reason, _ in skips).items()))


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in counts.items())
