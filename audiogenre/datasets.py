"""Listing genre-labelled audio collections: which files, which genre, which split.

Three layouts are understood (see :func:`open_dataset`):

* ``folder`` — ``ROOT/<genre>/**/<file>.<ext>``, or the clips named by ``ROOT/manifest.json``
  as written by ``genre audio render-dataset``;
* ``fma`` — the Free Music Archive as published (``fma_metadata/tracks.csv`` + ``fma_small/``);
* ``gtzan`` — GTZAN (``<genre>/<genre>.000NN.{wav,au}``), with either no official split or the
  fault-filtered, artist-conflict-free split of Kereliuk, Sturm & Larsen (2015), shipped in
  ``audiogenre/gtzan_filtered/``.

Nothing here decodes audio: :func:`segment` reads file lengths with ``soundfile.info``, the rest
only looks at names and metadata. Splits keep a *group* (source song, track or artist) on one side.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from shared.errors import GenreError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".aif")
SPLITS = ("train", "valid", "test")
KINDS = ("folder", "fma", "gtzan")

MANIFEST_NAME = "manifest.json"
MANIFEST_KIND = "rendered-audio"
MANIFEST_FORMAT = 1

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GTZAN_CORRUPT = frozenset({"jazz.00054"})  # does not decode in the published archive
GTZAN_SPLITS = ("random", "filtered")
GTZAN_FILTERED_DIR = Path(__file__).resolve().parent / "gtzan_filtered"
_GTZAN_NAME = re.compile(r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})$")

FMA_SUBSETS = ("small", "medium", "large")  # each contains the ones before it
FMA_BROKEN = frozenset({98565, 98567, 98569, 99134, 108925, 133297})  # empty or too short to decode
FMA_SPLIT_NAMES = {"training": "train", "validation": "valid", "test": "test"}

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
        self, seed: int = 24, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
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
        sides = _group_sides(self.items, seed, _check_fractions(fractions))
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


# ----------------------------------------------------------------------------- opening


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
    if kind not in ("auto",) + KINDS:
        raise GenreError(f"unknown dataset kind '{kind}'; use one of: auto, {', '.join(KINDS)}")
    if gtzan_split not in GTZAN_SPLITS:
        raise GenreError(f"unknown GTZAN split '{gtzan_split}'; use one of: {', '.join(GTZAN_SPLITS)}")
    if fma_subset not in FMA_SUBSETS:
        raise GenreError(f"unknown FMA subset '{fma_subset}'; use one of: {', '.join(FMA_SUBSETS)}")
    if kind == "auto":
        kind = detect_kind(root)

    if kind == "fma":
        items, skips = _list_fma(root, fma_subset)
    elif kind == "gtzan":
        items, skips = _list_gtzan(root, gtzan_split)
    else:
        items, skips = _list_folder(root)

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
    if _find_tracks_csv(root) is not None:
        return "fma"
    if _find_gtzan_dir(root, strict=True) is not None:
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


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def _walk_audio(top: Path) -> list[Path]:
    """Audio files under ``top`` (sorted), skipping hidden files and folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".") and _is_audio(f)]
    return sorted(out)


