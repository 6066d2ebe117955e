"""Choosing a model on the VALIDATION songs of its split: every pass mark and every choice, for
both model kinds (``genre midi choose``, ``genre midi train --choose``, the recipes of
:mod:`midigenre.recipe`, and the benchmarks that compare trainings).

**Pass marks** (what a direction must reach; the choices below maximise them):

* a multi-genre model's phrases (:func:`meets`, :func:`margin`): share judged as the
  target > 0.5 and transposition-invariant content change ≤ 1.2;
* a pair model (CycleGAN; :func:`pair_shortfall`): S ≥ 0.5 each way, S_tot ≥ 70 %,
  transposition-invariant content change ≤ 1.0 each way;
* keeping the song (:func:`song_passes`, :func:`song_margin`), on whole songs measured by
  :mod:`midigenre.song_quality`: share judged target ≥ 0.5 and ≥ the random edit's + 0.25, harmony
  kept ≥ 0.75 and ≥ the random accompaniment's + 0.3, the melody on top ≥ 0.95, onsets 0.5–2× the
  target genre's.

**Choices.** A multi-genre generator G(x, t) serves every target genre, but its epochs peak at
different times for different targets (a four-genre training moved phrases into classical best
after epoch 1 and into pop after epoch 6: docs/experiments.md), and one binarisation threshold per target cannot serve every source (into folk,
classical phrases gain too many notes where pop phrases need more). So a model is chosen from the
epochs its training kept (``--keep-epochs``), on the validation songs (``--valid-fraction``),
never on the held-out ones:

1. A judge, the reference classifier (the CNN of Brunner et al. with K classes,
   :func:`midigenre.judges.cnn_judge`) trained on the split's training songs, classifies the
   transfers of the validation phrases of every genre into every other genre, each direction
   binarised at every threshold of a grid (G runs once per direction; :func:`threshold_grid`).
2. Per target genre t, the epoch with the most directions into t that meet the target at their
   own best threshold wins; ties go to the wider mean margin (:func:`target_score`).
3. One model holds each target's generator (:func:`midigenre.stargan.combine_targets`; the
   discriminator, whose genre head names a song's genre, comes from the epoch that meets the most
   directions in all), with a threshold per target genre and one per direction
   (:func:`choose_thresholds`, :func:`combine_choice`).

:func:`choose_by_song` chooses by keeping the song instead (melody-locked models, either kind):
every candidate at every threshold, with and without keeping the source's notes; a pair model
takes each direction's best generator (:func:`midigenre.models.combine_generators`), a
multi-genre model each target genre's.

    >>> from midigenre.choose import choose_model
    >>> choice = choose_model(["runs/four"], "runs/four-chosen")
    >>> choice.model                      # runs/four-chosen/model, for --model
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shared.errors import GenreError

# --- pass marks ---------------------------------------------------------------------------------

#: The target for one direction of a multi-genre model: a majority moved (share > 0.5),
#: with transposition-invariant content change ≤ 1.2
TARGET_SHARE, TARGET_TI = 0.5, 1.2
#: the binarisation thresholds tried per direction on phrases
GRID = tuple(round(v / 100, 2) for v in range(20, 91, 5))


def meets(share: float, ti: float) -> bool:
    """Whether one direction meets the target: share > 0.5 and content change ≤ 1.2."""
    return share > TARGET_SHARE and ti <= TARGET_TI


def margin(share: float, ti: float) -> float:
    """How far a direction is inside the target, relative to each bound (negative: outside; -inf
    where a value is unknown)."""
    if np.isnan(share) or np.isnan(ti):
        return float("-inf")
    return min((share - TARGET_SHARE) / TARGET_SHARE, (TARGET_TI - ti) / TARGET_TI)


#: a pair model's targets: S ≥ 0.5 in each direction, S_tot ≥ 70 %, transposition-invariant
#: content change ≤ 1.0 in each direction
TARGET_S, TARGET_S_TOT, TARGET_CC = 0.5, 0.70, 1.0


def pair_shortfall(row: dict, a: str, b: str, judge: str = "reference") -> float:
    """How far a measured pair model A ↔ B is from meeting every target (0: it meets them): S
    below 0.5 in each direction, S_tot below 70 % and transposition-invariant content change above
    1.0 in each direction, summed. ``row`` holds ``S A→B[judge]``, ``S B→A[judge]``,
    ``S_tot[judge]`` and ``transposition_invariant A→B`` / ``B→A``."""
    dirs = ((a, b), (b, a))
    return (sum(max(0.0, TARGET_S - row[f"S {s}→{d}[{judge}]"]) for s, d in dirs)
            + max(0.0, TARGET_S_TOT - row[f"S_tot[{judge}]"])
            + sum(max(0.0, row[f"transposition_invariant {s}→{d}"] - TARGET_CC) for s, d in dirs))


def pair_rank_key(row: dict, a: str, b: str, judge: str = "reference") -> tuple:
    """A pair model's rank (the larger, the better): those that meet every target first, by
    S_tot; the others by how far they are from it (:func:`pair_shortfall`)."""
    short = pair_shortfall(row, a, b, judge)
    return short == 0.0, row[f"S_tot[{judge}]"] if short == 0.0 else -short


def pair_direction_key(row: dict, s: str, t: str, judge: str = "reference") -> float:
    """How good one direction s → t of a pair model is on its own: its S less its
    transposition-invariant content change above the target."""
    return row[f"S {s}→{t}[{judge}]"] - max(0.0, row[f"transposition_invariant {s}→{t}"] - TARGET_CC)


def best_pair(rows: Sequence[dict], a: str, b: str, judge: str = "reference") -> dict:
    """The measured pair model (a row, see :func:`pair_shortfall`) that meets every target with
    the highest S_tot or, when none does, the one with the smallest shortfall."""
    return max(rows, key=lambda r: pair_rank_key(r, a, b, judge))


def best_per_direction(rows: Sequence[dict], a: str, b: str, judge: str = "reference") -> dict[str, dict]:
    """Each direction's best measured pair model on its own (:func:`pair_direction_key`):
    ``{"ab": row, "ba": row}``, whose generators :func:`midigenre.models.combine_generators` joins."""
    return {d: max(rows, key=lambda r: pair_direction_key(r, s, t, judge)) for d, s, t in (("ab", a, b), ("ba", b, a))}


#: The targets for one direction measured on whole songs (:mod:`midigenre.song_quality`)
SHARE_MARGIN = 0.25                              # share judged target ≥ 0.5 and ≥ random edit + 0.25
TARGET_HARMONY, HARMONY_MARGIN = 0.75, 0.30     # harmony ≥ 0.75 and ≥ random accompaniment + 0.3
TARGET_MELODY_TOP = 0.95
ONSET_RANGE = (0.5, 2.0)                         # onsets per phrase over the target genre's real phrases
#: the binarisation thresholds a choice on whole songs tries for each direction
SONG_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def song_passes(row: dict, judge: str) -> dict[str, bool]:
    """Which of the song targets a direction measured on whole songs
    (:func:`midigenre.song_quality.measure_direction`) meets by ``judge``: share (≥ 0.5 and ≥ the
    random edit + 0.25), harmony (≥ 0.75 and ≥ the random accompaniment + 0.3), melody (top voice
    ≥ 0.95), onsets (0.5–2× the target genre's), and ``all``."""
    j = row["judges"][judge]
    out = {
        "share": j["share"] >= TARGET_SHARE and j["share"] >= j["random_edit"] + SHARE_MARGIN,
        "harmony": row["harmony"] >= TARGET_HARMONY and row["harmony"] >= row["harmony_accompaniment"] + HARMONY_MARGIN,
        "melody": row["melody_top"] >= TARGET_MELODY_TOP,
        "onsets": ONSET_RANGE[0] <= row["onsets_ratio"] <= ONSET_RANGE[1],
    }
    out["all"] = all(out.values())
    return out


def song_margin(row: dict, judge: str) -> float:
    """How far a direction measured on whole songs is inside its targets by ``judge`` (negative:
    outside), the smallest of the share, harmony and onset margins, each scaled to its range."""
    j = row["judges"][judge]
    r = row["onsets_ratio"]
    parts = [(j["share"] - TARGET_SHARE) / TARGET_SHARE, (j["share"] - j["random_edit"] - SHARE_MARGIN) / SHARE_MARGIN,
             (row["harmony"] - TARGET_HARMONY) / (1 - TARGET_HARMONY),
             (row["harmony"] - row["harmony_accompaniment"] - HARMONY_MARGIN) / HARMONY_MARGIN,
             min(np.log(r / ONSET_RANGE[0]), np.log(ONSET_RANGE[1] / r)) / np.log(2) if r > 0 else -1.0]
    parts = [p for p in parts if np.isfinite(p)]
    return float(min(parts)) if parts else float("-inf")


def best_song_row(rows: list[dict], judge: str) -> dict:
    """The row that meets the most of :func:`song_passes`' targets by ``judge``, then the widest
    :func:`song_margin`."""
    def key(r):
        p = song_passes(r, judge)
        return (p["all"], sum(v for k, v in p.items() if k != "all"), song_margin(r, judge))

    return max(rows, key=key)


# --- measuring at thresholds --------------------------------------------------------------------

def part_phrases(sources, split, part: str, max_phrases: int | None, seed: int) -> list[np.ndarray]:
    """Per source genre, the phrases with notes of the split's ``part`` songs ("train", "valid"
    or "test"): a seeded choice of at most ``max_phrases`` (None or 0: all)."""
    from midigenre.dataset import PhraseCache

    out = []
    for k, s in enumerate(sources):
        with PhraseCache(s.path) as c:
            x = c.phrases(s.genre, split.rows(c, s.genre, part))
        x = x[x.reshape(len(x), -1).any(axis=1)]
        if max_phrases and len(x) > max_phrases:
            x = x[np.sort(np.random.default_rng([seed, k]).choice(len(x), max_phrases, replace=False))]
        out.append(x)
    return out


def threshold_grid(model, judge, x: np.ndarray, target: str, grid: Sequence[float] = GRID) -> list[dict]:
    """The transfers of phrases ``x`` into ``target`` binarised at each threshold of ``grid`` (G
    runs once): per threshold, the share ``judge`` classifies as the target and the mean
    transposition-invariant content change."""
    from midigenre.metrics import content_change_transposed

    p = model.probabilities(x, target)
    out = []
    for thr in grid:
        y = model.binarize(x, p, target, thr)
        ti = np.asarray(content_change_transposed(x, y), dtype=float)
        out.append({"threshold": float(thr), "share": float(np.mean(judge.predict(y) == judge.index(target))),
                    "transposition_invariant": float(np.nanmean(ti)) if np.isfinite(ti).any() else float("nan")})
    return out


def direction_grids(model, judge, xs: list[np.ndarray], grid: Sequence[float] = GRID) -> list[dict]:
    """Every direction of a multi-genre model at every threshold of ``grid``: one
    ``{"source", "target", "grid"}`` per (source, target ≠ source); ``xs`` per genre of the model."""
    names = model.names
    return [{"source": names[s], "target": names[t], "grid": threshold_grid(model, judge, xs[s], names[t], grid)}
            for t in range(len(names)) for s in range(len(names)) if s != t]


def song_direction_grid(model, d, judges: dict, *, target_real: np.ndarray, grid: Sequence[float] = SONG_GRID,
                        seed: int = 0, keep_source=(False, True)) -> list[dict]:
    """:func:`midigenre.song_quality.measure_direction` of ``d`` (whole songs' phrases, kept with
    probabilities: :func:`midigenre.song_quality.transfer_songs`) at each threshold of ``grid``,
    with and without keeping the source's notes (``keep_source``); each row carries its
    ``threshold`` and ``keep_source``."""
    from midigenre.song_quality import at_threshold, measure_direction

    rows = []
    for keep in keep_source:
        for t in grid:
            row = measure_direction(at_threshold(model, d, t, keep), judges, target_real=target_real,
                                    locked=model.melody_lock, settings=model.settings_for(d.source_genre), seed=seed)
            rows.append({**row, "threshold": float(t), "keep_source": bool(keep)})
    return rows


# --- choosing -----------------------------------------------------------------------------------

def target_score(directions: list[dict], target: str) -> tuple[int, float]:
    """(directions into ``target`` that meet the target at their own best threshold, the mean of
    their widest margins)."""
    into = [d for d in directions if d["target"] == target]
    met = sum(any(meets(g["share"], g["transposition_invariant"]) for g in d["grid"]) for d in into)
    best = [max(margin(g["share"], g["transposition_invariant"]) for g in d["grid"]) for d in into]
    return met, (sum(best) / len(best) if best else float("-inf"))


def choose_thresholds(directions: list[dict], fallback: dict[str, float], *, pairs: bool = True) -> tuple[dict, dict]:
    """Thresholds from direction grids (:func:`direction_grids`; each target's grids share one
    grid): per target genre, the threshold under which most directions into it meet the target,
    then the highest mean share (``fallback[t]`` where none does); with ``pairs``, per direction
    ``{source: {target: threshold}}``, the widest margin among the thresholds that meet the
    target (none for a direction no threshold makes meet it)."""
    per_target, per_pair = {}, {}
    for target in dict.fromkeys(d["target"] for d in directions):
        into = [d for d in directions if d["target"] == target]
        grid = [g["threshold"] for g in into[0]["grid"]]
        if any([g["threshold"] for g in d["grid"]] != grid for d in into):
            raise GenreError(f"the directions into {target} were measured at different thresholds")
        met = [sum(meets(d["grid"][i]["share"], d["grid"][i]["transposition_invariant"]) for d in into) for i in range(len(grid))]
        best = max(range(len(grid)), key=lambda i: (met[i], float(np.mean([d["grid"][i]["share"] for d in into]))))
        per_target[target] = grid[best] if met[best] > 0 else float(fallback[target])
        for d in into if pairs else []:
            ok = [(margin(g["share"], g["transposition_invariant"]), g["threshold"]) for g in d["grid"]
                  if meets(g["share"], g["transposition_invariant"])]
            if ok:
                per_pair.setdefault(d["source"], {})[target] = max(ok)[1]
    return per_target, per_pair


@dataclass
class Candidate:
    """One kept epoch and its directions on the validation songs."""

    folder: Path
    run: Path
    epochs_done: int
    directions: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.run.name}/{self.folder.name}"


