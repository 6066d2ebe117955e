"""Copy a trained multi-genre run into data/models/NAME (registry format) with its model card.

    python scripts/ship_multi_model.py runs/four data/models/four-genres \
        --results runs/four-eval/results.json --command "genre midi train --genre …" --prepare "…"

The card gives the data (genres, songs and phrases per split), the settings, the training time
from log.csv, and the K × K tables and per-direction content change of
``benchmarks/multi_genre.py`` (its ``results.json``, measured on the held-out songs).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path


def _training(path: str) -> str:
    """The run a model folder belongs to: RUN for RUN/epochs/epoch_NNN, else the folder's name."""
    p = Path(path)
    return p.parent.parent.name if p.parent.name == "epochs" else p.name


def table(tab: list[list[float]], names: list[str]) -> list[str]:
    lines = ["| source ↓ / target → | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i, g in enumerate(names):
        cells = [(f"({tab[i][j]:.2f})" if i == j else f"**{tab[i][j]:.2f}**" if tab[i][j] > 0.5 else f"{tab[i][j]:.2f}")
                 for j in range(len(names))]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--results", type=Path, required=True, help="results.json of benchmarks/multi_genre.py for this run")
    ap.add_argument("--command", action="append", default=[], help="the training command, for the card (once per "
                                                                    "training for a model combined from several)")
    ap.add_argument("--prepare", default="", help="the prepare commands, for the card")
    ap.add_argument("--notes", default="", help="markdown for the card's Limits section")
    args = ap.parse_args()

    from shared.registry import read_meta, resave_model

    res = json.loads(args.results.read_text())
    meta = read_meta(args.run, "multi-genre")
    if res.get("epochs_done") != meta.get("epochs_done"):
        raise SystemExit(f"{args.results} was measured on epoch {res.get('epochs_done')}, the run is at {meta.get('epochs_done')}")
    trainings_file = args.run / "trainings.json"  # a chosen model (genre midi choose, scripts/combine_targets.py): per training
    trainings = json.loads(trainings_file.read_text()) if trainings_file.is_file() else None
    if trainings is not None and all(t.get("seconds") is not None for t in trainings):
        seconds, n_epochs = sum(t["seconds"] for t in trainings), sum(t["epochs"] for t in trainings)
    else:
        with open(args.run / "log.csv") as fh:
            log = list(csv.DictReader(fh))
        seconds, n_epochs = sum(float(r["seconds"]) for r in log), len(log)
    args.dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "split.json", args.dest / "split.json")
    metrics = {"heldout": {"tables": res["tables"], "directions": res["directions"]}, "training_seconds": round(seconds, 1),
               "epochs": n_epochs, **({"trainings": trainings} if trainings and len(trainings) > 1 else {})}
    meta = read_meta(resave_model(args.run, args.dest, metrics=metrics))
    names, t, d = res["genres"], meta["train"], meta["data"]
    rows = res["directions"]
    ok = [r for r in rows if r["share_target[reference]"] > 0.5 and r["transposition_invariant"] <= 1.2]
    lines = [
        f"# Model card: {' / '.join(names)} multi-genre generator",
        "",
        f"One generator G(x, target) for every pair of **{', '.join(names)}** on 64×84 piano-roll phrases (4 bars × 16 "
        "steps, MIDI 24–107): StarGAN-style (Choi et al. 2018) on the CycleGAN networks of Brunner et al., with a "
        "genre classifier (the discriminator's genre head or a critic of its own; it names a song's source genre when `--from` is not given). "
        "Use it "
        f"with `genre midi transfer SONG.mid --model {args.dest.name} --to {names[-1]} -o OUT.mid [--from {names[0]}]`.",
        "",
        "## Data",
        f"- Genres and caches: " + "; ".join(f"`{g['genre']}` from {Path(g['cache']).name}" for g in d["genres"]) + ".",
        f"- Prepared with: `{args.prepare}`" if args.prepare else "",
        f"- Song-level split (seed {t['seed']}, {t['test_fraction']:.0%} of each genre's songs held out, "
        f"{t.get('valid_fraction', 0):.0%} of the rest set aside for validation); `split.json` lists the songs. "
        "Training phrases: " + ", ".join(f"{g} {n}" for g, n in d.get("train_phrases", {}).items()) + "; every batch "
        "holds the genres evenly (larger genres show new phrases each epoch, nothing is thrown away).",
        "",
        "## Settings",
        f"- Architecture: preset `{t['preset']}` ({json.dumps(meta['config'])}).",
        f"- Training: {t['epochs']} epochs, batch {t['batch_size']}, Adam lr {t['lr']} (β1 {t['beta1']}), constant for "
        f"{t['decay_after']} epochs then linear decay to 0, σ_D {t['sigma_d']}, identity {t.get('identity')}, genre loss "
        f"{t.get('genre_loss')} with the `{t.get('critic', 'shared')}` critic, conditioning "
        f"`{t.get('conditioning', 'scale-shift')}`, seed {t['seed']}.",
        *[f"- Command: `{c}`" for c in args.command],
        ("- Generators: one per target genre, each from the epoch that did best into it on the validation songs "
         "(`genre midi choose`, `midigenre.choose`): " + "; ".join(f"→ {g['genre']} after epoch {g['epochs_done']}"
                                                         + (f" of {_training(g['from'])}" if trainings and len(trainings) > 1 else "")
                                                         + (" (pitch plane)" if (g.get("config") or {}).get("pitch_plane") else "")
                                                         for g in meta["per_target_generators"]) + "."
         if meta.get("per_target_generators") else ""),
        ("- Binarisation thresholds, chosen on the validation songs: per target "
         + ", ".join(f"{g} {v:g}" for g, v in (meta.get("thresholds") or {}).items())
         + ("; per direction (used when the source genre is known or told, as `genre midi transfer` always does): "
            + ", ".join(f"{s} → {g} {v:g}" for s, row in meta["pair_thresholds"].items() for g, v in row.items())
            if meta.get("pair_thresholds") else "") + "." if meta.get("threshold_calibration") else ""),
        f"- Trained on the CPU with genre-transfer {meta['package_version']}, torch {meta['torch_version']}: "
        f"{seconds / 60:.1f} min for {n_epochs} epochs"
        + (" in " + str(len(trainings)) + " trainings (" + "; ".join(f"{_training(t['model'])}: {t['epochs']} epochs, "
                                                                      f"{t['seconds'] / 60:.1f} min" for t in trainings) + ")"
           if trainings and len(trainings) > 1 else "") + ".",
        "",
        "## Held-out results (`benchmarks/multi_genre.py`)",
        f"Held-out phrases per genre (at most 600, a seeded choice): "
        + ", ".join(f"{g} {n}" for g, n in res["held_out_phrases"].items()) + ". Two judges trained on the training "
        "songs only: the reference classifier (CNN of Brunner et al., 4 classes) and a feature judge (an MLP over "
        "musical statistics, another seed). Cell (source, target): the share of transferred phrases the judge "
        "classifies as the target; in brackets on the diagonal, the judge's accuracy on the real phrases.",
        "",
        f"**{len(ok)} of {len(rows)} directions** move a majority of the held-out phrases to the target (reference "
        "judge) with transposition-invariant content change ≤ 1.2.",
        "",
        "Reference judge:",
        "",
        *table(res["tables"]["reference"], names),
        "",
        "Feature judge:",
        "",
        *table(res["tables"]["features"], names),
        "",
        "| direction | phrases | share → target (reference / features) | before transfer | content change | "
        "transposition-inv. | added | removed |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r['source']} → {r['target']} | {r['n']} | {r['share_target[reference]']:.2f} / "
          f"{r['share_target[features]']:.2f} | {r['share_target_before[reference]']:.2f} / "
          f"{r['share_target_before[features]']:.2f} | {r['content_change']:.2f} | {r['transposition_invariant']:.2f} "
          f"| {r['added']:.2f} | {r['removed']:.2f} |" for r in rows],
    ]
    if "pair" in res:
        p = res["pair"]
        a, b = [k for k in p["multi-genre"] if "→" in k][0].split("→")
        lines += ["", f"Beside the pair CycleGAN `{Path(p['run']).name}` on the same held-out {a} and {b} phrases "
                  f"(reference judge{'' if p['same_held_out_songs'] else '; NOTE: the pair model was split differently'}):",
                  "", f"| model | epochs | S {a}→{b} | S {b}→{a} | S_tot | transposition-inv. {a}→{b} / {b}→{a} |",
                  "|---|---|---|---|---|---|"]
        for label, key in (("multi-genre (this)", "multi-genre"), ("CycleGAN", "cyclegan")):
            r, ep = p[key], (meta.get("epochs_done") if key == "multi-genre" else p["epochs_done"])
            lines.append(f"| {label} | {ep} | {r[f'{a}→{b}']['S']:.2f} | {r[f'{b}→{a}']['S']:.2f} | {r['S_tot']:.1%} | "
                         f"{r[f'{a}→{b}']['transposition_invariant']:.2f} / {r[f'{b}→{a}']['transposition_invariant']:.2f} |")
    lines += ["", "## Limits", *([args.notes] if args.notes else []),
              "- The small CPU preset; the output is a binary piano roll on one piano track at velocity 100.",
              "- Songs must be in 4/4 (or read as 4/4 with `--meter assume-4/4`)."]
    (args.dest / "README.md").write_text("\n".join(line for line in lines if line is not None) + "\n")
    print(f"{len(ok)} of {len(rows)} directions meet the target; wrote {args.dest}")


if __name__ == "__main__":
    main()
