"""What the commands share: tables, option choices read from the libraries, progress bars.

Nothing heavy is imported here at module level, so ``genre --help`` answers at once.
"""

from __future__ import annotations

import sys
from typing import Iterable

import click


def table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    """Two aligned columns under an optional title."""
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


class LibraryChoice(click.Choice):
    """A ``click.Choice`` whose values come from a library constant, read when first needed
    (a ``--help`` of the command, or parsing), so importing the CLI imports no library.

    ``LibraryChoice("midigenre.pianoroll", "METER_MODES")`` offers that tuple (or a dict's
    keys); ``before``/``after`` add values the command itself knows (``auto``, ``all``).
    """

    def __init__(self, module: str, name: str, *, before: Iterable[str] = (), after: Iterable[str] = (),
                 case_sensitive: bool = True):
        self._source, self._before, self._after = (module, name), tuple(before), tuple(after)
        self._choices: tuple | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple:  # type: ignore[override]
        if self._choices is None:
            import importlib

            module, name = self._source
            values = getattr(importlib.import_module(module), name)
            self._choices = (*self._before, *values, *self._after)
        return self._choices

    @choices.setter
    def choices(self, value) -> None:
        self._choices = tuple(value)


#: The meter rules of :mod:`midigenre.pianoroll`.
METERS = LibraryChoice("midigenre.pianoroll", "METER_MODES")
#: The attribution methods of :mod:`midigenre.attribution`.
ATTRIBUTION_METHODS = LibraryChoice("midigenre.attribution", "METHODS")
#: The audio data set kinds of :mod:`audiogenre.datasets` (``auto`` first).
DATASET_KINDS = LibraryChoice("audiogenre.datasets", "DATASET_KINDS")
#: The audio classifier backends of :mod:`audiogenre.backends`.
BACKENDS = LibraryChoice("audiogenre.backends", "BACKENDS")


class TqdmProgress:
    """A :mod:`shared.progress` callback that draws one tqdm bar per stage on stderr (a new bar
    when the stage changes or starts again from fewer units done).

    Use it as a context manager so the last bar is closed however the command ends::

        with TqdmProgress(unit="clip") as progress:
            library_function(..., progress=progress)
    """

    def __init__(self, unit: str = "it", leave: bool = True):
        self.unit, self.leave = unit, leave
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int, note: str = "") -> None:
        from tqdm import tqdm

        if self.bar is None or stage != self.stage or done < self.bar.n:  # a new stage, or the stage again
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit=self.unit, file=sys.stderr, dynamic_ncols=True, leave=self.leave)
        bar = self.bar
        if total != bar.total:
            bar.total = total
        if note:
            bar.set_postfix_str(note, refresh=False)
        bar.update(done - bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def model_files(path) -> list:
    """The files of a model folder that commands read (its JSON, weights and split), for
    :func:`shared.atomic.refuse_overwriting_input`; ``path`` may also name a model file or be None."""
    from pathlib import Path

    from shared.registry import META, WEIGHTS

    if path is None:
        return []
    p = Path(path)
    folder = p.parent if p.is_file() else p
    return [p, folder / META, folder / WEIGHTS, folder / "split.json"]
