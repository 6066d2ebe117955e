"""Reading the phrase cache: a reader, song-level train/test splits, and a PyTorch Dataset.

Nothing here loads a whole cache into memory: phrases are read from the HDF5 file on demand
(its chunk cache keeps recently used blocks of 16 phrases), so caches larger than RAM work.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from midigenre.pianoroll import RollSettings
from shared.errors import GenreError

#: The kind a phrase cache's header names (:mod:`midigenre.prepare` writes the caches, this module reads them).
KIND = "midi-phrases"
SPLIT_FORMAT = 1


class PhraseCache:
    """Read-only view of a ``midi-phrases`` cache (see :mod:`midigenre.prepare` for the layout).

    Parameters
    ----------
    path : the ``.h5`` file. Its header (kind, schema version, settings) and every genre's
        tables (see :func:`check_genre`) are checked on opening, so a damaged or foreign file is
        refused with one line before anything is read from it, instead of giving wrong phrases.
        A flipped bit inside the phrases is found by their checksums when they are read.
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        self.header = read_cache_header(self.path)
        self.settings = settings_of(self.header)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise GenreError(f"{self.path} cannot be opened ({_short(err)})") from None
        self._checked: set[str] = set()
        try:
            self.check()
        except BaseException:
            self._h5.close()
            raise

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "PhraseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def genres(self) -> list[str]:
        import h5py

        g = self._h5.get("genres")
        return sorted(g.keys()) if isinstance(g, h5py.Group) else []

    def _group(self, genre: str):
        if genre not in self.genres:
            have = ", ".join(self.genres) or "none"
            raise GenreError(f"no genre '{genre}' in {self.path} (it has: {have})")
        if genre not in self._checked:
            check_genre(self._h5, genre, self.settings, self.path)
            self._checked.add(genre)
        return self._h5[f"genres/{genre}"]

    def check(self, genre: str | None = None) -> None:
        """Check the tables of ``genre`` (default: every genre); raises GenreError if one is damaged."""
        for g in [genre] if genre else self.genres:
            self._group(g)

    def n_phrases(self, genre: str) -> int:
        return len(self._group(genre)["phrases"])

    def files(self, genre: str) -> dict[str, np.ndarray]:
        """Per kept file: ``path, name, sha1`` (str), ``tempo`` (float), ``first_phrase, n_phrases`` (int)."""
        g = self._group(genre)["files"]
        with _reading(self.path, genre, "file list"):
            return {k: (g[k].asstr()[:] if g[k].dtype.kind == "O" else g[k][:]) for k in g.keys()}

    def dropped(self, genre: str) -> dict[str, np.ndarray]:
        """Per dropped file: ``path, name, reason, detail``."""
        g = self._group(genre)["dropped"]
        with _reading(self.path, genre, "list of dropped files"):
            return {k: g[k].asstr()[:] for k in g.keys()}

    def phrase_file(self, genre: str) -> np.ndarray:
        g = self._group(genre)
        with _reading(self.path, genre, "phrase table"):
            return g["phrase_file"][:]

    def phrase_index(self, genre: str) -> np.ndarray:
        g = self._group(genre)
        with _reading(self.path, genre, "phrase table"):
            return g["phrase_index"][:]

    def phrases(self, genre: str, rows: int | slice | Sequence[int]) -> np.ndarray:
        """Phrases by row: an int gives (64, 84), a slice or list gives (n, 64, 84) bool."""
        ds = self._group(genre)["phrases"]
        n = len(ds)
        if isinstance(rows, (int, np.integer)):
            if not -n <= rows < n:
                raise GenreError(f"phrase index {rows} is out of range: '{genre}' has {n} phrases (0..{n - 1})")
            with _reading(self.path, genre, "phrases"):
                return ds[int(rows) % n]
        if isinstance(rows, slice):
            with _reading(self.path, genre, "phrases"):
                return ds[rows]
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            bad = int(rows[(rows < -n) | (rows >= n)][0])
            raise GenreError(f"phrase index {bad} is out of range: '{genre}' has {n} phrases (0..{n - 1})")
        with _reading(self.path, genre, "phrases"):
            return read_rows(ds, rows % n if n else rows)

    def song(self, genre: str, file: int | str) -> tuple[np.ndarray, np.ndarray, float, str]:
        """All cached phrases of one song: ``(phrases, phrase_index, tempo, name)``.

        ``file`` is the file's row in :meth:`files` or (part of) its name.
        """
        files = self.files(genre)
        row = self._file_row(files, file)
        first, n = int(files["first_phrase"][row]), int(files["n_phrases"][row])
        g = self._group(genre)
        with _reading(self.path, genre, "phrases"):
            return (g["phrases"][first : first + n], g["phrase_index"][first : first + n], float(files["tempo"][row]),
                    str(files["name"][row]))

    def _file_row(self, files: dict, file: int | str) -> int:
        n = len(files["name"])
        if isinstance(file, (int, np.integer)) or (isinstance(file, str) and file.isdigit()):
            row = int(file)
            if not 0 <= row < n:
                raise GenreError(f"song number {row} is out of range: 0..{n - 1}")
            return row
        hits = [i for i, name in enumerate(files["name"]) if name == file]
        hits = hits or [i for i, name in enumerate(files["name"]) if file in name]
        if len(hits) != 1:
            what = "no song" if not hits else f"{len(hits)} songs"
            raise GenreError(f"{what} in the cache match {file!r}; give a song number or a longer part of its name")
        return hits[0]


