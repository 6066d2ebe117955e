"""The comparison of Brunner et al. (2019), Table 1 / Fig. 1, on our data: base, SN, SA, SN+SA.

Trains four CycleGANs for one genre pair with the same preset, budget, seed and song-level
split, trains (or loads) the genre classifier on the same split, evaluates every model on the
held-out songs and prints S_tot and content change per model beside the paper's numbers.

    python benchmarks/ablation.py --a jazz.h5 --b classical.h5 --preset small --epochs 5 --out runs/ablation
    python benchmarks/ablation.py ... --classifier clf/        # reuse a trained classifier

The models train one after the other (``--threads`` each); a run folder that already holds a
finished model is reused, so an interrupted ablation continues where it stopped. Writes
``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# The paper's numbers for jazz↔classical (J-C), its "Baseline" is the full model of 2018.
PAPER = {"base": (57.64, 0.92), "SN": (63.98, 0.52), "SA": (63.56, 2.11), "SN+SA": (66.76, 2.19)}
MODELS = {"base": dict(), "SN": dict(spectral_norm=True), "SA": dict(self_attention=True),
          "SN+SA": dict(spectral_norm=True, self_attention=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="cache of genre A (FILE.h5[:GENRE])")
    ap.add_argument("--b", required=True, help="cache of genre B")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--decay-after", type=int, default=None, help="epochs before the linear decay (default: half)")
    ap.add_argument("--sigma-d", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(MODELS), help="which of base,SN,SA,SN+SA")
    ap.add_argument("--classifier", type=Path, help="a trained classifier folder (default: train one into OUT/classifier)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    from midigenre.classifier import Classifier, ClassifierConfig, train_classifier
    from midigenre.evaluate import evaluate_transfer, heldout_phrases
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig
    from midigenre.transfer import TransferModel

    if args.threads:
        torch.set_num_threads(args.threads)
    a, b = GenreSource.parse(args.a), GenreSource.parse(args.b)
    args.out.mkdir(parents=True, exist_ok=True)
    clf_dir = args.classifier or args.out / "classifier"
    if not (clf_dir / "model.json").exists():
        print(f"training the classifier into {clf_dir} ...", flush=True)
        rep = train_classifier([a, b], clf_dir, ClassifierConfig(seed=args.seed))
        print(f"  held-out accuracy {rep['accuracy']:.1%}", flush=True)
    clf = Classifier.load(clf_dir)

    results = {}
    for name in args.models.split(","):
        run = args.out / name.replace("+", "_")
        cfg = TrainConfig(preset=args.preset, epochs=args.epochs, sigma_d=args.sigma_d, seed=args.seed,
                          decay_after=args.decay_after if args.decay_after is not None else args.epochs // 2,
                          **MODELS[name])
        t0 = time.perf_counter()
        meta = run / "model.json"
        saved = json.loads(meta.read_text()) if meta.exists() else {}
        done = saved.get("epochs_done") == args.epochs and saved.get("train") == cfg.to_dict()
        if not done:
            trainer = CycleGANTask(a, b, run, cfg)
            if (run / "checkpoint.pt").exists():
                trainer.resume()
            print(f"training {name} ({args.preset}, {args.epochs} epochs, {trainer.steps_per_epoch()} steps/epoch) ...", flush=True)
            trainer.fit(on_epoch=lambda e, row: print(f"  {name} epoch {e}: {row['seconds']:.0f} s", flush=True))
        model = TransferModel.load(run)
        x_a, x_b, what = heldout_phrases(run, model)
        res = evaluate_transfer(model, clf, x_a, x_b)
        res["train_minutes"] = round((time.perf_counter() - t0) / 60, 1) if not done else None
        results[name] = res
        print(f"  {name}: S_tot {res['S_tot']:.1%}, content change {res['content_change']['mean']:.2f}", flush=True)

    ga, gb = a.genre, b.genre
    lines = [f"{ga} ↔ {gb}, preset {args.preset}, {args.epochs} epochs, σ_D {args.sigma_d}, seed {args.seed}; "
             f"classifier accuracy {clf.meta['metrics']['accuracy']:.1%} on held-out songs",
             "", "| model | S_tot (ours) | content change (ours) | S_tot (paper, J-C) | content change (paper) |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        p = PAPER[name]
        lines.append(f"| {name} | {r['S_tot']:.1%} | {r['content_change']['mean']:.2f} ± {r['content_change']['std']:.2f} "
                     f"| {p[0]:.2f} % | {p[1]:.2f} |")
    table = "\n".join(lines)
    print("\n" + table)
    (args.out / "results.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
