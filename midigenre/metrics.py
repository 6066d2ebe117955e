"""Content-change metrics of Brunner et al. (2019): how much of a piece a transfer changed.

Pure functions on binary piano rolls; the last two axes are (time, pitch), any leading axes
are a batch. Values are NaN where the source has no notes (the ratio is undefined).
"""

from __future__ import annotations

import numpy as np


def _as_bool(x) -> np.ndarray:
    return np.asarray(x) > 0.5 if np.asarray(x).dtype != bool else np.asarray(x)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray | float:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    return float(out) if out.ndim == 0 else out


def content_change(source, transferred) -> np.ndarray | float:
    """c(x) = Σ|x − x̂| / Σx — notes added plus notes removed, relative to the source's notes.

    Parameters
    ----------
    source, transferred : (..., T, P) arrays, binary (values above 0.5 count as notes)

    Returns
    -------
    (...) float array, or a float for a single roll; NaN where Σx = 0.
    """
    x, y = _as_bool(source), _as_bool(transferred)
    return _ratio((x ^ y).sum(axis=(-2, -1)), x.sum(axis=(-2, -1)))


def content_added(source, transferred) -> np.ndarray | float:
    """c_added(x) = Σ max(x̂ − x, 0) / Σx — cells that are notes only after the transfer."""
    x, y = _as_bool(source), _as_bool(transferred)
    return _ratio((y & ~x).sum(axis=(-2, -1)), x.sum(axis=(-2, -1)))


def content_removed(source, transferred) -> np.ndarray | float:
    """c_removed(x) = Σ max(x − x̂, 0) / Σx — cells that were notes only before the transfer."""
    x, y = _as_bool(source), _as_bool(transferred)
    return _ratio((x & ~y).sum(axis=(-2, -1)), x.sum(axis=(-2, -1)))


def content_change_transposed(source, transferred) -> np.ndarray | float:
    """min over the P circular pitch shifts s of Σ|x − roll(x̂, s)| / Σx (transposition-invariant).

    A transfer that only transposes the piece has content change 0 under this variant.
    """
    x, y = _as_bool(source), _as_bool(transferred)
    den = x.sum(axis=(-2, -1))
    # Σ|x − roll(y, s)| = Σx + Σy − 2·Σ x·roll(y, s); the overlaps for every s at once from the
    # pitch × pitch co-occurrences M[p, q] = Σ_t x[t, p]·y[t, q]: overlap(s) = Σ_p M[p, (p − s) mod P]
    n_p = x.shape[-1]
    m = np.matmul(np.swapaxes(x, -1, -2).astype(np.float32), y.astype(np.float32))  # (..., P, P), exact integers
    p = np.arange(n_p)
    overlap = m[..., p[None, :], (p[None, :] - p[:, None]) % n_p].sum(axis=-1)  # (..., S)
    diffs = den[..., None] + y.sum(axis=(-2, -1))[..., None] - 2 * np.rint(overlap).astype(np.int64)
    return _ratio(diffs.min(axis=-1), den)


def genre_fraction(predictions, genre_index: int) -> float:
    """P_A(x): the fraction of samples classified as genre A (``predictions`` are class indices)."""
    predictions = np.asarray(predictions)
    return float(np.mean(predictions == genre_index)) if predictions.size else float("nan")


def transfer_strength(p_source: float, p_transferred: float, p_cycled: float) -> float:
    """S_A→B = ½ [P_A(x_A) + P_A(x̃_A) − 2·P_A(x̂_B)] (Brunner et al. 2018, 2019).

    Parameters
    ----------
    p_source : P_A(x_A), the share of the A originals classified as A.
    p_transferred : P_A(x̂_B), the share of their transfers to B still classified as A.
    p_cycled : P_A(x̃_A), the share of the transfers taken back to A that are classified as A.

    1 is a perfect transfer (all originals and cycled-back pieces are A, no transfer is);
    0 is no transfer at all; negative when transfers look more like A than the originals.
    """
    return 0.5 * (p_source + p_cycled - 2.0 * p_transferred)