# ----------------------------------------------------------------------------- checks


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:160]


def read_cache_header(path: str | os.PathLike):
    """:func:`shared.cache.read_header` for a phrase cache (every failure there is one GenreError line)."""
    from shared.cache import read_header

    return read_header(path, kind=KIND)


def settings_of(header) -> RollSettings:
    """The piano-roll settings a cache header records; GenreError if they are not valid settings."""
    if not isinstance(header.settings, dict):
        raise GenreError(f"{header.path} has damaged settings (not a JSON object); prepare the cache again")
    try:
        return RollSettings.from_dict(header.settings)
    except GenreError as err:
        raise GenreError(f"{header.path}: {err}") from None
    except (TypeError, ValueError) as err:
        raise GenreError(f"{header.path} has damaged settings ({_short(err)}); prepare the cache again") from None


class _reading:
    """Turn an HDF5 read failure (a corrupted compressed chunk, a bad checksum) into one GenreError line."""

    def __init__(self, path, genre: str, what: str):
        self.path, self.genre, self.what = path, genre, what

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if kind is not None and issubclass(kind, (OSError, RuntimeError, ValueError, KeyError)) and not issubclass(kind, GenreError):
            raise GenreError(f"{self.path} is damaged: cannot read the {self.what} of '{self.genre}' ({_short(err)}); "
                             "prepare the cache again") from None
        return False


# What a MIDI tempo event can say: 1 to 2^24 − 1 µs per quarter note (read_song's 6e7 / mspq).
_MIN_TEMPO, _MAX_TEMPO = 6e7 / 0xFFFFFF * (1 - 1e-6), 6e7 * (1 + 1e-6)
_FILE_KEYS = ("path", "name", "sha1", "tempo", "first_phrase", "n_phrases")
_DROPPED_KEYS = ("path", "name", "reason", "detail")
_STRINGS = {"files/path", "files/name", "files/sha1", *(f"dropped/{k}" for k in _DROPPED_KEYS)}


