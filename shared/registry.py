"""One model registry and one model file format, for every model of the toolkit.

A model *kind* (``"cyclegan"``, ``"genre-classifier"``, ``"audio-classifier"``, …) registers
its name, its config dataclass, a builder and a version::

    @register("genre-classifier", GenreClassifierConfig, version=1)
    def _build(config: GenreClassifierConfig, meta: dict, **options) -> nn.Module:
        return GenreClassifier(len(meta["genres"]), config.channels)

The kinds: ``cyclegan`` (:mod:`midigenre.models`: the two generators, ``save_generators``),
``multi-genre`` (:mod:`midigenre.stargan`: one conditioned generator and its discriminator with
the genre head, ``save_multi_genre``),
``genre-classifier`` (:mod:`midigenre.classifier`: ``save_classifier``, ``Classifier.load``),
``audio-classifier`` (:mod:`audiogenre.models`: every audio backend with its head,
``AudioClassifier.save/load``).

A model folder holds two files, written atomically (the JSON last, so a folder whose JSON is
present has complete weights):

``model.safetensors``
    the module's ``state_dict()`` — tensors only, no pickle, safe to load from anywhere (a
    module may keep weights that live elsewhere out: ``weights_to_save`` /
    ``load_saved_weights``, e.g. a frozen wav2vec2 encoder).
``model.json``
    ``{"format": 2, "kind": …, "kind_version": …, "config": {…}, "settings": {…},
    "package_version": …, "torch_version": …, "created": …, …}`` plus whatever the kind
    keeps beside its config (genre names, the data it saw, metrics). Paths in it (the training
    caches, the runs a model was chosen from) are relative to the folder the command ran in,
    never absolute (:func:`portable_path`); a run's own ``config.json`` keeps them absolute.

:func:`load_model` reads the JSON, checks format and version (one-line errors), imports the
module that registers the kind (see :data:`KIND_MODULES`; the registry itself imports no
model code), rebuilds the module from the config through the builder, loads the weights
strictly and returns ``(module, meta)`` in eval mode. Damaged, foreign or future files are
one-line :class:`GenreError` s; folders of the old format 1 are rewritten by
``genre model FOLDER --upgrade`` (:mod:`shared.upgrade`).

A model is named by its folder (or a file in it) or, for the shipped models, by its name
(``jazz-classical-melody``, ``audio-rendered``): :func:`model_folder`. The shipped models are
``data/models`` of a source checkout, installed as the package ``genre_models``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from shared.atomic import atomic_path, write_json
from shared.config import from_dict, to_dict
from shared.errors import GenreError
from shared.version import __version__

FORMAT = 2
WEIGHTS = "model.safetensors"
META = "model.json"

#: The module that registers each kind, imported on demand by :func:`load_model`.
KIND_MODULES: dict[str, str] = {
    "cyclegan": "midigenre.models",
    "multi-genre": "midigenre.stargan",
    "genre-classifier": "midigenre.classifier",
    "audio-classifier": "audiogenre.models",
}


@dataclass(frozen=True)
class ModelKind:
    """A registered model kind."""

    name: str
    config: type
    build: Callable[..., Any]  # (config, meta, **options) -> torch.nn.Module
    version: int = 1
    upgrade: Callable[[dict], dict] | None = None  # meta of an older version -> meta of this one


_KINDS: dict[str, ModelKind] = {}


def register(name: str, config: type, *, version: int = 1, upgrade: Callable[[dict], dict] | None = None):
    """Decorator: register ``build(config, meta, **options) -> nn.Module`` as model kind ``name``."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"the config of model kind {name!r} must be a dataclass")

    def deco(build):
        _KINDS[name] = ModelKind(name, config, build, version, upgrade)
        return build

    return deco


def kinds() -> list[str]:
    """Every kind the toolkit knows (registered or registrable)."""
    return sorted(set(_KINDS) | set(KIND_MODULES))


def get_kind(name: str) -> ModelKind:
    if name not in _KINDS and name in KIND_MODULES:
        importlib.import_module(KIND_MODULES[name])
    if name not in _KINDS:
        raise GenreError(f"unknown model kind {name!r} (a newer version of the toolkit?); known: {', '.join(kinds())}")
    return _KINDS[name]


