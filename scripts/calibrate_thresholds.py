"""Choose a multi-genre model's binarisation threshold per target genre on its VALIDATION songs.

G's output is a probability per cell; a transfer's notes are the cells above the target genre's
threshold (0.5 by default, ``thresholds`` in model.json). This script tries each threshold of
``--grid`` for each target genre t on the validation songs of the run's split (the phrases of
every other genre sent to t), judged by a K-class classifier trained on the training songs, and
keeps per target the threshold under which most directions into t meet the target of issue 12
(share classified as t > 0.5 and transposition-invariant content change ≤ 1.2), then the
highest mean share among those meeting it; where no threshold makes any direction meet it, the
model's own threshold stays. The held-out songs are not read: score the
calibrated copy with ``benchmarks/multi_genre.py`` (its feature judge was not used here).

    python scripts/calibrate_thresholds.py runs/four --classifier runs/four-eval/judge-reference \
        --out runs/four-calibrated

Writes a copy of the model into ``--out`` (with the run's split.json, log.csv and trainings.json) whose
model.json has the chosen thresholds and ``threshold_calibration`` (the grid's table), and
prints the table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from multi_genre import TARGET_SHARE, TARGET_TI  # noqa: E402  (issue 12's target, defined once)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a multi-genre run or model folder with its split.json")
    ap.add_argument("--classifier", type=Path, required=True, help="a K-class classifier trained on the split's training songs")
    ap.add_argument("--out", type=Path, required=True, help="folder for the calibrated copy")
    ap.add_argument("--grid", default="0.3,0.4,0.5,0.6,0.7,0.8", help="thresholds to try (comma-separated)")
    ap.add_argument("--max-phrases", type=int, default=200, help="validation phrases per genre at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from midigenre.classifier import Classifier
    from midigenre.dataset import SongSplit
    from midigenre.metrics import content_change_transposed
    from midigenre.train import GenreSource
    from midigenre.transfer import TransferModel
    from multi_genre import heldout
    from shared.registry import model_folder, resave_model

    torch.set_num_threads(args.threads)
    grid = [float(v) for v in args.grid.split(",")]
    model = TransferModel.load(args.model, kind="multi-genre")
    names = model.names
    sources = [GenreSource.parse_named(f"{d['genre']}={d['cache']}") for d in model.meta["data"]["genres"]]
    sources = [next(s for s in sources if s.genre == g) for g in names]
    folder = model_folder(args.model)
    split = SongSplit.load(folder / "split.json")
    if not all(split.genres[g].get("valid") for g in names):
        raise SystemExit("the run has no validation songs (train it with --valid-fraction)")
    judge = Classifier.load(args.classifier)
    if sorted(judge.genres) != sorted(names):
        raise SystemExit(f"the classifier knows {judge.genres}, the model {names}")
    xs = heldout(sources, split, "valid", args.max_phrases, args.seed)

    chosen, table = {}, {}
    for t, target in enumerate(names):
        rows = []
        for thr in grid:
            model.thresholds[target] = thr
            shares, tis = [], []
            for s, x in enumerate(xs):
                if s == t:
                    continue
                y, _ = model.transfer_phrases(x, target, source=names[s])
                shares.append(float(np.mean(judge.predict(y) == judge.index(target))))
                tis.append(float(np.nanmean(np.asarray(content_change_transposed(x, y), dtype=float))))
            met = sum(sh > TARGET_SHARE and ti <= TARGET_TI for sh, ti in zip(shares, tis))
            rows.append({"threshold": thr, "met": met, "mean_share": float(np.mean(shares)), "shares": shares,
                         "transposition_invariant": tis})
            print(f"→ {target:10s} threshold {thr:.2f}: {met} of {len(shares)} meet; shares "
                  + " ".join(f"{v:.2f}" for v in shares) + "; TI " + " ".join(f"{v:.2f}" for v in tis), flush=True)
        best = max(rows, key=lambda r: (r["met"], r["mean_share"]))
        chosen[target] = best["threshold"] if best["met"] > 0 else float(model.meta.get("thresholds", {}).get(target, 0.5))
        model.thresholds[target] = best["threshold"]
        table[target] = rows
    print("chosen on the validation songs: " + ", ".join(f"{g} {v:.2f}" for g, v in chosen.items()))

    resave_model(folder, args.out, thresholds=chosen,
                 threshold_calibration={"part": "valid", "judge": str(args.classifier), "grid": grid, "table": table})
    for name in ("split.json", "log.csv", "config.json", "trainings.json"):
        if (folder / name).exists():
            shutil.copyfile(folder / name, args.out / name)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
