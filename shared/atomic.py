"""Write files so that an interrupted run never leaves a half-written result behind.

Everything the toolkit produces (caches, checkpoints, MIDI, PNG, JSON) is written to a
temporary file in the destination folder and moved over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows for paths on one file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from shared.errors import GenreError


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Return the folder that will hold ``path``, creating it; raise GenreError if it cannot be written."""
    parent = Path(path).expanduser().resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".write-test-"):
            pass
    except OSError as err:
        raise GenreError(f"cannot write to {parent}: {err.strerror or err}") from None
    return parent


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it over ``path``.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is left
    exactly as it was.
    """
    final = Path(path).expanduser()
    parent = check_writable_dir(final)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{final.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes 0600 files; give the result the mode a plain open() would (or the old file's)
    try:
        mode = final.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        yield tmp
        os.chmod(tmp, mode)  # after the writer: some (safetensors) replace the file with a 0600 one
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths (symbolic links followed),
    or, where both exist, the same file on disk (hard links, case-insensitive file systems)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a symbolic-link loop: compare as written
        if pa.absolute() == pb.absolute():
            return True
    try:
        return os.path.samefile(pa, pb)
    except (OSError, ValueError):  # one of them does not exist (yet)
        return False


def refuse_overwriting_input(inputs, output: str | os.PathLike | None, what: str = "-o") -> None:
    """Raise GenreError when ``output`` would be written over one of ``inputs``.

    Commands call this before doing any work. ``inputs`` may hold None (an input not given);
    ``what`` names the option in the message (``-o``, ``--json``, ``--png``).
    """
    if output is None:
        return
    for given in inputs:
        if given is not None and same_file(given, output):
            raise GenreError(f"{what} {output} would overwrite the input {given}; choose another {what}")


def refuse_same_outputs(outputs, advice: str = "choose another -o") -> None:
    """Raise GenreError when two outputs of one command would be one file (the second would be
    written over the first). ``outputs``: ``(what, path)`` pairs, ``what`` naming each in the
    message (``-o``, ``--png``); paths may be None (an output not asked for); ``advice`` ends
    the message (which option to change)."""
    seen: dict[Path, tuple[str, str]] = {}
    for what, path in outputs:
        if path is None:
            continue
        p = Path(path).expanduser()
        try:
            key = p.resolve()
        except (OSError, RuntimeError):
            key = p.absolute()
        if key in seen:
            first_what, first = seen[key]
            raise GenreError(f"{first_what} {first} and {what} {path} would be the same file, one written over the "
                             f"other; {advice}")
        seen[key] = (what, str(path))


def remove_stale_temporaries(folder: str | os.PathLike, *, depth: int = 1) -> int:
    """Remove the temporary files that :func:`atomic_path` leaves when its process is killed
    (``.NAME.XXXXXXXX.tmpSUFFIX``) in ``folder`` and its subfolders down to ``depth``; returns how
    many. Call it where one process owns the folder (a run folder when its run starts)."""
    import re

    pattern = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.is_file() and pattern.match(p.name):
            p.unlink(missing_ok=True)
            removed += 1
        elif p.is_dir() and depth > 0 and not p.is_symlink():
            removed += remove_stale_temporaries(p, depth=depth - 1)
    return removed


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, marker: str, keep_others: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it takes the place of ``path``.

    For outputs that are a whole folder (a listening report). ``path`` may be absent, an empty
    folder, or a folder that an earlier run of the same command wrote — recognised by the file
    ``marker`` in it — and is replaced; anything else is refused with GenreError before the
    caller does any work. On any exception (Ctrl-C included) the temporary folder is removed
    and ``path`` is left as it was. (POSIX cannot swap two folders in one step: the old folder
    is moved aside, the new one moved in, then the old one removed.)

    ``keep_others``: only the earlier run's own files are replaced — those the JSON ``marker``
    lists under ``"files"`` (or, for a marker without the list, the files the new folder has);
    whatever else is there (files a user added) is moved into the new folder. A file of the user's
    at a path the new folder also writes is refused (GenreError), the old folder left as it was.
    """
    import shutil

    final = Path(path).expanduser()
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise GenreError(f"{final} exists and is not a folder; choose another output folder")
    if final.is_dir() and any(final.iterdir()) and not (final / marker).is_file():
        raise GenreError(f"{final} is a folder with other files in it (it has no {marker}, so this command did not "
                         "write it); choose a new or empty folder")
    parent = check_writable_dir(final)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 folders
        old = None
        moved = _carry_over(final, tmp, marker) if keep_others and final.is_dir() else []
        try:
            if final.exists():
                old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}.", suffix=".old")) / final.name
                os.replace(final, old)
            os.replace(tmp, final)
        except BaseException:
            if old is not None and old.exists():
                os.replace(old, final)
            _move_back(moved)
            raise
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def listed_files(folder: str | os.PathLike) -> list[str]:
    """The files under ``folder``, as sorted paths relative to it with ``/`` (for a marker's ``"files"``)."""
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _own_files(folder: Path, marker: str) -> set[str] | None:
    """The files an earlier run listed in its JSON ``marker`` (``"files"``), or None without a list."""
    try:
        files = json.loads((folder / marker).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files) | {marker}


def _carry_over(old: Path, new: Path, marker: str) -> list[tuple[Path, Path]]:
    """Move what in ``old`` is not the earlier run's own into ``new`` (see :func:`atomic_folder`);
    returns the moves ``(from, to)``. Nothing is moved when one of them would land on a new file."""
    own = _own_files(old, marker)
    if own is None:  # written before reports listed their files: only what the new one writes is its own
        own = set(listed_files(new)) | {marker}
    plan: list[tuple[Path, Path, str]] = []

    def walk(folder: Path, rel: str) -> None:
        for p in sorted(folder.iterdir()):
            r = rel + p.name
            target = new / r
            if p.is_dir() and not p.is_symlink() and (target.is_dir() or any(o.startswith(r + "/") for o in own)):
                walk(p, r + "/")
            elif r not in own:
                plan.append((p, target, r))

    walk(old, "")
    clash = [r for _, target, r in plan if target.exists() or target.is_symlink()]
    if clash:
        raise GenreError(f"{old} holds {clash[0]}{f' (and {len(clash) - 1} more)' if len(clash) > 1 else ''}, which an "
                         "earlier run did not write and this one would; move it out and run again")
    moved: list[tuple[Path, Path]] = []
    try:
        for src, target, _ in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            moved.append((src, target))
    except BaseException:
        _move_back(moved)
        raise
    return moved


def _move_back(moved: list[tuple[Path, Path]]) -> None:
    for src, target in reversed(moved):
        src.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, src)
