"""Join phrase caches prepared apart (``genre midi prepare --shard I/N`` on several machines) into
one: the cache a single run over the whole collection gives.

Every input must have been prepared with the same piano-roll settings (else one GenreError
line). For each genre, the files of all inputs are put in path order, as a single run reads
them; a file found in two inputs is refused (overlapping shards). Duplicate detection is redone
across the inputs: of the files with the same bytes the first in path order keeps its phrases
and the others become drops "duplicate" with the name of that first file, as a single run
would have written (a shard only knew its own files). Drop reasons and provenance (path, name,
content hash, tempo of every file) are kept; the genre's ``merged_from`` attribute lists the
inputs with their shards and counts. The output is written atomically.
"""

from __future__ import annotations

import collections
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from midigenre.dataset import KIND
from midigenre.prepare import FileResult, _settings_diff, write_genre_group
from shared.errors import GenreError

_DUPLICATE = "same bytes as "


@dataclass
class GenreMerge:
    """What merging gave for one genre."""

    genre: str
    inputs: int = 0
    kept: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    phrases: int = 0
    cross_duplicates: int = 0  # files kept by their shard, dropped now: the same bytes sit in another shard
    shards: str = ""  # "1-4/4", or a note on missing shards

    def rows(self) -> list[tuple[str, str]]:
        from midigenre.pianoroll import DROP_REASONS

        rows = [("inputs", f"{self.inputs}" + (f" (shards {self.shards})" if self.shards else "")),
                ("files kept", str(self.kept))]
        rows += [(f"  dropped: {r}", str(self.dropped[r])) for r in DROP_REASONS if self.dropped.get(r)]
        rows += [("  of them across inputs", str(self.cross_duplicates))] if self.cross_duplicates else []
        rows.append(("phrases", str(self.phrases)))
        return rows


def merge_caches(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *, overwrite: bool = False,
                 progress=None, partial: bool = False) -> list[GenreMerge]:
    """Merge the phrase caches ``inputs`` into ``output`` (see the module's description).

    ``overwrite``: replace an existing ``output``. ``progress(stage, done, total)``
    (:mod:`shared.progress`) counts the inputs read. Raises GenreError for caches prepared with
    other settings, a file in two inputs, shards of different collections or numbers of shards,
    an existing output without ``overwrite``, or an output that is one of the inputs; and for an
    incomplete set of shards (shard 2 of 4 missing) unless ``partial``.
    """
    from midigenre.dataset import read_cache_header, settings_of
    from shared.atomic import refuse_overwriting_input
    from shared.cache import rewrite
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    inputs = [Path(p) for p in inputs]
    output = Path(output)
    if not inputs:
        raise GenreError("give the caches to merge")
    refuse_overwriting_input(inputs, output)
    if len({p.resolve() for p in inputs}) != len(inputs):
        raise GenreError("a cache is given twice; give each once")
    if output.exists() and not overwrite:
        raise GenreError(f"{output} exists; pass --overwrite to replace it, or choose another -o")
    if output.is_dir():
        raise GenreError(f"output {output} is a folder; give a file name such as {output / 'all.h5'}")
    headers = [read_cache_header(p) for p in inputs]
    first = headers[0]
    for h in headers[1:]:
        if h.settings_hash != first.settings_hash:
            raise GenreError(f"{h.path} was prepared with other settings than {first.path} "
                             f"({_settings_diff(first.settings, h.settings)}); merge only caches prepared with the same options")
    settings = settings_of(first)
    genres = sorted({g for h in headers for g in h.groups})
    if not genres:
        raise GenreError("the caches hold no genre yet")
    reports = []
    with rewrite(output, kind=KIND, settings=first.settings, settings_hash=first.settings_hash) as h5:
        for genre in genres:
            holders = [p for p, h in zip(inputs, headers) if genre in h.groups]
            results, report, attrs = _merge_genre(genre, holders, report_progress, partial=partial)
            write_genre_group(h5, genre, settings, results, attrs=attrs)
            reports.append(report)
    return reports