@dataclass
class Choice:
    """What :func:`choose_model` chose: ``model`` (the folder to use with ``--model``), per target
    genre the candidate and its score, the thresholds, and the training time it took."""

    model: Path
    names: list[str]
    per_target: dict[str, Candidate]
    base: Candidate
    thresholds: dict[str, float]
    pair_thresholds: dict[str, dict[str, float]]
    trainings: list[dict]

    def met(self) -> int:
        """Directions that meet the target on the validation songs, each at its chosen threshold."""
        n = 0
        for t, c in self.per_target.items():
            for d in c.directions:
                if d["target"] == t:
                    thr = self.pair_thresholds.get(d["source"], {}).get(t, self.thresholds[t])
                    g = min(d["grid"], key=lambda g: abs(g["threshold"] - thr))
                    n += meets(g["share"], g["transposition_invariant"])
        return n

    def lines(self) -> list[str]:
        """The choice as markdown, for people."""
        k = len(self.names)
        out = ["| target | generator from | epoch | directions into it that meet the target (validation) | threshold |",
               "|---|---|---|---|---|"]
        for t, c in self.per_target.items():
            met, _ = target_score(c.directions, t)
            own = ", ".join(f"{s} {row[t]:g}" for s, row in self.pair_thresholds.items() if t in row)
            out.append(f"| → {t} | {c.run} | {c.epochs_done} | {met} of {k - 1} | {self.thresholds[t]:g}"
                       + (f" ({own})" if own else "") + " |")
        minutes = [t["seconds"] / 60 for t in self.trainings if t.get("seconds") is not None]
        out += ["", f"discriminator (genre of a song) from {self.base.name}; {self.met()} of {k * (k - 1)} directions meet "
                f"the target on the validation songs; the generators took "
                + (f"{sum(minutes):.1f} min of training" if len(minutes) == len(self.trainings) else "an unknown time")
                + " (" + "; ".join(f"{t['run']}: {t['epochs']} epochs" for t in self.trainings) + ")"]
        return out


