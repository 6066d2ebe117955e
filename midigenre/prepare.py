"""A MIDI collection → phrases of one genre in an HDF5 cache.

Layout of a ``midi-phrases`` cache (schema 1; root attributes in :mod:`shared.cache`)::

    genres/<genre>/phrases        (N, 64, 84) bool   chunked (16, 64, 84), gzip
    genres/<genre>/phrase_file    (N,) int32         row in files/ of each phrase's song
    genres/<genre>/phrase_index   (N,) int32         position of the phrase in its song
    genres/<genre>/files/path     (F,) str           absolute path of each kept file
    genres/<genre>/files/name     (F,) str           path relative to the source argument
    genres/<genre>/files/sha1     (F,) str           content hash: song identity for splits
    genres/<genre>/files/tempo    (F,) float32       tempo at tick 0, quarter notes per minute
    genres/<genre>/files/first_phrase, n_phrases (F,) int32   phrases of a file are contiguous
    genres/<genre>/dropped/path, name, reason, detail   (D,) str   every file not used, and why
    genres/<genre> attributes: dedupe (duplicates dropped), shard ("I/N" for a cache of one
        shard, see below), collection_files (files found before sharding)

Sharding (``shard=(I, N)``, ``--shard I/N``): the files whose name (path relative to the source
folder) hashes to I − 1 modulo N, so every machine of a cluster picks its 1/N of a collection
without talking to the others, however the collection is mounted; ``midigenre.merge`` joins the
N caches into the one a single run gives.

Processing is journalled: every few hundred files the results so far go to a shard in a
hidden ``.<cache>.<genre>.partial/`` folder next to the cache (each shard written atomically).
An interrupted run leaves the cache as it was plus that folder, and ``resume=True`` picks the
work up from it. The cache itself is only replaced, atomically, at the very end; a successful
run also removes the temporary files that killed runs left next to it.

Runs may share a cache: a run holds a lock on its (cache, genre) for its whole length (a second
run of the same genre is refused at once) and the cache's own lock while it writes, re-reading
the cache first, so runs that add different genres at the same time all keep their genre.
The locks are ``flock`` locks on hidden ``.<cache>[.<genre>].lock`` files, released when a
run ends, however it ends.

Every chunk of numbers carries a Fletcher-32 checksum and the phrases are gzip streams (with
their own check), so a flipped bit there is found when it is read; :class:`midigenre.dataset.PhraseCache`
checks the tables' shapes and cross-references when a genre is opened.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from midigenre.dataset import KIND, PhraseCache, read_cache_header
from midigenre.pianoroll import DROP_REASONS, RollSettings, Unusable, phrases_of_file
from shared.errors import GenreError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
CHUNK_PHRASES = 16
COMPRESSION = dict(compression="gzip", compression_opts=4)
CHECKSUM = dict(fletcher32=True)  # every chunk carries a checksum: a flipped bit is an error, not a wrong note
_JOURNAL_EVERY_FILES = 500
_JOURNAL_EVERY_SECONDS = 20.0


# ----------------------------------------------------------------------------- sources


def find_midi_files(sources: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """Expand files, folders (recursively) and glob patterns into ``(absolute path, name)`` pairs.

    ``name`` is the path relative to the folder given (or the file name), used in reports.
    Folders and globs yield files with a MIDI suffix (.mid .midi .kar .smf, any case); a file
    named explicitly is taken whatever its suffix. Duplicated paths are listed once.

    Raises GenreError if a source matches nothing.
    """
    found: dict[Path, str] = {}
    for src in sources:
        src = os.path.expanduser(str(src))
        if any(ch in src for ch in "*?["):
            matches = sorted(glob.glob(src, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file() and Path(m).suffix.lower() in MIDI_SUFFIXES]
            for d in (Path(m) for m in matches if Path(m).is_dir()):
                files += _walk(d)
            if not files:
                raise GenreError(f"no MIDI files match {src}")
            for f in files:
                found.setdefault(f.resolve(), f.name)
        elif os.path.isdir(src):
            root = Path(src).resolve()  # resolve the folder once, not every file (17k lstat calls saved)
            files = _walk(root)
            if not files:
                raise GenreError(f"no MIDI files (.mid, .midi, .kar, .smf) under {src}")
            for f in files:
                found.setdefault(f, f.relative_to(root).as_posix())
        elif os.path.lexists(src):
            found.setdefault(Path(src).resolve(), Path(src).name)
        else:
            raise GenreError(f"no such file or folder: {src}")
    return sorted(found.items(), key=lambda kv: str(kv[0]))


def _walk(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        out += [Path(root) / f for f in sorted(files) if Path(f).suffix.lower() in MIDI_SUFFIXES]
    return out


# ----------------------------------------------------------------------------- per file


@dataclass
class FileResult:
    """What processing one file gave; ``reason`` is empty for a kept file."""

    path: str
    name: str
    sha1: str = ""
    reason: str = ""
    detail: str = ""
    tempo: float = 0.0
    packed: np.ndarray | None = None  # (n, 64*84/8) uint8, np.packbits of the phrases
    index: np.ndarray | None = None  # (n,) int32

    @property
    def n_phrases(self) -> int:
        return 0 if self.index is None else len(self.index)


def process_file(path: str, name: str, settings: RollSettings) -> FileResult:
    """Read one file and return its phrases (bit-packed, cheap to send between processes)."""
    res = FileResult(path=path, name=name)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        res.reason, res.detail = "unreadable", err.strerror or str(err)
        return res
    res.sha1 = hashlib.sha1(data).hexdigest()
    try:
        phrases, index, tempo = phrases_of_file(data, settings)
    except Unusable as err:
        res.reason, res.detail = err.reason, err.detail
        return res
    except Exception as err:  # a parser bug must not end a run over thousands of files
        log.debug("unexpected error on %s", path, exc_info=True)
        res.reason, res.detail = "parse error", f"{type(err).__name__}: {err}"
        return res
    res.tempo = tempo
    res.packed = np.packbits(phrases.reshape(len(phrases), -1), axis=1)
    res.index = index.astype(np.int32)
    return res


def _process_star(args):
    return process_file(*args)


# ----------------------------------------------------------------------------- report


def music_seconds(n_phrases, tempo, settings: RollSettings):
    """Seconds of music in ``n_phrases`` phrases at ``tempo`` BPM (numbers, or arrays of songs)."""
    return np.asarray(n_phrases) * settings.phrase_steps / settings.steps_per_beat * 60.0 / np.asarray(tempo, dtype=np.float64)


@dataclass
class PrepareReport:
    """Counts of one ``prepare`` run (this run's files; resumed work included)."""

    genre: str
    output: Path
    files_found: int = 0
    files_already_done: int = 0  # in the cache already (resume), skipped
    files_resumed: int = 0  # finished by an interrupted run, taken from its journal
    files_read_now: int = 0
    kept: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    phrases: int = 0
    seconds_of_music: float = 0.0
    elapsed: float = 0.0
    workers: int = 1
    shard: str | None = None
    genre_files_total: int = 0
    genre_phrases_total: int = 0

    @property
    def files_read(self) -> int:
        """Files added to the cache by this run (read now or resumed from a journal), kept or dropped."""
        return self.kept + sum(self.dropped.values())

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (label, value) rows, drop reasons in a fixed order."""
        rows = [("files found", f"{self.files_found}" + (f" (shard {self.shard})" if self.shard else ""))]
        if self.files_already_done:
            rows.append(("already in the cache", f"{self.files_already_done}"))
        if self.files_resumed:
            rows.append(("done by the interrupted run", f"{self.files_resumed}"))
        rows += [("files read now", f"{self.files_read_now}"), ("files kept", f"{self.kept}")]
        for reason in DROP_REASONS:
            if self.dropped.get(reason):
                rows.append((f"  dropped: {reason}", f"{self.dropped[reason]}"))
        rate = self.files_read_now / max(self.elapsed, 1e-9)
        rows += [
            ("phrases", f"{self.phrases}"),
            ("hours of music (phrases)", f"{self.seconds_of_music / 3600:.2f}"),
            ("time", f"{self.elapsed:.1f} s ({rate:.0f} files/s, {self.workers} worker{'s' if self.workers > 1 else ''})"),
            (f"'{self.genre}' in cache now", f"{self.genre_files_total} files, {self.genre_phrases_total} phrases"),
        ]
        return rows


# ----------------------------------------------------------------------------- journal


class _Journal:
    """Shards of finished results next to the output, so an interrupted run can resume."""

    def __init__(self, output: Path, genre: str, settings_hash: str):
        self.dir = output.parent / f".{output.name}.{genre}.partial"
        self.settings_hash = settings_hash
        self.genre = genre

    def exists(self) -> bool:
        return self.dir.is_dir()

    def load(self) -> list[FileResult]:
        """Results saved by an earlier run with the same settings; [] if none or if they do not match."""
        meta_path = self.dir / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            self.remove()
            return []
        if meta.get("settings_hash") != self.settings_hash or meta.get("genre") != self.genre:
            log.warning("discarding %s: it was written with other settings", self.dir)
            self.remove()  # never mix its shards with this run's
            return []
        out: list[FileResult] = []
        for shard in sorted(self.dir.glob("shard-*.npz")):
            try:
                out += _read_shard(shard)
            except Exception:  # a shard is written atomically, so this is someone else's file
                log.warning("ignoring unreadable journal shard %s", shard)
        return out

    def start(self) -> None:
        from shared.atomic import write_json

        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / "meta.json", {"settings_hash": self.settings_hash, "genre": self.genre})
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.npz")), default=0)

    def write(self, results: list[FileResult]) -> None:
        if not results:
            return
        from shared.atomic import atomic_path

        with atomic_path(self.dir / f"shard-{self._next:06d}.npz", suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **_shard_arrays(results))
        self._next += 1

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _shard_arrays(results: list[FileResult]) -> dict[str, np.ndarray]:
    kept = [r for r in results if not r.reason]
    width = kept[0].packed.shape[1] if kept else 0
    return {
        "path": np.array([r.path for r in results], dtype=str),
        "name": np.array([r.name for r in results], dtype=str),
        "sha1": np.array([r.sha1 for r in results], dtype=str),
        "reason": np.array([r.reason for r in results], dtype=str),
        "detail": np.array([r.detail for r in results], dtype=str),
        "tempo": np.array([r.tempo for r in results], dtype=np.float64),
        "n": np.array([r.n_phrases for r in results], dtype=np.int64),
        "packed": np.concatenate([r.packed for r in kept]) if kept else np.zeros((0, width), np.uint8),
        "index": np.concatenate([r.index for r in kept]) if kept else np.zeros(0, np.int32),
    }


def _read_shard(path: Path) -> list[FileResult]:
    with np.load(path, allow_pickle=False) as z:
        arr = {k: z[k] for k in z.files}
    out, offset = [], 0
    for i in range(len(arr["path"])):
        r = FileResult(
            path=str(arr["path"][i]), name=str(arr["name"][i]), sha1=str(arr["sha1"][i]),
            reason=str(arr["reason"][i]), detail=str(arr["detail"][i]), tempo=float(arr["tempo"][i]),
        )
        n = int(arr["n"][i])
        if not r.reason:
            r.packed = arr["packed"][offset : offset + n]
            r.index = arr["index"][offset : offset + n].astype(np.int32)
            offset += n
        out.append(r)
    return out


# ----------------------------------------------------------------------------- main entry


def prepared_earlier(cache: str | os.PathLike, genre: str, settings: RollSettings) -> bool:
    """Whether ``cache`` holds ``genre`` prepared with ``settings`` by an earlier run (a training
    or recipe that prepares its folders into it, run again); a cache made with other settings is
    a one-line error. False when there is no such cache or genre yet (prepare it, with ``resume``)."""
    from midigenre.dataset import settings_of

    cache = Path(cache)
    if not cache.is_file():
        return False
    with PhraseCache(cache) as c:
        made, genres = settings_of(c.header), c.genres
    if made != settings:
        if made.to_dict() | {"meter": settings.meter} == settings.to_dict():
            was = f"the meter rule {genre}={made.meter}, not {settings.meter}"
        else:
            was = "other settings (" + ", ".join(f"{k} {v}" for k, v in made.to_dict().items()
                                                 if settings.to_dict().get(k) != v) + ")"
        raise GenreError(f"{cache} was prepared with {was}: read {genre} as it was prepared, or delete the cache to "
                         "prepare the folder again")
    return genre in genres


def prepare(
    sources: Sequence[str | os.PathLike],
    genre: str,
    output: str | os.PathLike,
    settings: RollSettings = RollSettings(),
    *,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    dedupe: bool = True,
    progress: Callable[[FileResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> PrepareReport:
    """Turn MIDI files into the phrases of ``genre`` in the cache ``output``.

    Parameters
    ----------
    sources : files, folders (searched recursively) and glob patterns.
    genre : name of the group the phrases go to; several genres can share one cache.
    output : the ``.h5`` cache; created, or rewritten atomically with the new genre.
    settings : piano-roll settings; must equal the cache's if it already exists.
    workers : at most this many processes parse files (1 = in this process); fewer are
        started for small jobs (see :func:`effective_workers`).
    resume : keep the genre's files already in the cache or in an interrupted run's journal
        and process only the others.
    overwrite : replace the genre if present; if the cache was built with other settings
        (or is not a cache, or is damaged), replace the whole file.
    dedupe : drop files whose bytes equal an earlier file's (reason "duplicate"), so the same
        song cannot land on both sides of a train/test split.
    progress : called with each file's result, in input order.
    on_start : called once with the number of files to process.
    shard : ``(I, N)``: only the files of shard I of N (1 ≤ I ≤ N, see :func:`in_shard`); the
        cache records it for ``merge``.

    Raises GenreError on bad sources, an unwritable output, a conflict with the cache (other
    settings, a damaged cache, the genre there without ``resume``/``overwrite``), or another run
    preparing the same genre into the same cache at this moment.
    """
    from shared.atomic import check_writable_dir

    t0 = time.perf_counter()
    _check_genre_name(genre)
    output = Path(output).expanduser()
    if output.exists() and output.is_dir():
        raise GenreError(f"output {output} is a folder; give a file name such as {output / 'cache.h5'}")
    check_writable_dir(output)
    files = find_midi_files(sources)
    attrs = {"dedupe": bool(dedupe), "collection_files": len(files)}
    if shard is not None:
        i, n = check_shard(shard)
        files = [(p, name) for p, name in files if in_shard(name, i, n)]
        attrs["shard"] = f"{i}/{n}"
    report = PrepareReport(genre=genre, output=output, files_found=len(files))
    report.shard = attrs.get("shard")

    # One run per (cache, genre) at a time; runs of other genres may share the cache: each
    # takes the cache's own lock only to write, and keeps whatever the others wrote meanwhile.
    busy = (f"another prepare run is writing genre '{genre}' into {output} now; "
            "wait for it to finish (its work is not lost), or use another -o")
    with file_lock(_lock_path(output, genre), wait=False, busy_message=busy):
        state = _cache_state(output, genre, settings, resume=resume, overwrite=overwrite)
        done_paths: set[str] = set()
        done_sha1: dict[str, str] = {}
        if state.append:
            done_paths, done_sha1 = _files_in_cache(output, genre)

        journal = _Journal(output, genre, settings.hash())
        previous: list[FileResult] = []
        if journal.exists():
            if resume:
                previous = journal.load()
            else:
                log.warning("discarding the journal of an interrupted run in %s (pass --resume to continue it)", journal.dir)
                journal.remove()
        in_cache = len({str(p) for p, _ in files} & done_paths)
        done_paths |= {r.path for r in previous}
        for r in previous:
            if r.sha1 and not r.reason:
                done_sha1.setdefault(r.sha1, r.name)

        todo = [(str(p), name) for p, name in files if str(p) not in done_paths]
        workers = effective_workers(workers, len(todo))
        report.workers = workers
        report.files_already_done = in_cache
        report.files_resumed = len(files) - len(todo) - in_cache
        journal.start()
        if on_start:
            on_start(len(todo))

        results: list[FileResult] = []
        pending: list[FileResult] = []
        last_flush = time.perf_counter()
        seen = dict(done_sha1)
        try:
            for res in _run(todo, settings, workers):
                if dedupe and not res.reason and res.sha1 in seen:
                    res.reason, res.detail, res.packed, res.index = "duplicate", f"same bytes as {seen[res.sha1]}", None, None
                elif not res.reason:
                    seen[res.sha1] = res.name
                results.append(res)
                pending.append(res)
                if progress:
                    progress(res)
                if len(pending) >= _JOURNAL_EVERY_FILES or time.perf_counter() - last_flush > _JOURNAL_EVERY_SECONDS:
                    journal.write(pending)
                    pending, last_flush = [], time.perf_counter()
        except BaseException:
            journal.write(pending)  # keep what is done for --resume
            raise

        report.files_read_now = len(results)
        all_new = previous + results
        for r in all_new:
            if r.reason:
                report.dropped[r.reason] += 1
            else:
                report.kept += 1
                report.phrases += r.n_phrases
                report.seconds_of_music += float(music_seconds(r.n_phrases, r.tempo, settings))

        try:
            with file_lock(_lock_path(output), wait=True):
                # the cache as it is now: another run may have added its genre while this one worked
                now = _cache_state(output, genre, settings, resume=resume, overwrite=overwrite, quiet=True)
                if now.append != state.append:
                    raise GenreError(f"{output} changed while this run worked; run the same command with --resume")
                try:
                    if now.append:
                        _check_same_shard(output, genre, attrs)
                    totals = _write_genre(output, genre, settings, all_new, now.keep, append=now.append, attrs=attrs)
                except (RuntimeError, OSError) as err:
                    if "copy" not in str(err).lower() or not now.keep:
                        raise
                    # HDF5 walks every object it copies: damage the checks above cannot see
                    raise GenreError(f"{output} is damaged: its other genres cannot be copied "
                                     f"({str(err).splitlines()[0][:120]}); pass --overwrite to replace the whole cache, "
                                     "with --resume to keep this run's work") from None
                _remove_litter(output)
        except BaseException:
            journal.write(pending)
            raise
        journal.remove()
    report.genre_files_total, report.genre_phrases_total = totals
    report.elapsed = time.perf_counter() - t0
    return report


@dataclass
class _CacheState:
    keep: list[str]  # groups of the present cache that the new one keeps
    append: bool  # add to the genre's tables (resume) rather than write them anew


def _cache_state(output: Path, genre: str, settings: RollSettings, *, resume: bool, overwrite: bool,
                 quiet: bool = False) -> _CacheState:
    """What is in the cache now, and may this run write into it? Raises GenreError if not."""
    if not output.exists():
        return _CacheState([], False)
    try:
        header = read_cache_header(output)
    except GenreError as err:
        if not overwrite:
            raise GenreError(f"{err}; pass --overwrite to replace it") from None
        return _CacheState([], False)
    if header.settings_hash != settings.hash():
        if not overwrite:
            raise GenreError(
                f"{output} was prepared with other settings ({_settings_diff(header.settings, settings.to_dict())}); "
                "use another output file, the same settings, or --overwrite to replace the whole cache"
            )
        if header.groups and not quiet:
            log.warning("replacing %s: its genres %s were prepared with other settings", output, ", ".join(header.groups))
        return _CacheState([], False)
    genre_there = genre in header.groups
    if genre_there and not (resume or overwrite):
        raise GenreError(
            f"genre '{genre}' is already in {output}: pass --resume to add only new files, or --overwrite to replace it"
        )
    append = genre_there and resume and not overwrite
    keep = [g for g in header.groups if g != genre or append]
    # never carry a damaged genre over into the new file
    try:
        with PhraseCache(output) as c:
            for g in keep:
                c.check(g)
    except GenreError as err:
        if not overwrite:
            raise GenreError(f"{err} (or pass --overwrite to replace the whole cache)") from None
        if not quiet:
            log.warning("replacing the whole of %s: %s", output, err)
        return _CacheState([], False)
    return _CacheState([f"genres/{g}" for g in keep], append)


def _lock_path(output: Path, genre: str | None = None) -> Path:
    return output.parent / (f".{output.name}.{genre}.lock" if genre else f".{output.name}.lock")


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool, busy_message: str = ""):
    """Hold an exclusive advisory lock (``flock``) on the file ``path``; removed on release.

    ``wait=False`` raises GenreError(``busy_message``) at once if another process holds it.
    A holder killed with ``kill -9`` releases it with its death; its empty file is reused.
    Where ``flock`` does not exist (Windows) or the file system refuses it, runs are not
    protected from each other (a warning says so).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise GenreError(busy_message or f"{path} is locked by another process") from None
        except OSError as err:
            os.close(fd)
            log.warning("cannot lock %s (%s): concurrent runs are not protected", path, err.strerror or err)
            yield
            return
        try:  # the holder we waited for may have removed the file: lock the one that is there now
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def _remove_litter(output: Path) -> None:
    """Remove temporary files of this cache left by killed runs (call while holding its lock)."""
    for tmp in output.parent.glob(f".{glob.escape(output.name)}.*.tmp.h5"):
        try:
            tmp.unlink()
        except OSError:
            pass


def _check_genre_name(genre: str) -> None:
    if not genre or "/" in genre or genre.startswith(".") or genre != genre.strip():
        raise GenreError(f"invalid genre name {genre!r}: use a plain word such as 'jazz'")


def _settings_diff(old: dict, new: dict) -> str:
    diffs = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(diffs) or "different settings hash"


#: Below this many files per extra process a pool costs more (start-up, passing results) than it saves.
MIN_FILES_PER_WORKER = 200


def effective_workers(requested: int, n_files: int) -> int:
    """Processes worth starting for ``n_files``: at most ``requested``, one per MIN_FILES_PER_WORKER files."""
    return max(1, min(requested, n_files // MIN_FILES_PER_WORKER))


def _run(todo: list[tuple[str, str]], settings: RollSettings, workers: int) -> Iterable[FileResult]:
    if workers <= 1 or len(todo) < 2:
        for path, name in todo:
            yield process_file(path, name, settings)
        return
    # fork is cheapest where available (the parent holds no threads or open HDF5 files here)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    ctx = multiprocessing.get_context(method)
    chunk = max(1, min(32, len(todo) // (workers * 8)))
    pool = ctx.Pool(workers, initializer=_ignore_sigint)  # Ctrl-C is the parent's to handle
    try:
        yield from pool.imap(_process_star, ((p, n, settings) for p, n in todo), chunksize=chunk)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _files_in_cache(output: Path, genre: str) -> tuple[set[str], dict[str, str]]:
    with PhraseCache(output) as c:
        files, dropped = c.files(genre), c.dropped(genre)
    paths = set(files["path"]) | set(dropped["path"])
    sha1 = dict(zip(files["sha1"], files["name"]))
    return paths, sha1


def check_shard(shard) -> tuple[int, int]:
    """``(I, N)`` from ``"I/N"`` or a pair; GenreError unless 1 ≤ I ≤ N."""
    try:
        i, n = (int(x) for x in (shard.split("/") if isinstance(shard, str) else shard))
    except (TypeError, ValueError):
        raise GenreError(f"--shard {shard}: write I/N, e.g. 2/4 for the second of four shards") from None
    if not 1 <= i <= n:
        raise GenreError(f"--shard {i}/{n}: I must be between 1 and N")
    return i, n


def in_shard(name: str, i: int, n: int) -> bool:
    """File ``name`` (its path relative to the source folder) belongs to shard ``i`` of ``n``."""
    return int(hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:12], 16) % n == i - 1


def _check_same_shard(output: Path, genre: str, attrs: dict) -> None:
    import h5py

    with h5py.File(output, "r") as h5:
        there = h5[f"genres/{genre}"].attrs.get("shard")
    if (str(there) if there is not None else None) != attrs.get("shard"):
        raise GenreError(f"'{genre}' in {output} holds shard {there or 'none (all files)'}, not "
                         f"{attrs.get('shard') or 'all files'}; use the same --shard to resume it")


def _write_genre(
    output: Path, genre: str, settings: RollSettings, results: list[FileResult], keep: list[str], append: bool,
    attrs: dict | None = None,
) -> tuple[int, int]:
    """Write the cache with ``genre`` (appended to or created) and the ``keep`` groups copied over."""
    from shared.cache import rewrite

    with rewrite(output, kind=KIND, settings=settings.to_dict(), settings_hash=settings.hash(), keep=keep) as h5:
        return write_genre_group(h5, genre, settings, results, append=append, attrs=attrs)


def write_genre_group(h5, genre: str, settings: RollSettings, results: list[FileResult], *, append: bool = False,
                      attrs: dict | None = None) -> tuple[int, int]:
    """Write (or, ``append``, extend) the tables of ``genre`` in the open cache ``h5`` from the
    results in order: kept files with their phrases, dropped files with their reasons. Returns
    the genre's files and phrases."""
    import h5py

    kept = [r for r in results if not r.reason]
    dropped = [r for r in results if r.reason]
    steps, pitches = settings.phrase_steps, settings.n_pitches
    str_dt = h5py.string_dtype()

    name = f"genres/{genre}"
    if append:
        g = h5[name]
    else:
        g = h5.create_group(name)
        g.create_dataset(
            "phrases", shape=(0, steps, pitches), maxshape=(None, steps, pitches), dtype=bool,
            chunks=(CHUNK_PHRASES, steps, pitches), **COMPRESSION, **CHECKSUM,
        )
        for key in ("phrase_file", "phrase_index"):
            g.create_dataset(key, shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(4096,), **CHECKSUM)
        for key, dt in [("path", str_dt), ("name", str_dt), ("sha1", str_dt), ("tempo", np.float32),
                        ("first_phrase", np.int32), ("n_phrases", np.int32)]:
            checksum = CHECKSUM if dt is not str_dt else {}  # HDF5 filters cannot take variable-length strings
            g.create_dataset(f"files/{key}", shape=(0,), maxshape=(None,), dtype=dt, chunks=(1024,), **checksum)
        for key in ("path", "name", "reason", "detail"):
            g.create_dataset(f"dropped/{key}", shape=(0,), maxshape=(None,), dtype=str_dt, chunks=(1024,))

    n0, f0 = len(g["phrases"]), len(g["files/path"])
    counts = np.array([r.n_phrases for r in kept], dtype=np.int64)
    n_new = int(counts.sum())
    first = n0 + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if kept else np.zeros(0, np.int64)
    _append(g["files/path"], [r.path for r in kept])
    _append(g["files/name"], [r.name for r in kept])
    _append(g["files/sha1"], [r.sha1 for r in kept])
    _append(g["files/tempo"], np.array([r.tempo for r in kept], dtype=np.float32))
    _append(g["files/first_phrase"], first.astype(np.int32))
    _append(g["files/n_phrases"], counts.astype(np.int32))
    _append(g["phrase_file"], np.repeat(np.arange(f0, f0 + len(kept), dtype=np.int32), counts))
    _append(g["phrase_index"], np.concatenate([r.index for r in kept]) if kept else np.zeros(0, np.int32))
    for key in ("path", "name", "reason", "detail"):
        _append(g[f"dropped/{key}"], [getattr(r, key) for r in dropped])

    ds = g["phrases"]
    ds.resize(n0 + n_new, axis=0)
    # Unpack and write in blocks of whole chunks: bounded memory, aligned chunk writes.
    block = CHUNK_PHRASES * 256
    buf, in_buf, pos = [], 0, n0
    for r in kept:
        buf.append(r.packed)
        in_buf += len(r.packed)
        if in_buf >= block:
            pos = _flush(ds, buf, pos, steps, pitches)
            buf, in_buf = [], 0
    _flush(ds, buf, pos, steps, pitches)
    g.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    for key, value in (attrs or {}).items():
        g.attrs[key] = value
    return len(g["files/path"]), len(ds)


def _flush(ds, buf: list[np.ndarray], pos: int, steps: int, pitches: int) -> int:
    if not buf:
        return pos
    packed = np.concatenate(buf)
    rolls = np.unpackbits(packed, axis=1, count=steps * pitches).view(bool).reshape(-1, steps, pitches)
    ds[pos : pos + len(rolls)] = rolls
    return pos + len(rolls)


def _append(ds, values) -> None:
    values = list(values) if not isinstance(values, np.ndarray) else values
    if len(values) == 0:
        return
    n = len(ds)
    ds.resize(n + len(values), axis=0)
    ds[n:] = values
