"""Every direction of a multi-genre model, judged on held-out songs: a K × K table.

For a model trained with ``genre midi train --genre …`` (its run folder has the song split):

1. Two judges, both trained on the split's **training** songs only
   (:func:`midigenre.judges.train_judges`): the reference classifier (the CNN of Brunner et al.
   with K classes; trained once into ``OUT/judges/reference`` and reused, or given with
   ``--classifier``) and :class:`midigenre.judges.FeatureJudge` (an MLP over musical statistics,
   another seed).
2. On the **held-out** songs' phrases (silent phrases left out; at most ``--max-phrases`` per
   genre, a seeded choice), every source genre is transferred to every other genre. Cell
   (source, target) of the table is the share of the transfers that a judge classifies as the
   target; the diagonal is the judge's accuracy on the real phrases of that genre.
3. Content change per direction (:mod:`midigenre.metrics`): total, transposition-invariant,
   added, removed (means over phrases); and the transfers' musical statistics beside those of
   real phrases of the target genre (:func:`midigenre.judges.stats_gap`: notes per step, onsets
   per bar, polyphony, pitch range, silent beats, pitch-class histogram distance), to see what
   a target the transfers do not reach asks for.
4. With ``--pair RUN`` (a CycleGAN between two of the genres, e.g. jazz ↔ classical): S per
   direction, S_tot and content change of both models on the same held-out phrases with the same
   reference judge (S_A→B = ½[P_A(x_A) + P_A(x̃_A) − 2·P_A(x̂_B)], cycled back with each model).

Target (issue 12, :func:`midigenre.choose.meets`): every direction moves a majority of held-out
phrases to the target (share > 0.5 by the reference judge) with transposition-invariant content
change ≤ 1.2. ``--part valid`` measures the validation songs instead; choosing a model on them
(each target's epoch, each direction's threshold) is ``genre midi choose``.

Writes ``OUT/results.json``, ``OUT/directions.csv`` and ``OUT/heatmap.png``; prints markdown tables.

    python benchmarks/multi_genre.py --model runs/four --out runs/four-eval [--pair runs/jc]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

# issue 12's target, defined once in the library (the choice on the validation songs uses it too)
from midigenre.choose import TARGET_TI, meets
from midigenre.choose import part_phrases as heldout


def judges(args, sources, split_path: Path, names: list[str]):
    """The reference classifier (``--classifier``, or trained into ``OUT/judges/reference``) and the
    feature judge, trained on the training songs only (:mod:`midigenre.judges`)."""
    from midigenre.classifier import Classifier
    from midigenre.judges import feature_judge, train_judges

    caches = {s.genre: s.path for s in sources}
    if not args.classifier:
        found = train_judges(caches, split_path, Path(args.out) / "judges", which=("reference", "feature"),
                             epochs=args.classifier_epochs, say=lambda line: print(f"  {line}", flush=True))
        return {"reference": found["reference"], "features": found["feature"]}
    if not (Path(args.classifier) / "model.json").exists():
        raise SystemExit(f"{args.classifier} is not a classifier folder")
    ref = Classifier.load(args.classifier)
    if sorted(ref.genres) != sorted(names):
        raise SystemExit(f"the classifier in {args.classifier} knows {ref.genres}, the model {names}")
    return {"reference": ref, "features": feature_judge(caches, split_path, ref.settings_hash)}


def directions(model, all_judges: dict, xs: list[np.ndarray], names: list[str]) -> tuple[list[dict], dict]:
    """One row per (source, target ≠ source); and per judge the K × K share table."""
    from midigenre.judges import stats_gap
    from midigenre.metrics import content_added, content_change, content_change_transposed, content_removed

    k = len(names)
    tables = {j: np.full((k, k), np.nan) for j in all_judges}
    rows = []
    for s, x in enumerate(xs):
        for jname, judge in all_judges.items():
            tables[jname][s, s] = float(np.mean(judge.predict(x) == judge.index(names[s])))
        for t in range(k):
            if t == s:
                continue
            y, _ = model.transfer_phrases(x, names[t], source=names[s])
            row = {"source": names[s], "target": names[t], "n": int(len(x))}
            for jname, judge in all_judges.items():
                share = float(np.mean(judge.predict(y) == judge.index(names[t])))
                tables[jname][s, t] = share
                row[f"share_target[{jname}]"] = share
                row[f"share_target_before[{jname}]"] = float(np.mean(judge.predict(x) == judge.index(names[t])))
            for key, fn in (("content_change", content_change), ("transposition_invariant", content_change_transposed),
                            ("added", content_added), ("removed", content_removed)):
                v = np.asarray(fn(x, y), dtype=float)
                row[key] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            row |= stats_gap(y, xs[t])  # what the transfers have beside real phrases of the target genre
            rows.append(row)
    return rows, tables


def strength(model, judge, x_a, x_b, a: str, b: str) -> dict:
    """S per direction and S_tot of a model by one judge, with content change (same phrases for every model)."""
    from midigenre.metrics import content_change, content_change_transposed, s_tot, transfer_strength

    out, ss = {}, []
    for x, src, dst in ((x_a, a, b), (x_b, b, a)):
        y, z = model.transfer_phrases(x, dst, source=src, cycle=True)
        i = judge.index(src)
        p = [float(np.mean(judge.predict(v) == i)) for v in (x, y, z)]
        s = transfer_strength(p[0], p[1], p[2])
        ss.append(s)
        out[f"{src}→{dst}"] = {"S": s, "P_src(x)": p[0], "P_src(transferred)": p[1], "P_src(cycled)": p[2],
                               "content_change": float(np.nanmean(content_change(x, y))),
                               "transposition_invariant": float(np.nanmean(content_change_transposed(x, y)))}
    out["S_tot"] = s_tot(*ss)
    return out


def heatmap(tables: dict, names: list[str], path: Path, title: str) -> None:
    from shared.plotting import new_figure, save_png

    fig, axes = new_figure(1, len(tables), figsize=(4.6 * len(tables), 4.4), squeeze=False)
    for ax, (jname, tab) in zip(axes[0], tables.items()):
        im = ax.imshow(tab, vmin=0, vmax=1, cmap="viridis")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{tab[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if tab[i, j] < 0.6 else "black", fontweight="bold" if i == j else "normal")
        ax.set_xticks(range(len(names)), names, rotation=30)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("target genre")
        ax.set_ylabel("source genre")
        ax.set_title(f"{jname} judge: share classified as the target\n(diagonal: accuracy on real phrases)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def markdown_table(tab: np.ndarray, names: list[str]) -> str:
    lines = ["| source \\ target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i, s in enumerate(names):
        cells = [f"**{tab[i, j]:.2f}**" if i == j else f"{tab[i, j]:.2f}" for j in range(len(names))]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="multi-genre run or model folder (with its split.json)")
    ap.add_argument("--out", required=True, help="folder for the results (and the reference judge, reused)")
    ap.add_argument("--genre", action="append", default=[], help="NAME=FILE.h5, when the caches moved (default: the model's)")
    ap.add_argument("--classifier", help="a K-class classifier folder to use as the reference judge (default: train one)")
    ap.add_argument("--classifier-epochs", type=int, default=10)
    ap.add_argument("--pair", help="a CycleGAN run between two of the genres (e.g. jazz ↔ classical) to compare with")
    ap.add_argument("--max-phrases", type=int, default=600, help="held-out phrases per genre at most (0: all)")
    ap.add_argument("--part", choices=("test", "valid"), default="test",
                    help="score the held-out songs (test, to report) or the validation songs (valid; needs a run "
                         "trained with --valid-fraction)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from midigenre.dataset import SongSplit, model_caches
    from midigenre.train import GenreSource
    from midigenre.transfer import TransferModel
    from shared.atomic import write_json
    from shared.registry import model_folder

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = TransferModel.load(args.model, kind="multi-genre")
    names = model.names
    if args.genre:
        sources = [GenreSource.parse_named(spec) for spec in args.genre]
    else:
        caches = model_caches(model.meta, model.folder)  # where the training ran: --genre where they moved
        sources = [GenreSource.parse_named(f"{g}={c}") for g, c in caches.items()]
    by_name = {s.genre: s for s in sources}
    if sorted(by_name) != sorted(names):
        raise SystemExit(f"the model's genres are {names}; the caches hold {sorted(by_name)}")
    sources = [by_name[g] for g in names]
    split_path = model_folder(args.model) / "split.json"
    split = SongSplit.load(split_path)
    if args.part == "valid" and not all(split.genres[g].get("valid") for g in names):
        raise SystemExit("the run has no validation songs (train it with --valid-fraction)")
    part = "held-out" if args.part == "test" else "validation"
    print(f"model {args.model}: {' / '.join(names)}, {model.meta.get('epochs_done')} epochs; {part} songs "
          + ", ".join(f"{g} {len(split.genres[g][args.part])}" for g in names), flush=True)

    t0 = time.perf_counter()
    all_judges = judges(args, sources, split_path, names)
    xs = heldout(sources, split, args.part, args.max_phrases, args.seed)
    rows, tables = directions(model, all_judges, xs, names)
    seconds = time.perf_counter() - t0

    result = {"model": str(args.model), "genres": names, "epochs_done": model.meta.get("epochs_done"),
              "thresholds": model.thresholds, "pair_thresholds": model.pair_thresholds, "part": args.part,
              "held_out_phrases": {g: int(len(x)) for g, x in zip(names, xs)},
              "tables": {j: t.tolist() for j, t in tables.items()}, "directions": rows}

    if args.pair:
        pair = TransferModel.load(args.pair, kind="cyclegan")
        pair.set_keep_source(False)  # the generators' own output, like the multi-genre model's
        a, b = pair.genres["a"], pair.genres["b"]
        if a not in names or b not in names:
            raise SystemExit(f"the pair model transfers {a} ↔ {b}; the multi-genre model knows {names}")
        pair_split = model_folder(args.pair) / "split.json"
        same = pair_split.exists() and all(
            {e["sha1"] for e in SongSplit.load(pair_split).genres[g]["test"]} == {e["sha1"] for e in split.genres[g]["test"]}
            for g in (a, b))
        x_a, x_b = xs[names.index(a)], xs[names.index(b)]
        ref = all_judges["reference"]
        result["pair"] = {"run": str(args.pair), "same_held_out_songs": same, "epochs_done": pair.meta.get("epochs_done"),
                          "multi-genre": strength(model, ref, x_a, x_b, a, b), "cyclegan": strength(pair, ref, x_a, x_b, a, b)}

    write_json(out / "results.json", result)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "directions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    heatmap(tables, names, out / "heatmap.png", f"{Path(args.model).name}: {part} songs, "
            f"{model.meta.get('epochs_done')} epochs")

    for jname, tab in tables.items():
        print(f"\nShare of transferred {part} phrases classified as the target ({jname} judge; diagonal: its "
              f"accuracy on the real phrases):\n")
        print(markdown_table(tab, names))
    print("\n| direction | n | share → target (reference / features) | before transfer | content change | "
          "transposition-inv. | added | removed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['source']} → {r['target']} | {r['n']} | {r['share_target[reference]']:.2f} / {r['share_target[features]']:.2f} "
              f"| {r['share_target_before[reference]']:.2f} / {r['share_target_before[features]']:.2f} | {r['content_change']:.2f} "
              f"| {r['transposition_invariant']:.2f} | {r['added']:.2f} | {r['removed']:.2f} |")
    print(f"\nMusical statistics of the transferred {part} phrases (in brackets: real phrases of the target genre):\n")
    print("| direction | notes/step | onsets/bar | polyphony | pitch range | silent beats | pitch-class L1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['source']} → {r['target']} | " + " | ".join(
            f"{r[k]:.2f} ({r[k + '_target']:.2f})" for k in ("density", "onsets_per_bar", "polyphony", "pitch_range",
                                                            "empty_beats")) + f" | {r['pitch_class_l1']:.2f} |")
    if "pair" in result:
        p = result["pair"]
        print(f"\n{a} ↔ {b}: the multi-genre model beside the CycleGAN {args.pair} (reference judge; same held-out "
              f"phrases{'' if p['same_held_out_songs'] else ' — NOTE: the CycleGAN was split differently, it may have trained on some'}):\n")
        print(f"| model | epochs | S {a}→{b} | S {b}→{a} | S_tot | content change {a}→{b} / {b}→{a} | transposition-inv. |")
        print("|---|---|---|---|---|---|---|")
        for label, key, ep in (("multi-genre", "multi-genre", model.meta.get("epochs_done")), ("CycleGAN", "cyclegan", p["epochs_done"])):
            r = p[key]
            print(f"| {label} | {ep} | {r[f'{a}→{b}']['S']:.2f} | {r[f'{b}→{a}']['S']:.2f} | {r['S_tot']:.1%} | "
                  f"{r[f'{a}→{b}']['content_change']:.2f} / {r[f'{b}→{a}']['content_change']:.2f} | "
                  f"{r[f'{a}→{b}']['transposition_invariant']:.2f} / {r[f'{b}→{a}']['transposition_invariant']:.2f} |")
    ok = [r for r in rows if meets(r["share_target[reference]"], r["transposition_invariant"])]
    print(f"\n{len(ok)} of {len(rows)} directions move a majority of {part} phrases to the target (reference judge) "
          f"with transposition-invariant content change ≤ {TARGET_TI}. Judging took {seconds:.0f} s. "
          f"Wrote {out / 'results.json'}, {out / 'directions.csv'}, {out / 'heatmap.png'}.")


if __name__ == "__main__":
    main()
