"""A folder per genre (``ROOT/<genre>/**/<file>.<ext>``), or the clips a manifest names.

The manifest is what ``genre audio render-dataset`` writes next to its clips
(``ROOT/manifest.json``); its format — reader and writer — is defined here and nowhere else::

    {"format": 1, "kind": "rendered-audio", <fields of the run: source, seconds, seed, ...>,
     "clips": [{"path": "<genre>/<file>.wav", "genre": ..., "song": ..., "song_start": ..., "split": ...}, ...]}

A clip's ``path`` is relative to the manifest's folder; ``song`` is the group that keeps all clips
of one source song on one side of a split; ``split`` may be absent (the folder is then split by
song with the seeded hash of :mod:`audiogenre.datasets.items`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from audiogenre.datasets.items import AudioItem, split_name, walk_audio
from shared.errors import GenreError

MANIFEST_NAME = "manifest.json"
MANIFEST_KIND = "rendered-audio"
MANIFEST_FORMAT = 1

Skips = list[tuple[str, str | None]]  # (reason, genre or None) of every file left out


def list_folder(root: Path) -> tuple[list[AudioItem], Skips]:
    """The items of a folder per genre, or of the manifest in ``root`` when there is one."""
    if (root / MANIFEST_NAME).is_file():
        return list_manifest(root)
    items, skips = [], []
    for p in walk_audio(root):
        rel = p.relative_to(root)
        if len(rel.parts) < 2:
            skips.append(("not in a genre folder", None))
            continue
        items.append(AudioItem(path=p, genre=rel.parts[0], split=None, group=rel.with_suffix("").as_posix()))
    return items, skips


# ----------------------------------------------------------------------------- manifest


def manifest_clip(path: str, genre: str, song: str, song_start: float, split: str | None) -> dict:
    """One entry of a manifest's ``clips``: ``path`` relative to the manifest's folder, ``song``
    the source song (the group), ``song_start`` where the clip begins in the song (seconds)."""
    clip = {"path": path, "genre": genre, "song": song, "song_start": song_start}
    if split is not None:
        clip["split"] = split
    return clip


def write_manifest(folder: str | os.PathLike, clips: list[dict], **fields) -> dict:
    """Write ``folder/manifest.json`` atomically: format and kind, then ``fields`` (what made the
    clips: source, seconds, seed, ...), then ``clips`` (see :func:`manifest_clip`). Returns it."""
    from shared.atomic import write_json

    manifest = {"format": MANIFEST_FORMAT, "kind": MANIFEST_KIND, **fields, "clips": clips}
    write_json(Path(folder) / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of ``folder``, checked: its kind, a clips list, a format this version reads."""
    mpath = Path(folder) / MANIFEST_NAME
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
    return manifest


def list_manifest(root: Path) -> tuple[list[AudioItem], Skips]:
    """The clips named by ``root/manifest.json`` (files on disk it does not name are counted, not used)."""
    mpath = root / MANIFEST_NAME
    manifest = read_manifest(root)
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
        # a clip is a whole file: its "song_start" is where the crop begins in the source song, not in the file
        items.append(AudioItem(path=p, genre=genre, split=split_name(clip.get("split"), f"clip {n} of {mpath}"),
                               group=str(clip.get("song") or rel.with_suffix("").as_posix())))
    skips += [("not in manifest", None) for p in walk_audio(root) if p.resolve() not in listed]
    return items, skips
