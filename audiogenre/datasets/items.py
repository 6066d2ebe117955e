"""What every collection is made of: labelled items, the data set that holds them, and its splits.

The seeded split lives here, and so does the hash it is built on: :func:`unit_hash` puts a
group (source song, track, artist) at a fixed point of ``[0, 1)`` and :func:`side_of` reads
that point as train / valid / test. ``audiogenre.render.render_dataset`` uses the same two
functions for the split it writes into its manifest, so a rendered song lands on the side a
plain folder of the same songs would give it.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from shared.errors import GenreError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".aif")
SPLITS = ("train", "valid", "test")
DEFAULT_SEED = 24
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)

_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
                  "test": "test"}


@dataclass(frozen=True)
class AudioItem:
    """One labelled piece of audio: a whole file, or ``duration`` seconds of it from ``start``."""

    path: Path  # absolute path of the audio file
    genre: str
    split: str | None  # "train" | "valid" | "test"; None when the collection has no official split
    group: str  # what must stay on one side of a split: the source song / track / artist id
    start: float = 0.0  # offset in seconds inside the file (for segments)
    duration: float | None = None  # seconds; None = to the end of the file


@dataclass
class AudioDataset:
    """The usable items of one collection, its genres (sorted) and what was left out, by reason."""

    root: Path
    kind: str  # "folder" | "fma" | "gtzan"
    items: list[AudioItem]
    genres: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def has_official_split(self) -> bool:
        return bool(self.items) and all(it.split is not None for it in self.items)

    def splits(
        self, seed: int = DEFAULT_SEED, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    ) -> dict[str, list[AudioItem]]:
        """``{"train": [...], "valid": [...], "test": [...]}`` (lists may be empty; the caller checks).

        The official split when every item has one (``seed`` and ``fractions`` are then unused).
        Otherwise a seeded split by group: a group's side is decided by a hash of ``(seed, group)``
        falling into ``[0, train)``, ``[train, train + valid)`` or the rest of ``[0, 1)``, so adding
        or removing files never moves other groups. The only exception keeps the split stratified
        where groups allow: when a genre (a group counts for the genre most of its items have) has
        no group on a side with a positive fraction, the group whose hash lies nearest that side is
        moved there from a side that has more than one.
        """
        if self.has_official_split:
            return {s: [it for it in self.items if it.split == s] for s in SPLITS}
        sides = group_sides(self.items, seed, check_fractions(fractions))
        return {s: [it for it in self.items if sides[it.group] == s] for s in SPLITS}

    def summary(self) -> str:
        """A few lines: kind and root, items per genre and split, skipped files by reason."""
        official = self.has_official_split
        parts = self.splits()
        head = (f"{self.kind} dataset at {self.root}: {len(self.items)} items, {len(self.genres)} genres, "
                f"{len({it.group for it in self.items})} groups; "
                + ("official split" if official else "no official split, seeded split by group (seed 24, 80/10/10)"))
        width = max([len("genre")] + [len(g) for g in self.genres])
        lines = [head, f"  {'genre':<{width}} " + " ".join(f"{s:>6}" for s in SPLITS)]
        for g in self.genres:
            counts = [sum(1 for it in parts[s] if it.genre == g) for s in SPLITS]
            lines.append(f"  {g:<{width}} " + " ".join(f"{n:>6}" for n in counts))
        lines.append(f"  {'total':<{width}} " + " ".join(f"{len(parts[s]):>6}" for s in SPLITS))
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{r} {n}" for r, n in sorted(self.skipped.items())))
        else:
            lines.append("skipped: none")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- audio files


def is_audio(name: str) -> bool:
    """Whether a file name has one of :data:`AUDIO_EXTENSIONS` (any case)."""
    return name.lower().endswith(AUDIO_EXTENSIONS)


def walk_audio(top: Path) -> list[Path]:
    """Audio files under ``top`` (sorted), skipping hidden files and folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".") and is_audio(f)]
    return sorted(out)


def split_name(value, where: str) -> str | None:
    """``"train"`` / ``"valid"`` / ``"test"`` for a split written in metadata (aliases accepted), None for none."""
    if value is None or value == "":
        return None
    try:
        return _SPLIT_ALIASES[str(value).lower()]
    except KeyError:
        raise GenreError(f"unknown split '{value}' in {where}; use train, valid or test") from None


# ----------------------------------------------------------------------------- seeded splits


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """``(train, valid, test)`` as floats; GenreError unless three numbers >= 0 that sum to 1."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3 or any(not x >= 0 for x in f) or abs(sum(f) - 1.0) > 1e-6:
        raise GenreError(f"split fractions must be three numbers >= 0 (train, valid, test) that sum to 1, "
                         f"got {tuple(fractions) if isinstance(fractions, Sequence) else fractions!r}")
    return f  # type: ignore[return-value]


def unit_hash(seed: int, group: str) -> float:
    """A number in [0, 1) fixed by ``(seed, group)``: the first 48 bits of sha1 of ``"seed:group"``."""
    return int(hashlib.sha1(f"{seed}:{group}".encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def side_of(u: float, fractions: Sequence[float]) -> str:
    """The side of a point ``u`` of ``[0, 1)``: train below ``fractions[0]``, valid below
    ``fractions[0] + fractions[1]``, else test — never a side whose fraction is 0 (float
    rounding can leave a sliver of ``[0, 1)`` above train + valid)."""
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "valid"
    if fractions[2] == 0:
        return "valid" if fractions[1] > 0 else "train"
    return "test"


def group_sides(items: Sequence[AudioItem], seed: int, fractions: tuple[float, float, float]) -> dict[str, str]:
    """The side (train / valid / test) of every group, see :meth:`AudioDataset.splits`."""
    genre_counts: dict[str, Counter] = {}
    for it in items:
        genre_counts.setdefault(it.group, Counter())[it.genre] += 1
    edges = (fractions[0], fractions[0] + fractions[1])
    intervals = {"train": (0.0, edges[0]), "valid": (edges[0], edges[1]), "test": (edges[1], 1.0)}
    u = {g: unit_hash(seed, g) for g in genre_counts}
    side = {g: side_of(x, fractions) for g, x in u.items()}

    by_genre: dict[str, list[str]] = {}
    for g, counts in genre_counts.items():
        home = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        by_genre.setdefault(home, []).append(g)
    wanted = sorted((s for s, f in zip(SPLITS, fractions) if f > 0), key=lambda s: -fractions[SPLITS.index(s)])

    def distance(x: float, s: str) -> float:
        lo, hi = intervals[s]
        return lo - x if x < lo else x - hi if x >= hi else 0.0

    for groups in by_genre.values():
        for s in wanted:
            sizes = Counter(side[g] for g in groups)
            if sizes[s]:
                continue
            donors = [g for g in groups if sizes[side[g]] > 1]
            if donors:
                side[min(donors, key=lambda g: (distance(u[g], s), g))] = s
    return side