def save_model(folder: str | os.PathLike, module, kind: str, config: Any, *, settings: dict | None = None,
               tensors: dict | None = None, **extra) -> Path:
    """Write ``module``'s weights and its description into ``folder``; return the folder.

    ``config`` is the kind's config dataclass; ``settings`` the data settings the model depends
    on (e.g. piano-roll or preprocessing settings); ``extra`` any JSON-ready keys to keep
    (genres, data, metrics, training settings). ``tensors`` replaces ``module.state_dict()``
    when only part of a module is the model (e.g. the generators of a CycleGAN).
    """
    import torch
    from safetensors.torch import save_file

    spec = get_kind(kind)
    if not isinstance(config, spec.config):
        raise TypeError(f"model kind {kind!r} takes a {spec.config.__name__}, not a {type(config).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tensors is not None:
        state = tensors
    elif hasattr(module, "weights_to_save"):  # e.g. a frozen pretrained encoder is not copied into the file
        state = module.weights_to_save()
    else:
        state = module.state_dict()
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise GenreError(f"refusing to save a model with non-finite weights ({name}): training diverged")
    with atomic_path(folder / WEIGHTS, suffix=".safetensors") as tmp:
        save_file(state, str(tmp))
    extra = portable_paths(extra)
    meta = {
        "format": FORMAT,
        "kind": kind,
        "kind_version": spec.version,
        "config": to_dict(config),
        "settings": settings or {},
        "package_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    write_json(folder / META, meta)
    return folder


#: Keys under which a model.json names files or folders of the machine a model was made on
#: (the training caches, a dataset, the runs and judge a model was chosen from).
PATH_KEYS = frozenset({"cache", "dataset", "from", "judge", "run", "model"})


def portable_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` as a model.json keeps it: as given when relative, an absolute path relative to
    ``base`` (default: the current folder, where the training or choice ran; ``../`` where it
    lies outside it). A model folder is copied to other machines (data/models, an installed
    package), so it must not carry the training machine's absolute paths; a relative name still
    finds the file from the folder the command ran in."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    base = Path.cwd() if base is None else Path(base)
    try:
        return os.path.relpath(p, base.absolute())
    except ValueError:  # another drive (Windows)
        return p.name


def portable_paths(value: Any, base: str | os.PathLike | None = None) -> Any:
    """A copy of ``value`` (JSON-ready) with every absolute path under a :data:`PATH_KEYS` key
    made portable (:func:`portable_path`)."""
    if isinstance(value, dict):
        return {k: (portable_path(v, base) if k in PATH_KEYS and isinstance(v, str) and os.path.isabs(v)
                    else portable_paths(v, base)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_paths(v, base) for v in value]
    return value


def resave_model(src: str | os.PathLike, dest: str | os.PathLike, *, tensors: dict | None = None, **changes) -> Path:
    """Write the model of ``src`` into ``dest`` (through :func:`save_model`): the same description
    with ``changes`` applied (e.g. ``metrics=…``) and its tensors, or ``tensors`` in their place
    (e.g. cast to float16). The versions and date of the original are kept."""
    meta = read_meta(src)
    folder = model_folder(src)
    if tensors is None:
        tensors = read_weights(folder)
    spec = get_kind(meta["kind"])
    config = from_dict(spec.config, meta.get("config") or {}, what=f"settings in {folder / META}")
    extra = {k: v for k, v in meta.items() if k not in ("format", "kind", "kind_version", "config", "settings")}
    extra.update(changes)
    return save_model(dest, None, meta["kind"], config, settings=meta.get("settings") or {}, tensors=tensors, **extra)


# ---- shipped models ------------------------------------------------------------------------

def shipped_models_dir() -> Path:
    """Where the shipped models are: ``data/models`` of a source checkout, else the installed
    package ``genre_models`` (the same folder, mapped by pyproject.toml's package-dir)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "data" / "models").is_dir():
        return root / "data" / "models"
    try:
        from importlib.resources import files

        return Path(str(files("genre_models")))
    except (ModuleNotFoundError, TypeError):
        return root / "data" / "models"  # not installed: errors name the place it was looked for


def shipped_model(name: str) -> Path:
    """The folder of the shipped model ``name`` (e.g. ``jazz-classical-melody``), present or not."""
    return shipped_models_dir() / name


def shipped_model_names() -> list[str]:
    d = shipped_models_dir()
    return sorted(p.name for p in d.iterdir() if (p / META).is_file()) if d.is_dir() else []


def model_folder(path: str | os.PathLike) -> Path:
    """The model folder ``path`` names: a folder, a file in one, or the name of a shipped model.

    A folder that exists wins over a shipped model of the same name.
    """
    folder = Path(path).expanduser()
    if folder.exists():
        return folder.parent if folder.is_file() else folder
    text = str(path)
    if text and "/" not in text and os.sep not in text and (shipped_model(text) / META).is_file():
        return shipped_model(text)
    names = shipped_model_names()
    if folder.parent == shipped_models_dir():
        raise GenreError(f"the shipped model {folder.name} is not installed (looked in {folder}); "
                         "reinstall genre-transfer or give a model folder")
    raise GenreError(f"no such model: {path}" + (f" (shipped models: {', '.join(names)})" if names else ""))


# ---- reading ---------------------------------------------------------------------------------

def read_meta_file(meta_path: Path) -> dict:
    """A ``model.json`` file as a dict, of any format; an unreadable one is a one-line error."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise GenreError(f"{meta_path} is not valid JSON ({str(err).splitlines()[0]})") from None
    except OSError as err:
        raise GenreError(f"cannot read {meta_path}: {err.strerror or err}") from None
    if not isinstance(meta, dict):
        raise GenreError(f"{meta_path} is not a model description (a JSON object was expected, not {type(meta).__name__})")
    return meta


def read_meta(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None) -> dict:
    """The checked ``model.json`` of a model folder (or of the folder holding a given model file,
    or of a shipped model named by its name)."""
    folder = model_folder(path)
    meta_path = folder / META
    if not meta_path.exists():
        raise GenreError(f"{folder} is not a model folder (no {META}); give a training run folder or a shipped model")
    meta = read_meta_file(meta_path)
    fmt = meta.get("format", 0)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise GenreError(f"{folder} was saved in model format {fmt!r}; this version reads up to {FORMAT}: upgrade the toolkit")
    if fmt < FORMAT:
        raise GenreError(f"{folder} was saved in the old model format {fmt} by genre-transfer "
                         f"{meta.get('package_version', '?')}; upgrade it with `genre model {folder} --upgrade`")
    name = meta.get("kind")
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and name not in wanted:
        raise GenreError(f"{folder} holds a {name or 'unknown'!r} model, not a {' or '.join(map(repr, wanted))} model")
    spec = get_kind(str(name))
    version = meta.get("kind_version", 0)
    if not isinstance(version, int) or version > spec.version:
        raise GenreError(f"{folder} holds a {name} model of version {version!r}; this toolkit reads up to "
                         f"{spec.version}: upgrade the toolkit")
    if version < spec.version:
        if spec.upgrade is None:
            raise GenreError(f"{folder} holds a {name} model of version {version}, which this toolkit no longer reads")
        meta = spec.upgrade(meta)
    return meta


def read_weights(path: str | os.PathLike) -> dict:
    """The checked tensors of a model folder's ``model.safetensors`` (one-line errors when it is
    missing, damaged or holds non-finite values)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = model_folder(path)
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except FileNotFoundError:
        raise GenreError(f"{folder} has {META} but no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise GenreError(f"{folder / WEIGHTS} is damaged ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise GenreError(f"{folder / WEIGHTS} holds non-finite weights ({name}); retrain or re-copy the model")
    return tensors


def load_model(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None, *, device: str = "cpu",
               **options) -> tuple[Any, dict]:
    """Rebuild a saved model: ``(module in eval mode on device, meta)``.

    ``options`` go to the kind's builder (e.g. ``encoder=`` for where wav2vec2 weights are now).
    """
    from shared.runtime import pick_device

    folder = model_folder(path)
    meta = read_meta(folder, kind)
    spec = get_kind(meta["kind"])
    config = from_dict(spec.config, meta.get("config") or {}, what=f"settings in {folder / META}")
    tensors = read_weights(folder)
    try:
        module = spec.build(config, meta, **options)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise GenreError(f"{folder / META} does not describe a {meta['kind']!r} model that this version can build "
                         f"({type(err).__name__}: {err})") from None
    try:
        if hasattr(module, "load_saved_weights"):
            module.load_saved_weights(tensors)
        else:
            module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise GenreError(f"{folder}: the weights do not fit the architecture in {META} "
                         f"({str(err).splitlines()[0]})") from None
    module = module.to(pick_device(device)).eval()
    return module, meta