def _kept_epochs(runs: Sequence[Path], up_to: dict[str, int], pairs: bool = False) -> list[Candidate]:
    from shared.registry import read_meta

    unknown = sorted(set(up_to) - {r.name for r in runs})
    if unknown:
        raise GenreError(f"no run named {', '.join(unknown)} among {', '.join(r.name for r in runs)}")
    out = []
    for run in runs:
        if not run.is_dir():
            raise GenreError(f"no such run folder: {run}" if not run.exists() else f"{run} is a file, not a training run folder")
        found = sorted(p for p in (run / "epochs").glob("epoch_*") if (p / "model.json").is_file())
        if _run_kind(run, found) == "cyclegan" and not pairs:
            raise GenreError(f"{run} is a CycleGAN (pair) run: choose picks among the kept epochs of a multi-genre run "
                             "(genre midi train --genre A=… --genre B=… --keep-epochs --valid-fraction 0.1)")
        if not found:
            raise GenreError(f"{run} has no kept epochs (RUN/epochs/epoch_NNN); train it with --keep-epochs")
        kinds = ("multi-genre", "cyclegan") if pairs else "multi-genre"
        kept = [Candidate(p, run, int(read_meta(p, kinds).get("epochs_done") or 0)) for p in found]
        kept = [c for c in kept if c.epochs_done <= up_to.get(run.name, c.epochs_done)]
        if not kept:
            raise GenreError(f"{run} kept no epoch up to {up_to[run.name]}")
        out += kept
    return out