def _split_name(value, where: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return _SPLIT_ALIASES[str(value).lower()]
    except KeyError:
        raise GenreError(f"unknown split '{value}' in {where}; use train, valid or test") from None


# ----------------------------------------------------------------------------- folder


def _list_folder(root: Path) -> tuple[list[AudioItem], list[tuple[str, str | None]]]:
    if (root / MANIFEST_NAME).is_file():
        return _list_manifest(root)
    items, skips = [], []
    for p in _walk_audio(root):
        rel = p.relative_to(root)
        if len(rel.parts) < 2:
            skips.append(("not in a genre folder", None))
            continue
        items.append(AudioItem(path=p, genre=rel.parts[0], split=None, group=rel.with_suffix("").as_posix()))
    return items, skips


def _list_manifest(root: Path) -> tuple[list[AudioItem], list[tuple[str, str | None]]]:
    mpath = root / MANIFEST_NAME
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GenreError(f"cannot read {mpath}: {e}; fix or remove it to list the folder by its genre folders"
                         ) from None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND or not isinstance(
            manifest.get("clips"), list):
        raise GenreError(f"{mpath} is not a '{MANIFEST_KIND}' manifest (no kind '{MANIFEST_KIND}' with a clips list); "
                         f"move it away to list the folder by its genre folders")
    fmt = manifest.get("format")
    if not isinstance(fmt, int) or fmt > MANIFEST_FORMAT:
        raise GenreError(f"{mpath} has format {fmt!r}; this version reads format {MANIFEST_FORMAT} (upgrade the tool)")
    items, skips, listed = [], [], set()
    for n, clip in enumerate(manifest["clips"]):
        if not isinstance(clip, dict) or not clip.get("path") or not clip.get("genre"):
            raise GenreError(f"clip {n} of {mpath} lacks a path or a genre")
        rel = Path(clip["path"])
        p = (root / rel).resolve() if not rel.is_absolute() else rel
        listed.add(p)
        genre = str(clip["genre"])
        if not p.is_file():
            skips.append(("missing file", genre))
            continue
        # a clip is a whole file: its "start" is where the crop begins in the source song, not in the file
        items.append(AudioItem(path=p, genre=genre, split=_split_name(clip.get("split"), f"clip {n} of {mpath}"),
                               group=str(clip.get("song") or rel.with_suffix("").as_posix())))
    skips += [("not in manifest", None) for p in _walk_audio(root) if p.resolve() not in listed]
    return items, skips


# ----------------------------------------------------------------------------- FMA


def _find_tracks_csv(root: Path) -> Path | None:
    for p in (root / "tracks.csv", root / "fma_metadata" / "tracks.csv"):
        if p.is_file():
            return p
    return None


def _fma_audio_dir(root: Path, subset: str) -> Path:
    """The folder holding ``NNN/NNNNNN.mp3``: ROOT/fma_<subset> (or a larger subset's), else ROOT."""
    for s in FMA_SUBSETS[FMA_SUBSETS.index(subset):] + ("full",):
        if (root / f"fma_{s}").is_dir():
            return root / f"fma_{s}"
    return root


def _list_fma(root: Path, subset: str) -> tuple[list[AudioItem], list[tuple[str, str | None]]]:
    csv_path = _find_tracks_csv(root)
    if csv_path is None:
        raise GenreError(f"FMA metadata missing: expected {root / 'fma_metadata' / 'tracks.csv'} "
                         f"(or {root / 'tracks.csv'}), from fma_metadata.zip")
    audio = _fma_audio_dir(root, subset)
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


# ----------------------------------------------------------------------------- GTZAN


def _gtzan_candidates(root: Path) -> list[Path]:
    return [root, root / "genres", root / "genres_original", root / "Data" / "genres_original"]


def _looks_like_gtzan(d: Path) -> bool:
    """Every visible subfolder is a GTZAN genre (two or more) and one holds a ``<genre>.NNNNN`` file."""
    subdirs = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) < 2 or any(p.name not in GTZAN_GENRES for p in subdirs):
        return False
    for sub in subdirs:
        for f in sub.iterdir():
            m = _GTZAN_NAME.match(_stem(f.name))
            if m and m["genre"] == sub.name and _is_audio(f.name):
                return True
    return False


def _find_gtzan_dir(root: Path, *, strict: bool) -> Path | None:
    """The folder holding the genre folders; ``strict`` (for auto-detection) wants GTZAN file names too."""
    for d in _gtzan_candidates(root):
        if not d.is_dir():
            continue
        if strict and _looks_like_gtzan(d):
            return d
        if not strict and any((d / g).is_dir() for g in GTZAN_GENRES):
            return d
    return None


def _stem(name: str) -> str:
    """``blues.00029.wav`` -> ``blues.00029`` (only an audio extension is removed)."""
    return name[: name.rfind(".")] if _is_audio(name) else name


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


def _list_gtzan(root: Path, split_kind: str) -> tuple[list[AudioItem], list[tuple[str, str | None]]]:
    base = _find_gtzan_dir(root, strict=False)
    if base is None:
        where = ", ".join(str(d) for d in _gtzan_candidates(root))
        raise GenreError(f"no GTZAN genre folders ({', '.join(GTZAN_GENRES)}) in any of {where}")
    lists = read_gtzan_filtered() if split_kind == "filtered" else {}
    items, skips, seen = [], [], set()
    for genre in GTZAN_GENRES:
        if not (base / genre).is_dir():
            continue
        for p in _walk_audio(base / genre):
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