def check_genre(h5, genre: str, settings: RollSettings, path) -> None:
    """Check that a genre's tables have the layout :mod:`midigenre.prepare` writes and agree with
    each other and with the cache's settings: every table present, phrases of shape
    (N, phrase_steps, n_pitches) and bool, one row per phrase in ``phrase_file`` and
    ``phrase_index``, every file's phrases inside the N rows and its own, phrase positions
    within the ``max_bars`` limit and rising within each song, tempos that a MIDI file can hold.

    Costs one read of the small tables (4 bytes per phrase), not of the phrases. Raises
    GenreError naming what is wrong.
    """
    import h5py

    def damaged(what: str) -> GenreError:
        return GenreError(f"{path} is damaged: genre '{genre}' {what}; prepare the cache again")

    try:
        g = h5[f"genres/{genre}"]
        if not isinstance(g, h5py.Group):
            raise damaged("is not a group of tables")
        keys = ["phrases", "phrase_file", "phrase_index", *(f"files/{k}" for k in _FILE_KEYS),
                *(f"dropped/{k}" for k in _DROPPED_KEYS)]
        missing = [k for k in keys if not isinstance(g.get(k), h5py.Dataset)]
        if missing:
            raise damaged(f"has no {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
        ph = g["phrases"]
        want = (settings.phrase_steps, settings.n_pitches)
        if ph.ndim != 3 or tuple(ph.shape[1:]) != want:
            raise damaged(f"holds phrases of shape {tuple(ph.shape)}, its settings say (N, {want[0]}, {want[1]})")
        if ph.dtype != np.bool_:
            raise damaged(f"holds phrases of type {ph.dtype}, not bool")
        n = ph.shape[0]
        for k in keys[1:]:
            if g[k].ndim != 1:
                raise damaged(f"has a {k} table of shape {g[k].shape}")
            if (k in _STRINGS) != (h5py.check_string_dtype(g[k].dtype) is not None):
                raise damaged(f"has a {k} table of type {g[k].dtype}")
        for k in ("phrase_file", "phrase_index"):
            if len(g[k]) != n:
                raise damaged(f"has {len(g[k])} rows in {k} for {n} phrases")
        n_files = {len(g[f"files/{k}"]) for k in _FILE_KEYS}
        n_dropped = {len(g[f"dropped/{k}"]) for k in _DROPPED_KEYS}
        if len(n_files) != 1 or len(n_dropped) != 1:
            raise damaged("has file tables of different lengths")
        f = n_files.pop()
        pf = g["phrase_file"][:].astype(np.int64)
        pi = g["phrase_index"][:]
        first = g["files/first_phrase"][:].astype(np.int64)
        count = g["files/n_phrases"][:].astype(np.int64)
        tempo = g["files/tempo"][:]
    except GenreError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
        raise damaged(f"cannot be read ({_short(err)})") from None
    if n and (pf.min() < 0 or pf.max() >= f):
        raise damaged(f"has phrases of song numbers outside its {f} files")
    if n and pi.min() < 0:
        raise damaged("has negative phrase positions")
    last = settings.max_bars // settings.bars_per_phrase + 1  # prepare drops longer songs
    if n and pi.max() > last:
        raise damaged(f"has a phrase at position {int(pi.max())}, beyond the {settings.max_bars}-bar limit")
    if f and ((count < 0).any() or (first < 0).any() or (first + count > n).any() or int(count.sum()) != n):
        raise damaged(f"has a file list that does not add up to its {n} phrases")
    if f:
        owner = np.repeat(np.arange(f), count)
        rows = np.repeat(first - np.cumsum(count) + count, count) + np.arange(n)
        if not np.array_equal(pf[rows], owner):
            raise damaged("has a phrase table that disagrees with its file list")
        # each song's phrases are stored in song order: their positions rise (gaps are empty phrases)
        pos = pi[rows].astype(np.int64)
        if n > 1 and ((np.diff(pos) <= 0) & (owner[1:] == owner[:-1])).any():
            raise damaged("has phrase positions that do not rise within a song (two phrases in one place)")
    if f and not (np.isfinite(tempo) & (tempo >= _MIN_TEMPO) & (tempo <= _MAX_TEMPO)).all():
        raise damaged("has a song whose tempo no MIDI file can hold")


def read_rows(ds, rows: Sequence[int]) -> np.ndarray:
    """Read arbitrary rows of an HDF5 dataset in one call (h5py wants them sorted and unique)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.zeros((0,) + ds.shape[1:], dtype=ds.dtype)
    uniq, inverse = np.unique(rows, return_inverse=True)
    if uniq[0] < 0 or uniq[-1] >= len(ds):
        raise IndexError(f"rows out of range 0..{len(ds) - 1}")
    return ds[uniq][inverse]


# ----------------------------------------------------------------------------- splits


@dataclass
class SongSplit:
    """A seeded train/test split by source song (file content), never by phrase.

    ``genres[g]["train" | "test"]`` are lists of ``{"name", "sha1"}``; a song is identified
    by the SHA-1 of its MIDI bytes, so the split survives moving the cache or the files.
    """

    seed: int
    test_fraction: float
    settings_hash: str
    genres: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    valid_fraction: float = 0.0
    #: per genre, the settings hash of its cache where the genres were read by different meter
    #: rules (``for_sources(..., same_grid=True)``); empty when every cache has ``settings_hash``
    genre_hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, cache: PhraseCache, genres: Sequence[str] | None = None, *, test_fraction: float = 0.1, seed: int = 0,
        valid_fraction: float = 0.0,
    ) -> "SongSplit":
        """Hold out ``ceil(test_fraction * songs)`` songs per genre (at least one when there are two or more).

        ``valid_fraction`` > 0 also sets ``ceil(valid_fraction * training songs)`` of the remaining
        songs aside as the ``valid`` part (for choosing settings); the ``test`` songs are the same
        as without it.
        """
        if not 0.0 <= test_fraction < 1.0:
            raise GenreError(f"test fraction must be in [0, 1), got {test_fraction}")
        if not 0.0 <= valid_fraction < 1.0:
            raise GenreError(f"validation fraction must be in [0, 1), got {valid_fraction}")
        split = cls(seed=seed, test_fraction=test_fraction, settings_hash=cache.header.settings_hash,
                    valid_fraction=valid_fraction)
        if not (genres or cache.genres):
            raise GenreError(f"{cache.path} holds no genres yet: prepare one into it first")
        for genre in genres or cache.genres:
            files = cache.files(genre)
            first = {}  # one entry per distinct song content (identical files share a side)
            for i, h in enumerate(files["sha1"]):
                first.setdefault(h, i)
            order = sorted(first.values(), key=lambda i: files["sha1"][i])  # independent of file order
            rng = np.random.default_rng([seed, zlib.crc32(genre.encode())])
            order = [order[i] for i in rng.permutation(len(order))]
            n_test = math.ceil(test_fraction * len(order)) if test_fraction > 0 else 0
            if test_fraction > 0 and len(order) >= 2:
                n_test = min(max(n_test, 1), len(order) - 1)
            rest = order[n_test:]
            n_valid = math.ceil(valid_fraction * len(rest)) if valid_fraction > 0 else 0
            if valid_fraction > 0 and len(rest) >= 2:
                n_valid = min(max(n_valid, 1), len(rest) - 1)
            elif len(rest) < 2:
                n_valid = 0  # the one training song stays a training song
            entry = lambda i: {"name": str(files["name"][i]), "sha1": str(files["sha1"][i])}  # noqa: E731
            parts = {"test": order[:n_test], "train": rest[n_valid:]}
            if valid_fraction > 0:
                parts["valid"] = rest[:n_valid]
            split.genres[genre] = {k: sorted((entry(i) for i in v), key=lambda e: e["name"]) for k, v in parts.items()}
        return split

    @classmethod
    def for_sources(cls, sources, *, test_fraction: float = 0.1, seed: int = 0, valid_fraction: float = 0.0,
                    same_grid: bool = False) -> "SongSplit":
        """One split over genres that may live in several caches.

        ``sources`` are ``(cache path, genre)`` pairs; a genre of None takes every genre of
        that cache. The caches must share their settings and the genre names must differ;
        with ``same_grid`` only their phrase grid (:meth:`RollSettings.grid`): the meter rule
        may differ per genre, and the split keeps each genre's settings hash.
        """
        merged, grid, hashes = None, None, {}
        for path, genre in sources:
            with PhraseCache(path) as c:
                part = cls.create(c, None if genre is None else [genre], test_fraction=test_fraction, seed=seed,
                                  valid_fraction=valid_fraction)
                part_grid = RollSettings.from_dict(c.header.settings).grid() if same_grid else None
            hashes.update({g: part.settings_hash for g in part.genres})
            if merged is None:
                merged, grid = part, part_grid
                continue
            if part.settings_hash != merged.settings_hash and (not same_grid or part_grid != grid):
                raise GenreError(f"{path} was prepared with other settings than the other caches; they cannot share a split")
            for g, parts in part.genres.items():
                if g in merged.genres:
                    raise GenreError(f"genre name '{g}' is used twice; the genres must have different names")
                merged.genres[g] = parts
        if merged is None:
            raise GenreError("a split needs at least one cache")
        if len(set(hashes.values())) > 1:
            merged.genre_hashes = hashes
        return merged

    def to_dict(self) -> dict:
        return {
            "format": SPLIT_FORMAT, "kind": "song-split", "seed": self.seed, "test_fraction": self.test_fraction,
            **({"valid_fraction": self.valid_fraction} if self.valid_fraction else {}),
            "settings_hash": self.settings_hash, "genres": self.genres,
            **({"genre_hashes": self.genre_hashes} if self.genre_hashes else {}),
        }

    def save(self, path: str | os.PathLike) -> Path:
        from shared.atomic import write_json

        write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SongSplit":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GenreError(f"no such split file: {path}") from None
        except (OSError, ValueError) as err:
            raise GenreError(f"cannot read split file {path}: {err}") from None
        if not isinstance(d, dict) or d.get("kind") != "song-split" or d.get("format", 0) > SPLIT_FORMAT:
            raise GenreError(f"{path} is not a song split of this toolkit (or a newer format)")
        try:
            return cls(seed=d["seed"], test_fraction=d["test_fraction"], settings_hash=d["settings_hash"], genres=d["genres"],
                       valid_fraction=float(d.get("valid_fraction", 0.0)), genre_hashes=dict(d.get("genre_hashes") or {}))
        except KeyError as err:
            raise GenreError(f"{path} is a damaged song split (no {err})") from None

    def rows(self, cache: PhraseCache, genre: str, part: str) -> np.ndarray:
        """Phrase rows of ``genre`` in ``cache`` whose song is in ``part`` ("train", "valid" or "test";
        a split without a validation part has no "valid" rows)."""
        if part not in ("train", "valid", "test"):
            raise GenreError(f"split part must be 'train', 'valid' or 'test', not {part!r}")
        if genre not in self.genres:
            raise GenreError(f"the split has no genre '{genre}' (it has: {', '.join(sorted(self.genres))})")
        if cache.header.settings_hash != self.genre_hashes.get(genre, self.settings_hash):
            raise GenreError(f"the split was made for a cache with other settings than {cache.path}")
        wanted = {e["sha1"] for e in self.genres[genre].get(part, [])}
        files = cache.files(genre)
        chosen = [i for i, s in enumerate(files["sha1"]) if s in wanted]
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(
            [np.arange(files["first_phrase"][i], files["first_phrase"][i] + files["n_phrases"][i]) for i in chosen]
        ).astype(np.int64)


#: Below these sizes a genre or a part of a split means little: a genre of fewer phrases than a
#: few batches, or a validation/test part whose shares move by 5 % or more per phrase.
MIN_GENRE_PHRASES = 100
MIN_PART_PHRASES = 20
MIN_PART_SONGS = 3


def small_data_notes(sources, split: "SongSplit | None" = None) -> list[str]:
    """One line for each genre of ``sources`` (``(cache path, genre)`` pairs) with fewer than
    :data:`MIN_GENRE_PHRASES` phrases, and for each validation or test part of ``split`` with
    fewer than :data:`MIN_PART_PHRASES` phrases or :data:`MIN_PART_SONGS` songs: a model or a
    measure made on so little data means little (training goes on; the caller warns)."""
    names = {"train": "training", "valid": "validation", "test": "held-out"}
    notes = []
    for path, genre in sources:
        with PhraseCache(path) as c:
            n = c.n_phrases(genre)
            if n < MIN_GENRE_PHRASES:
                notes.append(f"'{genre}' has only {n} phrases ({len(c.files(genre)['name'])} files) in {Path(path).name}: "
                             f"too little to learn a genre from (fewer than {MIN_GENRE_PHRASES})")
            for part in ("valid", "test") if split is not None else ():
                songs = split.genres.get(genre, {}).get(part)
                if not songs:
                    continue
                rows = len(split.rows(c, genre, part))
                if rows < MIN_PART_PHRASES or len(songs) < MIN_PART_SONGS:
                    notes.append(f"the {names[part]} part of '{genre}' is {len(songs)} song{'s' * (len(songs) != 1)}, "
                                 f"{rows} phrases: too few for its measures to mean much")
    return notes


def model_caches(meta: dict, folder: str | os.PathLike | None = None) -> dict[str, str]:
    """Genre → the cache a transfer model was trained from, as far as it is known here.

    A model.json names its caches relative to the folder its training ran in (older ones by an
    absolute path; :func:`shared.registry.portable_path`). A run folder's own ``config.json``
    (beside its model.json, also in each kept epoch) has their absolute paths on the machine that
    trained it: where those files are here, they are taken. The result may name files that are
    not here; the caller checks.
    """

    def caches(data) -> dict[str, str]:
        if not isinstance(data, dict):
            return {}
        if isinstance(data.get("genres"), list):  # a multi-genre model
            entries = data["genres"]
        else:
            entries = [data.get(k) for k in ("a", "b")]
        return {d["genre"]: str(d["cache"]) for d in entries
                if isinstance(d, dict) and isinstance(d.get("genre"), str) and d.get("cache")}

    found = caches(meta.get("data"))
    record = Path(folder) / "config.json" if folder is not None else None
    if record is not None and record.is_file():
        try:
            ran = caches(json.loads(record.read_text(encoding="utf-8")).get("data"))
        except (OSError, ValueError, AttributeError):
            ran = {}
        found.update({g: c for g, c in ran.items() if g in found and Path(c).is_file()})
    return found


def balance(rows_a: np.ndarray, rows_b: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Downsample the larger of two row sets to the size of the smaller (seeded), as the reference does."""
    rng = np.random.default_rng(seed)
    n = min(len(rows_a), len(rows_b))
    pick = lambda rows: np.sort(rng.choice(rows, size=n, replace=False)) if len(rows) > n else np.asarray(rows)  # noqa: E731
    return pick(rows_a), pick(rows_b)


# ----------------------------------------------------------------------------- torch


class PhraseDataset:
    """A ``torch.utils.data.Dataset`` of phrases of one genre, read lazily from the cache.

    Items are float32 tensors of shape (1, 64, 84) with values 0/1, or ``(tensor, label)``
    when ``label`` is given. The HDF5 file is opened in each worker process on first use, so
    the dataset works with ``DataLoader(num_workers > 0)``. ``__getitems__`` reads a whole batch
    in one HDF5 call.

    Parameters
    ----------
    cache : path of the cache.
    genre : the genre group to read.
    rows : phrase rows to expose (default: all), e.g. from :meth:`SongSplit.rows`.
    label : optional integer class label returned with every item.
    """

    def __init__(self, cache: str | os.PathLike, genre: str, rows: Sequence[int] | None = None, label: int | None = None):
        with PhraseCache(cache) as c:
            n = c.n_phrases(genre)
            self.settings = c.settings
        self.path, self.genre, self.label = Path(cache), genre, label
        self.rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= n):
            raise GenreError(f"phrase rows out of range for '{genre}' ({n} phrases)")
        self._ds = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.rows)

    def _dataset(self):
        if self._ds is None or self._pid != os.getpid():
            import h5py

            # 32 MiB chunk cache: random access re-reads few compressed chunks
            f = h5py.File(self.path, "r", rdcc_nbytes=32 * 1024 * 1024, rdcc_nslots=10007)
            self._ds, self._pid = f[f"genres/{self.genre}/phrases"], os.getpid()
        return self._ds

    def close(self) -> None:
        """Close the HDF5 file (it is reopened on the next read)."""
        if self._ds is not None:
            self._ds.file.close()
            self._ds = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_ds"] = state["_pid"] = None  # h5py handles do not cross processes
        return state

    def _wrap(self, x):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(-3)
        if self.label is None:
            return t
        return t, self.label

    def __getitem__(self, i: int):
        with _reading(self.path, self.genre, "phrases"):
            x = self._dataset()[int(self.rows[i])]
        return self._wrap(x)

    def __getitems__(self, indices: Sequence[int]) -> list:
        with _reading(self.path, self.genre, "phrases"):
            batch = read_rows(self._dataset(), self.rows[np.asarray(indices, dtype=np.int64)])
        return [self._wrap(x) for x in batch]