def s_tot(s_ab: float, s_ba: float) -> float:
    """S_tot = ½ (S_A→B + S_B→A)."""
    return 0.5 * (s_ab + s_ba)


# ----------------------------------------------------------------------------- keeping the song


def _onsets(x: np.ndarray) -> np.ndarray:
    """Cells where a note starts: on, and off one step before (the first step counts as an onset)."""
    prev = np.zeros_like(x)
    prev[..., 1:, :] = x[..., :-1, :]
    return x & ~prev


def melody_kept(melody, result) -> tuple[float, float]:
    """How much of the melody a result keeps: ``(sounding, top)``, the share of the melody's notes
    (onset cells of ``melody``) that still sound at their onset in ``result``, and the share of its
    top line (the highest melody note at each of those onsets: a melody track's double stops count
    once) that is still the result's highest note there. NaN for a song without melody notes.

    ``melody``, ``result`` : (..., T, P) binary rolls; all notes of every leading index are pooled.
    """
    m, y = _as_bool(melody), _as_bool(result)
    on = _onsets(m)
    n = int(on.sum())
    if n == 0:
        return float("nan"), float("nan")
    sounding = on & y
    rank = np.arange(1, y.shape[-1] + 1)
    line = on & (rank - 1 == (m * rank).max(axis=-1, keepdims=True) - 1)  # the melody's own top at its onsets
    top = (y * rank).max(axis=-1, keepdims=True) - 1  # the result's highest sounding pitch at every step
    is_top = line & y & (rank - 1 == top)
    return float(sounding.sum() / n), float(is_top.sum() / max(int(line.sum()), 1))


def beat_chroma(roll, steps_per_beat: int = 4, lowest_pitch: int = 24) -> np.ndarray:
    """Pitch-class profiles per beat: (..., T, P) binary rolls → (..., B, 12), the number of
    sounding cells of each pitch class (octaves summed) in each beat of ``steps_per_beat`` steps
    (a trailing partial beat counts as a beat)."""
    x = _as_bool(roll).astype(np.float32)
    steps, pitches = x.shape[-2], x.shape[-1]
    beats = -(-steps // steps_per_beat)
    if beats * steps_per_beat != steps:
        pad = [(0, 0)] * (x.ndim - 2) + [(0, beats * steps_per_beat - steps), (0, 0)]
        x = np.pad(x, pad)
    per_beat = x.reshape(*x.shape[:-2], beats, steps_per_beat, pitches).sum(axis=-2)  # (..., B, P)
    fold = np.zeros((pitches, 12), dtype=np.float32)
    fold[np.arange(pitches), (np.arange(pitches) + lowest_pitch) % 12] = 1.0
    return per_beat @ fold


def harmony_kept(source, result, steps_per_beat: int = 4, lowest_pitch: int = 24, *, per_phrase: bool = False):
    """Per-beat pitch-class (chroma) cosine similarity of source and result (Cífka et al. 2020's
    content measure), averaged over the beats in which the source sounds; a beat where the result is
    silent scores 0. One number for all leading indices pooled, or (with ``per_phrase``) one per
    leading index (NaN where the source is silent)."""
    a = beat_chroma(source, steps_per_beat, lowest_pitch)
    b = beat_chroma(result, steps_per_beat, lowest_pitch)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where((na > 0) & (nb > 0), (a * b).sum(-1) / np.maximum(na * nb, 1e-12), 0.0)
    voiced = na > 0
    if per_phrase:
        return _ratio((cos * voiced).sum(axis=-1), voiced.sum(axis=-1))
    n = int(voiced.sum())
    return float((cos * voiced).sum() / n) if n else float("nan")


def onsets_per_phrase(phrases) -> np.ndarray:
    """Note onsets in each (T, P) phrase of (N, T, P) rolls (the first step counts as an onset)."""
    return _onsets(_as_bool(phrases)).sum(axis=(-2, -1))
