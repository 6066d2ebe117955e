"""Accuracy of every trainable audio backend on one data set and split, beside the papers.

Trains each (backend, segment length) on the same data set and the same seeded split by
song (or the data set's official split), and prints test accuracy per segment and per clip
(segment probabilities averaged), the majority-class baseline, parameters, training time,
and the number the source paper reports (GTZAN, 10 genres for Mongelli et al.; GTZAN, 4 genres and
1 s segments for the style-encodings paper — other data, so a context, not a target).

Default: the rendered four-genre set of ``genre audio render-dataset`` (../shared/data MIDI,
FluidSynth timbres). Point ``--dataset`` at GTZAN or FMA-small (with ``--kind``) to compare
with the papers on their own data.

    python benchmarks/backends.py --dataset audio/ --runs cnn:3,cnn:5,cnn:10,resnet18:5,fusion:5,autoencoder:1,mlp:1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

PAPER = {  # (backend, segment seconds) -> reported test accuracy and where
    ("cnn", 3.0): "0.70 (GTZAN)", ("cnn", 5.0): "0.73 (GTZAN)", ("cnn", 10.0): "0.76 (GTZAN)",
    ("resnet18", 3.0): "0.798 (GTZAN)", ("resnet18", 5.0): "0.806 (GTZAN)", ("resnet18", 10.0): "0.72 (GTZAN)",
    ("fusion", 5.0): "0.804 (GTZAN)",
    ("autoencoder", 1.0): "0.653 (GTZAN 4 genres)", ("mlp", 1.0): "0.364 (GTZAN 4 genres)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--kind", default="auto")
    ap.add_argument("--gtzan-split", default="random")
    ap.add_argument("--runs", default="cnn:3,cnn:5,cnn:10,resnet18:5,fusion:5,autoencoder:1,mlp:1",
                    help="comma-separated backend:segment_seconds[:epochs[:image_size]]")
    ap.add_argument("--out", default="runs/backends", help="folder for the trained models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args()

    import torch

    from audiogenre.backends import n_parameters
    from audiogenre.classify import BackendTrainConfig, train_backend_classifier
    from audiogenre.datasets import open_dataset

    torch.set_num_threads(args.threads)
    ds = open_dataset(args.dataset, args.kind, gtzan_split=args.gtzan_split)
    test = ds.splits(seed=args.seed)["test"]
    counts = np.bincount([ds.genres.index(it.genre) for it in test], minlength=len(ds.genres))
    majority = counts.max() / counts.sum()
    print(f"{ds.kind} data set {args.dataset}: {len(ds.items)} clips, genres {', '.join(ds.genres)}; "
          f"test {len(test)} clips; majority-class baseline {majority:.1%}", flush=True)
    rows = []
    for spec in args.runs.split(","):
        parts = spec.split(":")
        kind, seg = parts[0], float(parts[1])
        epochs = int(parts[2]) if len(parts) > 2 and parts[2] else None
        size = int(parts[3]) if len(parts) > 3 else None
        out = Path(args.out) / (f"{kind}-{seg:g}s" + (f"-{size}px" if size else ""))
        t0 = time.perf_counter()
        cfg = BackendTrainConfig(backend=kind, segment=seg, epochs=epochs, seed=args.seed, image_size=size)
        rep = train_backend_classifier(ds, out, cfg, device="cpu", echo=lambda s: print("   ", s, flush=True),
                                       on_epoch=lambda row: print(f"    epoch {row['epoch']}: train loss {row['train_loss']:.3f}"
                                                                  + (f", valid loss {row['valid_loss']:.3f}" if "valid_loss" in row else ""),
                                                                  flush=True))
        from audiogenre.models import AudioClassifier

        model, meta = AudioClassifier.load(out)
        row = {"backend": kind + (f" ({size}×{size})" if size else ""), "segment": seg, "accuracy": rep["accuracy"], "clip_accuracy": rep["clip_accuracy"],
               "n_segments": rep["n"], "n_clips": rep["n_clips"], "epochs": meta["train"]["best_epoch"],
               "params": n_parameters(model), "seconds": time.perf_counter() - t0, "paper": PAPER.get((kind, seg), "—")}
        rows.append(row)
        print(f"{kind:<12}{seg:>5g} s  test {row['accuracy']:.1%} ({row['n_segments']} segments), clips "
              f"{row['clip_accuracy']:.1%}  |  {row['params'] / 1e6:.2f} M params, {row['seconds']:.0f} s  |  paper {row['paper']}",
              flush=True)
    print("\n| backend | segment | test accuracy (segments) | per clip | majority baseline | parameters | train time | paper |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['segment']:g} s | {r['accuracy']:.1%} (n={r['n_segments']}) | {r['clip_accuracy']:.1%} "
              f"(n={r['n_clips']}) | {majority:.1%} | {r['params'] / 1e6:.2f} M | {r['seconds'] / 60:.1f} min | {r['paper']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"majority": majority, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
