"""Does a transfer keep the song and change its genre? Whole songs, several judges, matched baselines.

Per direction (source genre → target genre) of a model, on whole songs (read with their tracks,
so the melody is the melody track where the file names one, else the skyline):

* **melody kept**: the share of the source melody's notes still sounding in the result, and still
  its highest note (:func:`midigenre.metrics.melody_kept`);
* **harmony kept**: per-beat pitch-class similarity of source and result
  (:func:`midigenre.metrics.harmony_kept`);
* **accompaniment change**: content change of what is not melody; removed and added shares;
* **onsets**: the result's note onsets per phrase over the target genre's real phrases' (a real
  accompaniment, not a melody left alone);
* **share judged target** by each judge, for the transfers and for the matched baselines
  (:mod:`midigenre.baselines`): the source unchanged, random deletion/addition at the direction's
  own removed/added shares, and the melody over a random real accompaniment of the target genre.

The song targets for one direction and one judge, and the choice of a model by them, are
:func:`midigenre.choose.song_passes` and :func:`midigenre.choose.choose_by_song`. The judge that
chose a model's epochs and thresholds must not be the one its headline is read from
(:func:`measure_model` measures by every judge of :func:`midigenre.judges.train_judges`).

    >>> from midigenre.song_quality import transfer_songs, measure_direction
    >>> songs = transfer_songs(model, ["a.mid", "b.mid"], "jazz", "classical")
    >>> row = measure_direction(songs, judges, target_real=classical_phrases, locked=model.melody_lock)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from shared.errors import GenreError


@dataclass
class DirectionPhrases:
    """The phrases (with notes in the source) of every song of one direction, pooled:
    (N, T, P) bool each; ``songs`` is how many songs they came from."""

    source_genre: str
    target_genre: str
    source: np.ndarray
    melody: np.ndarray
    result: np.ndarray
    songs: int
    probabilities: np.ndarray | None = None  # G's output before binarisation, for a threshold grid
    keep_source: bool = False


def transfer_songs(model, songs: list, source: str, target: str, *, melody: str = "auto",
                   keep_probabilities: bool = False, progress=None) -> DirectionPhrases:
    """Transfer every song of ``songs`` (paths) from ``source`` to ``target`` with ``model`` (a
    loaded :class:`midigenre.transfer.GenreTransfer`) and pool their phrases. Songs that cannot be
    read under the model's settings are skipped. ``keep_probabilities`` also keeps G's output
    before binarisation (:func:`at_threshold` then tries other thresholds)."""
    from midigenre.melody import locked_input
    from midigenre.pianoroll import Unusable, read_song, split_phrases
    from midigenre.transfer import song_melody

    settings = model.settings_for(source)
    xs, ms, ys, ps, n = [], [], [], [], 0
    for i, path in enumerate(songs):
        try:
            song = read_song(path, settings, keep_notes=True)
        except Unusable:
            continue
        mel, _, _ = song_melody(song, settings, melody)
        roll = locked_input(song.roll, mel) if model.melody_lock else song.roll
        x, _ = split_phrases(roll, settings, keep_empty=True, pad_tail=True)
        m, _ = split_phrases(mel, settings, keep_empty=True, pad_tail=True)
        full, _ = split_phrases(song.roll, settings, keep_empty=True, pad_tail=True)
        keep = full.any(axis=(1, 2))
        x, m, full = x[keep], m[keep], full[keep]
        if not len(x):
            continue
        if keep_probabilities:
            p = model.probabilities(x, target, melody=m if model.melody_lock else None, source=source)
            ps.append(p)
            y = model.binarize(x, p, target, model.threshold(target, source), source=source)
        else:
            y, _ = model.transfer_phrases(x, target, source=source, melody=m if model.melody_lock else None)
        xs.append(full)
        ms.append(m)
        ys.append(y)
        n += 1
        if progress is not None:
            progress(f"{source} → {target}", i + 1, len(songs), "")
    if not n:
        raise GenreError(f"none of the {len(songs)} {source} songs could be read with the model's settings")
    return DirectionPhrases(source, target, np.concatenate(xs), np.concatenate(ms), np.concatenate(ys), n,
                            np.concatenate(ps) if keep_probabilities else None)


def at_threshold(model, d: DirectionPhrases, threshold: float, keep_source: bool = False) -> DirectionPhrases:
    """``d`` binarised at another threshold (needs ``keep_probabilities``); with ``keep_source``
    the transfer also keeps every note of its input (for a melody-locked model: the melody and the
    accompaniment under it), as a model saved with ``keep_source`` does."""
    from midigenre.melody import locked_input

    if d.probabilities is None:
        raise ValueError("transfer_songs(..., keep_probabilities=True) keeps what a threshold grid needs")
    x = locked_input(d.source, d.melody) if model.melody_lock else d.source
    y = model.binarize(x, d.probabilities, d.target_genre, threshold, source=d.source_genre)
    if keep_source:
        y = y | x
    return DirectionPhrases(d.source_genre, d.target_genre, d.source, d.melody, y, d.songs, d.probabilities,
                            keep_source)


def _share(judge, phrases: np.ndarray, target: str) -> float:
    if not len(phrases):
        return float("nan")
    return float(np.mean(judge.predict(phrases) == judge.index(target)))


def measure_direction(d: DirectionPhrases, judges: dict, *, target_real: np.ndarray, locked: bool,
                      settings=None, seed: int = 0) -> dict:
    """Every measure of one direction and its matched baselines (see the module's docstring).

    ``judges`` : {name: judge with ``predict`` and ``index``}; ``target_real`` : real phrases of the
    target genre (the random accompaniments are drawn from them; their onsets are the reference).
    """
    from midigenre.baselines import random_accompaniment, random_edit
    from midigenre.metrics import (_onsets, content_added, content_change, content_removed, harmony_kept,
                                   melody_kept, onsets_per_phrase)

    spb = settings.steps_per_beat if settings is not None else 4
    low = settings.lowest_pitch if settings is not None else 24
    x, m, y = d.source, d.melody, d.result
    removed = float(np.nanmean(content_removed(x, y)))
    added = float(np.nanmean(content_added(x, y)))
    rng = np.random.default_rng([seed, 25])
    edit = random_edit(x, removed, added, rng, melody=m if locked else None)
    accomp = random_accompaniment(m, target_real, rng)
    sounding, top = melody_kept(m, y)
    real_onsets = float(onsets_per_phrase(target_real).mean()) if len(target_real) else float("nan")
    row = {
        "source": d.source_genre, "target": d.target_genre, "songs": d.songs, "phrases": int(len(x)),
        "melody_notes": int(_onsets(m).sum()),
        "melody_sounding": sounding, "melody_top": top,
        "harmony": harmony_kept(x, y, spb, low),
        "harmony_edit": harmony_kept(x, edit, spb, low),
        "harmony_accompaniment": harmony_kept(x, accomp, spb, low),
        "accompaniment_change": _nanmean(content_change(x & ~m, y & ~m)),
        "content_change": _nanmean(content_change(x, y)),
        "removed": removed, "added": added,
        "onsets_ratio": float(onsets_per_phrase(y).mean() / real_onsets) if real_onsets else float("nan"),
        "judges": {},
    }
    for name, judge in judges.items():
        row["judges"][name] = {
            "share": _share(judge, y, d.target_genre),
            "unchanged": _share(judge, x, d.target_genre),
            "random_edit": _share(judge, edit, d.target_genre),
            "random_accompaniment": _share(judge, accomp, d.target_genre),
        }
    return row


def _nanmean(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def split_songs(split, genre: str, part: str, folders: list[str | os.PathLike]) -> list:
    """The files of ``split``'s ``part`` songs of ``genre``, found by name under ``folders`` and
    checked by their SHA-1 (a file whose contents differ is not the split's song)."""
    import hashlib
    from pathlib import Path

    wanted = {e["name"]: e["sha1"] for e in split.genres.get(genre, {}).get(part, [])}
    found = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.name in wanted and p.name not in found and p.is_file():
                if hashlib.sha1(p.read_bytes()).hexdigest() == wanted[p.name]:
                    found[p.name] = p
    return [found[n] for n in sorted(found)]


def real_phrases(model, songs: list, genre: str) -> np.ndarray:
    """The phrases with notes of ``songs`` (a genre's real music) under the model's settings."""
    from midigenre.pianoroll import Unusable, read_song, split_phrases

    out = []
    for path in songs:
        try:
            song = read_song(path, model.settings_for(genre))
        except Unusable:
            continue
        x, _ = split_phrases(song.roll, model.settings_for(genre))
        out.append(x)
    return np.concatenate(out) if out else np.zeros((0, 64, model.settings.n_pitches), bool)


def measure_model(model, judges: dict, songs: dict[str, list], *, melody: str = "auto", progress=None) -> list[dict]:
    """Every direction of ``model`` (a folder, shipped name or loaded model) on ``songs``
    ({genre: song paths}, e.g. the held-out ones) by every judge (:func:`measure_direction`), each
    row with ``passes`` per judge (:func:`midigenre.choose.song_passes`)."""
    import time

    from midigenre.choose import song_passes
    from midigenre.transfer import GenreTransfer

    if not hasattr(model, "names"):
        model = GenreTransfer.load(model)
    real = {g: real_phrases(model, songs[g], g) for g in model.names if g in songs}
    rows = []
    for s in model.names:
        for t in model.names:
            if s == t or s not in songs:
                continue
            t0 = time.time()
            d = transfer_songs(model, songs[s], s, t, melody=melody)
            row = measure_direction(d, judges, target_real=real[t], locked=model.melody_lock,
                                    settings=model.settings_for(s))
            row["passes"] = {j: song_passes(row, j) for j in judges}
            row["seconds"] = round(time.time() - t0, 1)
            rows.append(row)
            if progress is not None:
                progress(f"{s} → {t}: {d.songs} songs, {len(d.source)} phrases ({row['seconds']} s)")
    return rows