def _run_kind(run: Path, found: Sequence[Path]) -> str | None:
    """The model kind a run folder trains (from a kept epoch's or its own model.json), None if unknown."""
    for folder in (*found[:1], run):
        try:
            kind = json.loads((folder / "model.json").read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(kind, str):
            return kind
    return None


def _sources(meta: dict, caches: dict[str, str] | None, folder: Path | None = None):
    from midigenre.dataset import model_caches
    from midigenre.train import GenreSource

    names, given = _names(meta), dict(caches or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise GenreError(f"the model knows {', '.join(names)}; no genre {', '.join(unknown)}")
    where = model_caches(meta, folder) | given
    for g in names:
        if g not in where:
            raise GenreError(f"the runs do not say where their {g} cache is; give --genre {g}=FILE.h5")
        if not Path(where[g]).is_file():
            raise GenreError(f"the {g} cache {where[g]} is not here; give --genre {g}=FILE.h5")
    return [GenreSource.parse_named(f"{g}={where[g]}") for g in names]


def _names(meta: dict) -> list[str]:
    """A model's genres: a multi-genre model's list, a pair's A and B."""
    g = meta["genres"]
    return [g["a"], g["b"]] if isinstance(g, dict) else list(g)


def _training_time(chosen: list[Candidate]) -> list[dict]:
    """Per training (run folder), the epochs up to the latest one taken from it and their seconds (its log.csv)."""
    latest: dict[Path, int] = {}
    for c in chosen:
        latest[c.run] = max(latest.get(c.run, 0), c.epochs_done)
    out = []
    for run, epochs in latest.items():
        seconds = None
        if (run / "log.csv").is_file():
            with open(run / "log.csv", newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= epochs]
            if len(rows) == epochs:
                seconds = round(sum(float(r["seconds"]) for r in rows), 1)
        out.append({"run": str(run), "model": str(run / "epochs" / f"epoch_{epochs:03d}"), "epochs": epochs, "seconds": seconds})
    return out


def _check_judge_songs(judge_dir: Path, split, names: list[str]) -> None:
    """The judge must not have trained on the validation or held-out songs of the runs' split."""
    from midigenre.dataset import SongSplit

    if not (judge_dir / "split.json").is_file():
        raise GenreError(f"the judge {judge_dir} has no split.json, so the songs it trained on are unknown")
    theirs = SongSplit.load(judge_dir / "split.json")
    for g in names:
        seen = {e["sha1"] for e in (theirs.genres.get(g) or {}).get("train", [])}
        ours = {e["sha1"] for part in ("valid", "test") for e in split.genres[g].get(part, [])}
        if seen & ours:
            raise GenreError(f"the judge {judge_dir} trained on {len(seen & ours)} {g} songs that the runs set aside "
                             "for validation or testing; train it on the runs' split (genre midi train-classifier --split)")


def _fingerprint(folder: Path) -> list:
    """Size and modification time of a model folder's files: a changed model is scored again."""
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(folder.iterdir()) if p.name.startswith("model.")]


def pick_targets(candidates: Sequence[Candidate], names: Sequence[str]) -> tuple[dict[str, Candidate], Candidate]:
    """Per target genre, the candidate (scored on the validation songs) whose directions into it
    meet the target most often at their own best threshold, then by the widest mean margin
    (:func:`target_score`); and the base, the candidate that meets the most directions in all
    (its discriminator names a song's genre)."""
    per_target = {t: max(candidates, key=lambda c: target_score(c.directions, t)) for t in names}
    base = max(candidates, key=lambda c: (sum(target_score(c.directions, t)[0] for t in names),
                                          sum(target_score(c.directions, t)[1] for t in names)))
    return per_target, base


def combine_choice(candidates: Sequence[Candidate], names: Sequence[str], dest: str | os.PathLike, *,
                   calibration: dict | None = None) -> Choice:
    """The model chosen from scored ``candidates`` (:func:`pick_targets`), with its thresholds
    (:func:`choose_thresholds`; a target no threshold serves keeps its generator's), written to
    ``dest`` (:func:`midigenre.stargan.combine_targets`) with ``trainings.json`` (per training, the
    epochs up to the latest one taken from it and their seconds). ``calibration``: what the scores
    were measured with, kept in ``threshold_calibration`` beside every direction's grid."""
    from midigenre.stargan import combine_targets
    from shared.atomic import write_json
    from shared.registry import read_meta

    names = list(names)
    per_target, base = pick_targets(candidates, names)
    into = [d for t, c in per_target.items() for d in c.directions if d["target"] == t]
    fallback = {t: float((read_meta(c.folder, "multi-genre").get("thresholds") or {}).get(t, 0.5)) for t, c in per_target.items()}
    thresholds, pairs = choose_thresholds(into, fallback)
    trainings = _training_time(list(per_target.values()))
    dest = Path(dest)
    combine_targets({t: c.folder for t, c in per_target.items()}, base.folder, dest, thresholds=thresholds,
                    pair_thresholds=pairs, threshold_calibration={**(calibration or {}), "directions": into})
    write_json(dest / "trainings.json", trainings)
    return Choice(dest, names, per_target, base, thresholds, pairs, trainings)


def _silent(line: str) -> None:
    return None


def choose_model(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *, classifier: str | os.PathLike | None = None,
                 caches: dict[str, str] | None = None, up_to: dict[str, int] | None = None, max_phrases: int = 200,
                 seed: int = 0, grid: Sequence[float] = GRID,
                 classifier_epochs: int = 10, device: str = "cpu", say: Callable[[str], None] | None = None) -> Choice:
    """Choose a model from the kept epochs of ``runs`` (multi-genre runs of one song split trained
    with ``--keep-epochs`` and ``--valid-fraction``) on their validation songs; write it to
    ``OUT/model``.

    ``classifier``: the judge (a K-class classifier trained on the split's training songs);
    None: train one into ``OUT/judge-reference`` (``classifier_epochs``) or reuse it there.
    ``caches``: genre → cache file where the runs' caches moved. ``up_to``: run folder name → the
    last epoch of that run to choose from (a time budget; default: all). Each epoch's scores are kept in
    ``OUT/scores`` and reused by a later call with the same judge and settings. ``say``: where
    the progress lines go (default: nowhere).
    """
    from midigenre.transfer import TransferModel
    from shared.atomic import write_json

    say = say or _silent
    runs, out = [Path(r) for r in runs], Path(out)
    candidates, names, split, split_path, sources, judge, judge_dir = _prepare(
        runs, out, classifier=classifier, caches=caches, up_to=up_to, seed=seed, classifier_epochs=classifier_epochs,
        device=device, say=say)
    xs = part_phrases(sources, split, "valid", max_phrases, seed)
    empty = [g for g, x in zip(names, xs) if not len(x)]
    if empty:
        raise GenreError(f"the validation songs of {', '.join(empty)} have no phrases with notes to choose on")
    say(f"choosing among {len(candidates)} kept epochs on the validation songs (phrases: "
        + ", ".join(f"{g} {len(x)}" for g, x in zip(names, xs)) + f"), into {out}")

    (out / "scores").mkdir(exist_ok=True)
    settings = {"judge": str(judge_dir.resolve()), "judge_files": _fingerprint(judge_dir), "max_phrases": max_phrases,
                "seed": seed, "grid": [float(v) for v in grid], "caches": {s.genre: str(Path(s.path).resolve()) for s in sources}}
    for i, c in enumerate(candidates, 1):
        path = out / "scores" / f"{c.run.name}-{c.folder.name}.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        if (saved.get("settings") == settings and saved.get("model") == str(c.folder.resolve())
                and saved.get("model_files") == _fingerprint(c.folder)):
            c.directions = saved["directions"]
        else:
            model = TransferModel.load(c.folder, kind="multi-genre", device=device)
            if model.names != names:
                raise GenreError(f"{c.folder} knows {', '.join(model.names)}, {candidates[0].folder} {', '.join(names)}")
            c.directions = direction_grids(model, judge, xs, grid)
            write_json(path, {"model": str(c.folder.resolve()), "model_files": _fingerprint(c.folder), "settings": settings,
                              "directions": c.directions})
        met = sum(target_score(c.directions, t)[0] for t in names)
        say(f"[{i}/{len(candidates)}] {c.name}: {met} of {len(names) * (len(names) - 1)} directions can meet the target")

    return combine_choice(candidates, names, out / "model",
                          calibration={"part": "valid", "judge": str(judge_dir), "grid": settings["grid"],
                                       "max_phrases": max_phrases, "seed": seed})


