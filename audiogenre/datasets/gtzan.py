"""GTZAN: ``<genre>/<genre>.000NN.{wav,au}`` for the ten GTZAN genres.

Either no official split (group = file), or the fault-filtered, artist-conflict-free split of
Kereliuk, Sturm & Larsen (2015), shipped in ``audiogenre/gtzan_filtered/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from audiogenre.datasets.folder import Skips
from audiogenre.datasets.items import SPLITS, AudioItem, is_audio, walk_audio
from shared.errors import GenreError

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GTZAN_CORRUPT = frozenset({"jazz.00054"})  # does not decode in the published archive
GTZAN_SPLITS = ("random", "filtered")
GTZAN_FILTERED_DIR = Path(__file__).resolve().parent.parent / "gtzan_filtered"
_GTZAN_NAME = re.compile(r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})$")


def gtzan_candidates(root: Path) -> list[Path]:
    """The places the genre folders may be: ROOT, ROOT/genres, ROOT/genres_original, ROOT/Data/genres_original."""
    return [root, root / "genres", root / "genres_original", root / "Data" / "genres_original"]


def _looks_like_gtzan(d: Path) -> bool:
    """Every visible subfolder is a GTZAN genre (two or more) and one holds a ``<genre>.NNNNN`` file."""
    subdirs = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) < 2 or any(p.name not in GTZAN_GENRES for p in subdirs):
        return False
    for sub in subdirs:
        for f in sub.iterdir():
            m = _GTZAN_NAME.match(_stem(f.name))
            if m and m["genre"] == sub.name and is_audio(f.name):
                return True
    return False


def find_gtzan_dir(root: Path, *, strict: bool) -> Path | None:
    """The folder holding the genre folders; ``strict`` (for auto-detection) wants GTZAN file names too."""
    for d in gtzan_candidates(root):
        if not d.is_dir():
            continue
        if strict and _looks_like_gtzan(d):
            return d
        if not strict and any((d / g).is_dir() for g in GTZAN_GENRES):
            return d
    return None


def _stem(name: str) -> str:
    """``blues.00029.wav`` -> ``blues.00029`` (only an audio extension is removed)."""
    return name[: name.rfind(".")] if is_audio(name) else name


def read_gtzan_filtered(folder: Path = GTZAN_FILTERED_DIR) -> dict[str, str]:
    """``{"blues.00029": "train", ...}`` from ``{train,valid,test}_filtered.txt`` in ``folder``."""
    out: dict[str, str] = {}
    for split in SPLITS:
        p = folder / f"{split}_filtered.txt"
        if not p.is_file():
            raise GenreError(f"the GTZAN filtered split list {p} is missing (get train/valid/test_filtered.txt "
                             f"from github.com/coreyker/dnn-mgr or jordipons/sklearn-audio-transfer-learning)")
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out[_stem(Path(line).name)] = split
    return out


def list_gtzan(root: Path, split_kind: str) -> tuple[list[AudioItem], Skips]:
    """The GTZAN clips under ``root``; ``split_kind`` is ``"random"`` (no official split) or ``"filtered"``."""
    base = find_gtzan_dir(root, strict=False)
    if base is None:
        where = ", ".join(str(d) for d in gtzan_candidates(root))
        raise GenreError(f"no GTZAN genre folders ({', '.join(GTZAN_GENRES)}) in any of {where}")
    lists = read_gtzan_filtered() if split_kind == "filtered" else {}
    items, skips, seen = [], [], set()
    for genre in GTZAN_GENRES:
        if not (base / genre).is_dir():
            continue
        for p in walk_audio(base / genre):
            stem = _stem(p.name)
            m = _GTZAN_NAME.match(stem)
            if not m or m["genre"] != genre or p.parent != base / genre:
                skips.append(("not a GTZAN file name", genre))
                continue
            if stem in seen:  # the same clip in two formats
                skips.append(("duplicate", genre))
                continue
            seen.add(stem)
            if stem in GTZAN_CORRUPT:
                skips.append(("known corrupt", genre))
                continue
            split = None
            if split_kind == "filtered":
                split = lists.get(stem)
                if split is None:
                    skips.append(("not in filtered split", genre))
                    continue
            items.append(AudioItem(path=p, genre=genre, split=split, group=stem))
    present = {it.genre for it in items} | {g for _, g in skips if g}
    for stem in sorted(set(lists) - seen):
        genre = stem.split(".")[0]
        if genre in present:  # a genre folder left out on purpose is not a list of missing files
            skips.append(("missing file", genre))
    return items, skips
