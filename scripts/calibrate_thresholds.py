"""Choose a multi-genre model's binarisation thresholds on its VALIDATION songs.

G's output is a probability per cell; a transfer's notes are the cells above the direction's
threshold (0.5 by default). On the validation songs of the run's split (the phrases of every
genre sent to every other), judged by a K-class classifier trained on the training songs, this
script tries each threshold of ``--grid`` and chooses two things:

* **per target genre** t (``thresholds`` in model.json, used when the source genre is unknown):
  the threshold under which most directions into t meet the target of issue 12 (share
  classified as t > 0.5 and transposition-invariant content change ≤ 1.2), then the highest
  mean share among those; where none meets it, the model's own threshold stays;
* **per direction** s → t (``pair_thresholds``, used whenever the source genre is known or
  told, which ``genre midi transfer`` always does), unless ``--no-pairs``: among the thresholds
  under which s → t meets the target, the one with the widest margin, the larger of
  min((share − 0.5) / 0.5, (1.2 − TI) / 1.2); a direction no threshold makes meet the target
  keeps its target genre's threshold.

G runs once per direction; the thresholds are then cheap to try (:mod:`midigenre.choose`,
which ``genre midi choose`` runs on the kept epochs of a training; this script calibrates any
multi-genre model, e.g. one combined by ``scripts/combine_targets.py``). The held-out songs are not
read: score the calibrated copy with ``benchmarks/multi_genre.py`` (its feature judge was not
used here).

    python scripts/calibrate_thresholds.py runs/four --classifier runs/four-eval/judge-reference \
        --out runs/four-calibrated

Writes a copy of the model into ``--out`` (with the run's split.json, log.csv and trainings.json) whose
model.json has the chosen thresholds and ``threshold_calibration`` (every direction at every
threshold), and prints them (* where a direction meets the target).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from midigenre.choose import GRID, choose_thresholds, direction_grids, meets, part_phrases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a multi-genre run or model folder with its split.json")
    ap.add_argument("--classifier", type=Path, required=True, help="a K-class classifier trained on the split's training songs")
    ap.add_argument("--out", type=Path, required=True, help="folder for the calibrated copy")
    ap.add_argument("--grid", default=",".join(f"{v:.2f}" for v in GRID),
                    help="thresholds to try (comma-separated; default 0.20, 0.25, …, 0.90)")
    ap.add_argument("--no-pairs", action="store_true", help="only one threshold per target genre")
    ap.add_argument("--max-phrases", type=int, default=200, help="validation phrases per genre at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from midigenre.classifier import Classifier
    from midigenre.dataset import SongSplit, model_caches
    from midigenre.train import GenreSource
    from midigenre.transfer import TransferModel
    from shared.registry import model_folder, resave_model

    torch.set_num_threads(args.threads)
    grid = [float(v) for v in args.grid.split(",")]
    model = TransferModel.load(args.model, kind="multi-genre")
    names = model.names
    caches = model_caches(model.meta, model.folder)
    if sorted(caches) != sorted(names):
        raise SystemExit(f"{args.model} does not say where its caches are (run it on the run's kept epoch)")
    sources = [GenreSource.parse_named(f"{g}={caches[g]}") for g in names]
    folder = model_folder(args.model)
    split = SongSplit.load(folder / "split.json")
    if not all(split.genres[g].get("valid") for g in names):
        raise SystemExit("the run has no validation songs (train it with --valid-fraction)")
    judge = Classifier.load(args.classifier)
    if sorted(judge.genres) != sorted(names):
        raise SystemExit(f"the classifier knows {judge.genres}, the model {names}")
    xs = part_phrases(sources, split, "valid", args.max_phrases, args.seed)

    directions = direction_grids(model, judge, xs, grid)
    for d in directions:
        print(f"{d['source']:>10s} → {d['target']:10s} " + " ".join(
            f"{g['threshold']:.2f}: {g['share']:.2f}/{g['transposition_invariant']:.2f}"
            + ("*" if meets(g["share"], g["transposition_invariant"]) else "") for g in d["grid"]), flush=True)
    chosen, pairs = choose_thresholds(directions, model.thresholds, pairs=not args.no_pairs)
    print("chosen on the validation songs, per target: " + ", ".join(f"{g} {v:.2f}" for g, v in chosen.items()))
    if pairs:
        print("per direction: " + ", ".join(f"{s} → {t} {v:.2f}" for s, row in pairs.items() for t, v in row.items()))

    resave_model(folder, args.out, thresholds=chosen, pair_thresholds=pairs,
                 threshold_calibration={"part": "valid", "judge": str(args.classifier), "grid": grid,
                                        "directions": directions, "pairs": not args.no_pairs})
    for name in ("split.json", "log.csv", "config.json", "trainings.json"):
        if (folder / name).exists():
            shutil.copyfile(folder / name, args.out / name)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