def _prepare(runs: list[Path], out: Path, *, classifier, caches, up_to, seed: int, classifier_epochs: int, device: str,
             say: Callable[[str], None], check: Callable | None = None, pairs: bool = False):
    """What every choice needs: the kept epochs, the genres, the split (with validation songs of
    every genre), the caches and the judge (trained on the training songs when not given);
    ``check(split, names)`` runs before the judge is trained (to fail before slow work)."""
    from midigenre.classifier import Classifier
    from midigenre.dataset import SongSplit
    from midigenre.judges import cnn_judge
    from shared.registry import read_meta

    if len({r.resolve() for r in runs}) < len(runs):
        raise GenreError("a run is given twice")
    if len({r.name for r in runs}) < len(runs):
        raise GenreError("the runs' folder names must differ (their scores are kept under them)")
    candidates = _kept_epochs(runs, dict(up_to or {}), pairs)
    meta = read_meta(candidates[0].folder, ("multi-genre", "cyclegan") if pairs else "multi-genre")
    if len({_run_kind(c.run, [c.folder]) for c in candidates}) > 1:
        raise GenreError("the runs train different kinds of model (a pair and a multi-genre model): choose among one kind")
    names = _names(meta)
    split_path = runs[0] / "split.json"
    if not split_path.is_file():
        raise GenreError(f"{runs[0]} has no split.json")
    for r in runs[1:]:
        if not (r / "split.json").is_file() or (r / "split.json").read_bytes() != split_path.read_bytes():
            raise GenreError(f"{r} was not trained on the song split of {runs[0]}; only trainings of one split form one model")
    split = SongSplit.load(split_path)
    if not any(split.genres[g].get("valid") for g in names):
        raise GenreError(f"{runs[0]} has no validation songs to choose on; train it with --valid-fraction")
    missing = [g for g in names if not split.genres[g].get("valid")]
    if missing:
        raise GenreError(f"{runs[0]} has no validation songs of {', '.join(missing)} (too few songs for its "
                         "--valid-fraction); choose needs some of every genre")
    sources = _sources(meta, caches, candidates[0].folder)
    if check is not None:
        check(split, names)
    out.mkdir(parents=True, exist_ok=True)

    judge_dir = Path(classifier) if classifier else out / "judge-reference"
    if classifier:
        if not (judge_dir / "model.json").is_file():
            raise GenreError(f"{judge_dir} is not a classifier folder")
        judge = Classifier.load(judge_dir)
    else:
        judge = cnn_judge({s.genre: s.path for s in sources}, split_path, judge_dir, seed=seed, epochs=classifier_epochs,
                          device=device, say=say)
    if not set(names) <= set(judge.genres) or (not pairs and sorted(judge.genres) != sorted(names)):
        raise GenreError(f"the judge {judge_dir} knows {', '.join(judge.genres)}, the runs {', '.join(names)}")
    _check_judge_songs(judge_dir, split, names)
    return candidates, names, split, split_path, sources, judge, judge_dir


