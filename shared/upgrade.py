"""Rewrite model folders of the old format 1 into the registry's format 2, tensors unchanged.

Format 1 (genre-transfer 0.1.0, ``shared/checkpoint.py``) kept each kind's description in its
own keys: a CycleGAN its architecture under ``model`` and its piano-roll settings under
``roll_settings``; a genre classifier its whole training config under ``config``; an audio
classifier ``backend``, ``head`` and ``preprocess``. Format 2 (:mod:`shared.registry`) has
``kind_version``, ``config`` (the kind's config dataclass) and ``settings`` (the data settings)
for every kind, the rest kept beside them. The weights file is rewritten with the very same
tensors (names, dtypes, values), and each upgraded folder is loaded back through the registry
and its tensors compared bit for bit before :func:`upgrade_folder` returns.

The command is ``genre model FOLDER --upgrade [--encoder DIR] [--dry-run]``; this module
prints nothing and raises one-line :class:`GenreError` s.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path

from shared.errors import GenreError

COMMON = ("format", "kind", "package_version", "torch_version", "created")


@dataclasses.dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade_folder` did to one folder.

    ``action`` is ``"already"`` (format 2 already: nothing written), ``"dry-run"`` (nothing
    written; ``meta`` is the ``model.json`` it would write) or ``"upgraded"``.
    """

    folder: Path
    action: str
    kind: str | None = None
    from_format: int | None = None
    to_format: int | None = None
    tensors: int = 0
    values: int = 0
    check: str = ""  # "loads", or why the rebuilt model was not loaded here
    meta: dict | None = None

    @property
    def line(self) -> str:
        """A one-line account of what was done."""
        if self.action == "already":
            return f"{self.folder}: already format {self.to_format}"
        if self.action == "dry-run":
            return f"{self.folder}: would be upgraded (dry run)"
        return (f"{self.folder}: {self.kind} format {self.from_format} → {self.to_format}; {self.tensors} tensors "
                f"({self.values:,} values) bit-identical; {self.check}")


def upgrade_meta(old: dict) -> tuple[str, dict, dict, dict]:
    """``(kind, config, settings, extra)`` of format 2 for a format-1 ``model.json``."""
    kind = old.get("kind")
    rest = {k: v for k, v in old.items() if k not in COMMON}
    if kind == "cyclegan":
        config = rest.pop("model")
        settings = rest.pop("roll_settings")
    elif kind == "genre-classifier":
        train = rest.pop("config")
        config = {"channels": list(train.get("channels", (64, 128, 256, 512)))}
        settings = rest.pop("roll_settings")
        rest["train"] = train
    elif kind == "audio-classifier":
        backend, head, settings = rest["backend"], rest.pop("head"), rest.pop("preprocess")
        if backend.get("trainable"):
            backend_config = dict(backend["config"])
            segment = (rest.get("train") or {}).get("segment") or settings.get("seconds")
        else:
            backend_config = {k: backend[k] for k in ("encoder", "layers", "pooling")}
            segment = None
        config = {"backend": backend["type"], "backend_config": backend_config, "head": dict(head),
                  "segment_seconds": float(segment) if segment else None}
    else:
        raise GenreError(f"unknown model kind {kind!r} in a format-1 model.json")
    return kind, config, settings, rest


def _read_old(folder: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    from shared.registry import read_meta_file

    if not (folder / "model.json").is_file():
        raise GenreError(f"{folder} is not a model folder (no model.json)")
    meta = read_meta_file(folder / "model.json")
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except Exception as err:  # noqa: BLE001 - any damage: one line
        raise GenreError(f"cannot read {folder / 'model.safetensors'} "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    return meta, tensors


def _raw(t):
    """The bytes of a tensor (bit-identical ⇔ equal: NaN payloads and -0.0 included)."""
    import torch

    return t.contiguous().reshape(-1).view(torch.uint8)


def upgrade_folder(folder: str | Path, *, encoder: str | None = None, dry_run: bool = False) -> Upgrade:
    """Upgrade one model folder of format 1 in place (a format-2 folder is left as it is).

    ``encoder`` is where the wav2vec2 weights of an audio classifier are now, for the check that
    the upgraded folder loads; ``dry_run`` writes nothing and returns the new ``model.json``.
    """
    import torch
    from safetensors.torch import load_file

    from shared.config import from_dict, to_dict
    from shared.registry import FORMAT, get_kind, load_model, save_model
    from shared.version import __version__

    folder = Path(folder)
    old, tensors = _read_old(folder)
    fmt = old.get("format", 0)
    if fmt == FORMAT:
        return Upgrade(folder, "already", kind=old.get("kind"), from_format=fmt, to_format=FORMAT)
    if fmt != 1:
        raise GenreError(f"{folder}: format {fmt!r} is not one that can be upgraded (1 → {FORMAT})")
    try:
        kind, config, settings, extra = upgrade_meta(old)
    except (KeyError, TypeError, AttributeError) as err:
        raise GenreError(f"{folder / 'model.json'} does not describe a format-1 {old.get('kind', '?')} model "
                         f"({type(err).__name__}: {err})") from None
    spec = get_kind(kind)
    cfg = from_dict(spec.config, config, what=f"settings of the upgraded {folder}")
    keep = {k: old[k] for k in ("package_version", "torch_version", "created") if k in old}
    upgraded = {"from_format": fmt, "package_version": __version__,
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if dry_run:
        meta = {"format": FORMAT, "kind": kind, "kind_version": spec.version, "config": to_dict(cfg),
                "settings": settings, **extra, **keep, "upgraded": upgraded}
        return Upgrade(folder, "dry-run", kind=kind, from_format=fmt, to_format=FORMAT, tensors=len(tensors),
                       values=sum(t.numel() for t in tensors.values()), meta=meta)
    save_model(folder, None, kind, cfg, settings=settings, tensors=tensors, **extra, **keep, upgraded=upgraded)

    # the same tensors, bit for bit, and a model the registry rebuilds
    again = load_file(str(folder / "model.safetensors"))
    if sorted(again) != sorted(tensors):
        raise GenreError(f"{folder}: the rewritten weights have other names")
    for name, t in tensors.items():
        u = again[name]
        if u.dtype != t.dtype or u.shape != t.shape or not torch.equal(_raw(u), _raw(t)):
            raise GenreError(f"{folder}: tensor {name} changed while upgrading")
    try:
        load_model(folder, kind, **({"encoder": encoder} if kind == "audio-classifier" else {}))
        check = "loads"
    except GenreError as err:
        if kind == "audio-classifier" and config["backend"] == "wav2vec2":
            check = f"not loaded here ({err}); pass --encoder to check it"
        else:
            raise
    return Upgrade(folder, "upgraded", kind=kind, from_format=fmt, to_format=FORMAT, tensors=len(tensors),
                   values=sum(t.numel() for t in tensors.values()), check=check)
