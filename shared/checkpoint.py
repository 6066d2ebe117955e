"""Self-describing model files: weights in safetensors plus a JSON sidecar.

A model folder holds ``model.safetensors`` (tensors only: safe to load, no pickle) and
``model.json``::

    {"format": 1, "kind": "cyclegan", "package_version": "…", "torch_version": "…",
     "created": "…", …whatever the model kind needs to rebuild itself (config, labels, metrics)}

Both are written atomically (temporary file, then rename; the JSON last, so a folder whose
JSON is present has complete weights). Loading checks the format and kind and says in one
line what is wrong.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from shared.atomic import atomic_path, write_json
from shared.errors import GenreError
from shared.version import __version__

FORMAT = 1
WEIGHTS = "model.safetensors"
META = "model.json"


def save_model(folder: str | os.PathLike, tensors: dict, meta: dict) -> Path:
    """Write ``tensors`` (name → torch.Tensor) and ``meta`` into ``folder``; return the folder."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(folder / WEIGHTS, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    full = {
        "format": FORMAT,
        "package_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **meta,
    }
    write_json(folder / META, full)
    return folder


def read_meta(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """The sidecar of a model folder (or of the folder holding a given model.json/.safetensors)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    meta_path = folder / META
    if not folder.exists():
        raise GenreError(f"no such model: {folder}")
    if not meta_path.exists():
        raise GenreError(f"{folder} is not a model folder (no {META}); give a training run folder or a shipped model")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise GenreError(f"{meta_path} is not valid JSON ({err})") from None
    if meta.get("format", 0) > FORMAT:
        raise GenreError(f"{folder} was saved in model format {meta.get('format')}; this version reads up to {FORMAT}: upgrade")
    if kind is not None and meta.get("kind") != kind:
        raise GenreError(f"{folder} holds a {meta.get('kind', 'unknown')!r} model, not a {kind!r} model")
    return meta


def load_model(folder: str | os.PathLike, kind: str | None = None) -> tuple[dict, dict]:
    """Return ``(tensors, meta)`` of a model folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(folder, kind)
    folder = Path(folder)
    folder = folder.parent if folder.is_file() else folder
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except FileNotFoundError:
        raise GenreError(f"{folder} has {META} but no {WEIGHTS}") from None
    except (SafetensorError, OSError) as err:
        raise GenreError(f"{folder / WEIGHTS} is damaged ({err})") from None
    return tensors, meta