def choose_song_model(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *, data: Sequence[str | os.PathLike],
                      classifier: str | os.PathLike | None = None, caches: dict[str, str] | None = None,
                      up_to: dict[str, int] | None = None, songs: int = 0, seed: int = 0, classifier_epochs: int = 10,
                      device: str = "cpu", say: Callable[[str], None] | None = None) -> dict:
    """Choose a model that keeps the song (melody on top, harmony kept, onsets of the target genre,
    share judged target beyond random edits) from the kept epochs of ``runs`` (multi-genre or pair runs),
    on whole validation songs found under ``data`` (by name and content hash): every epoch at
    every threshold, with and without keeping the source's notes, per target genre, by the judge
    (:func:`choose_by_song`). ``songs``: at most this many validation songs per genre (0: all).
    Writes ``OUT/model`` and ``OUT/choice.json``; returns the choice. ``say``: where the progress
    lines go (default: nowhere)."""
    from midigenre.song_quality import split_songs
    from shared.atomic import write_json

    say = say or _silent
    runs, out = [Path(r) for r in runs], Path(out)
    found: dict[str, list] = {}

    def find_songs(split, names):
        found.update({g: split_songs(split, g, "valid", list(data)) for g in names})
        missing = [g for g in names if not found[g]]
        if missing:
            raise GenreError(f"none of the validation songs of {', '.join(missing)} is under {', '.join(map(str, data))} "
                             "(the split names them; give the folder that holds them with --data)")

    candidates, names, split, _, _, judge, judge_dir = _prepare(
        runs, out, classifier=classifier, caches=caches, up_to=up_to, seed=seed, classifier_epochs=classifier_epochs,
        device=device, say=say, check=find_songs, pairs=True)
    chosen_songs = {g: v[:songs] if songs else v for g, v in found.items()}
    say(f"choosing among {len(candidates)} kept epochs on whole validation songs ("
        + ", ".join(f"{g} {len(v)}" for g, v in chosen_songs.items()) + f"), judge {judge_dir}, into {out}")
    res = choose_by_song([c.folder for c in candidates], out / "model", songs=chosen_songs, judge=judge,
                         progress=lambda *a: say(f"  {a[-1]}"))
    write_json(out / "choice.json", json.loads(json.dumps(
        {"model": res["model"], "judge": str(judge_dir), "chosen": res["chosen"],
         "songs": {g: [p.name for p in v] for g, v in chosen_songs.items()}}, default=float)))
    return res