# ----------------------------------------------------------------------------- splits


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3 or any(not x >= 0 for x in f) or abs(sum(f) - 1.0) > 1e-6:
        raise GenreError(f"split fractions must be three numbers >= 0 (train, valid, test) that sum to 1, "
                         f"got {tuple(fractions) if isinstance(fractions, Sequence) else fractions!r}")
    return f  # type: ignore[return-value]


def _unit_hash(seed: int, group: str) -> float:
    """A number in [0, 1) fixed by ``(seed, group)``; the same as ``audiogenre.render`` uses for a song."""
    return int(hashlib.sha1(f"{seed}:{group}".encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def _group_sides(items: Sequence[AudioItem], seed: int, fractions: tuple[float, float, float]) -> dict[str, str]:
    """The side (train / valid / test) of every group, see :meth:`AudioDataset.splits`."""
    genre_counts: dict[str, Counter] = {}
    for it in items:
        genre_counts.setdefault(it.group, Counter())[it.genre] += 1
    edges = (fractions[0], fractions[0] + fractions[1])
    intervals = {"train": (0.0, edges[0]), "valid": (edges[0], edges[1]), "test": (edges[1], 1.0)}
    u = {g: _unit_hash(seed, g) for g in genre_counts}
    side = {g: "train" if x < edges[0] else "valid" if x < edges[1] else "test" for g, x in u.items()}
    if fractions[2] == 0:  # rounding must not leave the top of [0, 1) on an empty side
        side = {g: ("valid" if s == "test" and fractions[1] > 0 else "train" if s == "test" else s)
                for g, s in side.items()}

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


# ----------------------------------------------------------------------------- segments

_DURATIONS: dict[tuple[str, int, int], float] = {}


def audio_duration(path: str | os.PathLike) -> float:
    """Length of an audio file in seconds (``soundfile.info``), cached per path, size and mtime."""
    import soundfile

    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DURATIONS:
        info = soundfile.info(str(path))
        _DURATIONS[key] = info.frames / info.samplerate if info.samplerate else 0.0
    return _DURATIONS[key]


def segment(
    items: Sequence[AudioItem], seconds: float, *, hop: float | None = None, min_fraction: float = 0.5
) -> list[AudioItem]:
    """Cut each item into pieces of ``seconds``, starting every ``hop`` seconds (default: ``seconds``).

    Pieces keep the item's genre, split and group. The last piece of an item ends at the item's
    end and may be shorter (its ``duration`` says how long; the caller pads); it is dropped when
    shorter than ``min_fraction * seconds``. Lengths of whole files come from ``soundfile.info``;
    files it cannot read are left out with a warning.
    """
    if not seconds > 0:
        raise GenreError(f"segment length must be > 0 seconds, got {seconds}")
    hop = seconds if hop is None else hop
    if not hop > 0:
        raise GenreError(f"segment hop must be > 0 seconds, got {hop}")
    if not 0.0 <= min_fraction <= 1.0:
        raise GenreError(f"min_fraction must be between 0 and 1, got {min_fraction}")
    eps = 1e-9
    out: list[AudioItem] = []
    unreadable: list[str] = []
    for it in items:
        if it.duration is not None:
            end = it.start + it.duration
        else:
            try:
                end = audio_duration(it.path)
            except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (a RuntimeError)
                unreadable.append(f"{it.path} ({e})")
                continue
        t, k = it.start, 0
        while t < end - eps:
            piece_end = min(t + seconds, end)
            if piece_end - t >= min_fraction * seconds - eps:
                out.append(replace(it, start=round(t, 9), duration=round(piece_end - t, 9)))
            if piece_end >= end - eps:
                break
            k += 1
            t = it.start + k * hop  # no drift from repeated additions
    if unreadable:
        more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
        warnings.warn(f"left out {len(unreadable)} unreadable audio file(s): {'; '.join(unreadable[:3])}{more}",
                      stacklevel=2)
    return out
