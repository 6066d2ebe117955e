"""One source of truth for settings: frozen dataclasses, read from and written to plain dicts.

Every job (training a CycleGAN, a classifier, an audio head…) has one frozen dataclass whose
field defaults are the reference values and whose ``metadata["help"]`` is the help text (declare
fields with :func:`setting`); the CLI builds its options from those fields
(``cli/options.py``), run folders write the dataclass as ``config.json`` and model files keep
it in ``model.json``, so a value is typed once.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

from shared.errors import GenreError

C = TypeVar("C")


def setting(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field with its help text. ``cli`` holds hints for the command-line option:
    ``choices``, ``min``/``max`` (``min_open``), ``option`` (its declaration, e.g. "--sn/--no-sn"),
    ``cli=False`` (a config-file setting only)."""
    metadata = {"help": help, **cli}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def to_dict(cfg: Any) -> dict:
    """A dataclass as a JSON-ready dict (tuples become lists)."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _field_type(cls, f: dataclasses.Field):
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolved forward references: fall back to the annotation text
        hints = {}
    return hints.get(f.name, f.type)


def _convert(name: str, value: Any, kind) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        return _convert(name, value, kinds[0]) if len(kinds) == 1 else value
    if kind in ("int", int):
        kind = int
    elif kind in ("float", float):
        kind = float
    elif kind in ("bool", bool):
        kind = bool
    elif kind in ("str", str):
        kind = str
    if kind is bool:
        if not isinstance(value, bool):
            raise GenreError(f"setting {name} must be true or false, not {value!r}")
        return value
    if kind in (int, float, str):
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise GenreError(f"setting {name} must be a whole number, not {value!r}")
        try:
            return kind(value)  # YAML reads "2e-4" as a string
        except (TypeError, ValueError):
            raise GenreError(f"setting {name} must be a {kind.__name__}, not {value!r}") from None
    if origin is tuple or kind is tuple or kind == "tuple":
        if not isinstance(value, (list, tuple)):
            raise GenreError(f"setting {name} must be a list, not {value!r}")
        return tuple(value)
    if origin is dict or kind is dict or kind == "dict":
        if not isinstance(value, dict):
            raise GenreError(f"setting {name} must be a mapping, not {value!r}")
    return value


def from_dict(cls: type[C], d: dict, *, what: str = "settings") -> C:
    """Build ``cls`` from a dict: unknown keys are refused, values converted to the field types,
    missing keys take the defaults."""
    if not isinstance(d, dict):
        raise GenreError(f"{what} must be a mapping, not {type(d).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise GenreError(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values = {k: _convert(k, v, _field_type(cls, known[k])) for k, v in d.items()}
    try:
        return cls(**values)
    except TypeError as err:
        raise GenreError(f"bad {what}: {err}") from None


def load_config_file(path: str | os.PathLike) -> dict:
    """Settings from a YAML or JSON file (a mapping of field names to values)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenreError(f"no such config file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GenreError(f"cannot read config file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise GenreError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GenreError(f"{path} must hold a mapping of settings, e.g. 'epochs: 20'")
    return data


def merge(cls: type[C], *, file: str | os.PathLike | None = None, given: dict | None = None,
          base: dict | None = None, what: str = "settings") -> C:
    """``base`` (e.g. a resumed run's settings), then a config file, then options given on the
    command line (``None`` = not given) — later wins."""
    d = dict(base or {})
    if file:
        d.update(load_config_file(file))
    d.update({k: v for k, v in (given or {}).items() if v is not None})
    return from_dict(cls, d, what=what)
