"""The melody of a song: the tune a listener holds on to, which a melody-locked transfer keeps.

Where a file names its melody (POP909's ``MELODY`` track, the jazz data's ``melody`` solo, a
``Soprano`` or ``Lead`` part) that track is the melody; otherwise the **skyline** of the top
voice (Uitdenbogerd & Zobel 1998) with one voice rule:

* at each onset the highest starting note is a candidate;
* it becomes the melody when no melody note is sounding, or when it is higher than the one that is
  (that note ends there);
* a melody note lasts while its pitch keeps sounding; lower notes that start under it are not
  melody, and notes held on after the melody note ended do not become melody (only a new onset
  starts one);
* after the melody rests, a note more than an octave below its last note does not start it again
  (a bass or left-hand note in the melody's rest) unless the rest has lasted a bar.

The rule works on binary piano rolls (rising edges are onsets), so the same code gives the
melody of a cached phrase (what a melody-locked generator is trained with) and of a whole song.
``benchmarks/melody.py`` measures it against the melody tracks of the data.

    >>> from midigenre.melody import skyline
    >>> melody = skyline(roll)            # (T, P) or (N, T, P) bool → same shape, the top voice
"""

from __future__ import annotations

import re

import numpy as np

from shared.errors import GenreError

#: ``--melody`` modes: the named track where there is one, else the skyline (``auto``); the skyline
#: always; one track by name (``track:NAME``); no melody (the whole song is accompaniment).
MELODY_MODES = ("auto", "skyline", "none")

#: Track names that name a melody (case-insensitive, anywhere in the name).
MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|singer|solo|tune|theme|soprano|right hand", re.IGNORECASE)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MELODY_MODES` or ``track:NAME``; GenreError otherwise."""
    if mode in MELODY_MODES or (mode.startswith("track:") and len(mode) > len("track:")):
        return mode
    raise GenreError(f"unknown melody mode {mode!r}; choose auto, skyline, track:NAME or none")


def skyline(roll):
    """The top voice of binary rolls: (..., T, P) bool (numpy or torch) → the melody cells, same
    shape and kind. Vectorised over the leading dimensions, a loop over the T steps."""
    import torch

    is_numpy = not isinstance(roll, torch.Tensor)
    x = torch.from_numpy(np.asarray(roll)) if is_numpy else roll
    shape = x.shape
    if x.dim() < 2:
        raise ValueError(f"expected (..., T, P) rolls, got shape {tuple(shape)}")
    on = (x > 0.5).reshape(-1, shape[-2], shape[-1])
    out = _skyline(on)
    out = out.reshape(shape)
    if is_numpy:
        return out.numpy()
    return out.to(x.dtype) if x.dtype != torch.bool else out


#: The register rule: after a rest of the melody shorter than ``REST_STEPS`` grid steps (a bar), an
#: onset more than ``OCTAVE`` rows below the last melody note does not start the melody again.
#: Chosen on 40 training songs each of POP909 and the jazz data (benchmarks/melody.py).
OCTAVE, REST_STEPS = 12, 16


def _skyline(on):
    import torch

    n, steps, pitches = on.shape
    out = torch.zeros_like(on)
    if n == 0 or steps == 0:
        return out
    rows = torch.arange(n, device=on.device)
    rank = torch.arange(1, pitches + 1, device=on.device)
    prev = torch.zeros_like(on[:, 0])
    cur = torch.full((n,), -1, dtype=torch.long, device=on.device)
    last = torch.full((n,), -1, dtype=torch.long, device=on.device)  # the last melody note's row
    rest = torch.zeros(n, dtype=torch.long, device=on.device)        # steps since it ended
    for t in range(steps):
        now = on[:, t]
        onset = now & ~prev
        top = (onset * rank).amax(dim=1) - 1  # highest starting pitch, −1 where none starts
        held = cur.clamp(min=0)
        sounding = (cur >= 0) & now[rows, held] & ~onset[rows, held]
        near = sounding | (last < 0) | (top >= last - OCTAVE) | (rest >= REST_STEPS)
        take = (top >= 0) & (~sounding | (top > cur)) & near
        cur = torch.where(take, top, torch.where(sounding, cur, torch.full_like(cur, -1)))
        has = cur >= 0
        last = torch.where(has, cur, last)
        rest = torch.where(has, torch.zeros_like(rest), rest + 1)
        out[rows[has], t, cur[has]] = True
        prev = now
    return out


