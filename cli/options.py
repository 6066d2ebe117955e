"""Command-line options made from the fields of a settings dataclass, so that a default and
its help are written once, in the dataclass (see ``shared.config.setting``)."""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Callable

import click


def _kind(cls, f: dataclasses.Field):
    kind = typing.get_type_hints(cls).get(f.name, f.type)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if args and typing.get_origin(kind) is not dict else kind  # X | None -> X


def _click_type(cls, f: dataclasses.Field):
    m, kind = f.metadata, _kind(cls, f)
    if "choices" in m:
        return click.Choice([str(c) for c in m["choices"]])
    if kind is int:
        return click.IntRange(m.get("min"), m.get("max")) if "min" in m or "max" in m else int
    if kind is float and ("min" in m or "max" in m):
        return click.FloatRange(m.get("min"), m.get("max"), min_open=m.get("min_open", False),
                                max_open=m.get("max_open", False))
    return float if kind is float else str


def _show(value: Any) -> str:
    return "on" if value is True else "off" if value is False else f"{value:g}" if isinstance(value, float) else str(value)


def config_options(cls, *, into: str, only: tuple[str, ...] | None = None, skip: tuple[str, ...] = (),
                   given_only: bool = False, default_text: Callable[[str], str | None] | None = None,
                   prefix: str = ""):
    """Decorator: one option per field of ``cls`` (``--batch-size`` for ``batch_size``; a bool
    field is an on/off switch, a list field a repeatable option), gathered into the dict argument
    ``into`` of the command.

    ``given_only``: every option defaults to None (not given), so a config file or another
    dataclass can fill it; the help still names the default (``default_text(name)`` may
    replace it; "" shows none). Otherwise the field's default is the option's. Fields with ``cli=False`` in
    their metadata are left out unless ``only`` names them. ``prefix`` starts every help text
    (e.g. "With --genre: ").
    """
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip
              and (f.name in only if only is not None else f.metadata.get("cli", True))]

    def deco(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            got = {f.name: kwargs.pop(f.name) for f in fields}
            kwargs[into] = {k: (None if v == () else list(v) if isinstance(v, tuple) else v) for k, v in got.items()}
            return command(*args, **kwargs)

        for f in reversed(fields):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            decl = f.metadata.get("option") or "--" + f.name.replace("_", "-")
            help_text = prefix + f.metadata.get("help", "")
            shown = default_text(f.name) if default_text else None
            if given_only and shown != "":
                help_text += f"  [default: {shown if shown is not None else _show(default)}]"
            is_bool = _kind(cls, f) is bool
            if is_bool and "/" not in decl:
                decl = f"{decl}/--no-{decl[2:]}"
            kw: dict = {"help": help_text}
            if given_only:
                kw["default"] = None
            else:
                kw.update(default=default, show_default=True if shown is None else shown)
            if _kind(cls, f) in (list, tuple) or typing.get_origin(_kind(cls, f)) in (list, tuple):
                kw.update(multiple=True, metavar="NAME", default=None if given_only else list(default))
                kw.pop("show_default", None)
            elif not is_bool:
                kw["type"] = _click_type(cls, f)
            wrapper = click.option(decl, f.name, **kw)(wrapper)
        return wrapper

    return deco
