"""Copy a trained run's model into data/models/NAME and write its model card.

    python scripts/ship_model.py /tmp/runs/jc data/models/jazz-classical [--command "..."]

The card gives the data the model saw (caches, genres, songs and phrases per split), its
settings, the training time and throughput from log.csv, and the content change of its
transfers on the held-out songs of its split (both directions, mean ± std over phrases).
Transfer strength (S_tot) needs the genre classifier of the evaluation work and is added then.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np


def heldout_content_change(run: Path) -> dict:
    from midigenre.dataset import PhraseCache, SongSplit
    from midigenre.metrics import content_added, content_change, content_change_transposed, content_removed
    from midigenre.transfer import TransferModel

    model = TransferModel.load(run)
    cfg = json.loads((run / "config.json").read_text())
    split = SongSplit.load(run / "split.json")
    out = {}
    for key, other in (("a", "b"), ("b", "a")):
        src = cfg["data"][key]
        with PhraseCache(src["cache"]) as c:
            rows = split.rows(c, src["genre"], "test")
            x = c.phrases(src["genre"], rows)
        target = model.genres[other]
        y, z = model.transfer_phrases(x, target, cycle=True)
        stats = {}
        for name, fn in (("content_change", content_change), ("added", content_added), ("removed", content_removed),
                         ("transposition_invariant", content_change_transposed)):
            v = fn(x, y)
            stats[name] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v))}
        stats["cycle_content_change"] = {"mean": float(np.nanmean(content_change(x, z))), "std": float(np.nanstd(content_change(x, z)))}
        stats["notes_per_phrase"] = {"source": float(x.sum(axis=(1, 2)).mean()), "transferred": float(y.sum(axis=(1, 2)).mean())}
        out[f"{src['genre']} → {target}"] = {"phrases": int(len(x)), "songs": len(split.genres[src["genre"]]["test"]), **stats}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--command", default="", help="the training command, for the card")
    ap.add_argument("--prepare", default="", help="the prepare commands, for the card")
    args = ap.parse_args()

    from shared.atomic import write_json

    meta = json.loads((args.run / "model.json").read_text())
    cfg = json.loads((args.run / "config.json").read_text())
    with open(args.run / "log.csv") as fh:
        log = list(csv.DictReader(fh))
    seconds = sum(float(r["seconds"]) for r in log)
    content = heldout_content_change(args.run)
    meta["metrics"] = {"heldout": content, "training_seconds": round(seconds, 1), "epochs": len(log)}
    args.dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "model.safetensors", args.dest / "model.safetensors")
    shutil.copyfile(args.run / "split.json", args.dest / "split.json")
    write_json(args.dest / "model.json", meta)

    d, t, m = cfg["data"], cfg["train"], cfg["model"]
    lines = [
        f"# Model card: {meta['genres']['a']} ↔ {meta['genres']['b']} CycleGAN",
        "",
        f"Genre transfer between **{meta['genres']['a']}** (A) and **{meta['genres']['b']}** (B) on 64×84 piano-roll "
        "phrases (4 bars × 16 steps, MIDI 24–107), after Brunner et al. (2018, 2019). Use it with "
        f"`genre midi transfer SONG.mid --to {meta['genres']['b']} -o OUT.mid` (this is the default model).",
        "",
        "## Data",
        f"- A: `{meta['genres']['a']}` from the cache {Path(d['a']['cache']).name}; B: `{meta['genres']['b']}` from {Path(d['b']['cache']).name}.",
        f"- Prepared with: `{args.prepare}`" if args.prepare else "",
        f"- Piano-roll settings: {json.dumps(cfg['roll_settings'])}.",
        f"- Song-level split (seed {t['seed']}, {t['test_fraction']:.0%} of songs held out): training songs "
        f"{d['train_songs']}, held-out songs {d['test_songs']}; {d['train_phrases_per_genre']} training phrases per genre "
        "after downsampling the larger genre, as in the reference. `split.json` lists the songs.",
        "",
        "## Settings",
        f"- Architecture: preset `{t['preset']}` ({json.dumps(m)}), variant `{t['variant']}`.",
        f"- Training: {t['epochs']} epochs, batch {t['batch_size']}, Adam lr {t['lr']} (β1 {t['beta1']}), constant for "
        f"{t['decay_after']} epochs then linear decay to 0, σ_D {t['sigma_d']}, image pool {t['pool_size']}, "
        f"loss weights {json.dumps(t['lambdas'])}, seed {t['seed']}.",
        f"- Command: `{args.command}`" if args.command else "",
        f"- Trained on {cfg['device']} with genre-transfer {cfg['package_version']}, torch {cfg['torch_version']}: "
        f"{seconds / 60:.1f} min for {len(log)} epochs ({np.mean([float(r['phrases_per_s']) for r in log]):.1f} phrases/s).",
        "",
        "## Held-out results",
        "Content change on the phrases of the held-out songs (mean ± std over phrases; 0 = unchanged; see "
        "`midigenre.metrics`). Transfer strength S_tot needs the genre classifier and is added with the evaluation work.",
        "",
        "| direction | phrases | content change | added | removed | transposition-invariant | cycled back | notes/phrase (source → transferred) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in content.items():
        f = lambda s: f"{v[s]['mean']:.2f} ± {v[s]['std']:.2f}"  # noqa: E731
        lines.append(f"| {k} | {v['phrases']} | {f('content_change')} | {f('added')} | {f('removed')} | "
                     f"{f('transposition_invariant')} | {f('cycle_content_change')} | "
                     f"{v['notes_per_phrase']['source']:.0f} → {v['notes_per_phrase']['transferred']:.0f} |")
    lines += [
        "",
        "Reference numbers (Brunner et al. 2019, their data and the paper preset): content change 0.92 (baseline), "
        "0.52 (SN), 2.11 (SA), 2.19 (SN+SA).",
        "",
        "## Limits",
        "- Trained on the small CPU preset and a few thousand phrases per genre; it learns texture and register more "
        "than style. The output is a binary piano roll on one piano track at velocity 100.",
        "- Songs must be in 4/4 (or read as 4/4 with `--meter assume-4/4`).",
    ]
    (args.dest / "README.md").write_text("\n".join(line for line in lines if line is not None) + "\n")
    print(json.dumps(content, indent=1))


if __name__ == "__main__":
    main()
