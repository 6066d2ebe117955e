"""Cutting items into fixed-length segments (lengths from ``soundfile.info``; no audio is decoded)."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from typing import Sequence

from audiogenre.datasets.items import AudioItem
from shared.errors import GenreError

_DURATIONS: dict[tuple[str, int, int], float] = {}


def audio_duration(path: str | os.PathLike) -> float:
    """Length of an audio file in seconds (``soundfile.info``), cached per path, size and mtime."""
    import soundfile

    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DURATIONS:
        info = soundfile.info(str(path))
        _DURATIONS[key] = info.frames / info.samplerate if info.samplerate else 0.0
    return _DURATIONS[key]


def segment(
    items: Sequence[AudioItem], seconds: float, *, hop: float | None = None, min_fraction: float = 0.5
) -> list[AudioItem]:
    """Cut each item into pieces of ``seconds``, starting every ``hop`` seconds (default: ``seconds``).

    Pieces keep the item's genre, split and group. The last piece of an item ends at the item's
    end and may be shorter (its ``duration`` says how long; the caller pads); it is dropped when
    shorter than ``min_fraction * seconds``. Lengths of whole files come from ``soundfile.info``;
    files it cannot read are left out with a warning.
    """
    if not seconds > 0:
        raise GenreError(f"segment length must be > 0 seconds, got {seconds}")
    hop = seconds if hop is None else hop
    if not hop > 0:
        raise GenreError(f"segment hop must be > 0 seconds, got {hop}")
    if not 0.0 <= min_fraction <= 1.0:
        raise GenreError(f"min_fraction must be between 0 and 1, got {min_fraction}")
    eps = 1e-9
    out: list[AudioItem] = []
    unreadable: list[str] = []
    for it in items:
        if it.duration is not None:
            end = it.start + it.duration
        else:
            try:
                end = audio_duration(it.path)
            except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (a RuntimeError)
                unreadable.append(f"{it.path} ({e})")
                continue
        t, k = it.start, 0
        while t < end - eps:
            piece_end = min(t + seconds, end)
            if piece_end - t >= min_fraction * seconds - eps:
                out.append(replace(it, start=round(t, 9), duration=round(piece_end - t, 9)))
            if piece_end >= end - eps:
                break
            k += 1
            t = it.start + k * hop  # no drift from repeated additions
    if unreadable:
        more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
        warnings.warn(f"left out {len(unreadable)} unreadable audio file(s): {'; '.join(unreadable[:3])}{more}",
                      stacklevel=2)
    return out