def choose_by_song(candidates: Sequence[str | os.PathLike], out: str | os.PathLike, *, songs: dict[str, list], judge,
                   judge_name: str = "reference", melody: str = "auto", grid: Sequence[float] = SONG_GRID,
                   progress=None) -> dict:
    """Choose a model from ``candidates`` (epoch, run or model folders of one training, or of
    trainings sharing genres, settings and split) on ``songs`` ({genre: validation song paths})
    with ``judge``: per direction every candidate at every threshold of ``grid``
    (:func:`song_direction_grid`), with and without keeping the source's notes, each row scored by
    :func:`song_passes` and :func:`song_margin`; a pair model takes each direction's best
    generator, threshold and keep-source (:func:`best_song_row`,
    :func:`midigenre.models.combine_generators`), a multi-genre model each target genre's best
    generator and keep-source (most directions into it meeting every target, then the widest mean
    margin) with a threshold per direction (:func:`midigenre.stargan.combine_targets`). Writes the
    model to ``out`` and returns ``{"model": path, "rows": {candidate: [rows]}, "chosen": …}``.
    """
    from midigenre.song_quality import real_phrases, transfer_songs
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
                real[g] = real_phrases(model, songs[g], g)
        rows = []
        for s in model.names:
            for t in model.names:
                if s == t or s not in songs:
                    continue
                d = transfer_songs(model, songs[s], s, t, melody=melody, keep_probabilities=True)
                for r in song_direction_grid(model, d, judges, target_real=real[t], grid=grid):
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
        best = {(s, t): best_song_row([r for r in every if (r["source"], r["target"]) == (s, t)], judge_name)
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
                best = [best_song_row([r for r in table[c] if r["target"] == t and r["source"] == s
                                       and r.get("keep_source", False) == k], judge_name)
                        for s in model.names if s != t and s in songs]
                return (sum(song_passes(r, judge_name)["all"] for r in best),
                        float(np.mean([song_margin(r, judge_name) for r in best])), best)

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
