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

:func:`passes` is the target of issue 25 for one direction and one judge. The judge that chose a
model's epochs and thresholds must not be the one its headline is read from.

    >>> from midigenre.song_quality import transfer_songs, measure_direction
    >>> songs = transfer_songs(model, ["a.mid", "b.mid"], "jazz", "classical")
    >>> row = measure_direction(songs, judges, target_real=classical_phrases, locked=model.melody_lock)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from shared.errors import GenreError

#: Issue 25's targets for one direction.
TARGET_SHARE, SHARE_MARGIN = 0.5, 0.25          # share judged target ≥ 0.5 and ≥ random edit + 0.25
TARGET_HARMONY, HARMONY_MARGIN = 0.75, 0.30     # harmony ≥ 0.75 and ≥ random accompaniment + 0.3
TARGET_MELODY_TOP = 0.95
ONSET_RANGE = (0.5, 2.0)                         # onsets per phrase over the target genre's real phrases


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


def passes(row: dict, judge: str) -> dict[str, bool]:
    """Which of issue 25's targets a direction meets by ``judge``: share (≥ 0.5 and ≥ the random
    edit + 0.25), harmony (≥ 0.75 and ≥ the random accompaniment + 0.3), melody (top voice ≥ 0.95),
    onsets (0.5–2× the target genre's), and ``all``."""
    j = row["judges"][judge]
    out = {
        "share": j["share"] >= TARGET_SHARE and j["share"] >= j["random_edit"] + SHARE_MARGIN,
        "harmony": row["harmony"] >= TARGET_HARMONY and row["harmony"] >= row["harmony_accompaniment"] + HARMONY_MARGIN,
        "melody": row["melody_top"] >= TARGET_MELODY_TOP,
        "onsets": ONSET_RANGE[0] <= row["onsets_ratio"] <= ONSET_RANGE[1],
    }
    out["all"] = all(out.values())
    return out


def margin(row: dict, judge: str) -> float:
    """How far a direction is inside its targets by ``judge`` (negative: outside), the smallest of
    the share, harmony and onset margins, each scaled to its range — what a choice maximises."""
    j = row["judges"][judge]
    r = row["onsets_ratio"]
    parts = [(j["share"] - TARGET_SHARE) / TARGET_SHARE, (j["share"] - j["random_edit"] - SHARE_MARGIN) / SHARE_MARGIN,
             (row["harmony"] - TARGET_HARMONY) / (1 - TARGET_HARMONY),
             (row["harmony"] - row["harmony_accompaniment"] - HARMONY_MARGIN) / HARMONY_MARGIN,
             min(np.log(r / ONSET_RANGE[0]), np.log(ONSET_RANGE[1] / r)) / np.log(2) if r > 0 else -1.0]
    parts = [p for p in parts if np.isfinite(p)]
    return float(min(parts)) if parts else float("-inf")


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


#: The binarisation thresholds a choice tries for each direction.
GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def direction_grid(model, d: DirectionPhrases, judges: dict, *, target_real: np.ndarray, grid=GRID,
                   seed: int = 0, keep_source=(False, True)) -> list[dict]:
    """:func:`measure_direction` of ``d`` (kept with probabilities) at each threshold of ``grid``,
    with and without keeping the source's notes (``keep_source``); each row carries its
    ``threshold`` and ``keep_source``."""
    rows = []
    for keep in keep_source:
        for t in grid:
            row = measure_direction(at_threshold(model, d, t, keep), judges, target_real=target_real,
                                    locked=model.melody_lock, settings=model.settings_for(d.source_genre), seed=seed)
            rows.append({**row, "threshold": float(t), "keep_source": bool(keep)})
    return rows


def best_rows(rows: list[dict], judge: str) -> dict:
    """The row that meets the most of :func:`passes`' targets by ``judge``, then the widest :func:`margin`."""
    def key(r):
        p = passes(r, judge)
        return (p["all"], sum(v for k, v in p.items() if k != "all"), margin(r, judge))

    return max(rows, key=key)