def below_melody(melody):
    """Where accompaniment may sound: (..., T, P) bool, the cells strictly below the highest
    melody note at steps where the melody sounds, every cell where it rests (numpy or torch)."""
    import torch

    is_numpy = not isinstance(melody, torch.Tensor)
    m = torch.from_numpy(np.asarray(melody)) if is_numpy else melody
    on = m > 0.5
    pitches = on.shape[-1]
    rank = torch.arange(1, pitches + 1, device=m.device)
    top = (on * rank).amax(dim=-1, keepdim=True)  # 1 + highest melody pitch, 0 where it rests
    allowed = (rank < top) | (top == 0)  # pitch index < highest melody pitch
    out = allowed & ~on
    return out.numpy() if is_numpy else out


def accompaniment(roll, melody):
    """The accompaniment of rolls under their melody: the notes that are not melody and lie below
    it where it sounds (numpy or torch bool, same shape)."""
    return (roll > 0.5) & below_melody(melody)


def locked_input(roll, melody):
    """What a melody-locked generator reads of a song: its melody and the accompaniment under it
    (the notes above the melody where it sounds are left out), same shape and kind."""
    return (melody > 0.5) | accompaniment(roll, melody)


# ----------------------------------------------------------------------------- songs


def melody_track(names: list[str], mode: str) -> int | None:
    """The index of the melody track among the pitched tracks ``names`` under ``mode``, or None
    for the skyline (or no melody). GenreError for ``track:NAME`` naming no track."""
    mode = check_mode(mode)
    if mode.startswith("track:"):
        want = mode[len("track:"):]
        for i, name in enumerate(names):
            if name.strip().lower() == want.strip().lower():
                return i
        shown = ", ".join(repr(n) for n in names) or "none"
        raise GenreError(f"no track named {want!r} in the song (its pitched tracks: {shown})")
    if mode != "auto":
        return None
    for i, name in enumerate(names):
        if name and MELODY_NAMES.search(name):
            return i
    return None


def melody_notes(start: np.ndarray, end: np.ndarray, row: np.ndarray, track: np.ndarray, names: list[str],
                 mode: str = "auto", *, total: int | None = None) -> tuple[np.ndarray, str]:
    """Which notes of a song are its melody: ``(mask over the notes, how it was found)``.

    ``start``/``end`` are grid steps, ``row`` the pitch row, ``track`` each note's index into
    ``names`` (the pitched tracks). How: ``"track 'MELODY'"``, ``"skyline"`` or ``"none"``.
    """
    mode = check_mode(mode)
    n = len(start)
    if mode == "none" or n == 0:
        return np.zeros(n, dtype=bool), "none"
    k = melody_track(names, mode)
    if k is not None and (track == k).any():
        return track == k, f"track {names[k]!r}"
    from midigenre.pianoroll import _fill

    steps = int(total if total is not None else end.max())
    pitches = int(row.max()) + 1
    roll = _fill(start, end, row, steps, pitches)
    top = skyline(roll)
    mask = top[np.minimum(start, steps - 1), row]
    # one note per melody cell: where two tracks double the melody pitch, the first note wins
    order = np.lexsort((np.arange(n), row, start))
    cells = start[order] * pitches + row[order]
    first = np.ones(n, dtype=bool)
    first[1:] = cells[1:] != cells[:-1]
    keep = np.zeros(n, dtype=bool)
    keep[order] = first
    return mask & keep, "skyline"
