"""Rewrite model folders of the old format 1 into the registry's format 2, tensors unchanged.

    python scripts/upgrade_models.py data/models/jazz-classical runs/clf [--encoder DIR] [--dry-run]

Format 1 (genre-transfer 0.1.0, ``shared/checkpoint.py``) kept each kind's description in its
own keys: a CycleGAN its architecture under ``model`` and its piano-roll settings under
``roll_settings``; a genre classifier its whole training config under ``config``; an audio
classifier ``backend``, ``head`` and ``preprocess``. Format 2 (:mod:`shared.registry`) has
``kind_version``, ``config`` (the kind's config dataclass) and ``settings`` (the data settings)
for every kind, the rest kept beside them. The weights file is rewritten with the very same
tensors (names, dtypes, values), and each upgraded folder is loaded back through the registry
and its tensors compared bit for bit before the script says it is done.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file from a checkout: import the toolkit next to it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.errors import GenreError  # noqa: E402

COMMON = ("format", "kind", "package_version", "torch_version", "created")


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

    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenreError(f"{folder} is not a model folder (no model.json)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise GenreError(f"{folder / 'model.json'} is not valid JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise GenreError(f"{folder / 'model.json'} is not a model description")
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except Exception as err:  # noqa: BLE001 - any damage: one line
        raise GenreError(f"cannot read {folder / 'model.safetensors'} ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    return meta, tensors


def _raw(t):
    """The bytes of a tensor (bit-identical ⇔ equal: NaN payloads and -0.0 included)."""
    import torch

    return t.contiguous().reshape(-1).view(torch.uint8)


def upgrade_folder(folder: str | Path, *, encoder: str | None = None, dry_run: bool = False) -> str:
    """Upgrade one folder in place; returns a one-line account of what was done."""
    import torch
    from safetensors.torch import load_file

    from shared.config import from_dict
    from shared.registry import FORMAT, get_kind, load_model, save_model
    from shared.version import __version__

    folder = Path(folder)
    old, tensors = _read_old(folder)
    fmt = old.get("format", 0)
    if fmt == FORMAT:
        return f"{folder}: already format {FORMAT}"
    if fmt != 1:
        raise GenreError(f"{folder}: format {fmt!r} is not one this script upgrades (1 → {FORMAT})")
    kind, config, settings, extra = upgrade_meta(old)
    spec = get_kind(kind)
    cfg = from_dict(spec.config, config, what=f"settings of the upgraded {folder}")
    keep = {k: old[k] for k in ("package_version", "torch_version", "created") if k in old}
    upgraded = {"from_format": fmt, "package_version": __version__,
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if dry_run:
        print(json.dumps({"kind": kind, "config": config, "settings": settings, **extra, **keep, "upgraded": upgraded},
                         indent=2)[:4000])
        return f"{folder}: would be upgraded (dry run)"
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
        built = "loads"
    except GenreError as err:
        if kind == "audio-classifier" and config["backend"] == "wav2vec2":
            built = f"not loaded here ({err}); pass --encoder to check it"
        else:
            raise
    n = sum(t.numel() for t in tensors.values())
    return f"{folder}: {kind} format {fmt} → {FORMAT}; {len(tensors)} tensors ({n:,} values) bit-identical; {built}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--encoder", help="where the wav2vec2 weights of an audio classifier are now (for the check)")
    ap.add_argument("--dry-run", action="store_true", help="print the new model.json, write nothing")
    args = ap.parse_args(argv)
    failed = 0
    for folder in args.folders:
        try:
            print(upgrade_folder(folder, encoder=args.encoder, dry_run=args.dry_run))
        except GenreError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