def choose_model(candidates: list, out, *, songs: dict[str, list], judge, judge_name: str = "reference",
                 melody: str = "auto", grid=GRID, progress=None) -> dict:
    """Choose a model from ``candidates`` (epoch, run or model folders of one training, or of
    trainings sharing genres, settings and split) on ``songs`` ({genre: validation song paths})
    with ``judge``: per direction every candidate at every threshold of ``grid``
    (:func:`direction_grid`), with and without keeping the source's notes; a pair model takes each
    direction's best generator, threshold and keep-source (:func:`midigenre.models.combine_generators`),
    a multi-genre model each target genre's best generator and keep-source (most directions into it
    meeting every target, then the widest mean margin) with a threshold per direction
    (:func:`midigenre.stargan.combine_targets`). Writes the model to
    ``out`` and returns ``{"model": path, "rows": {candidate: [rows]}, "chosen": …}``.
    """
    from pathlib import Path

    from midigenre.transfer import GenreTransfer

    judges = {judge_name: judge}
    table: dict[str, list[dict]] = {}
    kind = None
    for c in candidates:
        model = GenreTransfer.load(c)
        kind = model.kind
        real = {}
        for g in model.names:
            if g in songs:
                real[g] = _real_phrases(model, songs[g], g)
        rows = []
        for s in model.names:
            for t in model.names:
                if s == t or s not in songs:
                    continue
                d = transfer_songs(model, songs[s], s, t, melody=melody, keep_probabilities=True)
                for r in direction_grid(model, d, judges, target_real=real[t], grid=grid):
                    rows.append({**r, "candidate": str(c)})
                if progress is not None:
                    progress("choosing", len(rows), 0, f"{Path(c).name}: {s} → {t}")
        table[str(c)] = rows
    every = [r for rows in table.values() for r in rows]
    directions = sorted({(r["source"], r["target"]) for r in every})
    out = Path(out)
    if kind == "cyclegan":
        from midigenre.models import combine_generators

        model = GenreTransfer.load(candidates[0])
        a, b = model.genres["a"], model.genres["b"]
        best = {(s, t): best_rows([r for r in every if (r["source"], r["target"]) == (s, t)], judge_name)
                for s, t in directions}
        ab, ba = best[(a, b)], best[(b, a)]
        path = combine_generators(ab["candidate"], ba["candidate"], out,
                                  thresholds={"ab": ab["threshold"], "ba": ba["threshold"]},
                                  keep_source={"ab": ab.get("keep_source", False), "ba": ba.get("keep_source", False)})
        chosen = {f"{a}→{b}": ab, f"{b}→{a}": ba}
    else:
        from midigenre.stargan import combine_targets

        model = GenreTransfer.load(candidates[0])
        sources, thresholds, pair_thresholds, chosen, keep = {}, {}, {}, {}, {}
        for t in model.names:
            def score(ck):  # a candidate, and whether the transfers into t keep their source's notes
                c, k = ck
                best = [best_rows([r for r in table[c] if r["target"] == t and r["source"] == s
                                   and r.get("keep_source", False) == k], judge_name)
                        for s in model.names if s != t and s in songs]
                return (sum(passes(r, judge_name)["all"] for r in best), float(np.mean([margin(r, judge_name) for r in best])), best)

            c, keep[t] = max([(c, k) for c in table for k in (False, True)
                              if any(r.get("keep_source", False) == k for r in table[c])], key=lambda ck: score(ck)[:2])
            sources[t] = c
            best = score((c, keep[t]))[2]
            for r in best:
                pair_thresholds.setdefault(r["source"], {})[t] = r["threshold"]
                chosen[f"{r['source']}→{t}"] = r
            thresholds[t] = float(np.median([r["threshold"] for r in best]))
        path = combine_targets(sources, candidates[-1], out, thresholds=thresholds, pair_thresholds=pair_thresholds,
                               keep_source=keep)
    return {"model": str(path), "rows": table, "chosen": chosen}


def _real_phrases(model, songs: list, genre: str) -> np.ndarray:
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


def train_judges(caches: dict[str, str | os.PathLike], split_path: str | os.PathLike, folder: str | os.PathLike, *,
                 epochs: int = 10, device: str = "cpu", say=None) -> dict:
    """The judges of ``caches``' genres ({genre: cache}), trained on the split's training songs
    only: ``reference`` (the CNN of Brunner et al., seed 0, which chooses), ``cnn-seed1`` (the same
    network, seed 1) and ``feature`` (:class:`midigenre.judges.FeatureJudge`, seed 1), the first
    two kept in ``folder/NAME`` and reused when there."""
    from pathlib import Path

    from midigenre.choose import part_phrases
    from midigenre.classifier import Classifier, ClassifierConfig, train_classifier
    from midigenre.dataset import SongSplit
    from midigenre.judges import FeatureJudge
    from midigenre.train import GenreSource

    names = list(caches)
    sources = [GenreSource.parse_named(f"{g}={caches[g]}") for g in names]
    folder = Path(folder)
    judges = {}
    for name, seed in (("reference", 0), ("cnn-seed1", 1)):
        if not (folder / name / "model.json").is_file():
            if say is not None:
                say(f"training the {name} judge ({epochs} epochs, seed {seed}) on the training songs …")
            train_classifier(sources, folder / name, ClassifierConfig(epochs=epochs, seed=seed), split=split_path,
                             device=device)
        judges[name] = Classifier.load(folder / name)
        if judges[name].genres != names:
            raise GenreError(f"{folder / name} judges {', '.join(judges[name].genres)}, not {', '.join(names)}: "
                             "move it away to train it again")
    train = part_phrases(sources, SongSplit.load(split_path), "train", 4000, 0)
    judges["feature"] = FeatureJudge.train(train, names, judges["reference"].settings_hash, seed=1)
    return judges


def measure_model(model, judges: dict, songs: dict[str, list], *, melody: str = "auto", progress=None) -> list[dict]:
    """Every direction of ``model`` (a folder, shipped name or loaded model) on ``songs``
    ({genre: song paths}, e.g. the held-out ones) by every judge (:func:`measure_direction`), each
    row with ``passes`` per judge."""
    import time

    from midigenre.transfer import GenreTransfer

    if not hasattr(model, "names"):
        model = GenreTransfer.load(model)
    real = {g: _real_phrases(model, songs[g], g) for g in model.names if g in songs}
    rows = []
    for s in model.names:
        for t in model.names:
            if s == t or s not in songs:
                continue
            t0 = time.time()
            d = transfer_songs(model, songs[s], s, t, melody=melody)
            row = measure_direction(d, judges, target_real=real[t], locked=model.melody_lock,
                                    settings=model.settings_for(s))
            row["passes"] = {j: passes(row, j) for j in judges}
            row["seconds"] = round(time.time() - t0, 1)
            rows.append(row)
            if progress is not None:
                progress(f"{s} → {t}: {d.songs} songs, {len(d.source)} phrases ({row['seconds']} s)")
    return rows
