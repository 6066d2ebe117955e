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


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


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
            if not self.leave and not _isatty(sys.stderr):
                # a bar that is not left ends in "\r": on a terminal the next line overwrites it; in a
                # log file the next line ("Error: …") would follow it on the same line
                sys.stderr.write("\n")
                sys.stderr.flush()
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


NPROC_HELP = ("Train on N processes on this machine with DistributedDataParallel (one per GPU; gloo on the CPU), "
              "as torchrun --nproc-per-node N would. --batch-size stays the global batch. For several machines use "
              "torchrun (docs/multi-gpu.md).")


def nproc_option(f):
    """``--nproc N`` for a training command (see :func:`relaunch`), and ``--nproc-anyway`` (kept in
    the context's meta, so the command's function does not take it)."""

    def insist(ctx, param, value):
        ctx.meta["genre.nproc_anyway"] = bool(value)

    f = click.option("--nproc-anyway", is_flag=True, expose_value=False, callback=insist,
                     help="Start --nproc processes even where they are more than the GPUs (or CPU cores) here.")(f)
    return click.option("--nproc", type=click.IntRange(1), help=NPROC_HELP)(f)


def relaunch(nproc: int | None) -> bool:
    """With ``--nproc N`` (N > 1): run this command line again, without ``--nproc``, in N processes
    that find each other as torchrun's would (:func:`shared.distributed.launch`), wait for them
    and return True; the command then returns. Otherwise False: the command runs here."""
    from shared.distributed import launch, launched
    from shared.errors import GenreError

    if not nproc:
        return False
    if launched():
        raise GenreError("--nproc starts its own processes; under torchrun leave it out")
    if nproc == 1:
        return False
    from shared.distributed import check_nproc

    ctx = click.get_current_context()
    check_nproc(nproc, ctx.params.get("device"), insist=bool(ctx.meta.get("genre.nproc_anyway")))
    root = ctx.find_root().meta
    argv, child = root.get("genre.argv"), root.get("genre.child")  # put there by the genre group (cli.main)
    if argv is None or child is None:
        raise GenreError("--nproc needs the command line (run the genre command)")
    click.echo(f"starting {nproc} processes (DistributedDataParallel; rank 0 reports)", err=True)
    try:
        launch(child, nproc, _without_nproc(argv))
    except KeyboardInterrupt:
        sys.exit(130)
    return True


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out
