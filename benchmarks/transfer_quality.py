"""Transfer quality of CycleGAN configurations: strength both ways against keeping the song.

Trains every configuration on the same caches, song split, seed (unless a configuration names its
own) and epochs (so the same number of steps), then scores each on the **validation** songs (a
part of the training songs that no model trained on) and picks one; only that choice is scored on the **held-out** songs, so the
reported numbers are not tuned to them.

Two judges score every transfer: the reference classifier (the CNN of Brunner et al.,
``genre midi train-classifier``) and a differently built one (:class:`midigenre.judges.FeatureJudge`:
an MLP over pitch-class, register, rhythm and texture statistics, another seed). Both are
trained on the training songs only. Per configuration and binarisation (``fixed`` 0.5 and
``density``-matched thresholds, which need no training of their own) the table gives S per
direction and S_tot by each judge, content change (raw, transposition-invariant, added,
removed), and musical statistics of the transferred phrases beside real phrases of the target
genre (note density, polyphony, pitch range, pitch-class histogram distance, silent beats).

Writes ``OUT/results.csv``, ``OUT/results.json`` and ``OUT/tradeoff.png`` (S_tot against
transposition-invariant content change); the runs stay in ``OUT/<name>/`` (resumable: run the
same command again and finished runs are kept, interrupted ones resumed), and every screened
(model, keep-source) score is kept in ``OUT/screen-cache.json``, so a rerun only screens what is new.

    python benchmarks/transfer_quality.py --a jazz.h5 --b classical.h5 --out runs/quality --epochs 8 --jobs 2

Also on the validation songs, and only there, it can choose *when to stop* and *whether a direction
keeps its source's notes*: ``--choose-from E`` keeps every epoch's model (``--keep-epochs`` of
``genre midi train``) and screens epochs E … last of each configuration; ``--keep-source`` also
screens each model with the source's notes kept in one direction (``genre midi transfer
--keep-source``: the output is G's notes OR the source's). The screen uses the reference judge
and density-matched thresholds; the best (epoch, keep-source) of each configuration is then scored
in full (both binarisations, both judges) like any other. ``--per-direction`` then also chooses
each direction's generator on its own among all screened models (the highest S less the content
change above 1.0 in that direction), joins the two (``midigenre.models.combine_generators``,
written to ``OUT/per-direction``) and scores that pair like any other configuration.

The final choice is the row that meets every target (S ≥ 0.5 each way, S_tot ≥ 70 %,
transposition-invariant content change ≤ 1.0 each way) with the highest S_tot or, when none
does, the one with the smallest shortfall from them (the pair pass mark of :mod:`midigenre.choose`:
:func:`~midigenre.choose.best_pair`, :func:`~midigenre.choose.best_per_direction`). The judges are
the library's (:func:`midigenre.judges.train_judges`: ``reference`` and ``feature``, kept in
``OUT/judges``).

Configurations (``--configs`` picks and orders them; ``--config-file`` adds your own, a YAML
mapping of name → training settings):
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from midigenre.choose import TARGET_CC, TARGET_S, best_pair, best_per_direction, pair_shortfall

#: Named configurations: training settings on top of the defaults (the reference values).
CONFIGS: dict[str, dict] = {
    # the reference recipe (small preset), with σ_D 0.1 as the shipped model (σ_D 1 collapsed here)
    "reference": {"sigma_d": 0.1},
    "sn": {"sigma_d": 0.1, "spectral_norm": True},
    "sn+identity": {"sigma_d": 0.1, "spectral_norm": True, "identity": 5.0},
    "sn+identity2": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0},
    "sn+identity+residual": {"sigma_d": 0.1, "spectral_norm": True, "identity": 5.0, "residual": True},
    "sn+residual": {"sigma_d": 0.1, "spectral_norm": True, "residual": True},
    "medium+sn+identity": {"sigma_d": 0.1, "spectral_norm": True, "identity": 5.0, "preset": "medium"},
    # a genre critic the generators must convince (StarGAN's domain loss), on top of SN + identity
    "sn+identity+genre": {"sigma_d": 0.1, "spectral_norm": True, "identity": 5.0, "genre_loss": 1.0},
    "sn+identity2+genre2": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0},
    # … and a content loss: the transfer itself stays near its source
    "sn+identity2+genre2+content3": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0, "content": 3.0},
    # … or a keep loss: dropping the source's notes costs, adding notes does not
    "sn+identity2+genre2+keep1": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0, "keep": 1.0},
    "sn+identity2+genre2+keep3": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0, "keep": 3.0},
    # … or trained keeping the source going B → A: G_BA learns only what to add
    "sn+identity2+genre2+keepsource-ba": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0,
                                          "keep_source": "ba"},
    # … or the same, trained again from another seed (GAN trainings vary a lot from run to run)
    "sn+identity2+genre2-seed1": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0, "seed": 1},
    "sn+identity2+genre2-seed2": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0, "seed": 2},
    # … or twice the genre loss for B → A alone, the direction that moves less
    "sn+identity2+genre2+genreba2": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0,
                                     "genre_ba_scale": 2.0},
    # … and an add loss: spend the stronger push's margin on adding fewer notes
    "sn+identity2+genre2+genreba2+add0.3": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0,
                                            "genre_ba_scale": 2.0, "add": 0.3},
    # … and an add loss at a lower weight: keeping is worth more than not adding
    "sn+identity2+genre2+keep1+add0.3": {"sigma_d": 0.1, "spectral_norm": True, "identity": 2.0, "genre_loss": 2.0,
                                         "keep": 1.0, "add": 0.3},
}
__doc__ += "".join(f"    {k:<24} {json.dumps(v)}\n" for k, v in CONFIGS.items())

def run_training(name: str, settings: dict, args, split: Path) -> subprocess.Popen | None:
    """Start (or resume) the training of one configuration in its own process; None if it is done."""
    out = Path(args.out) / name
    meta = out / "model.json"
    if meta.exists() and json.loads(meta.read_text()).get("epochs_done") == args.epochs:
        return None
    out.mkdir(parents=True, exist_ok=True)
    cfg = out.parent / f"{name}.json"
    cfg.write_text(json.dumps({"seed": args.seed, **settings, "epochs": args.epochs, "decay_after": args.decay_after,
                               "valid_fraction": args.valid_fraction}))  # a configuration may name its own seed
    if args.choose_from:
        settings = {**settings, "keep_epochs": True}
    cmd = [sys.executable, "-m", "cli", "midi", "train", "--a", args.a, "--b", args.b, "--out", str(out),
           "--split", str(split), "--threads", str(args.threads), "--precision", args.precision, "--device", "cpu"]
    cmd += ["--resume", "--epochs", str(args.epochs)] if (out / "checkpoint.pt").exists() else ["--config", str(cfg)]
    log = open(out / "train.out", "a")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})


def train_all(names: list[str], configs: dict, args, split: Path) -> None:
    pending, running = list(names), {}
    t0 = time.perf_counter()
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            proc = run_training(name, configs[name], args, split)
            if proc is not None:
                running[name] = proc
                print(f"  training {name} …", flush=True)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                if proc.returncode != 0:
                    raise SystemExit(f"training {name} failed (exit {proc.returncode}); see {Path(args.out) / name / 'train.out'}")
                print(f"  trained {name} ({(time.perf_counter() - t0) / 60:.1f} min since the start)", flush=True)
        time.sleep(2)


def load_part(args, split, part: str):
    from midigenre.dataset import PhraseCache

    xs = []
    for path in (args.a, args.b):
        with PhraseCache(path) as c:
            g = c.genres[0]
            xs.append(c.phrases(g, split.rows(c, g, part)))
    return xs


def judges(args, split_path: Path):
    """The reference classifier and the feature judge, both trained on the training songs only
    (:func:`midigenre.judges.train_judges`; the reference kept in ``OUT/judges/reference``)."""
    from midigenre.judges import train_judges
    from midigenre.train import GenreSource

    caches = {s.genre: s.path for s in (GenreSource.parse(args.a), GenreSource.parse(args.b))}
    found = train_judges(caches, split_path, Path(args.out) / "judges", which=("reference", "feature"),
                         epochs=args.classifier_epochs, say=lambda line: print(f"  {line}", flush=True))
    return {"reference": found["reference"], "features": found["feature"]}


def judge_accuracy(judge, x_a, x_b) -> float:
    pa, pb = judge.predict(x_a), judge.predict(x_b)
    return float(((pa == 0).sum() + (pb == 1).sum()) / (len(pa) + len(pb)))


def score(model, all_judges: dict, x_a, x_b, stats: bool = True) -> dict:
    """Both judges' S values, content change and (``stats``) the musical statistics against the real target phrases."""
    from midigenre.evaluate import evaluate_transfer
    from midigenre.judges import stats_gap

    a, b = model.genres["a"], model.genres["b"]
    row = {}
    for jname, judge in all_judges.items():
        res = evaluate_transfer(model, judge, x_a, x_b)
        row[f"S_tot[{jname}]"] = res["S_tot"]
        for src, dst in ((a, b), (b, a)):
            r = res[f"{src}→{dst}"]
            row[f"S {src}→{dst}[{jname}]"] = r["S"]
            row[f"P_src(x̂) {src}→{dst}[{jname}]"] = r["P_src(transferred)"]
            if jname == "reference":
                for k in ("content_change", "transposition_invariant", "added", "removed", "cycle_content_change"):
                    row[f"{k} {src}→{dst}"] = r[k]["mean"]
    for x, src, dst, target in ((x_a, a, b, x_b), (x_b, b, a, x_a)) if stats else ():
        y, _ = model.transfer_phrases(x, dst)
        gap = stats_gap(y, target)
        for k, v in gap.items():
            row[f"{k} {src}→{dst}"] = v
    return row