def _merge_genre(genre: str, inputs: list[Path], report_progress, *, partial: bool = False
                 ) -> tuple[list[FileResult], GenreMerge, dict]:
    from midigenre.dataset import PhraseCache

    results: list[FileResult] = []
    sha_of_dropped: dict[int, str] = {}  # id(result) of a shard's duplicate → the bytes' hash
    owner: dict[str, Path] = {}
    provenance, shards, collections_seen, dedupe = [], [], set(), True
    report = GenreMerge(genre, inputs=len(inputs))
    for k, path in enumerate(inputs):
        report_progress(f"reading '{genre}'", k, len(inputs))
        with PhraseCache(path) as c:
            files, dropped = c.files(genre), c.dropped(genre)
            group = c._group(genre)
            shard = group.attrs.get("shard")
            dedupe = dedupe and bool(group.attrs.get("dedupe", True))
            if "collection_files" in group.attrs:
                collections_seen.add(int(group.attrs["collection_files"]))
            index = c.phrase_index(genre)
            packed = _packed_phrases(c, genre)
        for p in [*files["path"], *dropped["path"]]:
            if p in owner:
                raise GenreError(f"{p} is in both {owner[p]} and {path}: the caches overlap (the same shard twice?); "
                                 "merge caches of different files")
            owner[p] = path
        sha_by_name = dict(zip(files["name"], files["sha1"]))
        for i in range(len(files["path"])):
            a, n = int(files["first_phrase"][i]), int(files["n_phrases"][i])
            results.append(FileResult(path=str(files["path"][i]), name=str(files["name"][i]), sha1=str(files["sha1"][i]),
                                      tempo=float(files["tempo"][i]), packed=packed[a:a + n], index=index[a:a + n]))
        for i in range(len(dropped["path"])):
            r = FileResult(path=str(dropped["path"][i]), name=str(dropped["name"][i]), reason=str(dropped["reason"][i]),
                           detail=str(dropped["detail"][i]))
            if r.reason == "duplicate" and r.detail.startswith(_DUPLICATE):
                sha = sha_by_name.get(r.detail[len(_DUPLICATE):])
                if sha:
                    sha_of_dropped[id(r)] = sha
            results.append(r)
        shards.append(str(shard) if shard is not None else None)
        provenance.append({"cache": str(path.resolve()), "shard": shards[-1], "files": int(len(files["path"])),
                           "dropped": int(len(dropped["path"])), "phrases": int(len(index))})
    report_progress(f"reading '{genre}'", len(inputs), len(inputs))
    report.shards = _check_shards(genre, shards, collections_seen, partial=partial)

    # path order, as one run reads a collection; then the first of equal files keeps its phrases
    results.sort(key=lambda r: r.path)
    if dedupe:
        seen: dict[str, str] = {}
        for r in results:
            if r.reason and r.reason != "duplicate":
                continue
            sha = r.sha1 if not r.reason else sha_of_dropped.get(id(r))
            if sha is None:
                continue
            if sha not in seen:
                if r.reason:  # the first copy of these bytes was dropped by its shard: cannot happen with path order
                    raise GenreError(f"{r.path} was dropped as a duplicate but no earlier copy is in the caches")
                seen[sha] = r.name
            elif not r.reason:
                r.reason, r.detail, r.packed, r.index = "duplicate", f"{_DUPLICATE}{seen[sha]}", None, None
                report.cross_duplicates += 1
            else:
                r.detail = f"{_DUPLICATE}{seen[sha]}"
    for r in results:
        if r.reason:
            report.dropped[r.reason] += 1
        else:
            report.kept += 1
            report.phrases += r.n_phrases
    attrs = {"dedupe": dedupe, "merged_from": json.dumps(provenance), "merged": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if collections_seen:
        attrs["collection_files"] = max(collections_seen)
    return results, report, attrs


def _packed_phrases(c, genre: str, block: int = 4096) -> np.ndarray:
    """Every phrase of ``genre``, bit-packed as :func:`midigenre.prepare.process_file` gives them."""
    n = c.n_phrases(genre)
    parts = []
    for a in range(0, n, block):
        rolls = c.phrases(genre, slice(a, min(n, a + block)))
        parts.append(np.packbits(rolls.reshape(len(rolls), -1), axis=1))
    width = (c.settings.phrase_steps * c.settings.n_pitches + 7) // 8
    return np.concatenate(parts) if parts else np.zeros((0, width), np.uint8)


def _check_shards(genre: str, shards: list[str | None], collections_seen: set[int], *, partial: bool = False) -> str:
    """The shards' description for the report; GenreError for shards that cannot belong together,
    and for a set with shards missing unless ``partial``."""
    given = [s for s in shards if s]
    if not given:
        return ""
    if len(given) != len(shards):
        raise GenreError(f"'{genre}': some caches are shards (--shard) and some are not; merge shards of one collection")
    pairs = [tuple(int(x) for x in s.split("/")) for s in given]
    ns = {n for _, n in pairs}
    if len(ns) != 1:
        raise GenreError(f"'{genre}': shards of different splits ({', '.join(sorted(set(given)))}); merge shards of one --shard I/N")
    n = ns.pop()
    if len(collections_seen) > 1:
        raise GenreError(f"'{genre}': the shards were cut from collections of {sorted(collections_seen)} files: "
                         "not the same collection")
    have = sorted(i for i, _ in pairs)
    missing = sorted(set(range(1, n + 1)) - set(have))
    if missing and not partial:
        raise GenreError(f"'{genre}': shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {n} "
                         f"{'are' if len(missing) > 1 else 'is'} missing (given {', '.join(map(str, have))}): the result "
                         "would lack their files; give every shard, or pass --partial to merge these alone")
    return f"{', '.join(map(str, have))} of {n}" + (f"; missing {', '.join(map(str, missing))}" if missing else "")
