"""Matched trivial baselines: what a transfer's scores must beat to count.

A genre judge can be moved without any knowledge of the target genre: deleting 60 % of a jazz
song's notes at random makes half its phrases "classical", and a melody over *any* real
accompaniment of the target genre is judged that genre although it ignores the song's chords.
So every direction of a model is read against

* :func:`random_edit` — the source with the model's own measured share of its notes removed and
  added at random (notes deleted whole; added notes of the phrase's own lengths, at random places
  and pitches within its range), the melody untouched when the model keeps it;
* :func:`random_accompaniment` — the source's melody over the accompaniment of a random real
  phrase of the target genre (for melody-locked models: it fools the judges, keeps no harmony);
* the source unchanged.

Every function takes a ``numpy.random.Generator``; nothing touches global random state.
"""

from __future__ import annotations

import numpy as np

from midigenre.melody import below_melody, locked_input


def _runs(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, row) of every run of on-cells of a (T, P) bool roll."""
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), dtype=np.int8)
    padded[1:-1] = roll
    delta = np.diff(padded, axis=0).T
    rows, starts = np.nonzero(delta == 1)
    _, ends = np.nonzero(delta == -1)
    return list(zip(starts.tolist(), ends.tolist(), rows.tolist()))


def random_edit(phrases: np.ndarray, removed: float, added: float, rng: np.random.Generator,
                melody: np.ndarray | None = None) -> np.ndarray:
    """(N, T, P) phrases with about ``removed`` × (each phrase's note cells) removed and ``added`` ×
    that many added, at random (the content-change rates of :mod:`midigenre.metrics`).

    With ``melody`` (N, T, P), melody cells are never removed and notes are added only where a
    melody-locked transfer may add them (below the melody where it sounds).
    """
    x = np.asarray(phrases) > 0.5
    out = x.copy()
    mel = np.zeros_like(x) if melody is None else np.asarray(melody) > 0.5
    allowed_all = below_melody(mel) if melody is not None else np.ones_like(x)
    for i in range(len(x)):
        cells = int(x[i].sum())
        if cells == 0:
            continue
        notes = _runs(x[i] & ~mel[i])
        # remove whole notes in a random order until the removed cells reach the share
        goal, gone = removed * cells, 0
        for k in rng.permutation(len(notes)):
            if gone >= goal - 0.5:
                break
            s, e, r = notes[k]
            out[i, s:e, r] = False
            gone += e - s
        # add notes of the phrase's own lengths at random places and pitches within its range
        goal, made = added * cells, 0
        all_notes = notes or _runs(x[i])
        lengths = np.array([e - s for s, e, _ in all_notes])
        rows = np.nonzero(x[i].any(axis=0))[0]
        lo, hi = int(rows.min()), int(rows.max())
        steps, pitches = x.shape[1], x.shape[2]
        for _ in range(10 * (int(goal) + 1)):
            if made >= goal - 0.5:
                break
            length = int(lengths[rng.integers(0, len(lengths))])  # rng.choice(lengths)'s draw, without its overhead
            s = int(rng.integers(0, steps))
            r = int(rng.integers(max(0, lo - 6), min(pitches, hi + 7)))
            span = slice(s, min(steps, s + length))
            free = allowed_all[i, span, r] & ~out[i, span, r]
            if not free.all():
                continue
            out[i, span, r] = True
            made += int(free.sum())
    return out


def random_accompaniment(melody: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each (T, P) melody of ``melody`` (N, T, P) over the accompaniment of a random phrase of
    ``pool`` (M, T, P; real phrases of the target genre): the notes of that phrase that lie below
    the melody where it sounds."""
    mel = np.asarray(melody) > 0.5
    if len(pool) == 0:
        raise ValueError("no phrases of the target genre to draw accompaniments from")
    picks = np.asarray(pool)[rng.integers(0, len(pool), size=len(mel))] > 0.5
    return locked_input(picks, mel)
