"""Progress reporting without drawing anything.

Library functions never print or draw progress bars. A long-running one takes a
``progress`` callback and calls it as work gets done::

    progress(stage, done, total, note="")

``stage`` names the piece of work (one bar per stage: "encoding", "rendering", "→ jazz"),
``done`` and ``total`` count its units (``total`` may grow while the work runs), ``note`` is
an optional short status ("window 3/5, p(jazz)=0.61"). The command line turns the calls into
tqdm bars (:class:`cli.common.TqdmProgress`); a notebook may do anything else, or nothing.
"""

from __future__ import annotations

from typing import Callable, Protocol, Union


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, note: str = "") -> None: ...


def silent(stage: str, done: int, total: int, note: str = "") -> None:
    """The callback that ignores everything (the default)."""


ProgressArg = Union[Progress, Callable[..., None], bool, None]


def progress_callback(progress: ProgressArg) -> Progress:
    """The callback to call for a function's ``progress`` argument.

    A callable is used as it is; ``None`` (and, for callers written when the argument was a
    flag, ``True`` or ``False``) means no reporting.
    """
    return progress if callable(progress) else silent


__all__ = ["Progress", "ProgressArg", "progress_callback", "silent"]