def plot(rows: list[dict], path: Path, a: str, b: str, screen: list[dict] = ()) -> None:
    """S_tot against transposition-invariant content change: the scored rows (labelled) and the
    screened (epoch, keep-source) models as small dots labelled by epoch."""
    from shared.plotting import new_figure, save_png

    def cc(r):
        return np.mean([r[f"transposition_invariant {a}→{b}"], r[f"transposition_invariant {b}→{a}"]])

    fig, ax = new_figure(figsize=(12, 6))
    colours = {"none": "0.55", "ab": "tab:purple", "ba": "tab:green", "both": "tab:brown"}
    tag = {c: chr(65 + i) for i, c in enumerate(dict.fromkeys(r["config"] for r in screen))}
    for k in dict.fromkeys(r["keep_source"] for r in screen):
        pts = [r for r in screen if r["keep_source"] == k]
        ax.scatter([cc(r) for r in pts], [100 * r["S_tot[reference]"] for r in pts], s=14, color=colours.get(k, "0.3"),
                   alpha=0.7, label=f"screened on valid (density), keeps source: {k}")
        for r in pts:
            ax.annotate(f"{tag[r['config']]}{r['epochs']}", (cc(r), 100 * r["S_tot[reference]"]), fontsize=6,
                        xytext=(2, 2), textcoords="offset points", color="0.35")
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    colour_of = {c: palette(i % 10) for i, c in enumerate(dict.fromkeys(r["config"] for r in rows))}
    for n, r in enumerate(rows):
        marker = "*" if r["part"] == "test" else ("o" if r["binarize"] == "fixed" else "s")
        extra = (f", epoch {r['epochs']}" if r.get("epochs") else "") + (f", keeps {r['keep_source']}" if r.get("keep_source", "none") != "none" else "")
        ax.scatter(cc(r), 100 * r["S_tot[reference]"], marker=marker, s=120 if marker == "*" else 40, color=colour_of[r["config"]],
                   edgecolor="black" if marker == "*" else None, label=f"{r['config']} ({r['binarize']}{extra}{', held-out' if r['part'] == 'test' else ''})")
    ax.axhline(70, color="0.7", lw=0.8, ls="--")
    ax.axvline(TARGET_CC, color="0.7", lw=0.8, ls="--")
    ax.set_xlabel("content change, transposition-invariant (mean of both directions; lower keeps more)")
    ax.set_ylabel("S_tot, reference classifier (%)")
    ax.set_title(f"{a} ↔ {b}: strength against keeping the song (o fixed 0.5, ■ density, ★ held-out)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if tag:
        import textwrap

        dots = "screened dots: " + "; ".join(f"{t}N = {c}, epoch N" for c, t in tag.items())
        ax.set_title(ax.get_title() + "\n" + textwrap.fill(dots, 120), fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="cache of genre A (one genre)")
    ap.add_argument("--b", required=True, help="cache of genre B")
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--configs", default="reference,sn,sn+identity,sn+identity+residual")
    ap.add_argument("--config-file", help="YAML mapping name → settings, added to the named configurations")
    ap.add_argument("--epochs", type=int, default=8, help="epochs per configuration (the same step budget for all)")
    ap.add_argument("--decay-after", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--valid-fraction", type=float, default=0.1, help="share of training songs for choosing")
    ap.add_argument("--classifier-epochs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="trainings at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training")
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--choose-from", type=int, default=0, metavar="E",
                    help="keep every epoch's model and choose the epoch (E … last) on the validation songs")
    ap.add_argument("--per-direction", action="store_true",
                    help="also choose each direction's generator on its own among the screened models (of any "
                         "configuration and epoch) and score that pair (midigenre.models.combine_generators)")
    ap.add_argument("--keep-source", action="store_true",
                    help="also screen each model keeping the source's notes in one direction (genre midi transfer --keep-source)")
    args = ap.parse_args()

    import torch

    from midigenre.config import keep_source_directions
    from midigenre.cyclegan import density_thresholds
    from midigenre.dataset import SongSplit
    from midigenre.transfer import TransferModel

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = dict(CONFIGS)
    if args.config_file:
        from shared.config import load_config_file

        configs.update(load_config_file(args.config_file))
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in configs]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(configs)}")

    split_path = out / "split.json"
    if not split_path.exists():
        SongSplit.for_sources([(args.a, None), (args.b, None)], test_fraction=0.1, seed=args.seed,
                              valid_fraction=args.valid_fraction).save(split_path)
    split = SongSplit.load(split_path)
    print(f"split {split_path}: " + "; ".join(f"{g}: {len(p['train'])} train / {len(p.get('valid', []))} valid / "
                                              f"{len(p['test'])} held-out songs" for g, p in split.genres.items()), flush=True)
    t0 = time.perf_counter()
    train_all(names, configs, args, split_path)
    train_minutes = (time.perf_counter() - t0) / 60
    all_judges = judges(args, split_path)
    x_tr = load_part(args, split, "train")
    x_va, x_te = load_part(args, split, "valid"), load_part(args, split, "test")
    for jname, j in all_judges.items():
        print(f"  judge {jname}: accuracy {judge_accuracy(j, *x_va):.1%} on the validation phrases, "
              f"{judge_accuracy(j, *x_te):.1%} held-out", flush=True)

    rows, screen = [], []
    models = {}
    rng = np.random.default_rng(args.seed)
    sample = [torch.from_numpy(x[np.sort(rng.choice(len(x), min(512, len(x)), replace=False))].astype(np.float32)).unsqueeze(1)
              for x in x_tr]

    def density(model):
        class _Pair:  # the generators, as density_thresholds expects them
            G_AB, G_BA = model.g_ab, model.g_ba

            @staticmethod
            def eval():
                return None

        return density_thresholds(_Pair, sample[0], sample[1])

    def with_keep(model, keep: str):
        model.meta["keep_source"] = keep_source_directions(keep)
        model.set_keep_source(None)
        return model

    def score_choice(name: str, model, epoch, keep: str, folder: Path, **extra) -> None:
        """Score one chosen model on the validation songs in both binarisations, as rows of the table."""
        for binarize in ("fixed", "density"):
            model.meta["thresholds"] = {"ab": 0.5, "ba": 0.5} if binarize == "fixed" else density(model)
            row = {"config": name, "binarize": binarize, "part": "valid", "thresholds": dict(model.meta["thresholds"]),
                   "epochs": epoch, "keep_source": keep, **extra, **score(model, all_judges, *x_va)}
            rows.append(row)
            models[(name, binarize)] = (model, dict(model.meta["thresholds"]), folder)
            print(f"  {name:<24} {binarize:<8} epoch {epoch} keep-source {keep} valid: S_tot {row['S_tot[reference]']:.1%} "
                  f"(features judge {row['S_tot[features]']:.1%}); S {a}→{b} {row[f'S {a}→{b}[reference]']:.2f}, {b}→{a} "
                  f"{row[f'S {b}→{a}[reference]']:.2f}; content change (TI) {row[f'transposition_invariant {a}→{b}']:.2f} / "
                  f"{row[f'transposition_invariant {b}→{a}']:.2f}", flush=True)

    def screen_key(folder: Path, keep: str) -> str:
        """A screened model's entry in the cache: its weights (path, size, time) and the keep-source choice."""
        w = Path(folder) / "model.safetensors"
        st = w.stat()
        return f"{w.resolve()}|{st.st_size}|{st.st_mtime_ns}|{keep}|seed {args.seed}|judge {judge_stamp}"

    from shared.atomic import write_json

    judge_files = sorted((out / "judges" / "reference").glob("*"))  # a judge trained again makes every entry stale
    judge_stamp = max((p.stat().st_mtime_ns for p in judge_files), default=0)
    cache_path = out / "screen-cache.json"  # the split is fixed for an OUT folder
    a, b = (json.loads((out / n / "model.json").read_text())["genres"][k] for n, k in ((names[0], "a"), (names[0], "b")))
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    keeps = ["none", "ab", "ba"] if args.keep_source else ["none"]
    for name in names:
        candidates = {args.epochs: out / name}
        if args.choose_from:
            snaps = {int(p.name.split("_")[1]): p for p in (out / name / "epochs").glob("epoch_*") if p.is_dir()}
            if snaps:
                candidates = {e: p for e, p in sorted(snaps.items()) if e >= args.choose_from}
            else:  # a run trained without --keep-epochs offers its last epoch only
                print(f"  {name}: no epoch models in {out / name / 'epochs'}; its last epoch is the only candidate", flush=True)
        epoch, keep = max(candidates), "none"
        if len(candidates) * len(keeps) > 1:  # screen: when to stop, and which direction keeps its source
            mine = []
            for e, folder in candidates.items():
                model = None
                for k in keeps:
                    key = screen_key(folder, k)
                    if key not in cache:  # screened once: a rerun (after a crash, or with more configurations) reuses it
                        if model is None:
                            model = TransferModel.load(folder)
                            model.meta["thresholds"] = density(model)
                        cache[key] = {"config": name, "epochs": e, "keep_source": k, "binarize": "density", "part": "screen",
                                      "folder": str(folder),
                                      **score(with_keep(model, k), {"reference": all_judges["reference"]}, *x_va, stats=False)}
                        write_json(cache_path, cache)
                    r = {**cache[key], "config": name, "epochs": e}
                    mine.append(r)
                    print(f"  screen {name} epoch {e} keep-source {k}: S_tot {r['S_tot[reference]']:.1%}; S "
                          f"{r[f'S {a}→{b}[reference]']:.2f} / {r[f'S {b}→{a}[reference]']:.2f}; content change (TI) "
                          f"{r[f'transposition_invariant {a}→{b}']:.2f} / {r[f'transposition_invariant {b}→{a}']:.2f}", flush=True)
            screen += mine
            pick = best_pair(mine, a, b)
            epoch, keep = pick["epochs"], pick["keep_source"]
        model = with_keep(TransferModel.load(candidates[epoch]), keep)
        score_choice(name, model, epoch, keep, candidates[epoch])

    generators = None
    if args.per_direction and screen:
        # each direction's generator on its own: the screened model best in that direction
        from midigenre.models import combine_generators

        picks = best_per_direction(screen, a, b)
        kept = [d for d in ("ab", "ba") if picks[d]["keep_source"] in (d, "both")]
        keep = "both" if len(kept) == 2 else (kept[0] if kept else "none")
        folder = combine_generators(picks["ab"]["folder"], picks["ba"]["folder"], out / "per-direction")
        generators = {d: {k: picks[d][k] for k in ("config", "epochs", "folder")} | {"keeps_source": d in kept}
                      for d in ("ab", "ba")}
        print(f"  per direction: {a}→{b} from {picks['ab']['config']} epoch {picks['ab']['epochs']}, {b}→{a} from "
              f"{picks['ba']['config']} epoch {picks['ba']['epochs']} (keep-source {keep}) → {folder}", flush=True)
        score_choice("per-direction", with_keep(TransferModel.load(folder), keep),
                     f"{picks['ab']['epochs']} / {picks['ba']['epochs']}", keep, folder, generators=generators)

    best = best_pair([r for r in rows if r["part"] == "valid"], a, b)
    model, thresholds, folder = models[(best["config"], best["binarize"])]
    model.meta["thresholds"] = thresholds
    test_row = {"config": best["config"], "binarize": best["binarize"], "part": "test", "thresholds": thresholds,
                "epochs": best["epochs"], "keep_source": best["keep_source"],
                **({"generators": best["generators"]} if "generators" in best else {}), **score(model, all_judges, *x_te)}
    rows.append(test_row)

    keys = list(dict.fromkeys(k for r in rows + screen for k in r))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in screen + rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()})
    (out / "results.json").write_text(json.dumps({"rows": rows, "screen": screen, "chosen": [best["config"], best["binarize"]],
                                                  "chosen_epoch": best["epochs"], "chosen_keep_source": best["keep_source"],
                                                  "chosen_folder": str(folder), "chosen_generators": best.get("generators"),
                                                  "train_minutes_all": train_minutes}, indent=2))
    plot(rows, out / "tradeoff.png", a, b, screen)

    def fmt(r):
        return (f"| {r['config']} | {r['epochs']} | {r['keep_source']} | {r['binarize']} | {r['part']} | {r[f'S {a}→{b}[reference]']:.2f} / {r[f'S {a}→{b}[features]']:.2f} "
                f"| {r[f'S {b}→{a}[reference]']:.2f} / {r[f'S {b}→{a}[features]']:.2f} | {r['S_tot[reference]']:.1%} / "
                f"{r['S_tot[features]']:.1%} | {r[f'content_change {a}→{b}']:.2f} / {r[f'content_change {b}→{a}']:.2f} | "
                f"{r[f'transposition_invariant {a}→{b}']:.2f} / {r[f'transposition_invariant {b}→{a}']:.2f} | "
                f"{r[f'added {a}→{b}']:.2f} / {r[f'added {b}→{a}']:.2f} | {r[f'removed {a}→{b}']:.2f} / {r[f'removed {b}→{a}']:.2f} |")

    print(f"\n{a} ↔ {b}, {args.epochs} epochs per configuration; S and S_tot as reference judge / feature judge; "
          f"content change as {a}→{b} / {b}→{a}")
    print("| config | epoch | keeps source | binarize | songs | S " + f"{a}→{b}" + " | S " + f"{b}→{a}" + " | S_tot | content change | transposition-inv. | added | removed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(fmt(r))
    print(f"\nmusical statistics of the transferred phrases (target genre's real phrases in brackets):")
    print("| config | binarize | songs | direction | notes/step | onsets/bar | polyphony | pitch range | silent beats | pitch-class L1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for s, d in ((a, b), (b, a)):
            k = f" {s}→{d}"
            print(f"| {r['config']} | {r['binarize']} | {r['part']} | {s}→{d} | {r['density' + k]:.2f} ({r['density_target' + k]:.2f}) "
                  f"| {r['onsets_per_bar' + k]:.1f} ({r['onsets_per_bar_target' + k]:.1f}) | {r['polyphony' + k]:.2f} "
                  f"({r['polyphony_target' + k]:.2f}) | {r['pitch_range' + k]:.1f} ({r['pitch_range_target' + k]:.1f}) | "
                  f"{r['empty_beats' + k]:.2f} ({r['empty_beats_target' + k]:.2f}) | {r['pitch_class_l1' + k]:.2f} |")
    verdict = "MEETS" if pair_shortfall(test_row, a, b) == 0.0 else "DOES NOT MEET"
    print(f"\nchosen on the validation songs: {best['config']} (epoch {best['epochs']}, keep-source {best['keep_source']}, "
          f"{best['binarize']}); on the held-out songs it "
          f"{verdict} the targets (S ≥ {TARGET_S} each way, S_tot ≥ 70 %, transposition-invariant content change "
          f"≤ {TARGET_CC} each way). Trainings took {train_minutes:.0f} min in all ({args.jobs} at once, "
          f"{args.threads} thread(s) each). Wrote {out / 'results.csv'}, {out / 'tradeoff.png'}.")


if __name__ == "__main__":
    main()
