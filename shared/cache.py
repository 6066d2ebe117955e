"""The HDF5 dataset cache that both paths share.

A cache file is one HDF5 file whose root attributes say what it is:

========================  ===========================================================
``kind``                  what the file holds: ``"midi-phrases"``, ``"audio-embeddings"``
``schema_version``        layout version; a reader refuses a newer one
``settings``              the preprocessing settings as JSON
``settings_hash``         short hash of those settings; files are only mixed when equal
``package_version``       version of the toolkit that wrote the file
``created``               ISO time of the last write
========================  ===========================================================

Writers never modify a cache in place: :func:`rewrite` builds the new file under a temporary
name, copies over the groups that stay, and renames it over the old one only when
everything succeeded, so Ctrl-C or a kill leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from shared.atomic import atomic_path
from shared.errors import GenreError
from shared.version import __version__

SCHEMA_VERSION = 1


class CacheUnreadable(GenreError):
    """The file is missing, is not HDF5, or its root attributes are damaged: nothing in it can be
    trusted (a reader that can rebuild the cache may do so; others report it)."""


@dataclass
class CacheHeader:
    """Root attributes of a cache file."""

    path: Path
    kind: str
    schema_version: int
    settings: dict
    settings_hash: str
    package_version: str
    created: str
    groups: list[str] = field(default_factory=list)


def read_header(path: str | os.PathLike, kind: str | None = None) -> CacheHeader:
    """Read and check a cache's root attributes.

    Raises GenreError with a one-line reason if the file is missing, is not HDF5, is not a
    cache of this toolkit, has another ``kind``, or was written by a newer schema.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise CacheUnreadable(f"no such cache file: {path}")
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            groups = sorted(h5["genres"].keys()) if "genres" in h5 else []
    except (OSError, KeyError, AttributeError, TypeError, ValueError, RuntimeError) as err:  # damaged attributes or groups
        raise CacheUnreadable(f"{path} is not a readable HDF5 file ({_short(err)})") from None
    if "kind" not in attrs or "schema_version" not in attrs:
        raise GenreError(f"{path} is an HDF5 file but not a cache of this toolkit (no kind/schema_version attributes)")
    try:
        settings = json.loads(str(attrs.get("settings", "{}")))
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
        header = CacheHeader(
            path=path,
            kind=str(attrs["kind"]),
            schema_version=int(attrs["schema_version"]),
            settings=settings,
            settings_hash=str(attrs.get("settings_hash", "")),
            package_version=str(attrs.get("package_version", "?")),
            created=str(attrs.get("created", "?")),
            groups=groups,
        )
    except (TypeError, ValueError) as err:
        raise CacheUnreadable(f"{path} has damaged root attributes ({_short(err)}); rebuild the cache") from None
    if kind is not None and header.kind != kind:
        raise GenreError(f"{path} holds {header.kind!r} data, not {kind!r}")
    if header.schema_version > SCHEMA_VERSION:
        raise GenreError(
            f"{path} has cache schema {header.schema_version}, this version reads up to {SCHEMA_VERSION}: upgrade the toolkit"
        )
    return header


def _short(err: Exception) -> str:
    return str(err).split("\n")[0][:160]


@contextlib.contextmanager
def rewrite(
    path: str | os.PathLike,
    *,
    kind: str,
    settings: dict,
    settings_hash: str,
    keep: list[str] = (),
    source: str | os.PathLike | None = None,
) -> Iterator["h5py.File"]:  # noqa: F821
    """Write a new version of a cache atomically.

    Parameters
    ----------
    path : destination file.
    kind, settings, settings_hash : written as root attributes.
    keep : HDF5 paths (e.g. ``"genres/jazz"``) copied from ``source`` before the caller writes.
    source : the current cache to copy ``keep`` from (default: ``path`` itself).

    Yields an open, writable ``h5py.File`` on a temporary file; on normal exit it is closed
    and renamed over ``path``; on any exception it is deleted and ``path`` is untouched.
    """
    import h5py

    source = Path(source) if source is not None else Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as out:
            out.attrs["kind"] = kind
            out.attrs["schema_version"] = SCHEMA_VERSION
            out.attrs["settings"] = json.dumps(settings, sort_keys=True)
            out.attrs["settings_hash"] = settings_hash
            out.attrs["package_version"] = __version__
            out.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            if keep:
                with h5py.File(source, "r") as src:
                    for name in keep:
                        parent = name.rsplit("/", 1)[0] if "/" in name else None
                        dest = out.require_group(parent) if parent else out
                        src.copy(src[name], dest, name=name.rsplit("/", 1)[-1])
            yield out
