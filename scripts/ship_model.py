"""Copy a trained run's model into data/models/NAME (registry format) and write its model card.

    python scripts/ship_model.py /tmp/runs/jc data/models/jazz-classical [--command "..."]

The card gives the data the model saw (caches, genres, songs and phrases per split), its
settings, the training time and throughput from log.csv, and its transfer strength S_tot
(with the given genre classifier) and content change on the held-out songs of its split.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np


def heldout_scores(run: Path, classifier: Path | None) -> dict:
    """S_tot (with a classifier) and content change on the held-out songs of the run's split."""
    from midigenre.classifier import Classifier
    from midigenre.evaluate import evaluate_transfer, heldout_phrases
    from midigenre.transfer import TransferModel

    model = TransferModel.load(run)
    x_a, x_b, _ = heldout_phrases(run, model)
    if classifier is None:
        raise SystemExit("--classifier is needed for S_tot")
    return evaluate_transfer(model, Classifier.load(classifier), x_a, x_b)


def generator_run(generator: dict) -> tuple[Path, int, list[dict]]:
    """(run folder, epoch, its log rows up to that epoch) of one generator of a model combined per
    direction (``midigenre.models.combine_generators``: ``from`` is a run or one of its epoch folders)."""
    folder = Path(generator["from"])
    run = folder.parent.parent if folder.parent.name == "epochs" else folder
    with open(run / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    epoch = int(folder.name.split("_")[1]) if folder.parent.name == "epochs" else len(rows)
    return run, epoch, rows[:epoch]


def generators_line(meta: dict, generators: dict, named: dict) -> str:
    """The card's line on where each generator of a model combined per direction came from."""
    from midigenre.config import TrainConfig

    a, b = meta["genres"]["a"], meta["genres"]["b"]
    default = TrainConfig().to_dict()  # a setting an older run did not write has its default
    t_ab, t_ba = ({**default, **meta["generators"][d]["train"]} for d in ("ab", "ba"))
    differ = [k for k in sorted(set(t_ab) | set(t_ba)) if k not in ("binarize", "keep_epochs") and t_ab.get(k) != t_ba.get(k)]
    name = {d: (named.get(d) or {}).get("config") or generators[d][0].name for d in ("ab", "ba")}
    return (f"- Each direction's generator was chosen on its own on the validation songs (`benchmarks/transfer_quality.py "
            f"--per-direction`): {a} → {b} from the training `{name['ab']}` after epoch {generators['ab'][1]}, {b} → {a} "
            f"from `{name['ba']}` after epoch {generators['ba'][1]}. The settings above are the {b} → {a} generator's training's"
            + (f"; the other's differ in {', '.join(f'{k} ({t_ab.get(k)})' for k in differ)}." if differ
               else "; the other's are the same."))


def command_labels(meta: dict, generators: dict, n: int) -> list[str]:
    """What each ``--command`` trained: one training, or (combined per direction) A → B's, then B → A's."""
    if not generators or n < 2:
        return [""] * n
    a, b = meta["genres"]["a"], meta["genres"]["b"]
    return [f"the {a} → {b} generator's training", f"the {b} → {a} generator's training"] + [""] * (n - 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--command", action="append", default=[],
                    help="the training command, for the card (a model combined per direction: one per training, "
                         "A → B's first)")
    ap.add_argument("--prepare", default="", help="the prepare commands, for the card")
    ap.add_argument("--classifier", type=Path, help="genre classifier folder for S_tot")
    ap.add_argument("--classifier-command", default="", help="how the classifier was trained, for the card")
    ap.add_argument("--benchmark", type=Path, help="results.json of benchmarks/transfer_quality.py: its chosen "
                    "binarisation's thresholds are shipped and its two-judge rows of this run go into the card")
    ap.add_argument("--benchmark-command", default="", help="how the benchmark was run, for the card")
    ap.add_argument("--limits", default="", help="markdown bullets for the card's Limits section (default: generic)")
    args = ap.parse_args()

    from midigenre.config import keep_source_directions
    from shared.registry import read_meta, resave_model

    meta = read_meta(args.run, "cyclegan")
    generators = {d: generator_run(g) for d, g in (meta.get("generators") or {}).items()}  # combined per direction
    home = generators["ba"][0] if generators else args.run
    cfg = json.loads((home / "config.json").read_text())  # the run's settings and where it ran
    with open(home / "log.csv") as fh:
        log = list(csv.DictReader(fh))
    trainings = {}  # combined per direction: each training once, up to the later epoch a generator was taken from
    for run, _, rows in generators.values():
        trainings[run.resolve()] = max(trainings.get(run.resolve(), (run, [])), (run, rows), key=lambda t: len(t[1]))
    if generators:
        log = generators["ba"][2]
        seconds = sum(float(r["seconds"]) for _, rows in trainings.values() for r in rows)
    else:
        seconds = sum(float(r["seconds"]) for r in log)
    changes, bench_rows, source, bench_generators = {}, [], args.run, {}
    if args.benchmark:
        bench = json.loads(args.benchmark.read_text())
        name, binarize = bench["chosen"]
        bench_rows = [r for r in bench["rows"] if r["config"] == name]
        bench_generators = bench.get("chosen_generators") or {}
        # binarisation only acts when the model is saved: the weights are those of a run with this option
        keep = bench.get("chosen_keep_source", "none")
        changes = {"thresholds": bench_rows[-1]["thresholds"] if binarize == "density" else {"ab": 0.5, "ba": 0.5},
                   "train": {**meta["train"], "binarize": binarize},
                   "keep_source": keep_source_directions(keep)}
        epoch = len(log) if generators else (bench.get("chosen_epoch") or len(log))
        if epoch < len(log):  # the epoch chosen on the validation songs, from the run's epochs/ folder
            source = args.run / "epochs" / f"epoch_{epoch:03d}"
            log = log[:epoch]
            seconds = sum(float(r["seconds"]) for r in log)
            changes["epochs_done"] = epoch
        bench_rows = [r for r in bench_rows if r["binarize"] == binarize] + [
            r for r in bench_rows if r["binarize"] != binarize and r["part"] == "valid"]
    args.dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "split.json", args.dest / "split.json")
    resave_model(source, args.dest, **changes)  # the same tensors, format of today
    scores = heldout_scores(args.dest, args.classifier)
    clf_meta = read_meta(args.classifier, "genre-classifier")
    metrics = {"heldout": scores, "training_seconds": round(seconds, 1), "epochs": len(log),
               "classifier_accuracy": clf_meta["metrics"]["accuracy"]}
    meta = read_meta(resave_model(args.dest, args.dest, metrics=metrics))

    d, t, m = meta["data"], meta["train"], meta["config"]
    ga0, gb0 = meta["genres"]["a"], meta["genres"]["b"]
    saved_keep = meta.get("keep_source") or {}
    keep_dirs = {f"{ga0} → {gb0}": bool(saved_keep.get("ab")), f"{gb0} → {ga0}": bool(saved_keep.get("ba"))}
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
        f"- Piano-roll settings: {json.dumps(meta['settings'])}.",
        f"- Song-level split (seed {t['seed']}, {t['test_fraction']:.0%} of songs held out): training songs "
        f"{d['train_songs']}, held-out songs {d['test_songs']}; {d['train_phrases_per_genre']} training phrases per genre "
        "after downsampling the larger genre, as in the reference. `split.json` lists the songs.",
        "",
        "## Settings",
        f"- Architecture: preset `{t['preset']}` ({json.dumps(m)}), variant `{t['variant']}`.",
        f"- Training: {t['epochs']} epochs, batch {t['batch_size']}, Adam lr {t['lr']} (β1 {t['beta1']}), constant for "
        f"{t['decay_after']} epochs then linear decay to 0, σ_D {t['sigma_d']}, image pool {t['pool_size']}, "
        f"loss weights {json.dumps(t['lambdas'])}, identity {t.get('identity', 0)}, genre loss {t.get('genre_loss', 0)}"
        + (f" (× {t['genre_ba_scale']:g} going {meta['genres']['b']} → {meta['genres']['a']})" if t.get("genre_ba_scale", 1.0) != 1.0 else "")
        + ", "
        f"content {t.get('content', 0)}, keep {t.get('keep', 0)}, add {t.get('add', 0)}, seed {t['seed']}; binarised `{t.get('binarize', 'fixed')}` (thresholds "
        f"{json.dumps({k: round(v, 3) for k, v in (meta.get('thresholds') or {'ab': 0.5, 'ba': 0.5}).items()})}).",
        (f"- Exported after epoch {len(log)} of {t['epochs']}, the epoch chosen on the validation songs "
         "(`benchmarks/transfer_quality.py --choose-from`)." if len(log) < t["epochs"] and not generators else ""),
        (generators_line(meta, generators, bench_generators) if generators else ""),
        (f"- Keeps every note of the source going {' and '.join(k for k in (f'{ga0} → {gb0}', f'{gb0} → {ga0}') if keep_dirs[k])} "
         "and only adds to it (chosen on the validation songs; `genre midi transfer --no-keep-source` turns it off)."
         if any(keep_dirs.values()) else ""),
        *[f"- Command{f' ({w})' if w else ''}: `{c}`" for w, c in zip(command_labels(meta, generators, len(args.command)), args.command)],
        f"- Trained on {cfg.get('device', '?')} with genre-transfer {meta['package_version']}, torch {meta['torch_version']}: "
        + (f"{seconds / 60:.1f} min for {len(log)} epochs ({np.mean([float(r['phrases_per_s']) for r in log]):.1f} phrases/s)."
           if not generators else f"{seconds / 60:.1f} min for the epochs its generators were taken from, "
           + " and ".join(f"{len(rows)} epochs of {run.name}" for run, rows in trainings.values()) + "."),
        "",
        "## Held-out results",
        f"Measured on the phrases of the held-out songs with the genre classifier "
        f"(held-out accuracy {clf_meta['metrics']['accuracy']:.1%} on the same split"
        + (f"; trained with `{args.classifier_command}`" if args.classifier_command else "") + "). "
        "P values are shares classified as the source genre; S = ½[P(x) + P(x̃) − 2·P(x̂)]; content change "
        "Σ|x − x̂|/Σx, mean ± std over phrases (see `midigenre.metrics`).",
        "",
        f"**S_tot = {scores['S_tot']:.1%}**, content change {scores['content_change']['mean']:.2f} ± "
        f"{scores['content_change']['std']:.2f} (both directions).",
        "",
        "| direction | phrases | P_src(x) | P_src(x̂) | P_src(x̃) | S | content change | added | removed | transposition-invariant |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in (f"{meta['genres']['a']}→{meta['genres']['b']}", f"{meta['genres']['b']}→{meta['genres']['a']}"):
        v = scores[k]
        f = lambda s: f"{v[s]['mean']:.2f} ± {v[s]['std']:.2f}"  # noqa: E731
        lines.append(f"| {k} | {v['n']} | {v['P_src(x)']:.3f} | {v['P_src(transferred)']:.3f} | {v['P_src(cycled)']:.3f} "
                     f"| {v['S']:.3f} | {f('content_change')} | {f('added')} | {f('removed')} | {f('transposition_invariant')} |")
    if bench_rows:
        ga, gb = meta["genres"]["a"], meta["genres"]["b"]
        ab, ba = f"{ga}→{gb}", f"{gb}→{ga}"
        lines += [
            "",
            "### Both judges (benchmarks/transfer_quality.py)",
            "The benchmark scores with two judges trained on the training songs only: the reference classifier (CNN) "
            "and a feature judge (an MLP over pitch-class, register, rhythm and texture statistics, another seed). "
            "Settings were chosen on the validation songs (`valid`, set aside from the training songs); the held-out "
            "songs (`test`) score the choice once. S and S_tot as reference judge / feature judge; content change "
            f"as {ab} / {gb}→{ga}."
            + (f" Run as `{args.benchmark_command}`." if args.benchmark_command else ""),
            "",
            f"| binarize | songs | S {ab} | S {ba} | S_tot | content change | transposition-inv. | added | removed |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in bench_rows:
            two = lambda k: f"{r[k.format(ab)]:.2f} / {r[k.format(ba)]:.2f}"  # noqa: E731
            lines.append(f"| {r['binarize']} | {'held-out' if r['part'] == 'test' else r['part']} "
                         f"| {r[f'S {ab}[reference]']:.2f} / {r[f'S {ab}[features]']:.2f} "
                         f"| {r[f'S {ba}[reference]']:.2f} / {r[f'S {ba}[features]']:.2f} "
                         f"| {r['S_tot[reference]']:.1%} / {r['S_tot[features]']:.1%} | {two('content_change {}')} "
                         f"| {two('transposition_invariant {}')} | {two('added {}')} | {two('removed {}')} |")
    lines += [
        "",
        "Reference numbers (Brunner et al. 2019, jazz↔classical on their data with the paper preset): S_tot 57.64 % "
        "(baseline), 63.98 % (SN), 63.56 % (SA), 66.76 % (SN+SA); content change 0.92, 0.52, 2.11, 2.19.",
        "",
        "## Limits",
        *([args.limits] if args.limits else []),
        "- Trained on the small CPU preset and a few thousand phrases per genre; it learns texture and register more "
        "than style. The output is a binary piano roll on one piano track at velocity 100.",
        "- Songs must be in 4/4 (or read as 4/4 with `--meter assume-4/4`).",
    ]
    examples = args.dest / "examples" / "examples.md"
    if examples.exists():
        lines += ["", "## Held-out examples",
                  "Two held-out songs per direction, not picked by how they turned out (evenly spaced in the sorted list "
                  "of held-out songs; `scripts/ship_examples.py`), first 8 bars each: source, transferred and cycled "
                  "back as MIDI and as audio rendered with FluidSynth (OGG), and a piano-roll picture.", "",
                  examples.read_text().strip()]
    (args.dest / "README.md").write_text("\n".join(line for line in lines if line is not None) + "\n")
    print(f"S_tot {scores['S_tot']:.1%}, content change {scores['content_change']['mean']:.2f}")


if __name__ == "__main__":
    main()
